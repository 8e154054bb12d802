// lvdm_torch: a Node-API addon that keeps tensors in native memory as ATen (libtorch) tensors and
// runs tfjs kernels on them. The JS side (lib/backend/native) maps each tfjs kernel onto one of the
// generic operations below; tensors cross the boundary only on upload (fromData) and read-out
// (toData). Handles are integers; the storage each handle keeps alive is counted once, so memory()
// reports the native bytes really held.
//
// Call convention: run(op, packed) with packed = Float64Array [nInputs, id..., args...];
// the result is a Float64Array [nOutputs, (id, dtype, rank, dims...)...].
// dtype codes: 0 float32, 1 int32, 2 bool (the tfjs dtypes).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/api/include/torch/version.h>
#include <dlfcn.h>
#include <malloc.h>
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using Tensors = std::vector<at::Tensor>;

struct StorageUse {
  int64_t handles;
  int64_t bytes;
};

/**
 * The tensors of one JS environment (the main thread, or one worker thread: each has its own table,
 * so threads never share handles or bookkeeping).
 */
struct State {
  std::unordered_map<int64_t, at::Tensor> tensors;
  std::unordered_map<const void*, StorageUse> storages;
  int64_t nextId = 1;
  int64_t bytes = 0;
};

State& state(const Napi::Env& env) { return *env.GetInstanceData<State>(); }

// Mixed precision (issue 10, speed): with bf16 on, convolutions (forward, both gradients, 2D and 3D)
// cast their float32 operands to bfloat16 and run in oneDNN's bf16 kernels (AMX / AVX512-BF16 where
// the CPU has them, float32 accumulation inside), and their results come back as float32; everything
// else stays float32, matrix products included (at this project's widths, 48-192 channels, the casts
// cost what AMX saves on them: measured per product shape over the demo's training step). The casts
// are those of PyTorch's CPU autocast to bfloat16 for convolutions. Per JS thread (a
// worker thread has its own setting, as it has its own tensor table); read only on the calling
// thread, before an op fans out.
thread_local bool tBf16 = false;

/** x cast to bfloat16 when bf16 is on and x is float32 (strides, hence channels-last, preserved). */
at::Tensor lowp(const at::Tensor& x) { return tBf16 && x.scalar_type() == at::kFloat ? x.to(at::kBFloat16) : x; }
c10::optional<at::Tensor> lowp(const c10::optional<at::Tensor>& x) { return x.has_value() ? c10::optional<at::Tensor>(lowp(*x)) : c10::nullopt; }
/** A bf16 result back to float32 (others unchanged). */
at::Tensor full(const at::Tensor& y) { return y.scalar_type() == at::kBFloat16 ? y.to(at::kFloat) : y; }

at::ScalarType scalarType(int code) {
  switch (code) {
    case 0: return at::kFloat;
    case 1: return at::kInt;
    case 2: return at::kBool;
  }
  throw std::runtime_error("lvdm_torch: unknown dtype code " + std::to_string(code));
}

int dtypeCode(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return 0;
    case at::kInt: return 1;
    case at::kBool: return 2;
    default: break;
  }
  throw std::runtime_error(std::string("lvdm_torch: unsupported result dtype ") + c10::toString(t));
}

/** tfjs has float32, int32 and bool only: wider results are narrowed, outputs made contiguous. */
at::Tensor normalise(at::Tensor t) {
  switch (t.scalar_type()) {
    case at::kFloat: case at::kInt: case at::kBool: break;
    case at::kLong: case at::kShort: case at::kChar: case at::kByte: t = t.to(at::kInt); break;
    default: t = t.to(at::kFloat); break;
  }
  if (!t.is_contiguous()) t = t.contiguous();
  return t;
}

int64_t store(State& st, const at::Tensor& raw) {
  at::Tensor t = normalise(raw);
  const void* key = t.storage().unsafeGetStorageImpl();
  auto it = st.storages.find(key);
  if (it == st.storages.end()) {
    int64_t bytes = static_cast<int64_t>(t.storage().nbytes());
    st.storages.emplace(key, StorageUse{1, bytes});
    st.bytes += bytes;
  } else {
    it->second.handles++;
  }
  int64_t id = st.nextId++;
  st.tensors.emplace(id, std::move(t));
  return id;
}

void release(State& st, int64_t id) {
  auto it = st.tensors.find(id);
  if (it == st.tensors.end()) throw std::runtime_error("lvdm_torch: dispose of unknown handle " + std::to_string(id));
  const void* key = it->second.storage().unsafeGetStorageImpl();
  auto s = st.storages.find(key);
  if (s != st.storages.end() && --s->second.handles == 0) {
    st.bytes -= s->second.bytes;
    st.storages.erase(s);
  }
  st.tensors.erase(it);
}

const at::Tensor& get(State& st, int64_t id) {
  auto it = st.tensors.find(id);
  if (it == st.tensors.end()) throw std::runtime_error("lvdm_torch: unknown tensor handle " + std::to_string(id));
  return it->second;
}

/** Reads the numeric arguments of one op in order. Lists are length-prefixed. */
class Args {
 public:
  Args(const double* p, size_t n) : p_(p), n_(n) {}
  double f() {
    if (i_ >= n_) throw std::runtime_error("lvdm_torch: too few arguments");
    return p_[i_++];
  }
  int64_t i() { return static_cast<int64_t>(f()); }
  bool b() { return f() != 0; }
  std::vector<int64_t> list() {
    int64_t n = i();
    std::vector<int64_t> v(n);
    for (int64_t k = 0; k < n; k++) v[k] = i();
    return v;
  }
  std::vector<double> flist() {
    int64_t n = i();
    std::vector<double> v(n);
    for (int64_t k = 0; k < n; k++) v[k] = f();
    return v;
  }

