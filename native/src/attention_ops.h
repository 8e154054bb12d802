// Multi-head self-attention as one native op forward and one backward (issue 10). The composite
// version (lib/models/unet3d/attention.ts) runs about 20 tfjs kernels forward and 40 backward per
// attention block: splitting heads out of the q/k/v projection, transposes, batched matmuls of
// 8x8 or 64x64 products, the relative-position matmuls, softmax and merging the heads back. Here
// each (sequence, head) pair is one task of a parallel loop that reads q, k and v in place from the
// projection [G*S, 3C] and writes its head's columns of the output [G*S, C].
//
// Relative positions (Shaw et al., 2018, eqs. 3-4), table rows r(i, j) = clip(j - i, -L, L) + L:
//   e_ij = q_i . k_j + keyScale q_i . wK[r(i, j)]     ('shaw'; 'transposed': keyScale q_j . wK[r(j, i)])
//   z_i  = sum_j a_ij (v_j + wV[r(i, j)]),  a_i = softmax_j(e_i)
// q arrives already scaled by 1/sqrt(d) (folded into the projection's weights).
// Included by lvdm_torch.cc inside its anonymous namespace, after small_bmm.h (gemmBlocked,
// LVDM_SIMD_CLONES) and fused_ops.h (expApprox). Table gradients are summed per (sequence, head) and then over them in index
// order: results do not depend on the thread count.

std::string shapeString(const at::Tensor& t) {
  std::string out = "[";
  for (int64_t k = 0; k < t.dim(); k++) out += (k ? ", " : "") + std::to_string(t.size(k));
  return out + "]";
}

struct AttnGeom {
  int64_t g = 0, s = 0, heads = 0, c = 0, d = 0, maxDist = 0, rows = 0;
  bool rel = false, keyT = false;
  float keyScale = 1.0f;
  int64_t rIndex(int64_t i, int64_t j) const { return std::max(-maxDist, std::min(maxDist, j - i)) + maxDist; }
};

/** attrs groups, seqLen, heads, hasRel, maxDistance, keyTransposed, keyScale; y [G*S, 3C]. */
AttnGeom readAttnGeom(Args& a, const at::Tensor& y, const char* op) {
  AttnGeom q;
  q.g = a.i();
  q.s = a.i();
  q.heads = a.i();
  q.rel = a.b();
  q.maxDist = a.i();
  q.keyT = a.b();
  q.keyScale = static_cast<float>(a.f());
  if (y.dim() != 2 || y.size(0) != q.g * q.s || y.size(1) % 3 != 0)
    throw std::runtime_error(std::string(op) + ": q/k/v projection must be [groups * seqLen, 3C] = [" + std::to_string(q.g * q.s) + ", 3C], got " + shapeString(y));
  q.c = y.size(1) / 3;
  if (q.heads <= 0 || q.c % q.heads != 0) throw std::runtime_error(std::string(op) + ": " + std::to_string(q.c) + " channels not divisible by " + std::to_string(q.heads) + " heads");
  q.d = q.c / q.heads;
  q.rows = 2 * q.maxDist + 1;
  return q;
}

void checkTable(const at::Tensor& t, const AttnGeom& q, const char* what) {
  if (t.dim() != 2 || t.size(0) != q.rows || t.size(1) != q.d)
    throw std::runtime_error(std::string("SelfAttention: ") + what + " must be [" + std::to_string(q.rows) + ", " + std::to_string(q.d) + "], got " + shapeString(t));
}

/** dst (cols x rows) = src (rows x cols, row stride ld) transposed. */
inline void transposeInto(const float* src, int64_t ld, int64_t rows, int64_t cols, float* dst) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) dst[c * rows + r] = src[r * ld + c];
}

// Row reductions of the softmax in eight vector lanes, then the lanes and the tail in index order:
// a float reduction in one scalar accumulator does not vectorise without reassociating (which the
// build does not allow), and it kept the whole exp loop scalar (at 256 positions the kernel is
// about 10% faster without it). The order is fixed by S alone: results do not depend on threads.

/** max_j a[j] (S >= 1). */
__attribute__((always_inline)) inline float rowMax(const float* a, int64_t n) {
  float mx = a[0];
  int64_t j = 0;
  if (n >= 8) {
    V8 m = load8(a);
    for (j = 8; j + 8 <= n; j += 8) {
      const V8 v = load8(a + j);
      m = m > v ? m : v;
    }
    for (int l = 0; l < 8; l++) mx = std::max(mx, m[l]);
  }
  for (; j < n; j++) mx = std::max(mx, a[j]);
  return mx;
}

