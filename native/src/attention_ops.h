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
// Included by lvdm_torch.cc inside its anonymous namespace, after fused_ops.h (uses expApprox and
// LVDM_SIMD_CLONES). Table gradients are summed per (sequence, head) and then over them in index
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

/** One (sequence, head): attention weights A [S, S] and output rows (stride C) for it. */
LVDM_SIMD_CLONES void attnForwardOne(const AttnGeom& q, const float* __restrict y, const float* __restrict wK, const float* __restrict wV, float* __restrict A,
                                     float* __restrict out, float* __restrict kt, float* __restrict qw, float* __restrict pooled) {
  const int64_t S = q.s, d = q.d, C3 = 3 * q.c, R = q.rows;
  for (int64_t j = 0; j < S; j++)
    for (int64_t t = 0; t < d; t++) kt[t * S + j] = y[j * C3 + q.c + t];
  // Relative-key logits q_j . wK[r] for every row j and table row r (used by both orientations).
  if (q.rel)
    for (int64_t j = 0; j < S; j++)
      for (int64_t r = 0; r < R; r++) {
        float acc = 0.0f;
        for (int64_t t = 0; t < d; t++) acc += y[j * C3 + t] * wK[r * d + t];
        qw[j * R + r] = acc * q.keyScale;
      }
  for (int64_t i = 0; i < S; i++) {
    float* a = A + i * S;
    const float* qi = y + i * C3;
    for (int64_t j = 0; j < S; j++) a[j] = 0.0f;
    for (int64_t t = 0; t < d; t++) {
      const float qv = qi[t];
      const float* kr = kt + t * S;
      for (int64_t j = 0; j < S; j++) a[j] += qv * kr[j];
    }
    if (q.rel) {
      if (q.keyT)
        for (int64_t j = 0; j < S; j++) a[j] += qw[j * R + q.rIndex(j, i)];
      else
        for (int64_t j = 0; j < S; j++) a[j] += qw[i * R + q.rIndex(i, j)];
    }
    float mx = a[0];
    for (int64_t j = 1; j < S; j++) mx = std::max(mx, a[j]);
    float sum = 0.0f;
    for (int64_t j = 0; j < S; j++) {
      a[j] = expApprox(a[j] - mx);
      sum += a[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < S; j++) a[j] *= inv;
    float* o = out + i * q.c;
    for (int64_t t = 0; t < d; t++) o[t] = 0.0f;
    for (int64_t j = 0; j < S; j++) {
      const float aj = a[j];
      const float* vj = y + j * C3 + 2 * q.c;
      for (int64_t t = 0; t < d; t++) o[t] += aj * vj[t];
    }
    if (q.rel) {
      for (int64_t r = 0; r < R; r++) pooled[r] = 0.0f;
      for (int64_t j = 0; j < S; j++) pooled[q.rIndex(i, j)] += a[j];
      for (int64_t r = 0; r < R; r++) {
        const float pr = pooled[r];
        for (int64_t t = 0; t < d; t++) o[t] += pr * wV[r * d + t];
      }
    }
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
    std::vector<float> kt(q.d * q.s), qw(q.rel ? q.s * q.rows : 1), pooled(q.rows);
    for (int64_t e = e0; e < e1; e++) {
      const int64_t gi = e / q.heads, h = e % q.heads;
      attnForwardOne(q, yp + gi * q.s * 3 * q.c + h * q.d, kp, vp, ap + e * q.s * q.s, op + gi * q.s * q.c + h * q.d, kt.data(), qw.data(), pooled.data());
    }
  });
  return Tensors{out, attn};
}

/**
 * One (sequence, head) of the backward pass: dy rows (stride 3C) for its q, k, v columns, and its
 * parts of the table gradients. With dA_ij = dz_i . (v_j + wV[r(i, j)]) and
 * dE_ij = a_ij (dA_ij - sum_j' a_ij' dA_ij'):
 *   dv_j = sum_i a_ij dz_i,  dq_i = sum_j dE_ij k_j,  dk_j = sum_i dE_ij q_i,
 *   dwV[r(i, j)] += a_ij dz_i,  and the key table's terms in the chosen orientation.
 */