 private:
  const double* p_;
  size_t n_;
  size_t i_ = 0;
};

using Op = std::function<Tensors(const Tensors&, Args&)>;

// ---- elementwise ------------------------------------------------------------------------------

at::Tensor unary(const std::string& name, const at::Tensor& x, Args& a) {
  if (name == "Abs") return at::abs(x);
  if (name == "Acos") return at::acos(x);
  if (name == "Acosh") return at::acosh(x);
  if (name == "Asin") return at::asin(x);
  if (name == "Asinh") return at::asinh(x);
  if (name == "Atan") return at::atan(x);
  if (name == "Atanh") return at::atanh(x);
  if (name == "Ceil") return at::ceil(x);
  if (name == "Cos") return at::cos(x);
  if (name == "Cosh") return at::cosh(x);
  if (name == "Elu") return at::elu(x);
  if (name == "Erf") return at::erf(x);
  if (name == "Exp") return at::exp(x);
  if (name == "Expm1") return at::expm1(x);
  if (name == "Floor") return at::floor(x);
  if (name == "IsNan") return at::isnan(x);
  if (name == "IsInf") return at::isinf(x);
  if (name == "IsFinite") return at::isfinite(x);
  if (name == "Log") return at::log(x);
  if (name == "Log1p") return at::log1p(x);
  if (name == "LogicalNot") return at::logical_not(x);
  if (name == "Neg") return at::neg(x);
  if (name == "Reciprocal") return at::reciprocal(x);
  if (name == "Relu") return at::relu(x);
  if (name == "Relu6") return at::clamp(x, 0, 6);
  if (name == "Round") return at::round(x);
  if (name == "Rsqrt") return at::rsqrt(x);
  if (name == "Selu") return at::selu(x);
  if (name == "Sigmoid") return at::sigmoid(x);
  if (name == "Sign") return at::sign(x);
  if (name == "Sin") return at::sin(x);
  if (name == "Sinh") return at::sinh(x);
  if (name == "Softplus") return at::softplus(x);
  if (name == "Sqrt") return at::sqrt(x);
  if (name == "Square") return at::mul(x, x);
  if (name == "Tan") return at::tan(x);
  if (name == "Tanh") return at::tanh(x);
  if (name == "Identity") return x;
  if (name == "ZerosLike") return at::zeros_like(x);
  if (name == "OnesLike") return at::ones_like(x);
  if (name == "LeakyRelu") {
    double alpha = a.f();
    return at::where(x < 0, x * alpha, x);
  }
  if (name == "Step") {
    double alpha = a.f();
    at::Tensor y = at::where(x > 0, at::ones_like(x), at::full_like(x, alpha));
    return at::where(at::isnan(x), x, y);
  }
  if (name == "ClipByValue") {
    double lo = a.f();
    double hi = a.f();
    return at::clamp(x, lo, hi);
  }
  if (name == "Cast") return x.to(scalarType(static_cast<int>(a.i())));
  throw std::runtime_error("lvdm_torch: unknown unary op " + name);
}

at::Tensor binary(const std::string& name, const at::Tensor& x, const at::Tensor& y) {
  if (name == "Add") return x.scalar_type() == at::kBool ? at::logical_or(x, y) : at::add(x, y);
  if (name == "Sub") return at::sub(x, y);
  if (name == "Multiply") return x.scalar_type() == at::kBool ? at::logical_and(x, y) : at::mul(x, y);
  if (name == "RealDiv") return at::div(x, y);
  if (name == "FloorDiv") return at::div(x, y, "floor").to(at::kInt);  // tfjs: always int32
  if (name == "Maximum") return at::maximum(x, y);
  if (name == "Minimum") return at::minimum(x, y);
  if (name == "Pow") return at::pow(x, y);
  if (name == "SquaredDifference") {
    at::Tensor d = at::sub(x, y);
    return at::mul(d, d);
  }
  if (name == "Mod") return at::remainder(x, y);
  if (name == "Atan2") return at::atan2(x, y);
  if (name == "Equal") return at::eq(x, y);
  if (name == "NotEqual") return at::ne(x, y);
  if (name == "Less") return at::lt(x, y);
  if (name == "LessEqual") return at::le(x, y);
  if (name == "Greater") return at::gt(x, y);
  if (name == "GreaterEqual") return at::ge(x, y);
  if (name == "LogicalAnd") return at::logical_and(x, y);
  if (name == "LogicalOr") return at::logical_or(x, y);
  if (name == "Prelu") return at::where(x < 0, x * y, x);
  throw std::runtime_error("lvdm_torch: unknown binary op " + name);
}

// ---- reductions -------------------------------------------------------------------------------

at::Tensor reduce(const std::string& name, const at::Tensor& x, const std::vector<int64_t>& axes, bool keep) {
  if (axes.empty()) {
    if (name == "Sum" && x.scalar_type() == at::kBool) return x.to(at::kInt);
    return x;
  }
  if (name == "Sum") return at::sum(x, axes, keep, x.scalar_type() == at::kFloat ? at::kFloat : at::kInt);
  if (name == "Mean") return at::mean(x.scalar_type() == at::kFloat ? x : x.to(at::kFloat), axes, keep);
  if (name == "Max") return at::amax(x, axes, keep);
  if (name == "Min") return at::amin(x, axes, keep);
  // Single-axis reductions applied axis by axis (largest first so indices stay valid).
  std::vector<int64_t> s(axes);
  std::sort(s.rbegin(), s.rend());
  at::Tensor y = x;
  for (int64_t d : s) {
    if (name == "Prod") y = at::prod(y, d, keep, y.scalar_type() == at::kFloat ? at::kFloat : at::kInt);
    else if (name == "All") y = at::all(y, d, keep);
    else if (name == "Any") y = at::any(y, d, keep);
    else throw std::runtime_error("lvdm_torch: unknown reduction " + name);
  }
  return y;
}