/** Sum of the eight lanes, then of the tail a[j0..n) times b (or alone when b is null). */
__attribute__((always_inline)) inline float finishSum(V8 acc, const float* a, const float* b, int64_t j0, int64_t n) {
  float s = 0.0f;
  for (int l = 0; l < 8; l++) s += acc[l];
  for (int64_t j = j0; j < n; j++) s += b ? a[j] * b[j] : a[j];
  return s;
}

/** sum_j a[j]. */
__attribute__((always_inline)) inline float rowSum(const float* a, int64_t n) {
  V8 acc = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) acc += load8(a + j);
  return finishSum(acc, a, nullptr, j, n);
}

/** sum_j a[j] b[j]. */
__attribute__((always_inline)) inline float rowDot(const float* __restrict a, const float* __restrict b, int64_t n) {
  V8 acc = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) acc += load8(a + j) * load8(b + j);
  return finishSum(acc, a, b, j, n);
}

/** Scratch of one thread: every per-task buffer, sized for the largest use. */
struct AttnScratch {
  std::vector<float> kt, vt, tab, rel, pooled, at, dA;
  explicit AttnScratch(const AttnGeom& q)
      : kt(q.d * q.s), vt(q.d * q.s), tab(std::max(q.d, q.s) * q.rows), rel(q.s * q.rows), pooled(q.s * q.rows), at(q.s * q.s), dA(q.s * q.s) {}
};

/** One (sequence, head): attention weights A [S, S] and its head's output rows (stride C). */
LVDM_SIMD_CLONES void attnForwardOne(const AttnGeom& q, const float* __restrict y, const float* __restrict wK, const float* __restrict wV, float* __restrict A,
                                     float* __restrict out, AttnScratch& w) {
  const int64_t S = q.s, d = q.d, C3 = 3 * q.c, R = q.rows;
  const float* Q = y;
  const float* K = y + q.c;
  const float* V = y + 2 * q.c;
  transposeInto(K, C3, S, d, w.kt.data());
  gemmBlocked(Q, C3, w.kt.data(), S, A, S, S, S, d, false);  // q_i . k_j
  if (q.rel) {
    // rel[j][r] = keyScale q_j . wK[r]; added at (i, j) from row i ('shaw') or row j ('transposed').
    transposeInto(wK, d, R, d, w.tab.data());
    gemmBlocked(Q, C3, w.tab.data(), R, w.rel.data(), R, S, R, d, false);
    const float* rel = w.rel.data();
    for (int64_t i = 0; i < S; i++)
      for (int64_t j = 0; j < S; j++) A[i * S + j] += q.keyScale * (q.keyT ? rel[j * R + q.rIndex(j, i)] : rel[i * R + q.rIndex(i, j)]);
  }
  for (int64_t i = 0; i < S; i++) {
    float* a = A + i * S;
    const float mx = rowMax(a, S);
    for (int64_t j = 0; j < S; j++) a[j] = expApprox(a[j] - mx);  // no reduction here: vectorises
    const float inv = 1.0f / rowSum(a, S);
    for (int64_t j = 0; j < S; j++) a[j] *= inv;
  }
  gemmBlocked(A, S, V, C3, out, q.c, S, d, S, false);  // sum_j a_ij v_j
  if (q.rel) {
    // pooled[i][r] = sum of a_ij over the j with r(i, j) = r; out_i += pooled_i wV.
    float* pooled = w.pooled.data();
    std::fill(pooled, pooled + S * R, 0.0f);
    for (int64_t i = 0; i < S; i++)
      for (int64_t j = 0; j < S; j++) pooled[i * R + q.rIndex(i, j)] += A[i * S + j];
    gemmBlocked(pooled, R, wV, d, out, q.c, S, d, R, true);
  }
}

