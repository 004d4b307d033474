// Vector body of the masked AdamW kernel. Include only from masked_adamw.cpp, after it has chosen
// CPU_CAPABILITY (this header uses at::vec::Vectorized of that capability).
#pragma once
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/util/BFloat16.h>

#include <cstdint>
#include <cstring>

#include "adamw/masked_adamw.h"

namespace autobert::adamw {
namespace {

using at::vec::Vectorized;

// Per-slot step scalars in double, as torch.optim.AdamW computes them in Python.
struct Coeffs {
  bool apply_decay;
  double decay;            // 1 - lr * weight_decay
  double lerp_weight;      // 1 - beta1
  double beta2;
  double one_minus_beta2;  // 1 - beta2
  double neg_step_size;    // -(lr / (1 - beta1^step))
  double bc2_sqrt;         // (1 - beta2^step)^0.5
  double eps;
};

// The scalars broadcast to vectors of the compute type T. ATen casts a Python scalar argument to
// the tensor's dtype before the kernel runs, so casting each double once here reproduces it.
template <typename T>
struct VecCoeffs {
  using V = Vectorized<T>;
  explicit VecCoeffs(const Coeffs& c)
      : apply_decay(c.apply_decay),
        lerp_small(std::abs(static_cast<T>(c.lerp_weight)) < T(0.5)),
        decay(static_cast<T>(c.decay)),
        // ATen's lerp_vec: weight w < 0.5 -> start + w*(end-start), else end + (w-1)*(end-start).
        lerp_coeff(lerp_small ? static_cast<T>(c.lerp_weight) : static_cast<T>(c.lerp_weight) - T(1)),
        beta2(static_cast<T>(c.beta2)),
        one_minus_beta2(static_cast<T>(c.one_minus_beta2)),
        neg_step_size(static_cast<T>(c.neg_step_size)),
        bc2_sqrt(static_cast<T>(c.bc2_sqrt)),
        eps(static_cast<T>(c.eps)) {}
  bool apply_decay;
  bool lerp_small;
  V decay, lerp_coeff, beta2, one_minus_beta2, neg_step_size, bc2_sqrt, eps;
};

// One AdamW update of a vector of entries, op by op in the order (and with the rounding) of
// torch.optim.AdamW's foreach/single-tensor path on CPU, so active entries agree to ~1 ulp.
template <typename T>
inline void adamw_math(Vectorized<T>& p, const Vectorized<T>& g, Vectorized<T>& m,
                       Vectorized<T>& v, const VecCoeffs<T>& c) {
  if (c.apply_decay) p = p * c.decay;                          // param.mul_(1 - lr * wd)
  m = at::vec::fmadd(c.lerp_coeff, g - m, c.lerp_small ? m : g);  // exp_avg.lerp_(grad, 1 - beta1)
  v = v * c.beta2;                                             // exp_avg_sq.mul_(beta2)
  // .addcmul_(grad, grad, 1 - beta2): ATen's vector body `v + s * g * g` is compiled with FMA
  // contraction (measured bit-exact against torch 2.13 on AVX512), so contract the same way.
  v = at::vec::fmadd(c.one_minus_beta2 * g, g, v);
  const Vectorized<T> denom = v.sqrt() / c.bc2_sqrt + c.eps;   // (sqrt(v) / bc2_sqrt).add_(eps)
  p = p + c.neg_step_size * m / denom;                         // param.addcdiv_(m, denom, -step)
}

enum class Activity { kNone, kSome, kAll };

// Which of the n mask bytes at `mask` are set. Whole vectors of inactive entries are skipped (no
// load, no store) and fully active ones stored without the per-lane select.
inline Activity classify(const bool* mask, int64_t n) {
  if (mask == nullptr) return Activity::kAll;
  int64_t set = 0, i = 0;
  // bool is one byte holding 0 or 1, so 8 bytes at a time count the set lanes.
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, mask + i, 8);
    set += __builtin_popcountll(word);
  }
  for (; i < n; ++i) set += mask[i];
  return set == 0 ? Activity::kNone : (set == n ? Activity::kAll : Activity::kSome);
}