// ---- convolutions (NHWC / NDHWC at the interface, channels-last natively) ---------------------

/** [N, spatial..., C] viewed as [N, C, spatial...] (a channels-last strided view, no copy). */
at::Tensor toNC(const at::Tensor& x) {
  std::vector<int64_t> perm{0, x.dim() - 1};
  for (int64_t d = 1; d < x.dim() - 1; d++) perm.push_back(d);
  return x.permute(perm);
}

at::Tensor fromNC(const at::Tensor& y) {
  std::vector<int64_t> perm{0};
  for (int64_t d = 2; d < y.dim(); d++) perm.push_back(d);
  perm.push_back(1);
  return y.permute(perm);
}

/** tfjs filter [k..., Ci, Co] -> torch weight [Co, Ci, k...]. */
at::Tensor toOIK(const at::Tensor& w) {
  int64_t r = w.dim();
  std::vector<int64_t> perm{r - 1, r - 2};
  for (int64_t d = 0; d < r - 2; d++) perm.push_back(d);
  return w.permute(perm);
}

at::Tensor fromOIK(const at::Tensor& w) {
  int64_t r = w.dim();
  std::vector<int64_t> perm;
  for (int64_t d = 2; d < r; d++) perm.push_back(d);
  perm.push_back(1);
  perm.push_back(0);
  return w.permute(perm);
}

at::MemoryFormat channelsLast(int64_t spatial) {
  return spatial == 3 ? at::MemoryFormat::ChannelsLast3d : at::MemoryFormat::ChannelsLast;
}

struct ConvGeom {
  int64_t spatial;
  std::vector<int64_t> stride, dilation, padLo, padHi;
  int64_t groups;
  /** Symmetric part of the padding (given to the convolution); the rest is explicit. */
  std::vector<int64_t> sym() const {
    std::vector<int64_t> s(spatial);
    for (int64_t d = 0; d < spatial; d++) s[d] = std::min(padLo[d], padHi[d]);
    return s;
  }
  bool symmetric() const { return padLo == padHi; }
  /** constant_pad_nd spec (last dim first) for the asymmetric remainder on an NC... tensor. */
  std::vector<int64_t> extra(int64_t sign) const {
    std::vector<int64_t> p;
    for (int64_t d = spatial - 1; d >= 0; d--) {
      int64_t m = std::min(padLo[d], padHi[d]);
      p.push_back(sign * (padLo[d] - m));
      p.push_back(sign * (padHi[d] - m));
    }
    return p;
  }
};

ConvGeom readGeom(Args& a, int64_t spatial) {
  ConvGeom g;
  g.spatial = spatial;
  g.stride = a.list();
  g.dilation = a.list();
  g.padLo = a.list();
  g.padHi = a.list();
  g.groups = a.i();
  return g;
}

/** x in NC layout, padded by the asymmetric remainder. */
at::Tensor padExtra(const at::Tensor& xnc, const ConvGeom& g) {
  if (g.symmetric()) return xnc;
  return at::constant_pad_nd(xnc, g.extra(1), 0).contiguous(channelsLast(g.spatial));
}

/** Undoes padExtra on a gradient w.r.t. the padded input. */
at::Tensor cropExtra(const at::Tensor& dxnc, const ConvGeom& g) {
  if (g.symmetric()) return dxnc;
  return at::constant_pad_nd(dxnc, g.extra(-1), 0);
}

at::Tensor convForward(const at::Tensor& x, const at::Tensor& w, const ConvGeom& g, const c10::optional<at::Tensor>& bias = c10::nullopt) {
  at::Tensor xnc = padExtra(toNC(lowp(x)), g);
  std::vector<int64_t> outPad(g.spatial, 0);
  at::Tensor y = at::convolution(xnc, toOIK(lowp(w)), lowp(bias), g.stride, g.sym(), g.dilation, false, outPad, g.groups);
  return fromNC(full(y));
}

/** Gradient w.r.t. the input of shape inShape ([N, spatial..., C]). */
at::Tensor convBackpropInput(const at::Tensor& dy, const at::Tensor& w, const std::vector<int64_t>& inShape, const ConvGeom& g) {
  std::vector<int64_t> ncShape{inShape[0], inShape.back()};
  for (int64_t d = 0; d < g.spatial; d++) ncShape.push_back(inShape[d + 1] + (g.padLo[d] + g.padHi[d] - 2 * std::min(g.padLo[d], g.padHi[d])));
  at::Tensor dyl = lowp(dy);
  at::Tensor fake = at::empty(ncShape, dyl.options().memory_format(channelsLast(g.spatial)));
  at::Tensor wt = toOIK(lowp(w));
  std::vector<int64_t> outPad(g.spatial, 0);
  auto r = at::convolution_backward(toNC(dyl), fake, wt, c10::nullopt, g.stride, g.sym(), g.dilation, false, outPad, g.groups, {true, false, false});
  return fromNC(cropExtra(full(std::get<0>(r)), g));
}

at::Tensor convBackpropFilter(const at::Tensor& x, const at::Tensor& dy, const std::vector<int64_t>& filterShape, const ConvGeom& g) {
  at::Tensor xnc = padExtra(toNC(lowp(x)), g);
  int64_t r = static_cast<int64_t>(filterShape.size());
  std::vector<int64_t> wShape{filterShape[r - 1], filterShape[r - 2]};
  for (int64_t d = 0; d < r - 2; d++) wShape.push_back(filterShape[d]);
  at::Tensor wfake = at::empty(wShape, xnc.options());
  std::vector<int64_t> outPad(g.spatial, 0);
  auto res = at::convolution_backward(toNC(lowp(dy)), xnc, wfake, c10::nullopt, g.stride, g.sym(), g.dilation, false, outPad, g.groups, {false, true, false});
  return fromOIK(full(std::get<1>(res)));
}