LVDM_SIMD_CLONES void attnBackwardOne(const AttnGeom& q, const float* __restrict y, const float* __restrict A, const float* __restrict dz, const float* __restrict wK,
                                      const float* __restrict wV, float* __restrict dy, float* __restrict dwK, float* __restrict dwV, float* __restrict vt,
                                      float* __restrict dA, float* __restrict dvr) {
  const int64_t S = q.s, d = q.d, C3 = 3 * q.c, R = q.rows;
  for (int64_t j = 0; j < S; j++)
    for (int64_t t = 0; t < d; t++) {
      vt[t * S + j] = y[j * C3 + 2 * q.c + t];
      dy[j * C3 + t] = 0.0f;
      dy[j * C3 + q.c + t] = 0.0f;
      dy[j * C3 + 2 * q.c + t] = 0.0f;
    }
  if (q.rel)
    for (int64_t e = 0; e < R * d; e++) dwK[e] = dwV[e] = 0.0f;
  for (int64_t i = 0; i < S; i++) {
    const float* a = A + i * S;
    const float* dzi = dz + i * q.c;
    const float* qi = y + i * C3;
    for (int64_t j = 0; j < S; j++) dA[j] = 0.0f;
    for (int64_t t = 0; t < d; t++) {
      const float g = dzi[t];
      const float* vr = vt + t * S;
      for (int64_t j = 0; j < S; j++) dA[j] += g * vr[j];
    }
    if (q.rel) {
      for (int64_t r = 0; r < R; r++) {
        float acc = 0.0f;
        for (int64_t t = 0; t < d; t++) acc += dzi[t] * wV[r * d + t];
        dvr[r] = acc;
      }
      for (int64_t j = 0; j < S; j++) dA[j] += dvr[q.rIndex(i, j)];
    }
    float dot = 0.0f;
    for (int64_t j = 0; j < S; j++) dot += a[j] * dA[j];
    for (int64_t j = 0; j < S; j++) {
      const float aj = a[j];
      const float dE = aj * (dA[j] - dot);
      float* dvj = dy + j * C3 + 2 * q.c;
      float* dkj = dy + j * C3 + q.c;
      float* dqi = dy + i * C3;
      const float* kj = y + j * C3 + q.c;
      for (int64_t t = 0; t < d; t++) {
        dvj[t] += aj * dzi[t];
        dkj[t] += dE * qi[t];
        dqi[t] += dE * kj[t];
      }
      if (q.rel) {
        float* dwv = dwV + q.rIndex(i, j) * d;
        for (int64_t t = 0; t < d; t++) dwv[t] += aj * dzi[t];
        const float ks = q.keyScale * dE;
        if (q.keyT) {  // e_ij has keyScale q_j . wK[r(j, i)]
          const int64_t r = q.rIndex(j, i);
          const float* qj = y + j * C3;
          float* dqj = dy + j * C3;
          for (int64_t t = 0; t < d; t++) {
            dqj[t] += ks * wK[r * d + t];
            dwK[r * d + t] += ks * qj[t];
          }
        } else {
          const int64_t r = q.rIndex(i, j);
          for (int64_t t = 0; t < d; t++) {
            dqi[t] += ks * wK[r * d + t];
            dwK[r * d + t] += ks * qi[t];
          }
        }
      }
    }
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
    std::vector<float> vt(q.d * q.s), dA(q.s), dvr(q.rows);
    for (int64_t e = e0; e < e1; e++) {
      const int64_t gi = e / q.heads, h = e % q.heads;
      const int64_t yo = gi * q.s * 3 * q.c + h * q.d;
      attnBackwardOne(q, yp + yo, ap + e * q.s * q.s, zp + gi * q.s * q.c + h * q.d, kp, vp, dyp + yo, q.rel ? pk + e * tab : nullptr, q.rel ? pv + e * tab : nullptr,
                      vt.data(), dA.data(), dvr.data());
    }
  });
  Tensors out{dy};
  if (q.rel) {
    at::Tensor dK = at::empty({q.rows, q.d}, y.options()), dV = at::empty({q.rows, q.d}, y.options());
    float* dkp = dK.data_ptr<float>();
    float* dvp = dV.data_ptr<float>();
    for (int64_t e = 0; e < tab; e++) {
      double sk = 0, sv = 0;
      for (int64_t t = 0; t < tasks; t++) {
        sk += pk[t * tab + e];
        sv += pv[t * tab + e];
      }
      dkp[e] = static_cast<float>(sk);
      dvp[e] = static_cast<float>(sv);
    }
    out.push_back(dK);
    out.push_back(dV);
  }
  return out;
}

void addAttentionOps(std::unordered_map<std::string, Op>& ops) {
  ops["SelfAttention"] = selfAttention;
  ops["SelfAttentionGrad"] = selfAttentionGrad;
}
