// Batched products of many small matrices (issue 10): attention multiplies one short sequence per
// (frame, head) or per (pixel, head), e.g. 1,024 products of 8x32 by 32x8. libtorch 1.13's CPU
// bmm without MKL issues one BLAS call per batch entry, and the call costs more than its
// arithmetic (measured 4 GFLOP/s at these sizes). Here the batch is one parallel loop and each
// product a register-blocked loop (gemmBlocked, also used by attention_ops.h).
// Included by lvdm_torch.cc inside its anonymous namespace. Each output element is summed over k
// in index order, whatever the thread count: same inputs, same numbers.

#if defined(__x86_64__) && defined(__GNUC__)
// An x86-64-v3 (AVX2 + FMA) build of the hot loops beside the baseline one, picked at load time
// from the CPU's features.
#define LVDM_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LVDM_SIMD_CLONES
#endif

/** Per-product work (m k n) at or below which the batch loop beats per-entry BLAS calls. */
constexpr int64_t kSmallBmmMaxWork = 32 * 32 * 32;
/** Fewer products than this go to BLAS (its per-call cost is then small against the total). */
constexpr int64_t kSmallBmmMinBatch = 16;

bool smallBmmApplies(const at::Tensor& a, const at::Tensor& b) {
  return a.dim() == 3 && b.dim() == 3 && a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat && a.size(0) == b.size(0) &&
         a.size(0) >= kSmallBmmMinBatch && a.size(2) == b.size(1) && a.size(1) * a.size(2) * b.size(2) <= kSmallBmmMaxWork;
}

/** Eight floats as one vector (GCC vector extensions: AVX registers in the x86-64-v3 clones,
 *  two SSE registers in the baseline ones). */
typedef float V8 __attribute__((vector_size(32)));
inline V8 load8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store8(float* p, V8 v) { std::memcpy(p, &v, sizeof v); }

/**
 * C (m x n, row stride ldc) = [C +] A (m x k, row stride lda) B (k x n, row stride ldb): blocks of
 * 4 rows by 16 or 8 columns accumulate in vector registers, the rest one element at a time.
 * Inlined into the cloned callers, so it is compiled for each of their targets.
 */
__attribute__((always_inline)) inline void gemmBlocked(const float* __restrict A, int64_t lda, const float* __restrict B, int64_t ldb, float* __restrict C, int64_t ldc,
                                                      int64_t m, int64_t n, int64_t k, bool accumulate) {
  const V8 zero = {};
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) {
    const float* a0 = A + i * lda;
    const float* a1 = a0 + lda;
    const float* a2 = a1 + lda;
    const float* a3 = a2 + lda;
    float* c0 = C + i * ldc;
    float* c1 = c0 + ldc;
    float* c2 = c1 + ldc;
    float* c3 = c2 + ldc;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
      V8 x00 = accumulate ? load8(c0 + j) : zero, x01 = accumulate ? load8(c0 + j + 8) : zero;
      V8 x10 = accumulate ? load8(c1 + j) : zero, x11 = accumulate ? load8(c1 + j + 8) : zero;
      V8 x20 = accumulate ? load8(c2 + j) : zero, x21 = accumulate ? load8(c2 + j + 8) : zero;
      V8 x30 = accumulate ? load8(c3 + j) : zero, x31 = accumulate ? load8(c3 + j + 8) : zero;
      for (int64_t p = 0; p < k; p++) {
        const V8 b0 = load8(B + p * ldb + j), b1 = load8(B + p * ldb + j + 8);
        x00 += a0[p] * b0;
        x01 += a0[p] * b1;
        x10 += a1[p] * b0;
        x11 += a1[p] * b1;
        x20 += a2[p] * b0;
        x21 += a2[p] * b1;
        x30 += a3[p] * b0;
        x31 += a3[p] * b1;
      }
      store8(c0 + j, x00);
      store8(c0 + j + 8, x01);
      store8(c1 + j, x10);
      store8(c1 + j + 8, x11);
      store8(c2 + j, x20);
      store8(c2 + j + 8, x21);
      store8(c3 + j, x30);
      store8(c3 + j + 8, x31);
    }
    for (; j + 8 <= n; j += 8) {
      V8 x0 = accumulate ? load8(c0 + j) : zero, x1 = accumulate ? load8(c1 + j) : zero;
      V8 x2 = accumulate ? load8(c2 + j) : zero, x3 = accumulate ? load8(c3 + j) : zero;
      for (int64_t p = 0; p < k; p++) {
        const V8 b0 = load8(B + p * ldb + j);
        x0 += a0[p] * b0;
        x1 += a1[p] * b0;
        x2 += a2[p] * b0;
        x3 += a3[p] * b0;
      }
      store8(c0 + j, x0);
      store8(c1 + j, x1);
      store8(c2 + j, x2);
      store8(c3 + j, x3);
    }
    for (; j < n; j++)
      for (int r = 0; r < 4; r++) {
        float acc = accumulate ? C[(i + r) * ldc + j] : 0.0f;
        for (int64_t p = 0; p < k; p++) acc += A[(i + r) * lda + p] * B[p * ldb + j];
        C[(i + r) * ldc + j] = acc;
      }
  }
  for (; i < m; i++) {
    const float* ai = A + i * lda;
    float* ci = C + i * ldc;
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      V8 x = accumulate ? load8(ci + j) : zero;
      for (int64_t p = 0; p < k; p++) x += ai[p] * load8(B + p * ldb + j);
      store8(ci + j, x);
    }
    for (; j < n; j++) {
      float acc = accumulate ? ci[j] : 0.0f;
      for (int64_t p = 0; p < k; p++) acc += ai[p] * B[p * ldb + j];
      ci[j] = acc;
    }
  }
}

/** C (m x n) = A (m x k) B (k x n), all row-major and contiguous. */
LVDM_SIMD_CLONES void smallGemm(const float* __restrict A, const float* __restrict B, float* __restrict C, int64_t m, int64_t k, int64_t n) {
  gemmBlocked(A, k, B, n, C, n, m, n, k, false);
}

/** [batch, m, k] x [batch, k, n] -> [batch, m, n]; operands may be transposed views. */
at::Tensor smallBmm(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor A = a.contiguous(), B = b.contiguous();
  const int64_t batch = A.size(0), m = A.size(1), k = A.size(2), n = B.size(2);
  at::Tensor C = at::empty({batch, m, n}, A.options());
  const float* ap = A.data_ptr<float>();
  const float* bp = B.data_ptr<float>();
  float* cp = C.data_ptr<float>();
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, m * k * n));
  at::parallel_for(0, batch, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t e = b0; e < b1; e++) smallGemm(ap + e * m * k, bp + e * k * n, cp + e * m * n, m, k, n);
  });
  return C;
}