// ---- pooling ------------------------------------------------------------------------------------

/** Pools over [N, spatial..., C] with explicit padding: max pads with -inf, avg excludes padding. */
at::Tensor poolForward(bool isMax, const at::Tensor& x, const std::vector<int64_t>& k, const ConvGeom& g) {
  at::Tensor xnc = toNC(x);
  std::vector<int64_t> zero(g.spatial, 0);
  std::vector<int64_t> pads = g.extra(1);
  for (auto& p : pads) p = 0;
  {
    int64_t j = 0;
    for (int64_t d = g.spatial - 1; d >= 0; d--) {
      pads[j++] = g.padLo[d];
      pads[j++] = g.padHi[d];
    }
  }
  bool padded = false;
  for (int64_t p : pads) padded = padded || p != 0;
  if (isMax) {
    at::Tensor xp = padded ? at::constant_pad_nd(xnc, pads, -std::numeric_limits<double>::infinity()) : xnc;
    at::Tensor y = g.spatial == 2 ? at::max_pool2d(xp, k, g.stride, zero, g.dilation) : at::max_pool3d(xp, k, g.stride, zero, g.dilation);
    return fromNC(y);
  }
  at::Tensor xp = padded ? at::constant_pad_nd(xnc, pads, 0) : xnc;
  at::Tensor y = g.spatial == 2 ? at::avg_pool2d(xp, k, g.stride, zero) : at::avg_pool3d(xp, k, g.stride, zero);
  if (padded) {
    std::vector<int64_t> os(xnc.sizes().begin(), xnc.sizes().end());
    os[0] = 1;
    os[1] = 1;
    at::Tensor ones = at::constant_pad_nd(at::ones(os, x.options()), pads, 0);
    at::Tensor frac = g.spatial == 2 ? at::avg_pool2d(ones, k, g.stride, zero) : at::avg_pool3d(ones, k, g.stride, zero);
    y = y / frac;
  }
  return fromNC(y);
}

at::Tensor poolBackward(bool isMax, const at::Tensor& dy, const at::Tensor& x, const std::vector<int64_t>& k, const ConvGeom& g) {
  std::vector<int64_t> zero(g.spatial, 0);
  std::vector<int64_t> pads;
  for (int64_t d = g.spatial - 1; d >= 0; d--) {
    pads.push_back(g.padLo[d]);
    pads.push_back(g.padHi[d]);
  }
  std::vector<int64_t> crop(pads);
  for (auto& p : crop) p = -p;
  at::Tensor xnc = toNC(x);
  at::Tensor dync = toNC(dy);
  at::Tensor xp = at::constant_pad_nd(xnc, pads, isMax ? -std::numeric_limits<double>::infinity() : 0.0);
  at::Tensor dxp;
  if (isMax) {
    if (g.spatial == 2) {
      auto r = at::max_pool2d_with_indices(xp, k, g.stride, zero, g.dilation);
      dxp = at::max_pool2d_with_indices_backward(dync, xp, k, g.stride, zero, g.dilation, false, std::get<1>(r));
    } else {
      auto r = at::max_pool3d_with_indices(xp, k, g.stride, zero, g.dilation);
      dxp = at::max_pool3d_with_indices_backward(dync, xp, k, g.stride, zero, g.dilation, false, std::get<1>(r));
    }
  } else {
    // d(avg)/dx with padding excluded from the count: scale dy by 1/count, then a plain sum-pool adjoint.
    std::vector<int64_t> os(xnc.sizes().begin(), xnc.sizes().end());
    os[0] = 1;
    os[1] = 1;
    at::Tensor ones = at::constant_pad_nd(at::ones(os, x.options()), pads, 0);
    at::Tensor frac = g.spatial == 2 ? at::avg_pool2d(ones, k, g.stride, zero) : at::avg_pool3d(ones, k, g.stride, zero);
    at::Tensor scaled = dync / frac;
    dxp = g.spatial == 2 ? at::avg_pool2d_backward(scaled, xp, k, g.stride, zero, false, true, c10::nullopt)
                         : at::avg_pool3d_backward(scaled, xp, k, g.stride, zero, false, true, c10::nullopt);
  }
  return fromNC(at::constant_pad_nd(dxp, crop, 0));
}

// ---- op table ---------------------------------------------------------------------------------

std::vector<int64_t> shapeOf(const at::Tensor& t) { return std::vector<int64_t>(t.sizes().begin(), t.sizes().end()); }

at::Tensor indexTensor(const std::vector<int64_t>& v) {
  return at::tensor(c10::ArrayRef<int64_t>(v), at::TensorOptions().dtype(at::kLong));
}

at::Tensor floatTensor(const std::vector<double>& v) {
  return at::tensor(c10::ArrayRef<double>(v), at::TensorOptions().dtype(at::kDouble)).to(at::kFloat);
}

/** Index/weight tables of a separable resize: rows (h0, h1, fh) and columns (w0, w1, fw). */
struct ResizeTables {
  at::Tensor h0, h1, fh, w0, w1, fw;
  explicit ResizeTables(Args& a) {
    h0 = indexTensor(a.list());
    h1 = indexTensor(a.list());
    fh = floatTensor(a.flist()).view({1, -1, 1, 1});
    w0 = indexTensor(a.list());
    w1 = indexTensor(a.list());
    fw = floatTensor(a.flist()).view({1, 1, -1, 1});
  }
};

#include "small_bmm.h"
#include "fused_ops.h"
#include "attention_ops.h"

