// Fused kernels (issue 10): at the UNet's sizes the number of tfjs kernels per training step, not
// their arithmetic, set the time (about 5,000 kernels per step, each an N-API call, a thread wake
// and an allocation). These replace the longest chains of small kernels with one native op each:
//   AdaGroupNorm / AdaGroupNormGrad  GroupNorm (Wu & He, 2018) + affine + the UNet's adaptive
//                                   scale/shift (AdaGN, Dhariwal & Nichol 2021) [+ SiLU], and its
//                                   hand-derived gradient;
//   AdamStep                         one Adam / AdamW update (Kingma & Ba, 2015; Loshchilov &
//                                   Hutter, 2019) for every parameter at once;
//   EmaUpdate                        the EMA of weights for every parameter at once;
//   SumSquares                       sum of squares over a list of tensors (global-norm clipping).
// Included by lvdm_torch.cc inside its anonymous namespace (uses Tensors, Args, Op).
// Every reduction runs in a fixed order (per sample, then over samples in index order), so results
// do not depend on the thread count's scheduling: same inputs, same numbers.

/** Rows of [N, S, C] with C split into G groups of C/G channels. */
struct GnGeom {
  int64_t n, s, c, g, cg;
  GnGeom(const at::Tensor& x, int64_t groups) {
    if (x.dim() < 2) throw std::runtime_error("AdaGroupNorm: input must have a batch and a channel axis");
    n = x.size(0);
    c = x.size(x.dim() - 1);
    s = n * c == 0 ? 0 : x.numel() / (n * c);
    g = groups;
    if (g <= 0 || c % g != 0) throw std::runtime_error("AdaGroupNorm: " + std::to_string(c) + " channels not divisible by " + std::to_string(g) + " groups");
    cg = c / g;
  }
};

void checkRow(const at::Tensor& t, int64_t size, const char* what) {
  if (t.numel() != size) throw std::runtime_error(std::string("AdaGroupNorm: ") + what + " has " + std::to_string(t.numel()) + " values, expected " + std::to_string(size));
}

/** The optional per-(sample, channel) scale and shift of AdaGN, as raw pointers (null when absent). */
struct Modulation {
  at::Tensor scale, shift;
  const float* sc = nullptr;
  const float* sh = nullptr;
  Modulation(const Tensors& in, size_t& k, bool hasScale, bool hasShift, int64_t rows) {
    if (hasScale) {
      scale = in.at(k++).contiguous();
      checkRow(scale, rows, "scale");
      sc = scale.data_ptr<float>();
    }
    if (hasShift) {
      shift = in.at(k++).contiguous();
      checkRow(shift, rows, "shift");
      sh = shift.data_ptr<float>();
    }
  }
};

/**
 * Per-channel affine y = x * A[c] + B[c] of sample `i`: A = r gamma (1 + scale),
 * B = beta (1 + scale) + shift - mu A, with the group mean mu and r = 1/sqrt(var + eps).
 */
void gnAffine(const GnGeom& q, int64_t i, const float* mean, const float* rstd, const float* gamma, const float* beta, const Modulation& m,
              float* A, float* B) {
  for (int64_t j = 0; j < q.c; j++) {
    const int64_t o = i * q.c + j;
    const int64_t grp = i * q.g + j / q.cg;
    const float s1 = 1.0f + (m.sc != nullptr ? m.sc[o] : 0.0f);
    A[j] = rstd[grp] * gamma[j] * s1;
    B[j] = beta[j] * s1 + (m.sh != nullptr ? m.sh[o] : 0.0f) - mean[grp] * A[j];
  }
}

/** inputs x [N, ..., C], gamma [C], beta [C], [scale [N, C]], [shift [N, C]]; args groups, eps,
 *  hasScale, hasShift, silu -> y (x's shape), mean [N, G], rstd [N, G]. */
