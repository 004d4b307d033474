// Streaming attention backward (see streaming_attention.h). Tasks are (b, h, key block): each
// owns its dK/dV rows outright and visits every query block, recomputing S = Q K^T, t = f(S) and
// P, then dV += P^T dO, dP = dO V^T, dT = P (dP - D) (softmax) or dP (none), dS = f_bwd(S, dT),
// dK += dS^T Q and dQ += dS K. dQ rows are shared between key blocks, so each task chunk adds into
// a private buffer and the buffers are summed afterwards in a fixed order (race-free, deterministic).
#include "program/interpreter.h"  // first: selects the vector ISA before any ATen header

#include <cmath>
#include <limits>
#include <mutex>

#include "attention/gemm.h"
#include "program/transform.h"
#include "attention/tiles.h"

namespace autobert::attention {
namespace {

constexpr int64_t kBQ = 64;   // query rows per step (the K dimension of the dK/dV GEMMs)
constexpr int64_t kBK = 128;  // keys per task
constexpr int64_t kEvalChunk = 1024;  // elements per interpreter call: registers stay in L1

// Runs a program over n-element tiles in L1-sized chunks: out[j][e] = prog(in[0][e], ...).
template <typename T>
void eval_tile(program::Evaluator<T>& ev, const std::vector<const T*>& in, const std::vector<T*>& out, int64_t n) {
  std::vector<const T*> ip(in.size());
  std::vector<T*> op(out.size());
  for (int64_t e = 0; e < n; e += kEvalChunk) {
    for (size_t i = 0; i < in.size(); ++i) ip[i] = in[i] + e;
    for (size_t j = 0; j < out.size(); ++j) op[j] = out[j] + e;
    ev.run(ip.data(), op.data(), std::min(kEvalChunk, n - e));
  }
}

// Private dQ accumulator of one task chunk: rows of the (b, h) slices bh_lo..bh_hi.
template <typename T>
struct DqPart {
  int64_t w0, bh_lo, bh_hi;
  std::vector<T> acc;  // (bh_hi - bh_lo + 1, Nq, d_pad)
};

}  // namespace

template <typename T>
void backward(const program::Program& score, const program::Program& score_bwd, Norm norm, const T* q, const T* k,
              const T* v, const uint8_t* mask, const T* out, const T* lse, const T* dout, const Shape& s, T* dq,
              T* dk, T* dv) {
  using V = Vectorized<T>;
  constexpr int64_t W = V::size();
  const int64_t BH = s.B * s.H, nk_pad = round_up(s.Nk, W), d_pad = round_up(s.d, W), dv_pad = round_up(s.dv, W);
  const bool softmax = norm == Norm::kSoftmax;
  double f_scale = 1.0, b_scale = 1.0;
  const bool lin_f = linear_in(score, 0, &f_scale);      // t = f_scale * s
  const bool lin_b = linear_in(score_bwd, 1, &b_scale);  // ds = b_scale * dt: applied once to dK and dQ
  // A non-linear derivative is split: its s-only part joins f in one program evaluated right after
  // S (sharing f's intermediates), and only the part that reads g runs once dT is known.
  const bool split = !lin_b;
  const program::BackwardSplit sp = split ? program::split_backward(score, score_bwd) : program::BackwardSplit{};
  const program::Program& first = split ? sp.merged : score;   // s -> [t, boundary values...]
  const program::Program& second = split ? sp.post : score_bwd;
  const program::Plan plan_first(first), plan_second(second);
  const bool eval_first = split || !lin_f;
  const size_t n_tiles = split ? sp.merged.outputs.size() : 1;  // t and the boundary values
  const KeyMask<T> km(mask, s.B, s.Nk, nk_pad, kBK);
  // Q and dO are read in place when their rows are whole vectors, else padded copies per slice.
  const bool pad_q = (s.d % W) != 0, pad_do = (s.dv % W) != 0;
  const int64_t ldq = pad_q ? d_pad : s.d, ldo = pad_do ? dv_pad : s.dv;
  const int64_t n_kb = km.n_blocks;
  std::mutex parts_mu;
  std::vector<DqPart<T>> parts;
  at::parallel_for(0, BH * n_kb, 1, [&](int64_t w0, int64_t w1) {
    DqPart<T> part{w0, w0 / n_kb, (w1 - 1) / n_kb, {}};
    part.acc.assign((part.bh_hi - part.bh_lo + 1) * s.Nq * d_pad, T(0));
    std::vector<T> sb(kBQ * kBK), pb(kBQ * kBK), dpb(kBQ * kBK), tiles(n_tiles * kBQ * kBK);
    std::vector<T> dk_acc(kBK * d_pad), dv_acc(kBK * dv_pad);
    // Per task: this key block's K^T, K and V^T panels. Per (b, h) slice: padded Q / dO and
    // D_i = dO_i . O_i (the softmax Jacobian's row term). All packed here, inside the one
    // parallel region (see forward.cpp).
    std::vector<T> kt(s.d * kBK), kp(kBK * d_pad), vt(s.dv * kBK), D(s.Nq);
    std::vector<T> qp(pad_q ? s.Nq * d_pad : 0), dop(pad_do ? s.Nq * dv_pad : 0);
    int64_t packed_bh = -1;
    program::Evaluator<T> ev_first(first, plan_first, eval_first ? kEvalChunk : 1);
    program::Evaluator<T> ev_second(second, plan_second, split ? kEvalChunk : 1);
    std::vector<T*> first_out(n_tiles);
    std::vector<const T*> second_in(split ? sp.boundary.size() + 1 : 0);
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t bh = w / n_kb, b = bh / s.H, kb = w % n_kb, j0 = kb * kBK;
      const int64_t bk = std::min(kBK, nk_pad - j0), keys = std::min(bk, s.Nk - j0);
      if (bh != packed_bh) {
        if (pad_q) pack_rows(q + bh * s.Nq * s.d, s.Nq, s.d, qp.data(), s.Nq, d_pad, s.d);
        if (pad_do) pack_rows(dout + bh * s.Nq * s.dv, s.Nq, s.dv, dop.data(), s.Nq, dv_pad, s.dv);
        for (int64_t i = 0; i < s.Nq && softmax; ++i) {
          const T* a = dout + (bh * s.Nq + i) * s.dv;
          const T* o = out + (bh * s.Nq + i) * s.dv;
          // Fused multiply-adds in column order, exactly as the dP GEMM forms dO_i . V_j: where a
          // softmax row is one-hot (saturated), O_i = V_j and dP_ij - D_i cancels to exactly 0,
          // as in eager's softmax backward, instead of leaving an ulp of |dO||V| times |K|.
          T acc = 0;
          for (int64_t c = 0; c < s.dv; ++c) acc = std::fma(a[c], o[c], acc);
          D[i] = acc;
        }
        packed_bh = bh;
      }
      const T* qb = pad_q ? qp.data() : q + bh * s.Nq * s.d;
      const T* dob = pad_do ? dop.data() : dout + bh * s.Nq * s.dv;
      const auto kind = km.at(b, kb);
      std::fill(dk_acc.begin(), dk_acc.end(), T(0));
      std::fill(dv_acc.begin(), dv_acc.end(), T(0));
      const T* keep = kind == KeyMask<T>::kPartial ? km.row(b, kb) : nullptr;
      if (kind != KeyMask<T>::kEmpty) {
        const T* kr = k + bh * s.Nk * s.d;
        pack_panel_transposed(kr, s.Nk, s.d, s.d, j0, bk, kt.data());
        pack_rows(kr + j0 * s.d, keys, s.d, kp.data(), bk, d_pad, s.d);
        pack_panel_transposed(v + bh * s.Nk * s.dv, s.Nk, s.dv, s.dv, j0, bk, vt.data());
      }
      for (int64_t i0 = 0; kind != KeyMask<T>::kEmpty && i0 < s.Nq; i0 += kBQ) {
        const int64_t rows = std::min(kBQ, s.Nq - i0), n = rows * bk, row0 = bh * s.Nq + i0;
        T* S = sb.data();
        gemm<T, false>(rows, bk, s.d, q + row0 * s.d, s.d, 1, kt.data(), bk, S, bk);
        const T* t = S;
        if (eval_first) {
          for (size_t j = 0; j < n_tiles; ++j) first_out[j] = tiles.data() + j * n;
          eval_tile<T>(ev_first, {S}, first_out, n);
          t = tiles.data();
        }
        const T ts = eval_first ? T(1) : static_cast<T>(f_scale);
        // P = softmax probabilities (from the saved logsumexp) or t itself; 0 at masked keys.
        T* P = pb.data();
        if (ts != T(1)) {
          // x = ts * t rounded and stored first, exactly as the forward rounded it before taking
          // the max and the logsumexp: fused into "x - lse" the product would stay unrounded (an
          // FMA), up to half an ulp of x above lse; with |x| ~ 1e22 exp(x - lse) was inf and
          // inf * 0 gave NaN gradients (fuzzing, issue 16).
          const V vs(ts);
          for (int64_t e = 0; e < n; e += W) (V::loadu(t + e) * vs).store(P + e);
          t = P;
        }
        const V zero(T(0));
        for (int64_t r = 0; r < rows; ++r) {
          const T l = softmax ? lse[row0 + r] : T(0);
          const bool dead = softmax && !(l < std::numeric_limits<T>::infinity());
          const V vl(l);
          for (int64_t j = 0; j < bk; j += W) {
            V x = V::loadu(t + r * bk + j);
            // x <= max <= lse, so P <= 1: the clamp only keeps a rounding difference from overflowing.
            if (softmax) x = program::Math<T>::exp(at::vec::minimum(x - vl, zero));
            if (keep) x = V::blendv(V(T(0)), x, V::loadu(keep + j));
            if (dead) x = V(T(0));
            x.store(P + r * bk + j);
          }
        }
        gemm<T, true>(bk, dv_pad, rows, P, 1, bk, dob + i0 * ldo, ldo, dv_acc.data(), dv_pad);
        T* dP = dpb.data();
        gemm<T, false>(rows, bk, s.dv, dout + row0 * s.dv, s.dv, 1, vt.data(), bk, dP, bk);
        // dT (in place over dP): P * (dP - D_i) for softmax; dP at unmasked keys for none.
        for (int64_t r = 0; r < rows; ++r) {
          const V vd(D[i0 + r]);
          for (int64_t j = 0; j < bk; j += W) {
            V g = V::loadu(dP + r * bk + j);
            if (softmax) {
              g = V::loadu(P + r * bk + j) * (g - vd);
            } else if (keep) {
              g = V::blendv(V(T(0)), g, V::loadu(keep + j));
            }
            g.store(dP + r * bk + j);
          }
        }
        const T* dS = dP;
        if (split) {
          for (size_t j = 0; j < sp.boundary.size(); ++j) {
            second_in[j] = sp.merged_out[j] < 0 ? S : tiles.data() + sp.merged_out[j] * n;
          }
          second_in.back() = dP;
          T* ds = tiles.data();  // t is dead once P is formed: dS goes there
          eval_tile<T>(ev_second, second_in, {ds}, n);
          if (keep) {  // f_bwd(s, 0) need not be 0: masked keys get no gradient by definition
            for (int64_t r = 0; r < rows; ++r) {
              for (int64_t j = 0; j < bk; j += W) {
                V::blendv(V(T(0)), V::loadu(ds + r * bk + j), V::loadu(keep + j)).store(ds + r * bk + j);
              }
            }
          }
          dS = ds;
        }
        gemm<T, true>(bk, d_pad, rows, dS, 1, bk, qb + i0 * ldq, ldq, dk_acc.data(), d_pad);
        gemm<T, true>(rows, d_pad, bk, dS, bk, 1, kp.data(), d_pad,
                      part.acc.data() + ((bh - part.bh_lo) * s.Nq + i0) * d_pad, d_pad);
      }
      const T ks = lin_b ? static_cast<T>(b_scale) : T(1);
      for (int64_t j = 0; j < keys; ++j) {
        T* dkr = dk + (bh * s.Nk + j0 + j) * s.d;
        T* dvr = dv + (bh * s.Nk + j0 + j) * s.dv;
        for (int64_t c = 0; c < s.d; ++c) dkr[c] = dk_acc[j * d_pad + c] * ks;
        for (int64_t c = 0; c < s.dv; ++c) dvr[c] = dv_acc[j * dv_pad + c];
      }
    }
    std::lock_guard<std::mutex> lock(parts_mu);
    parts.push_back(std::move(part));
  });