std::unordered_map<std::string, Op> makeOps() {
  std::unordered_map<std::string, Op> ops;
  for (const char* n : {"Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Cos", "Cosh", "Elu", "Erf", "Exp", "Expm1",
                        "Floor", "IsNan", "IsInf", "IsFinite", "Log", "Log1p", "LogicalNot", "Neg", "Reciprocal", "Relu", "Relu6",
                        "Round", "Rsqrt", "Selu", "Sigmoid", "Sign", "Sin", "Sinh", "Softplus", "Sqrt", "Square", "Tan", "Tanh",
                        "Identity", "ZerosLike", "OnesLike", "LeakyRelu", "Step", "ClipByValue", "Cast"}) {
    std::string name(n);
    ops[name] = [name](const Tensors& in, Args& a) { return Tensors{unary(name, in.at(0), a)}; };
  }
  for (const char* n : {"Add", "Sub", "Multiply", "RealDiv", "FloorDiv", "Maximum", "Minimum", "Pow", "SquaredDifference", "Mod",
                        "Atan2", "Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual", "LogicalAnd", "LogicalOr",
                        "Prelu"}) {
    std::string name(n);
    ops[name] = [name](const Tensors& in, Args&) { return Tensors{binary(name, in.at(0), in.at(1))}; };
  }
  for (const char* n : {"Sum", "Mean", "Max", "Min", "Prod", "All", "Any"}) {
    std::string name(n);
    ops[name] = [name](const Tensors& in, Args& a) {
      auto axes = a.list();
      bool keep = a.b();
      return Tensors{reduce(name, in.at(0), axes, keep)};
    };
  }
  ops["ArgMax"] = [](const Tensors& in, Args& a) { return Tensors{at::argmax(in.at(0), a.i())}; };
  ops["ArgMin"] = [](const Tensors& in, Args& a) { return Tensors{at::argmin(in.at(0), a.i())}; };
  ops["AddN"] = [](const Tensors& in, Args&) {
    at::Tensor s = in.at(0).clone();
    for (size_t k = 1; k < in.size(); k++) s.add_(in[k]);
    return Tensors{s};
  };
  ops["Softmax"] = [](const Tensors& in, Args& a) { return Tensors{at::softmax(in.at(0), a.i())}; };
  ops["EluGrad"] = [](const Tensors& in, Args&) {
    const at::Tensor& y = in.at(1);
    return Tensors{at::where(y < 0, in.at(0) * (y + 1), in.at(0))};
  };
  ops["SegmentSum"] = [](const Tensors& in, Args& a) {
    // UnsortedSegmentSum: out[ids[i], ...] += x[i, ...] over the leading ids.dim() axes of x.
    const at::Tensor& x = in.at(0);
    at::Tensor ids = in.at(1).to(at::kLong).reshape({-1});
    std::vector<int64_t> rest(x.sizes().begin() + in.at(1).dim(), x.sizes().end());
    std::vector<int64_t> flat{ids.size(0)};
    flat.insert(flat.end(), rest.begin(), rest.end());
    std::vector<int64_t> outShape{a.i()};
    outShape.insert(outShape.end(), rest.begin(), rest.end());
    return Tensors{at::zeros(outShape, x.options()).index_add_(0, ids, x.reshape(flat))};
  };
  ops["Cumsum"] = [](const Tensors& in, Args& a) {
    int64_t axis = a.i();
    bool exclusive = a.b();
    bool reverse = a.b();
    at::Tensor x = reverse ? at::flip(in.at(0), {axis}) : in.at(0);
    at::Tensor y = at::cumsum(x, axis, x.scalar_type() == at::kFloat ? at::kFloat : at::kInt);
    if (exclusive) y = y - x;
    return Tensors{reverse ? at::flip(y, {axis}) : y};
  };
  ops["Select"] = [](const Tensors& in, Args&) {
    at::Tensor c = in.at(0);
    const at::Tensor& t = in.at(1);
    if (c.dim() == 1 && t.dim() > 1) {
      std::vector<int64_t> s(t.dim(), 1);
      s[0] = c.size(0);
      c = c.reshape(s);
    }
    return Tensors{at::where(c.to(at::kBool), t, in.at(2))};
  };
  // Shapes.
  ops["Reshape"] = [](const Tensors& in, Args& a) { return Tensors{in.at(0).reshape(a.list())}; };
  ops["Transpose"] = [](const Tensors& in, Args& a) { return Tensors{in.at(0).permute(a.list())}; };
  ops["Slice"] = [](const Tensors& in, Args& a) {
    auto begin = a.list();
    auto size = a.list();
    at::Tensor y = in.at(0);
    for (size_t d = 0; d < begin.size(); d++) {
      if (begin[d] != 0 || size[d] != y.size(d)) y = y.narrow(static_cast<int64_t>(d), begin[d], size[d]);
    }
    return Tensors{y};
  };
  ops["StridedSlice"] = [](const Tensors& in, Args& a) {
    // Already resolved by the JS side: begin/end/strides per axis (strides may be negative), final shape.
    auto begin = a.list();
    auto end = a.list();
    auto strides = a.list();
    auto finalShape = a.list();
    at::Tensor y = in.at(0);
    for (size_t d = 0; d < begin.size(); d++) {
      int64_t s = strides[d];
      if (s > 0) {
        y = y.slice(static_cast<int64_t>(d), begin[d], std::max(begin[d], end[d]), s);
      } else {
        // Negative stride: indices begin, begin+s, ... > end.
        std::vector<int64_t> idx;
        for (int64_t k = begin[d]; k > end[d]; k += s) idx.push_back(k);
        y = y.index_select(static_cast<int64_t>(d), indexTensor(idx));
      }
    }
    return Tensors{y.reshape(finalShape)};
  };
  ops["Concat"] = [](const Tensors& in, Args& a) { return Tensors{at::cat(in, a.i())}; };
  ops["Pack"] = [](const Tensors& in, Args& a) { return Tensors{at::stack(in, a.i())}; };
  ops["Unpack"] = [](const Tensors& in, Args& a) {
    auto parts = at::unbind(in.at(0), a.i());
    return Tensors(parts.begin(), parts.end());
  };
  ops["SplitV"] = [](const Tensors& in, Args& a) {
    auto sizes = a.list();
    int64_t axis = a.i();
    auto parts = at::split_with_sizes(in.at(0), sizes, axis);
    return Tensors(parts.begin(), parts.end());
  };
  ops["Tile"] = [](const Tensors& in, Args& a) { return Tensors{in.at(0).repeat(a.list())}; };
  ops["PadV2"] = [](const Tensors& in, Args& a) {
    auto lo = a.list();
    auto hi = a.list();
    double value = a.f();
    std::vector<int64_t> p;
    for (int64_t d = static_cast<int64_t>(lo.size()) - 1; d >= 0; d--) {
      p.push_back(lo[d]);
      p.push_back(hi[d]);
    }
    return Tensors{at::constant_pad_nd(in.at(0), p, value)};
  };
  ops["Gather"] = [](const Tensors& in, Args& a) {
    // Generic index along one axis (MirrorPad, GatherV2 with batchDims 0, resize, reverse):
    // y = x.index_select(axis, idx), reshaped to finalShape.
    int64_t axis = a.i();
    auto finalShape = a.list();
    at::Tensor idx = in.at(1).to(at::kLong).reshape({-1});
    return Tensors{in.at(0).index_select(axis, idx).reshape(finalShape)};
  };
  ops["GatherList"] = [](const Tensors& in, Args& a) {
    int64_t axis = a.i();
    auto idx = a.list();
    return Tensors{in.at(0).index_select(axis, indexTensor(idx))};
  };
  ops["Reverse"] = [](const Tensors& in, Args& a) { return Tensors{at::flip(in.at(0), a.list())}; };
  ops["Fill"] = [](const Tensors&, Args& a) {
    auto shape = a.list();
    double v = a.f();
    int dt = static_cast<int>(a.i());
    return Tensors{at::full(shape, v, at::TensorOptions().dtype(scalarType(dt)))};
  };
  ops["OneHot"] = [](const Tensors& in, Args& a) {
    int64_t depth = a.i();
    double on = a.f();
    double off = a.f();
    int dt = static_cast<int>(a.i());
    at::Tensor idx = in.at(0).to(at::kLong);
    at::Tensor valid = (idx >= 0) & (idx < depth);
    at::Tensor oh = at::one_hot(at::where(valid, idx, at::zeros_like(idx)), depth) * valid.unsqueeze(-1);
    at::Tensor y = oh.to(at::kDouble) * (on - off) + off;
    return Tensors{y.to(scalarType(dt))};
  };
  // Linear algebra and networks.
  ops["BatchMatMul"] = [](const Tensors& in, Args& a) {
    bool ta = a.b();
    bool tb = a.b();
    at::Tensor x = ta ? in.at(0).transpose(-1, -2) : in.at(0);
    at::Tensor y = tb ? in.at(1).transpose(-1, -2) : in.at(1);
    if (smallBmmApplies(x, y)) return Tensors{smallBmm(x, y)};
    return Tensors{at::matmul(x, y)};
  };
  ops["FusedMatMul"] = [](const Tensors& in, Args& a) {
    bool ta = a.b();
    bool tb = a.b();
    bool hasBias = a.b();
    int64_t act = a.i();  // 0 linear, 1 relu, 2 relu6, 3 sigmoid, 4 elu, 5 leakyrelu (alpha follows)
    double alpha = a.f();
    at::Tensor x = ta ? in.at(0).transpose(-1, -2) : in.at(0);
    at::Tensor y = tb ? in.at(1).transpose(-1, -2) : in.at(1);
    // A batch of one (tfjs's rank-3 matMul of [1, N, C] projections) goes to addmm as 2D: the bias
    // is added while the product is written instead of in a second pass.
    const bool single = x.dim() == 3 && y.dim() == 3 && x.size(0) == 1 && y.size(0) == 1 && (!hasBias || in.at(2).dim() <= 2);
    at::Tensor out;
    if (hasBias && single)
      out = at::addmm(in.at(2), x[0], y[0]).unsqueeze(0);
    else
      out = hasBias && x.dim() == 2 ? at::addmm(in.at(2), x, y) : at::matmul(x, y);
    if (hasBias && x.dim() != 2 && !single) out = out + in.at(2);
    if (act == 1) out = at::relu(out);
    if (act == 2) out = at::clamp(out, 0, 6);
    if (act == 3) out = at::sigmoid(out);
    if (act == 4) out = at::elu(out);
    if (act == 5) out = at::where(out < 0, out * alpha, out);
    return Tensors{out};
  };
  ops["Conv"] = [](const Tensors& in, Args& a) {
    int64_t spatial = a.i();
    ConvGeom g = readGeom(a, spatial);
    return Tensors{convForward(in.at(0), in.at(1), g)};
  };
  ops["ConvBias"] = [](const Tensors& in, Args& a) {
    // The bias goes into the convolution itself (oneDNN adds it while writing the output).
    int64_t spatial = a.i();
    ConvGeom g = readGeom(a, spatial);
    return Tensors{convForward(in.at(0), in.at(1), g, in.at(2))};
  };
  ops["ConvGrad"] = [](const Tensors& in, Args& a) {
    // dx, dw and (optionally) the bias gradient from one oneDNN backward call: sharing dy's reorder
    // makes it 15-25% cheaper than separate input and filter gradients.
    int64_t spatial = a.i();
    ConvGeom g = readGeom(a, spatial);
    bool hasBias = a.b();
    const at::Tensor w = lowp(in.at(2));
    at::Tensor xnc = padExtra(toNC(lowp(in.at(1))), g);
    std::vector<int64_t> outPad(g.spatial, 0);
    std::vector<int64_t> biasSizes{w.size(w.dim() - 1)};
    auto r = at::convolution_backward(toNC(lowp(in.at(0))), xnc, toOIK(w), hasBias ? at::OptionalIntArrayRef(biasSizes) : at::OptionalIntArrayRef(c10::nullopt), g.stride, g.sym(),
                                      g.dilation, false, outPad, g.groups, {true, true, hasBias});
    Tensors out{fromNC(cropExtra(full(std::get<0>(r)), g)), fromOIK(full(std::get<1>(r)))};
    if (hasBias) out.push_back(full(std::get<2>(r)));
    return out;
  };
  ops["ConvBackpropInput"] = [](const Tensors& in, Args& a) {
    int64_t spatial = a.i();
    ConvGeom g = readGeom(a, spatial);
    auto inShape = a.list();
    return Tensors{convBackpropInput(in.at(0), in.at(1), inShape, g)};
  };
  ops["ConvBackpropFilter"] = [](const Tensors& in, Args& a) {
    int64_t spatial = a.i();
    ConvGeom g = readGeom(a, spatial);
    auto filterShape = a.list();
    return Tensors{convBackpropFilter(in.at(0), in.at(1), filterShape, g)};
  };
  ops["Pool"] = [](const Tensors& in, Args& a) {
    bool isMax = a.b();
    int64_t spatial = a.i();
    auto k = a.list();
    ConvGeom g = readGeom(a, spatial);
    return Tensors{poolForward(isMax, in.at(0), k, g)};
  };
  ops["PoolGrad"] = [](const Tensors& in, Args& a) {
    bool isMax = a.b();
    int64_t spatial = a.i();
    auto k = a.list();
    ConvGeom g = readGeom(a, spatial);
    return Tensors{poolBackward(isMax, in.at(0), in.at(1), k, g)};
  };
  ops["Resize"] = [](const Tensors& in, Args& a) {
    // Separable linear resampling of [N, H, W, C] along H and W: y = sum_k w_k[o] * x[i_k[o]],
    // with index/weight tables computed on the JS side (exact tfjs conventions).
    ResizeTables r(a);
    const at::Tensor& x = in.at(0);
    at::Tensor rows = x.index_select(1, r.h0) * (1 - r.fh) + x.index_select(1, r.h1) * r.fh;
    return Tensors{rows.index_select(2, r.w0) * (1 - r.fw) + rows.index_select(2, r.w1) * r.fw};
  };
  ops["ResizeGrad"] = [](const Tensors& in, Args& a) {
    // The adjoint of Resize: scatter-add dy back through the same tables.
    ResizeTables r(a);
    auto inShape = a.list();
    const at::Tensor& dy = in.at(0);
    std::vector<int64_t> rs{inShape[0], dy.size(1), inShape[2], inShape[3]};
    at::Tensor drows = at::zeros(rs, dy.options());
    drows.index_add_(2, r.w0, dy * (1 - r.fw));
    drows.index_add_(2, r.w1, dy * r.fw);
    at::Tensor dx = at::zeros(inShape, dy.options());
    dx.index_add_(1, r.h0, drows * (1 - r.fh));
    dx.index_add_(1, r.h1, drows * r.fh);
    return Tensors{dx};
  };
  ops["FusedBatchNorm"] = [](const Tensors& in, Args& a) {
    // x, mean, variance, [offset], [scale]; flags say which optional inputs are present.
    double eps = a.f();
    bool hasOffset = a.b();
    bool hasScale = a.b();
    size_t k = 3;
    at::Tensor y = (in.at(0) - in.at(1)) * at::rsqrt(in.at(2) + eps);
    at::Tensor offset = hasOffset ? in.at(k++) : at::Tensor();
    if (hasScale) y = y * in.at(k);
    if (hasOffset) y = y + offset;
    return Tensors{y};
  };
  addFusedOps(ops);
  addAttentionOps(ops);
  return ops;
}