Tensors adaGroupNorm(const Tensors& in, Args& a) {
  const int64_t groups = a.i();
  const double eps = a.f();
  const bool hasScale = a.b(), hasShift = a.b(), silu = a.b();
  at::Tensor x = in.at(0).contiguous();
  at::Tensor gamma = in.at(1).contiguous(), beta = in.at(2).contiguous();
  GnGeom q(x, groups);
  checkRow(gamma, q.c, "gamma");
  checkRow(beta, q.c, "beta");
  size_t k = 3;
  Modulation m(in, k, hasScale, hasShift, q.n * q.c);
  at::Tensor y = at::empty_like(x);
  at::Tensor mean = at::empty({q.n, q.g}, x.options()), rstd = at::empty({q.n, q.g}, x.options());
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  float* mp = mean.data_ptr<float>();
  float* rp = rstd.data_ptr<float>();
  const float* gp = gamma.data_ptr<float>();
  const float* bp = beta.data_ptr<float>();
  at::parallel_for(0, q.n, 1, [&](int64_t i0, int64_t i1) {
    std::vector<double> s1(q.c), s2(q.c);
    std::vector<float> A(q.c), B(q.c);
    for (int64_t i = i0; i < i1; i++) {
      const float* xi = xp + i * q.s * q.c;
      std::fill(s1.begin(), s1.end(), 0.0);
      std::fill(s2.begin(), s2.end(), 0.0);
      for (int64_t p = 0; p < q.s; p++) {
        const float* row = xi + p * q.c;
        for (int64_t j = 0; j < q.c; j++) {
          const double v = row[j];
          s1[j] += v;
          s2[j] += v * v;
        }
      }
      // var = E[x^2] - E[x]^2 in float64 over the group's S * C/G values.
      const double count = static_cast<double>(q.s * q.cg);
      for (int64_t gi = 0; gi < q.g; gi++) {
        double t1 = 0, t2 = 0;
        for (int64_t j = gi * q.cg; j < (gi + 1) * q.cg; j++) {
          t1 += s1[j];
          t2 += s2[j];
        }
        const double mu = t1 / count;
        const double var = std::max(t2 / count - mu * mu, 0.0);
        mp[i * q.g + gi] = static_cast<float>(mu);
        rp[i * q.g + gi] = static_cast<float>(1.0 / std::sqrt(var + eps));
      }
      gnAffine(q, i, mp, rp, gp, bp, m, A.data(), B.data());
      float* yi = yp + i * q.s * q.c;
      for (int64_t p = 0; p < q.s; p++) {
        const float* row = xi + p * q.c;
        float* out = yi + p * q.c;
        for (int64_t j = 0; j < q.c; j++) out[j] = row[j] * A[j] + B[j];
      }
    }
  });
  if (silu) at::silu_(y);  // ATen's vectorised SiLU, in place
  return Tensors{y, mean, rstd};
}

/** e^x for |x| < 88 to about 2 ulp (Cephes' expf: 2^round(x log2 e) times a degree-5 polynomial),
 *  written without calls or branches so that the loops around it vectorise. */