  // dQ = sum of the chunk buffers, in chunk order whatever order the threads finished in.
  std::sort(parts.begin(), parts.end(), [](const DqPart<T>& a, const DqPart<T>& b) { return a.w0 < b.w0; });
  const T qs = lin_b ? static_cast<T>(b_scale) : T(1);
  at::parallel_for(0, BH, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t bh = b0; bh < b1; ++bh) {
      T* dst = dq + bh * s.Nq * s.d;
      std::fill(dst, dst + s.Nq * s.d, T(0));
      for (const auto& p : parts) {
        if (bh < p.bh_lo || bh > p.bh_hi) continue;
        const T* src = p.acc.data() + (bh - p.bh_lo) * s.Nq * d_pad;
        for (int64_t i = 0; i < s.Nq; ++i) {
          for (int64_t c = 0; c < s.d; ++c) dst[i * s.d + c] += src[i * d_pad + c];
        }
      }
      for (int64_t e = 0; e < s.Nq * s.d; ++e) dst[e] *= qs;
    }
  });
}

#define AUTOBERT_INSTANTIATE(T)                                                                                 \
  template void backward<T>(const program::Program&, const program::Program&, Norm, const T*, const T*, const T*, \
                            const uint8_t*, const T*, const T*, const T*, const Shape&, T*, T*, T*);
AUTOBERT_INSTANTIATE(float)
AUTOBERT_INSTANTIATE(double)
#undef AUTOBERT_INSTANTIATE

}  // namespace autobert::attention