const std::unordered_map<std::string, Op>& opTable() {
  static const std::unordered_map<std::string, Op> ops = makeOps();
  return ops;
}

// ---- Node-API bindings --------------------------------------------------------------------------

template <typename F>
auto guarded(const Napi::Env& env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, std::string("libtorch: ") + e.what_without_backtrace());
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

std::vector<int64_t> shapeArg(const Napi::Value& v) {
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<int64_t> s(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) s[k] = arr.Get(k).As<Napi::Number>().Int64Value();
  return s;
}

/** fromData(typedArray, shape, dtype) -> handle: copies the values into a new native tensor. */
Napi::Value FromData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    auto shape = shapeArg(info[1]);
    at::ScalarType st = scalarType(info[2].As<Napi::Number>().Int32Value());
    c10::InferenceMode inference;
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(st));
    size_t bytes = t.nbytes();
    if (ta.ByteLength() != bytes) {
      throw std::runtime_error("lvdm_torch: fromData: " + std::to_string(ta.ByteLength()) + " bytes for a tensor of " + std::to_string(bytes));
    }
    if (bytes > 0) {
      const uint8_t* src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
      std::memcpy(t.data_ptr(), src, bytes);
    }
    return Napi::Number::New(env, static_cast<double>(store(state(env), t)));
  });
}