inline float expApprox(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float fx = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - fx * 0.693359375f + fx * 2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(fx) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

/**
 * Pass 1 of the gradient for one sample (S rows of C): du = dL/du (through SiLU when `silu`, with
 * u = x A + B), kept in `du`, and the per-channel sums of du and du x (float within blocks of 64
 * rows, float64 across blocks, in row order).
 */
LVDM_SIMD_CLONES void gnGradSums(const float* __restrict dy, const float* __restrict x, const float* __restrict A, const float* __restrict B, bool silu,
                                 int64_t s, int64_t c, float* __restrict du, double* __restrict sumDu, double* __restrict sumDuX, float* __restrict f1, float* __restrict f2) {
  for (int64_t j = 0; j < c; j++) sumDu[j] = sumDuX[j] = 0.0;
  for (int64_t p0 = 0; p0 < s; p0 += 64) {
    const int64_t p1 = std::min(s, p0 + 64);
    for (int64_t j = 0; j < c; j++) f1[j] = f2[j] = 0.0f;
    for (int64_t p = p0; p < p1; p++) {
      const float* xr = x + p * c;
      const float* gr = dy + p * c;
      float* dr = du + p * c;
      if (silu) {
        for (int64_t j = 0; j < c; j++) {
          const float u = xr[j] * A[j] + B[j];
          const float sg = 1.0f / (1.0f + expApprox(-u));
          const float d = gr[j] * sg * (1.0f + u * (1.0f - sg));  // d silu(u)/du = s (1 + u (1 - s))
          dr[j] = d;
          f1[j] += d;
          f2[j] += d * xr[j];
        }
      } else {
        for (int64_t j = 0; j < c; j++) {
          const float d = gr[j];
          dr[j] = d;
          f1[j] += d;
          f2[j] += d * xr[j];
        }
      }
    }
    for (int64_t j = 0; j < c; j++) {
      sumDu[j] += f1[j];
      sumDuX[j] += f2[j];
    }
  }
}

/** Pass 2 for one sample: dx = du P + x Q + R per channel. */
LVDM_SIMD_CLONES void gnGradDx(const float* __restrict du, const float* __restrict x, const float* __restrict P, const float* __restrict Q, const float* __restrict R,
                               int64_t s, int64_t c, float* __restrict dx) {
  for (int64_t p = 0; p < s; p++)
    for (int64_t j = 0; j < c; j++) dx[p * c + j] = du[p * c + j] * P[j] + x[p * c + j] * Q[j] + R[j];
}

/**
 * inputs dy, x, gamma, beta, mean, rstd, [scale], [shift]; args groups, hasScale, hasShift, silu ->
 * dx, dgamma, dbeta, [dscale], [dshift]. With u = A x + B (before SiLU) and du = dL/du:
 *   dx = r gamma' du - (r / M) sum_g(gamma' du) - xhat (r / M) sum_g(gamma' du xhat),  gamma' = gamma (1 + scale)
 * written as dx = du P + x Q + R per channel; M = S * C/G values per group. Each sample is done in
 * two passes over its (cache-resident) rows.
 */
Tensors adaGroupNormGrad(const Tensors& in, Args& a) {
  const int64_t groups = a.i();
  const bool hasScale = a.b(), hasShift = a.b(), silu = a.b();
  at::Tensor dy = in.at(0).contiguous(), x = in.at(1).contiguous();
  at::Tensor gamma = in.at(2).contiguous(), beta = in.at(3).contiguous();
  at::Tensor mean = in.at(4).contiguous(), rstd = in.at(5).contiguous();
  GnGeom q(x, groups);
  size_t k = 6;
  Modulation m(in, k, hasScale, hasShift, q.n * q.c);
  const float* xp = x.data_ptr<float>();
  const float* dyp = dy.data_ptr<float>();
  const float* mp = mean.data_ptr<float>();
  const float* rp = rstd.data_ptr<float>();
  const float* gp = gamma.data_ptr<float>();
  const float* bp = beta.data_ptr<float>();
  at::Tensor dx = at::empty_like(x);
  float* dxp = dx.data_ptr<float>();
  // Per-sample partial sums for the parameter gradients, reduced over samples in order below.
  at::Tensor dGammaN = at::empty({q.n, q.c}, x.options()), dBetaN = at::empty({q.n, q.c}, x.options());
  at::Tensor dScale = at::empty({q.n, q.c}, x.options()), dShift = at::empty({q.n, q.c}, x.options());
  float* dgn = dGammaN.data_ptr<float>();
  float* dbn = dBetaN.data_ptr<float>();
  float* dsc = dScale.data_ptr<float>();
  float* dsh = dShift.data_ptr<float>();
  const double count = static_cast<double>(q.s * q.cg);
  at::parallel_for(0, q.n, 1, [&](int64_t i0, int64_t i1) {
    std::vector<double> sumDu(q.c), sumDuX(q.c), dxh(q.c);
    std::vector<float> A(q.c), B(q.c), P(q.c), Q(q.c), R(q.c), f1(q.c), f2(q.c), du(q.s * q.c);
    for (int64_t i = i0; i < i1; i++) {
      const float* xi = xp + i * q.s * q.c;
      if (silu) gnAffine(q, i, mp, rp, gp, bp, m, A.data(), B.data());
      gnGradSums(dyp + i * q.s * q.c, xi, A.data(), B.data(), silu, q.s, q.c, du.data(), sumDu.data(), sumDuX.data(), f1.data(), f2.data());
      for (int64_t gi = 0; gi < q.g; gi++) {
        const double mu = mp[i * q.g + gi], r = rp[i * q.g + gi];
        double gA = 0, gB = 0;
        for (int64_t j = gi * q.cg; j < (gi + 1) * q.cg; j++) {
          const double s1 = 1.0 + (m.sc != nullptr ? m.sc[i * q.c + j] : 0.0);
          const double gpj = gp[j] * s1;
          dxh[j] = r * (sumDuX[j] - mu * sumDu[j]);  // sum_s du * xhat
          gA += gpj * sumDu[j];
          gB += gpj * dxh[j];
        }
        for (int64_t j = gi * q.cg; j < (gi + 1) * q.cg; j++) {
          const double s1 = 1.0 + (m.sc != nullptr ? m.sc[i * q.c + j] : 0.0);
          P[j] = static_cast<float>(r * gp[j] * s1);
          Q[j] = static_cast<float>(-r * r * gB / count);
          R[j] = static_cast<float>(mu * r * r * gB / count - r * gA / count);
        }
      }
      for (int64_t j = 0; j < q.c; j++) {
        const int64_t o = i * q.c + j;
        const double s1 = 1.0 + (m.sc != nullptr ? m.sc[o] : 0.0);
        dgn[o] = static_cast<float>(dxh[j] * s1);
        dbn[o] = static_cast<float>(sumDu[j] * s1);
        dsc[o] = static_cast<float>(dxh[j] * gp[j] + sumDu[j] * bp[j]);
        dsh[o] = static_cast<float>(sumDu[j]);
      }
      gnGradDx(du.data(), xi, P.data(), Q.data(), R.data(), q.s, q.c, dxp + i * q.s * q.c);
    }
  });
  // Sum the per-sample parts over samples in index order (float64), independent of threading.
  at::Tensor dGamma = at::empty({q.c}, x.options()), dBeta = at::empty({q.c}, x.options());
  float* dgp = dGamma.data_ptr<float>();
  float* dbp = dBeta.data_ptr<float>();
  for (int64_t j = 0; j < q.c; j++) {
    double tg = 0, tb = 0;
    for (int64_t i = 0; i < q.n; i++) {
      tg += dgn[i * q.c + j];
      tb += dbn[i * q.c + j];
    }
    dgp[j] = static_cast<float>(tg);
    dbp[j] = static_cast<float>(tb);
  }
  Tensors out{dx, dGamma, dBeta};
  if (hasScale) out.push_back(dScale);
  if (hasShift) out.push_back(dShift);
  return out;
}

/** Splits a list-kernel's inputs into `parts` equal lists of `k` tensors each. */
std::vector<Tensors> splitLists(const Tensors& in, int64_t k, int64_t parts, const char* op) {
  if (k <= 0 || static_cast<int64_t>(in.size()) != k * parts) throw std::runtime_error(std::string(op) + ": expected " + std::to_string(parts) + " lists of " + std::to_string(k) + " tensors, got " + std::to_string(in.size()) + " tensors");
  std::vector<Tensors> lists(parts);
  for (int64_t l = 0; l < parts; l++) {
    for (int64_t t = 0; t < k; t++) {
      const at::Tensor& x = in[l * k + t];
      if (x.numel() != in[t].numel()) throw std::runtime_error(std::string(op) + ": tensor " + std::to_string(t) + " of list " + std::to_string(l) + " has " + std::to_string(x.numel()) + " values, expected " + std::to_string(in[t].numel()));
      lists[l].push_back(x.contiguous());
    }
  }
  return lists;
}

/**
 * inputs p[k], m[k], v[k], g[k]; args k, beta1, beta2, eps, stepSize, c2, decoupledDecay, l2Decay
 * -> p'[k], m'[k], v'[k]. Adam with the bias corrections folded into the step size (Algorithm 1):
 *   g' = g + l2 p;  m' = b1 m + (1 - b1) g';  v' = b2 v + (1 - b2) g'^2;
 *   p' = p - stepSize m' / (sqrt(v' / c2) + eps) - decoupled p      (AdamW: decoupled = lr * wd)
 */
Tensors adamStep(const Tensors& in, Args& a) {
  const int64_t k = a.i();
  // Each coefficient rounded to float32 once, as tfjs does with a JS number operand.
  const double b1d = a.f(), b2d = a.f();
  const float b1 = static_cast<float>(b1d), b2 = static_cast<float>(b2d), ob1 = static_cast<float>(1.0 - b1d), ob2 = static_cast<float>(1.0 - b2d);
  const float eps = static_cast<float>(a.f()), stepSize = static_cast<float>(a.f()), c2 = static_cast<float>(a.f());
  const float decoupled = static_cast<float>(a.f()), l2 = static_cast<float>(a.f());
  auto lists = splitLists(in, k, 4, "AdamStep");
  Tensors ps, ms, vs;
  for (int64_t t = 0; t < k; t++) {
    const float* p = lists[0][t].data_ptr<float>();
    const float* m = lists[1][t].data_ptr<float>();
    const float* v = lists[2][t].data_ptr<float>();
    const float* g = lists[3][t].data_ptr<float>();
    at::Tensor p1 = at::empty_like(lists[0][t]), m1 = at::empty_like(lists[0][t]), v1 = at::empty_like(lists[0][t]);
    float* po = p1.data_ptr<float>();
    float* mo = m1.data_ptr<float>();
    float* vo = v1.data_ptr<float>();
    at::parallel_for(0, lists[0][t].numel(), 32768, [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; e++) {
        const float gi = l2 != 0.0f ? g[e] + p[e] * l2 : g[e];
        const float mi = m[e] * b1 + gi * ob1;
        const float vi = v[e] * b2 + gi * gi * ob2;
        mo[e] = mi;
        vo[e] = vi;
        po[e] = (p[e] - (mi / (std::sqrt(vi / c2) + eps)) * stepSize) - p[e] * decoupled;
      }
    });
    ps.push_back(p1);
    ms.push_back(m1);
    vs.push_back(v1);
  }
  Tensors out;
  for (const Tensors* l : {&ps, &ms, &vs}) out.insert(out.end(), l->begin(), l->end());
  return out;
}

