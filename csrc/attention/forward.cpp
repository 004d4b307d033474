// Streaming attention forward (see streaming_attention.h): per (b, h, block of query rows), keys
// are visited in blocks; S = Q K^T by the register-tiled GEMM, t = f(S) by the op-program
// interpreter (or folded into the exponent for a linear score), online softmax, O += P V.
#include "program/interpreter.h"  // first: selects the vector ISA before any ATen header

#include <cmath>
#include <limits>

#include "attention/gemm.h"
#include "attention/tiles.h"

namespace autobert::attention {
namespace {

constexpr int64_t kBQ = 64;           // query rows per task: amortises the K/V block loads
constexpr int64_t kBK = 128;          // keys per block: S/P tile = 64 x 128 floats = 32 KiB
constexpr int64_t kEvalChunk = 512;  // elements per interpreter call: its registers stay in L1

// One row of the online softmax for a key block: x = scale * src (masked keys -> -inf), then
// m' = max(m, max x), p = exp(x - m') written over src, l = l * exp(m - m') + sum p, and the
// output row is rescaled by exp(m - m'). Returns nothing; updates m, l, o in place.
// x is rounded and stored once, and both the max and the exponent read that stored value: were
// scale * src recomputed in the exponent, the compiler may contract it with "- m'" into an FMA
// whose unrounded product exceeds the rounded max by up to half an ulp of x; with |x| ~ 1e22
// that is ~1e14 and exp overflows to inf (the backward rounds the same way, see backward.cpp).
template <typename T>
inline void online_softmax_row(T* src, T scale, const T* keep, int64_t n, T& m, T& l, T* o, int64_t dv_pad) {
  using V = Vectorized<T>;
  constexpr int64_t W = V::size();
  const T ninf = -std::numeric_limits<T>::infinity();
  const V vs(scale), vninf(ninf);
  V vmax(ninf);
  for (int64_t j = 0; j < n; j += W) {
    V x = V::loadu(src + j) * vs;
    if (keep) x = V::blendv(vninf, x, V::loadu(keep + j));
    x.store(src + j);
    vmax = at::vec::maximum(vmax, x);
  }
  const T m_new = std::max(m, hmax(vmax));
  if (m_new == ninf) {  // every key so far is masked: nothing to accumulate yet
    std::fill(src, src + n, T(0));
    return;
  }
  const V vm(m_new);
  V vsum(T(0));
  for (int64_t j = 0; j < n; j += W) {
    const V p = program::Math<T>::exp(V::loadu(src + j) - vm);
    p.store(src + j);
    vsum = vsum + p;
  }
  const T alpha = std::exp(m - m_new);  // 0 on the first valid block (m = -inf)
  l = l * alpha + hsum(vsum);
  m = m_new;
  if (alpha != T(1)) {
    const V va(alpha);
    for (int64_t c = 0; c < dv_pad; c += W) (V::loadu(o + c) * va).store(o + c);
  }
}

// Masked keys contribute t = 0 when there is no normalisation.
template <typename T>
inline void mask_row(T* src, const T* keep, int64_t n) {
  using V = Vectorized<T>;
  for (int64_t j = 0; j < n; j += V::size()) {
    V::blendv(V(T(0)), V::loadu(src + j), V::loadu(keep + j)).store(src + j);
  }
}

}  // namespace

template <typename T>
void forward(const program::Program& score, Norm norm, const T* q, const T* k, const T* v, const uint8_t* mask,
             const Shape& s, const Layout& lay, T* out, T* lse) {
  using V = Vectorized<T>;
  constexpr int64_t W = V::size();
  const int64_t BH = s.B * s.H, nk_pad = round_up(s.Nk, W), dv_pad = round_up(s.dv, W);
  const bool softmax = norm == Norm::kSoftmax;
  double lin_scale = 1.0;
  const bool linear = linear_in(score, 0, &lin_scale);
  const program::Plan plan(score);
  const KeyMask<T> km(mask, s.B, s.Nk, nk_pad, kBK);
  // V is read in place unless its rows need padding to whole vectors (dv % W) or the last key
  // block reads past the last key (Nk % W): padded keys must read zeros, never past the tensor.
  const bool pad_v = (s.dv % W) != 0 || (s.Nk % W) != 0;
  const int64_t ldv = pad_v ? dv_pad : lay.v.n;
  const int64_t n_qb = ceil_div(s.Nq, kBQ);
  // One parallel region: each thread packs K^T (and V if needed) of the (b, h) slices it visits
  // itself; with consecutive tasks per thread that is about once per slice. (Separate packing
  // regions each wait for the slowest thread, which costs most on a busy machine.)
  at::parallel_for(0, BH * n_qb, 1, [&](int64_t w0, int64_t w1) {
    std::vector<T> sbuf(kBQ * kBK), tbuf(linear ? 0 : kBQ * kBK), o(kBQ * dv_pad), m(kBQ), l(kBQ);
    std::vector<T> kt(s.d * nk_pad), vp(pad_v ? nk_pad * dv_pad : 0);
    int64_t packed_bh = -1;
    program::Evaluator<T> ev(score, plan, linear ? 1 : kEvalChunk);
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t bh = w / n_qb, b = bh / s.H, h = bh % s.H, i0 = (w % n_qb) * kBQ;
      const int64_t rows = std::min(kBQ, s.Nq - i0);
      if (bh != packed_bh) {
        pack_transposed_blocked(k + lay.k.at(b, h), s.Nk, s.d, lay.k.n, kt.data(), nk_pad, kBK);
        if (pad_v) pack_rows(v + lay.v.at(b, h), s.Nk, s.dv, vp.data(), nk_pad, dv_pad, lay.v.n);
        packed_bh = bh;
      }
      const T* vb = pad_v ? vp.data() : v + lay.v.at(b, h);
      const T* qi = q + lay.q.at(b, h) + i0 * lay.q.n;
      std::fill(o.begin(), o.end(), T(0));
      std::fill(m.begin(), m.end(), -std::numeric_limits<T>::infinity());
      std::fill(l.begin(), l.end(), T(0));
      for (int64_t kb = 0; kb < km.n_blocks; ++kb) {
        const auto kind = km.at(b, kb);
        if (kind == KeyMask<T>::kEmpty) continue;
        const int64_t j0 = kb * kBK, bk = std::min(kBK, nk_pad - j0);
        const T* keep = kind == KeyMask<T>::kPartial ? km.row(b, kb) : nullptr;
        T* st = sbuf.data();  // (rows, bk)
        gemm<T, false>(rows, bk, s.d, qi, lay.q.n, 1, kt.data() + j0 * s.d, bk, st, bk);
        T scale = static_cast<T>(lin_scale);
        if (!linear) {
          for (int64_t e = 0; e < rows * bk; e += kEvalChunk) {
            const T* in = st + e;
            T* res = tbuf.data() + e;
            ev.run(&in, &res, std::min(kEvalChunk, rows * bk - e));
          }
          st = tbuf.data();
          scale = T(1);
        }
        if (softmax) {
          for (int64_t r = 0; r < rows; ++r) {
            online_softmax_row(st + r * bk, scale, keep, bk, m[r], l[r], o.data() + r * dv_pad, dv_pad);
          }
        } else if (keep) {
          for (int64_t r = 0; r < rows; ++r) mask_row(st + r * bk, keep, bk);
        }
        gemm<T, true>(rows, dv_pad, bk, st, bk, 1, vb + j0 * ldv, ldv, o.data(), dv_pad);
      }
      // Finalise: softmax rows divide by their normaliser; rows without a valid key output 0.
      for (int64_t r = 0; r < rows; ++r) {
        T* dst = out + (bh * s.Nq + i0 + r) * s.dv;
        const T* src = o.data() + r * dv_pad;
        T f = T(1);
        if (softmax) {
          const bool any = l[r] > T(0);
          f = any ? T(1) / l[r] : T(0);
          lse[bh * s.Nq + i0 + r] = any ? m[r] + std::log(l[r]) : std::numeric_limits<T>::infinity();
        } else {
          f = linear ? static_cast<T>(lin_scale) : T(1);  // a linear score's scale is applied once here
          lse[bh * s.Nq + i0 + r] = T(0);
        }
        for (int64_t c = 0; c < s.dv; ++c) dst[c] = src[c] * f;
      }
    }
  });
}

template void forward<float>(const program::Program&, Norm, const float*, const float*, const float*, const uint8_t*,
                             const Shape&, const Layout&, float*, float*);
template void forward<double>(const program::Program&, Norm, const double*, const double*, const double*,
                              const uint8_t*, const Shape&, const Layout&, double*, double*);

}  // namespace autobert::attention