/** toData(handle) -> ArrayBuffer with a copy of the contiguous values. */
Napi::Value ToData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const at::Tensor& t = get(state(env), info[0].As<Napi::Number>().Int64Value());
    at::Tensor c = t.contiguous();
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(env, c.nbytes());
    if (c.nbytes() > 0) std::memcpy(buf.Data(), c.data_ptr(), c.nbytes());
    return buf;
  });
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    release(state(env), info[0].As<Napi::Number>().Int64Value());
    return env.Undefined();
  });
}

/** run(op, packed Float64Array [nIn, ids..., args...]) -> Float64Array [nOut, (id, dtype, rank, dims...)...]. */
Napi::Value Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    c10::InferenceMode inference;  // no autograd bookkeeping: tfjs does the differentiation
    std::string name = info[0].As<Napi::String>().Utf8Value();
    Napi::Float64Array packed = info[1].As<Napi::Float64Array>();
    const double* p = packed.Data();
    size_t n = packed.ElementLength();
    if (n < 1) throw std::runtime_error("lvdm_torch: run: empty argument block");
    size_t nIn = static_cast<size_t>(p[0]);
    if (n < 1 + nIn) throw std::runtime_error("lvdm_torch: run: argument block too short");
    State& st = state(env);
    Tensors in;
    in.reserve(nIn);
    for (size_t k = 0; k < nIn; k++) in.push_back(get(st, static_cast<int64_t>(p[1 + k])));
    Args args(p + 1 + nIn, n - 1 - nIn);
    auto it = opTable().find(name);
    if (it == opTable().end()) throw std::runtime_error("lvdm_torch: no native op '" + name + "'");
    Tensors out = it->second(in, args);
    std::vector<double> res{static_cast<double>(out.size())};
    for (const at::Tensor& t : out) {
      int64_t id = store(st, t);
      const at::Tensor& s = get(st, id);
      res.push_back(static_cast<double>(id));
      res.push_back(dtypeCode(s.scalar_type()));
      res.push_back(static_cast<double>(s.dim()));
      for (int64_t d : s.sizes()) res.push_back(static_cast<double>(d));
    }
    Napi::Float64Array r = Napi::Float64Array::New(env, res.size());
    std::memcpy(r.Data(), res.data(), res.size() * sizeof(double));
    return r;
  });
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  const State& st = state(env);
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(st.bytes)));
  o.Set("handles", Napi::Number::New(env, static_cast<double>(st.tensors.size())));
  o.Set("storages", Napi::Number::New(env, static_cast<double>(st.storages.size())));
  return o;
}