/** inputs y [G*S, 3C], [wK [R, d], wV [R, d]] -> out [G*S, C], attention weights [G*heads, S, S]. */
Tensors selfAttention(const Tensors& in, Args& a) {
  at::Tensor y = in.at(0).contiguous();
  AttnGeom q = readAttnGeom(a, y, "SelfAttention");
  at::Tensor wK, wV;
  if (q.rel) {
    wK = in.at(1).contiguous();
    wV = in.at(2).contiguous();
    checkTable(wK, q, "relative key table");
    checkTable(wV, q, "relative value table");
  }
  at::Tensor out = at::empty({q.g * q.s, q.c}, y.options());
  at::Tensor attn = at::empty({q.g * q.heads, q.s, q.s}, y.options());
  const float* yp = y.data_ptr<float>();
  const float* kp = q.rel ? wK.data_ptr<float>() : nullptr;
  const float* vp = q.rel ? wV.data_ptr<float>() : nullptr;
  float* op = out.data_ptr<float>();
  float* ap = attn.data_ptr<float>();
  at::parallel_for(0, q.g * q.heads, 1, [&](int64_t e0, int64_t e1) {
    AttnScratch w(q);
    for (int64_t e = e0; e < e1; e++) {
      const int64_t gi = e / q.heads, h = e % q.heads;
      attnForwardOne(q, yp + gi * q.s * 3 * q.c + h * q.d, kp, vp, ap + e * q.s * q.s, op + gi * q.s * q.c + h * q.d, w);
    }
  });
  return Tensors{out, attn};
}

/**
 * One (sequence, head) of the backward pass: its head's columns of dy (stride 3C) and its parts of
 * the table gradients. With dA_ij = dz_i . (v_j + wV[r(i, j)]) and dE_ij = a_ij (dA_ij - sum_j' a_ij' dA_ij'):
 *   dq = dE k (+ relative-key terms),  dk = dE^T q,  dv = A^T dz,  dwV = pooled(A)^T dz,
 *   dwK = keyScale pooled(dE)^T q, pooling over the (i, j) of each table row in the chosen orientation.
 */
LVDM_SIMD_CLONES void attnBackwardOne(const AttnGeom& q, const float* __restrict y, const float* __restrict A, const float* __restrict dz, const float* __restrict wK,
                                      const float* __restrict wV, float* __restrict dy, float* __restrict dwK, float* __restrict dwV, AttnScratch& w) {
  const int64_t S = q.s, d = q.d, C3 = 3 * q.c, R = q.rows;
  const float* Q = y;
  const float* K = y + q.c;
  const float* V = y + 2 * q.c;
  float* dA = w.dA.data();
  transposeInto(V, C3, S, d, w.vt.data());
  gemmBlocked(dz, q.c, w.vt.data(), S, dA, S, S, S, d, false);  // dz_i . v_j
  if (q.rel) {
    transposeInto(wV, d, R, d, w.tab.data());
    gemmBlocked(dz, q.c, w.tab.data(), R, w.rel.data(), R, S, R, d, false);  // dz_i . wV[r]
    const float* rel = w.rel.data();
    for (int64_t i = 0; i < S; i++)
      for (int64_t j = 0; j < S; j++) dA[i * S + j] += rel[i * R + q.rIndex(i, j)];
  }
  // Softmax backward in place: dA becomes dE.
  for (int64_t i = 0; i < S; i++) {
    const float* a = A + i * S;
    float* g = dA + i * S;
    const float dot = rowDot(a, g, S);
    for (int64_t j = 0; j < S; j++) g[j] = a[j] * (g[j] - dot);
  }
  const float* dE = dA;
  gemmBlocked(dE, S, K, C3, dy, C3, S, d, S, false);  // dq
  float* t = w.at.data();
  transposeInto(dE, S, S, S, t);
  gemmBlocked(t, S, Q, C3, dy + q.c, C3, S, d, S, false);  // dk = dE^T q
  transposeInto(A, S, S, S, t);
  gemmBlocked(t, S, dz, q.c, dy + 2 * q.c, C3, S, d, S, false);  // dv = A^T dz
  if (q.rel) {
    float* pooled = w.pooled.data();  // [S, R], reused for A's and dE's pools
    float* pt = w.tab.data();         // [R, S]
    // dwV = pooled(A)^T dz, pooled over j per (i, r(i, j)).
    std::fill(pooled, pooled + S * R, 0.0f);
    for (int64_t i = 0; i < S; i++)
      for (int64_t j = 0; j < S; j++) pooled[i * R + q.rIndex(i, j)] += A[i * S + j];
    transposeInto(pooled, R, S, R, pt);
    gemmBlocked(pt, S, dz, q.c, dwV, d, R, d, S, false);
    // Key table: rows u (the query whose q enters the term) pool keyScale dE over their (i, j).
    std::fill(pooled, pooled + S * R, 0.0f);
    for (int64_t i = 0; i < S; i++)
      for (int64_t j = 0; j < S; j++) {
        if (q.keyT)
          pooled[j * R + q.rIndex(j, i)] += q.keyScale * dE[i * S + j];
        else
          pooled[i * R + q.rIndex(i, j)] += q.keyScale * dE[i * S + j];
      }
    gemmBlocked(pooled, R, wK, d, dy, C3, S, d, R, true);  // dq += pooled wK
    transposeInto(pooled, R, S, R, pt);
    gemmBlocked(pt, S, Q, C3, dwK, d, R, d, S, false);  // dwK = pooled^T q
  }
}