#if defined(CPU_CAPABILITY_AVX512)
// AVX512: inactive lanes are masked out of the store itself, so they are never written at all.
// k-mask of the first n (<= 16 or 32) mask bytes; bytes past n are not read.
inline __mmask16 kmask16(const bool* mask, int64_t n) {
  const __m128i b = _mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << n) - 1u), mask);
  return _mm_test_epi8_mask(b, b);
}
inline __mmask32 kmask32(const bool* mask, int64_t n) {
  const __mmask32 tail = n >= 32 ? ~0u : static_cast<__mmask32>((1u << n) - 1u);
  const __m256i b = _mm256_maskz_loadu_epi8(tail, mask);
  return _mm256_test_epi8_mask(b, b);
}
inline void store_active(float* dst, const Vectorized<float>& x, const bool* mask, int64_t n) {
  _mm512_mask_storeu_ps(dst, kmask16(mask, n), x);
}
inline void store_active(double* dst, const Vectorized<double>& x, const bool* mask, int64_t n) {
  _mm512_mask_storeu_pd(dst, static_cast<__mmask8>(kmask16(mask, n)), x);
}
inline void store_active(c10::BFloat16* dst, const Vectorized<c10::BFloat16>& x, const bool* mask,
                         int64_t n) {
  _mm512_mask_storeu_epi16(dst, kmask32(mask, n), x);
}
#else
// Other ISAs: select per lane between the new value and the entry's current bits, then store the
// vector. Inactive entries are rewritten with the bits just read from them, so they keep their
// exact bits (NaN payloads included); only a concurrent writer could tell the difference.
template <typename T>
inline void store_active(T* dst, const Vectorized<T>& x, const bool* mask, int64_t n) {
  using I = at::vec::int_same_size_t<T>;
  __at_align__ I bits[Vectorized<T>::size()] = {};
  for (int64_t j = 0; j < n; ++j) bits[j] = -static_cast<I>(mask[j]);  // 0 or all ones, no branch
  const auto lanes = Vectorized<T>::loadu(bits);
  Vectorized<T>::blendv(Vectorized<T>::loadu(dst, n), x, lanes).store(dst, n);
}
#endif

template <typename T>
inline void store_lanes(T* dst, const Vectorized<T>& x, const bool* mask, int64_t n, Activity a) {
  if (a == Activity::kAll) {
    x.store(dst, n);
  } else {
    store_active(dst, x, mask, n);
  }
}

// Elements [begin, end) of a float32 or float64 slot. The tail uses the same vector math on a
// partial load, so every element's result is independent of how the range was split.
template <typename T>
void update_range(const Slot& s, const VecCoeffs<T>& c, int64_t begin, int64_t end) {
  using V = Vectorized<T>;
  constexpr int64_t W = V::size();
  T* p = static_cast<T*>(s.param);
  const T* g = static_cast<const T*>(s.grad);
  T* m = static_cast<T*>(s.exp_avg);
  T* v = static_cast<T*>(s.exp_avg_sq);
  for (int64_t i = begin; i < end; i += W) {
    const int64_t n = std::min(W, end - i);
    const bool* mk = s.mask ? s.mask + i : nullptr;
    const Activity a = classify(mk, n);
    if (a == Activity::kNone) continue;
    V pv = V::loadu(p + i, n), gv = V::loadu(g + i, n);
    V mv = V::loadu(m + i, n), vv = V::loadu(v + i, n);
    adamw_math(pv, gv, mv, vv, c);
    store_lanes(p + i, pv, mk, n, a);
    store_lanes(m + i, mv, mk, n, a);
    store_lanes(v + i, vv, mk, n, a);
  }
}

using BVec = Vectorized<c10::BFloat16>;

// Elements [begin, end) of a bfloat16 slot: bfloat16 storage, float32 math (widen, update both
// halves, round to nearest-even once per stored value).
inline void update_range_bf16(const Slot& s, const VecCoeffs<float>& c, int64_t begin, int64_t end) {
  constexpr int64_t W = BVec::size();
  auto* p = static_cast<c10::BFloat16*>(s.param);
  const auto* g = static_cast<const c10::BFloat16*>(s.grad);
  auto* m = static_cast<c10::BFloat16*>(s.exp_avg);
  auto* v = static_cast<c10::BFloat16*>(s.exp_avg_sq);
  for (int64_t i = begin; i < end; i += W) {
    const int64_t n = std::min(W, end - i);
    const bool* mk = s.mask ? s.mask + i : nullptr;
    const Activity a = classify(mk, n);
    if (a == Activity::kNone) continue;
    auto [p0, p1] = at::vec::convert_to_float<c10::BFloat16>(BVec::loadu(p + i, n));
    auto [g0, g1] = at::vec::convert_to_float<c10::BFloat16>(BVec::loadu(g + i, n));
    auto [m0, m1] = at::vec::convert_to_float<c10::BFloat16>(BVec::loadu(m + i, n));
    auto [v0, v1] = at::vec::convert_to_float<c10::BFloat16>(BVec::loadu(v + i, n));
    adamw_math(p0, g0, m0, v0, c);
    adamw_math(p1, g1, m1, v1, c);
    store_lanes(p + i, at::vec::convert_from_float<c10::BFloat16>(p0, p1), mk, n, a);
    store_lanes(m + i, at::vec::convert_from_float<c10::BFloat16>(m0, m1), mk, n, a);
    store_lanes(v + i, at::vec::convert_from_float<c10::BFloat16>(v0, v1), mk, n, a);
  }
}

}  // namespace
}  // namespace autobert::adamw
