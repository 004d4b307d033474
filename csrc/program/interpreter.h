// Block interpreter for op programs: every instruction is one vectorised loop over a block of
// elements, so decoding costs nothing per element and a new program needs no compilation.
// Include only from kernel translation units (it pulls in the ATen vector headers via vec.h).
#pragma once
#include "program/fast_math.h"
#include "program/program.h"
#include "program/vec.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace autobert::program {

using at::vec::Vectorized;

// Elementwise meaning of every opcode on one vector; mirrors OPCODES in autobert_ext/program.py.
// Transcendentals go through Math<T> (fast_math.h): fast float kernels, SLEEF for double.
template <typename T>
struct VecOps {
  using V = Vectorized<T>;
  using M = Math<T>;
  static V one() { return V(T(1)); }
  // 1.0 where the comparison mask is set, else 0.0 (ATen comparisons return all-ones bit masks).
  static V bool_to_one(const V& m) { return m & one(); }
  // torch.sign: -1, 0 or +1.
  static V sign(const V& x) { return bool_to_one(x > V(T(0))) - bool_to_one(x < V(T(0))); }
  static V signp(const V& x) { return V::blendv(V(T(-1)), one(), x >= V(T(0))); }
  static V exp_clamped(const V& x) { return M::exp(at::vec::minimum(x, V(T(20)))); }
  static V safe_sqrt(const V& x) { return sign(x) * ((x.abs() + V(T(1e-6))).sqrt() - V(T(1e-3))); }
  static V safe_log(const V& x) { return sign(x) * M::log1p(x.abs()); }
  static V sigmoid(const V& x) { return one() / (one() + M::exp(x.neg())); }
  static V logsigmoid(const V& x) {
    // log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), the overflow-free form torch uses.
    return at::vec::minimum(x, V(T(0))) - M::log1p(M::exp(x.abs().neg()));
  }
  // Phi(x) = erfc(-x / sqrt(2)) / 2: accurate in relative terms on both tails (1 + erf(x / sqrt(2))
  // cancels for x << 0).
  static V cdf(const V& x) { return V(T(0.5)) * M::erfc(x * V(T(-M_SQRT1_2))); }
  static V gelu(const V& x) { return x * cdf(x); }
  static V dgelu(const V& x) {
    const V cdf_x = cdf(x);
    return cdf_x + x * M::exp(x * x * V(T(-0.5))) * V(T(0.3989422804014327));
  }
  static V softplus(const V& x) {
    // torch.nn.functional.softplus(beta=1, threshold=20): linear above the threshold.
    return V::blendv(M::log1p(M::exp(x)), x, x > V(T(20)));
  }
  static V safe_div(const V& a, const V& b) {
    return a / (signp(b) * at::vec::maximum(b.abs(), V(T(1e-6))));
  }
};

namespace detail {
template <typename T, typename F>
inline void map1(T* d, const T* a, int64_t n, F f) {
  using V = Vectorized<T>;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) f(V::loadu(a + i)).store(d + i);
  if (i < n) f(V::loadu(a + i, n - i)).store(d + i, n - i);
}
template <typename T, typename F>
inline void map2(T* d, const T* a, const T* b, int64_t n, F f) {
  using V = Vectorized<T>;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) f(V::loadu(a + i), V::loadu(b + i)).store(d + i);
  if (i < n) f(V::loadu(a + i, n - i), V::loadu(b + i, n - i)).store(d + i, n - i);
}
}  // namespace detail

