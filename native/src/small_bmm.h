// Batched products of many small matrices (issue 10): attention multiplies one short sequence per
// (frame, head) or per (pixel, head), e.g. 1,024 products of 8x32 by 32x8. libtorch 1.13's CPU
// bmm without MKL issues one BLAS call per batch entry, and the call costs more than its
// arithmetic (measured 4 GFLOP/s at these sizes). Here the batch is one parallel loop and each
// product a plain triple loop vectorised over the output row.
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

/** R output rows at a time (R independent FMA chains), accumulated in registers: N is a
 *  compile-time row length; R N <= 32 floats keeps the accumulators in AVX registers. */
template <int64_t N, int64_t R>
__attribute__((always_inline)) inline void gemmRows(const float* __restrict A, const float* __restrict B, float* __restrict C, int64_t m, int64_t k) {
  int64_t i = 0;
  for (; i + R <= m; i += R) {
    float acc[R][N] = {};
    for (int64_t p = 0; p < k; p++) {
      const float* bp = B + p * N;
      for (int64_t r = 0; r < R; r++) {
        const float av = A[(i + r) * k + p];
        for (int64_t j = 0; j < N; j++) acc[r][j] += av * bp[j];
      }
    }
    for (int64_t r = 0; r < R; r++)
      for (int64_t j = 0; j < N; j++) C[(i + r) * N + j] = acc[r][j];
  }
  for (; i < m; i++) {
    float acc[N] = {};
    for (int64_t p = 0; p < k; p++) {
      const float av = A[i * k + p];
      const float* bp = B + p * N;
      for (int64_t j = 0; j < N; j++) acc[j] += av * bp[j];
    }
    for (int64_t j = 0; j < N; j++) C[i * N + j] = acc[j];
  }
}

/** C (m x n) = A (m x k) B (k x n), all row-major and contiguous. */
LVDM_SIMD_CLONES void smallGemm(const float* __restrict A, const float* __restrict B, float* __restrict C, int64_t m, int64_t k, int64_t n) {
  switch (n) {
    case 8: return gemmRows<8, 4>(A, B, C, m, k);
    case 16: return gemmRows<16, 2>(A, B, C, m, k);
    case 32: return gemmRows<32, 1>(A, B, C, m, k);
    default: break;
  }
  for (int64_t i = 0; i < m; i++) {
    float* c = C + i * n;
    const float* ai = A + i * k;
    for (int64_t j = 0; j < n; j++) c[j] = 0.0f;
    for (int64_t p = 0; p < k; p++) {
      const float av = ai[p];
      const float* bp = B + p * n;
      for (int64_t j = 0; j < n; j++) c[j] += av * bp[j];
    }
  }
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