/** inputs dz [G*S, C], y [G*S, 3C], attention weights, [wK, wV]; same attrs -> dy [, dwK, dwV]. */
Tensors selfAttentionGrad(const Tensors& in, Args& a) {
  at::Tensor dz = in.at(0).contiguous(), y = in.at(1).contiguous(), attn = in.at(2).contiguous();
  AttnGeom q = readAttnGeom(a, y, "SelfAttentionGrad");
  if (dz.dim() != 2 || dz.size(0) != q.g * q.s || dz.size(1) != q.c)
    throw std::runtime_error("SelfAttentionGrad: output gradient must be [" + std::to_string(q.g * q.s) + ", " + std::to_string(q.c) + "], got " + shapeString(dz));
  if (attn.numel() != q.g * q.heads * q.s * q.s) throw std::runtime_error("SelfAttentionGrad: attention weights have " + std::to_string(attn.numel()) + " values, expected " + std::to_string(q.g * q.heads * q.s * q.s));
  at::Tensor wK, wV;
  if (q.rel) {
    wK = in.at(3).contiguous();
    wV = in.at(4).contiguous();
    checkTable(wK, q, "relative key table");
    checkTable(wV, q, "relative value table");
  }
  const int64_t tasks = q.g * q.heads, tab = q.rows * q.d;
  at::Tensor dy = at::empty_like(y);
  at::Tensor partK = at::empty({q.rel ? tasks : 1, tab}, y.options()), partV = at::empty({q.rel ? tasks : 1, tab}, y.options());
  const float* yp = y.data_ptr<float>();
  const float* ap = attn.data_ptr<float>();
  const float* zp = dz.data_ptr<float>();
  const float* kp = q.rel ? wK.data_ptr<float>() : nullptr;
  const float* vp = q.rel ? wV.data_ptr<float>() : nullptr;
  float* dyp = dy.data_ptr<float>();
  float* pk = partK.data_ptr<float>();
  float* pv = partV.data_ptr<float>();
  at::parallel_for(0, tasks, 1, [&](int64_t e0, int64_t e1) {
    AttnScratch w(q);
    for (int64_t e = e0; e < e1; e++) {
      const int64_t gi = e / q.heads, h = e % q.heads;
      const int64_t yo = gi * q.s * 3 * q.c + h * q.d;
      attnBackwardOne(q, yp + yo, ap + e * q.s * q.s, zp + gi * q.s * q.c + h * q.d, kp, vp, dyp + yo, q.rel ? pk + e * tab : nullptr, q.rel ? pv + e * tab : nullptr, w);
    }
  });
  Tensors out{dy};
  if (q.rel) {
    at::Tensor dK = at::empty({q.rows, q.d}, y.options()), dV = at::empty({q.rows, q.d}, y.options());
    float* dkp = dK.data_ptr<float>();
    float* dvp = dV.data_ptr<float>();
    // Sum the per-task parts over tasks in index order (float64), reading each part's rows
    // contiguously: columns are split between threads, so the order per entry, and the result,
    // do not depend on the thread count. (Summing entry by entry strode through memory one part
    // apart: at 2,048 temporal sequences it was a third of the kernel's time, on one core.)
    at::parallel_for(0, tab, 64, [&](int64_t e0, int64_t e1) {
      std::vector<double> sk(e1 - e0, 0.0), sv(e1 - e0, 0.0);
      for (int64_t t = 0; t < tasks; t++) {
        const float* rk = pk + t * tab;
        const float* rv = pv + t * tab;
        for (int64_t e = e0; e < e1; e++) {
          sk[e - e0] += rk[e];
          sv[e - e0] += rv[e];
        }
      }
      for (int64_t e = e0; e < e1; e++) {
        dkp[e] = static_cast<float>(sk[e - e0]);
        dvp[e] = static_cast<float>(sv[e - e0]);
      }
    });
    out.push_back(dK);
    out.push_back(dV);
  }
  return out;
}

void addAttentionOps(std::unordered_map<std::string, Op>& ops) {
  ops["SelfAttention"] = selfAttention;
  ops["SelfAttentionGrad"] = selfAttentionGrad;
}
