// Vectorised exp, tanh, log1p and erf for the interpreters and the attention softmax.
// float on AVX-512 / AVX2: Cephes-style range reduction + polynomials (<= 2 ulp for exp/log1p/tanh,
// erf to 1.5e-7 absolute as in ATen), several times faster than the SLEEF calls of Vectorized<float>
// (tanh above all), which dominate score programs. double and other ISAs: the ATen (SLEEF) methods.
#pragma once
#include "program/vec.h"

#include <limits>

namespace autobert::program {

template <typename T>
struct Math {
  using V = at::vec::Vectorized<T>;
  static V exp(const V& x) { return x.exp(); }
  static V tanh(const V& x) { return x.tanh(); }
  static V log1p(const V& x) { return x.log1p(); }
  static V erf(const V& x) { return x.erf(); }
  static V erfc(const V& x) { return x.erfc(); }
};

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
namespace fast {
using VF = at::vec::Vectorized<float>;

#if defined(CPU_CAPABILITY_AVX512)
// The low 9 bits of t's representation moved into the exponent field (see exp).
inline VF exponent_bits(VF t) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(t), 23)); }
// min/max that return the second operand when either is NaN: clamp(lo, hi, x) keeps NaN.
inline VF min_keep(VF bound, VF x) { return _mm512_min_ps(bound, x); }
inline VF max_keep(VF bound, VF x) { return _mm512_max_ps(bound, x); }
// u = m * 2^e with m in [1, 2) (u > 0, normal).
inline void frexp12(VF u, VF& m, VF& e) {
  e = _mm512_getexp_ps(u);
  m = _mm512_getmant_ps(u, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
}
#else
inline VF exponent_bits(VF t) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23)); }
inline VF min_keep(VF bound, VF x) { return _mm256_min_ps(bound, x); }
inline VF max_keep(VF bound, VF x) { return _mm256_max_ps(bound, x); }
inline void frexp12(VF u, VF& m, VF& e) {
  const __m256i bits = _mm256_castps_si256(u);
  e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127)));
  m = _mm256_castsi256_ps(
      _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f800000)));
}
#endif

inline VF fma(VF a, VF b, VF c) { return at::vec::fmadd(a, b, c); }

// exp(x): x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial. n comes from the magic-number
// rounding t = x log2(e) + 1.5 * 2^23 + 126, whose low mantissa bits hold n + 126: shifted into
// the exponent field they give 2^(n-1) (times 2 afterwards, so n = 128 stays finite). Results
// below ~2e-38 flush to 0; x > 88.72 gives inf; NaN stays NaN.
inline VF exp(VF x) {
  x = min_keep(VF(88.8f), max_keep(VF(-87.6f), x));
  const VF magic(12582912.0f + 126.0f);
  const VF t = fma(x, VF(1.44269504088896341f), magic);
  const VF n = t - magic;
  VF r = fma(n, VF(-0.693359375f), x);
  r = fma(n, VF(2.12194440e-4f), r);
  VF y(1.9875691500E-4f);
  y = fma(y, r, VF(1.3981999507E-3f));
  y = fma(y, r, VF(8.3334519073E-3f));
  y = fma(y, r, VF(4.1665795894E-2f));
  y = fma(y, r, VF(1.6666665459E-1f));
  y = fma(y, r, VF(5.0000001201E-1f));
  y = fma(y, r * r, r) + VF(1.0f);
  return y * exponent_bits(t) * VF(2.0f);
}

// tanh(x) = sign(x) * (1 - 2 / (exp(2|x|) + 1)) for |x| >= 0.625, an odd polynomial below (no
// cancellation near 0).
inline VF tanh(VF x) {
  const VF sign_bit(-0.0f);
  const VF ax = x.abs();
  const VF big = VF(1.0f) - VF(2.0f) / (exp(ax + ax) + VF(1.0f));
  const VF z = x * x;
  VF p(-5.70498872745E-3f);
  p = fma(p, z, VF(2.06390887954E-2f));
  p = fma(p, z, VF(-5.37397155531E-2f));
  p = fma(p, z, VF(1.33314422036E-1f));
  p = fma(p, z, VF(-3.33332819422E-1f));
  const VF small = fma(p * z, ax, ax);
  const VF r = VF::blendv(big, small, ax < VF(0.625f));
  return r | (x & sign_bit);
}

// log1p(x) for x > -1: log(u), u = 1 + x, by Cephes' logf kernel on u's mantissa, plus the
// rounding error of u, (x - (u - 1)) / u. log1p(+inf) = +inf, NaN stays NaN.
inline VF log1p(VF x) {
  const VF one(1.0f);
  const VF u = x + one;
  VF m, e;
  frexp12(u, m, e);
  const VF big = m > VF(1.41421356237309505f);  // move m into [sqrt(1/2), sqrt(2))
  m = VF::blendv(m, m * VF(0.5f), big);
  e = e + (big & one);
  const VF f = m - one;
  const VF z = f * f;
  VF y(7.0376836292E-2f);
  y = fma(y, f, VF(-1.1514610310E-1f));
  y = fma(y, f, VF(1.1676998740E-1f));
  y = fma(y, f, VF(-1.2420140846E-1f));
  y = fma(y, f, VF(1.4249322787E-1f));
  y = fma(y, f, VF(-1.6668057665E-1f));
  y = fma(y, f, VF(2.0000714765E-1f));
  y = fma(y, f, VF(-2.4999993993E-1f));
  y = fma(y, f, VF(3.3333331174E-1f));
  y = y * f * z;
  y = fma(e, VF(-2.12194440e-4f), y);
  y = fma(z, VF(-0.5f), y);
  VF r = fma(e, VF(0.693359375f), f + y);
  r = r + (x - (u - one)) / u;
  const VF inf(std::numeric_limits<float>::infinity());
  return VF::blendv(r, inf, u == inf);
}

// erf by Abramowitz-Stegun 7.1.26 (the formula of ATen's Vectorized<float>::erf), |error| < 1.5e-7.
inline VF erf(VF x) {
  const VF sign = x & VF(-0.0f);
  const VF ax = x.abs();
  const VF t = VF(1.0f) / fma(VF(0.3275911f), ax, VF(1.0f));
  VF r = fma(VF(1.061405429f), t, VF(-1.453152027f));
  r = fma(r, t, VF(1.421413741f));
  r = fma(r, t, VF(-0.284496736f));
  r = fma(r, t, VF(0.254829592f));
  const VF e = exp((x * x).neg());
  return fma((e * t).neg(), r, VF(1.0f)) ^ sign;
}
}  // namespace fast

template <>
struct Math<float> {
  using V = at::vec::Vectorized<float>;
  static V exp(const V& x) { return fast::exp(x); }
  static V tanh(const V& x) { return fast::tanh(x); }
  static V log1p(const V& x) { return fast::log1p(x); }
  static V erf(const V& x) { return fast::erf(x); }
  // SLEEF's erfc (1.5 ulp relative): gelu's cdf through 1 + erf loses all relative accuracy for
  // x << 0, where it is tiny, and derivative chains through it (e.g. a division by gelu) amplify that.
  static V erfc(const V& x) { return x.erfc(); }
};
#endif

}  // namespace autobert::program