using BlasSetThreads = void (*)(int);
using BlasConfig = char* (*)();

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int n = info[0].As<Napi::Number>().Int32Value();
    at::set_num_threads(n);
    // Debian's libtorch reaches BLAS through libblas.so.3; when that is OpenBLAS, size its pool too.
    if (auto f = reinterpret_cast<BlasSetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(n);
    return Napi::Number::New(env, at::get_num_threads());
  });
}

/** setPrecision('fp32' | 'bf16') -> the previous one (this JS thread only). */
Napi::Value SetPrecision(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const std::string p = info[0].As<Napi::String>().Utf8Value();
    if (p != "fp32" && p != "bf16") throw std::runtime_error("setPrecision: expected 'fp32' or 'bf16', got '" + p + "'");
    const bool was = tBf16;
    tBf16 = p == "bf16";
    return Napi::String::New(env, was ? "bf16" : "fp32");
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("torch", Napi::String::New(env, std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH)));
  o.Set("threads", Napi::Number::New(env, at::get_num_threads()));
  auto cfg = reinterpret_cast<BlasConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  o.Set("blas", Napi::String::New(env, cfg != nullptr ? std::string(cfg()) : std::string("unknown (not OpenBLAS)")));
  o.Set("deterministic", Napi::Boolean::New(env, at::globalContext().deterministicAlgorithms()));
  o.Set("mkldnn", Napi::Boolean::New(env, at::hasMKLDNN()));
  // How many threads the addon's own at::parallel_for loops (the fused kernels) fan out to. ATen's
  // OpenMP parallel_for is a header pragma: an addon compiled without -fopenmp runs them serially.
  std::vector<char> used(at::get_num_threads(), 0);
  at::parallel_for(0, 1024, 1, [&](int64_t, int64_t) { used[at::get_thread_num()] = 1; });
  int fanned = 0;
  for (char u : used) fanned += u;
  o.Set("parallelForThreads", Napi::Number::New(env, fanned));
  Napi::Array names = Napi::Array::New(env);
  uint32_t k = 0;
  for (const auto& kv : opTable()) names.Set(k++, Napi::String::New(env, kv.first));
  o.Set("ops", names);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Keep freed tensor memory in the heap for reuse: by default glibc returns every large block to
  // the kernel and the next tensor of that size page-faults its memory in again (measured: a third
  // of a training step's CPU time went to the kernel). 32 MiB is glibc's largest mmap threshold,
  // so blocks above it (e.g. one 32-channel activation of 16 clips of 16x32x32) were still mmapped
  // and faulted in on every use: encoding 160 such clips took 6.7 s, 0.8 s with mmap off (measured
  // 2026-12-03). M_MMAP_MAX 0 serves them from the heap too; a worker thread's arena still falls
  // back to mmap for blocks larger than its 64 MiB heaps.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  // One tensor table per environment (worker threads load the addon again); freed with it.
  env.SetInstanceData<State>(new State());
  // Same inputs, same thread count -> same numbers (libtorch's deterministic algorithms where it has them).
  at::globalContext().setDeterministicAlgorithms(true, false);
  exports.Set("fromData", Napi::Function::New(env, FromData));
  exports.Set("toData", Napi::Function::New(env, ToData));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  exports.Set("run", Napi::Function::New(env, Run));
  exports.Set("memory", Napi::Function::New(env, Memory));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setPrecision", Napi::Function::New(env, SetPrecision));
  return exports;
}

}  // namespace

NODE_API_MODULE(lvdm_torch, Init)