// Evaluates one instruction over n elements: d = op(a, b, imm).
template <typename T>
inline void eval_instr(int32_t op, T* d, const T* a, const T* b, double imm_d, int64_t n) {
  using V = Vectorized<T>;
  using O = VecOps<T>;
  using detail::map1;
  using detail::map2;
  const T imm = static_cast<T>(imm_d);
  const V c(imm);
  switch (op) {
    case kCopy: if (d != a) std::memmove(d, a, n * sizeof(T)); break;
    case kConst: std::fill(d, d + n, imm); break;
    case kNeg: map1(d, a, n, [](V x) { return x.neg(); }); break;
    case kAbs: map1(d, a, n, [](V x) { return x.abs(); }); break;
    case kSquare: map1(d, a, n, [](V x) { return x * x; }); break;
    case kMulc: map1(d, a, n, [c](V x) { return x * c; }); break;
    case kAddc: map1(d, a, n, [c](V x) { return x + c; }); break;
    case kLogsigmoid: map1(d, a, n, [](V x) { return O::logsigmoid(x); }); break;
    case kSoftsign: map1(d, a, n, [](V x) { return x / (O::one() + x.abs()); }); break;
    case kSqrt: map1(d, a, n, [](V x) { return O::safe_sqrt(x); }); break;
    case kLog: map1(d, a, n, [](V x) { return O::safe_log(x); }); break;
    case kExp: map1(d, a, n, [](V x) { return O::exp_clamped(x); }); break;
    case kSigmoid: map1(d, a, n, [](V x) { return O::sigmoid(x); }); break;
    case kTanh: map1(d, a, n, [](V x) { return Math<T>::tanh(x); }); break;
    case kRelu: map1(d, a, n, [](V x) { return at::vec::clamp_min(x, V(T(0))); }); break;
    case kGelu: map1(d, a, n, [](V x) { return O::gelu(x); }); break;
    case kSoftplus: map1(d, a, n, [](V x) { return O::softplus(x); }); break;
    case kAdd: map2(d, a, b, n, [](V x, V y) { return x + y; }); break;
    case kSub: map2(d, a, b, n, [](V x, V y) { return x - y; }); break;
    case kMul: map2(d, a, b, n, [](V x, V y) { return x * y; }); break;
    case kMax: map2(d, a, b, n, [](V x, V y) { return at::vec::maximum(x, y); }); break;
    case kMin: map2(d, a, b, n, [](V x, V y) { return at::vec::minimum(x, y); }); break;
    case kDiv: map2(d, a, b, n, [](V x, V y) { return O::safe_div(x, y); }); break;
    case kRecip: map1(d, a, n, [](V x) { return x.reciprocal(); }); break;
    case kRsqrt: map1(d, a, n, [](V x) { return x.rsqrt(); }); break;
    case kSign: map1(d, a, n, [](V x) { return O::sign(x); }); break;
    case kSignp: map1(d, a, n, [](V x) { return O::signp(x); }); break;
    case kGt: map2(d, a, b, n, [](V x, V y) { return O::bool_to_one(x > y); }); break;
    case kEq: map2(d, a, b, n, [](V x, V y) { return O::bool_to_one(x == y); }); break;
    case kGtc: map1(d, a, n, [c](V x) { return O::bool_to_one(x > c); }); break;
    case kLtc: map1(d, a, n, [c](V x) { return O::bool_to_one(x < c); }); break;
    case kDgelu: map1(d, a, n, [](V x) { return O::dgelu(x); }); break;
    case kExpRaw: map1(d, a, n, [](V x) { return Math<T>::exp(x); }); break;
    case kFma: map2(d, a, b, n, [c](V x, V y) { return x * y + c; }); break;
    default: break;  // unreachable: decode() rejected unknown opcodes
  }
}

// Evaluates a planned program over blocks of up to `capacity` elements. One Evaluator per thread:
// it owns the scratch slots and the per-register pointer table.
template <typename T>
class Evaluator {
 public:
  Evaluator(const Program& prog, const Plan& plan, int64_t capacity)
      : prog_(prog), plan_(plan), capacity_(capacity), stride_(round_up(capacity)),
        scratch_(static_cast<size_t>(plan.n_slots) * stride_ + 64 / sizeof(T)), regs_(prog.n_regs()) {
    // Slots start 64-byte aligned so full-vector loads never split cache lines.
    T* base = scratch_.data();
    auto mis = reinterpret_cast<uintptr_t>(base) % 64;
    slot0_ = mis ? base + (64 - mis) / sizeof(T) : base;
  }

  int64_t capacity() const { return capacity_; }

  // in[i]: input i (n <= capacity elements); out[j]: output j (n elements, must not alias an input).
  void run(const T* const* in, T* const* out, int64_t n) {
    for (size_t r = 0; r < regs_.size(); ++r) {
      const Plan::Loc l = plan_.loc[r];
      regs_[r] = l.kind == Plan::kInput ? const_cast<T*>(in[l.index])
                 : l.kind == Plan::kOutput ? out[l.index]
                                           : slot0_ + static_cast<int64_t>(l.index) * stride_;
    }
    for (const Instr& ins : prog_.instrs) {
      eval_instr<T>(ins.op, regs_[ins.dst], ins.a >= 0 ? regs_[ins.a] : nullptr,
                    ins.b >= 0 ? regs_[ins.b] : nullptr, ins.imm, n);
    }
    for (const auto& c : plan_.copies) {
      if (out[c.first] != regs_[c.second]) std::memmove(out[c.first], regs_[c.second], n * sizeof(T));
    }
  }

 private:
  const Program& prog_;
  const Plan& plan_;
  static int64_t round_up(int64_t n) {
    constexpr int64_t k = 64 / sizeof(T);
    return (n + k - 1) / k * k;
  }
  int64_t capacity_, stride_;
  std::vector<T> scratch_;
  T* slot0_;
  std::vector<T*> regs_;
};

}  // namespace autobert::program