/** inputs shadow[k], param[k]; args k, decay -> shadow'[k] = shadow * decay + param * (1 - decay). */
Tensors emaUpdate(const Tensors& in, Args& a) {
  const int64_t k = a.i();
  const double dd = a.f();
  const float d = static_cast<float>(dd), od = static_cast<float>(1.0 - dd);
  auto lists = splitLists(in, k, 2, "EmaUpdate");
  Tensors out;
  for (int64_t t = 0; t < k; t++) {
    const float* s = lists[0][t].data_ptr<float>();
    const float* p = lists[1][t].data_ptr<float>();
    at::Tensor s1 = at::empty_like(lists[0][t]);
    float* so = s1.data_ptr<float>();
    at::parallel_for(0, lists[0][t].numel(), 32768, [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; e++) so[e] = s[e] * d + p[e] * od;
    });
    out.push_back(s1);
  }
  return out;
}

/** inputs x[k] -> scalar sum over every tensor of sum(x^2), accumulated in float64 in a fixed order. */
Tensors sumSquares(const Tensors& in, Args&) {
  double total = 0;
  for (const at::Tensor& t : in) {
    at::Tensor c = t.contiguous();
    const float* p = c.data_ptr<float>();
    const int64_t n = c.numel();
    double part = 0;
    for (int64_t e = 0; e < n; e++) part += static_cast<double>(p[e]) * p[e];
    total += part;
  }
  return Tensors{at::full({}, static_cast<float>(total), at::TensorOptions().dtype(at::kFloat))};
}

void addFusedOps(std::unordered_map<std::string, Op>& ops) {
  ops["AdaGroupNorm"] = adaGroupNorm;
  ops["AdaGroupNormGrad"] = adaGroupNormGrad;
  ops["AdamStep"] = adamStep;
  ops["EmaUpdate"] = emaUpdate;
  ops["SumSquares"] = sumSquares;
}
