// Streaming (flash-style) attention with an op-program score function: no (N, N) buffer in memory.
//   s_ij = q_i . k_j,  t = f(s),  softmax: out_i = sum_j softmax_j(t_ij) v_j   (masked keys excluded)
//                                 none:    out_i = sum_j t_ij v_j              (over unmasked keys)
// Torch-free interface on row-major buffers (the forward takes strides); the binding handles tensors.
#pragma once
#include <cstdint>

#include "program/program.h"

namespace autobert::attention {

enum class Norm : int { kSoftmax = 0, kNone = 1 };

// q: (B, H, Nq, d), k: (B, H, Nk, d), v: (B, H, Nk, dv); mask (nullable): (B, Nk) bytes, 1 = real key.
struct Shape {
  int64_t B = 0, H = 0, Nq = 0, Nk = 0, d = 0, dv = 0;
};

// Element strides of a (B, H, N, d) input whose rows (the last axis) are contiguous.
struct Strides {
  int64_t b = 0, h = 0, n = 0;
  int64_t at(int64_t bi, int64_t hi) const { return bi * b + hi * h; }
};

// q, k, v strides: the forward reads them in place (views such as a Hugging Face projection's
// (B, N, H, d) output transposed to (B, H, N, d) need no copy).
struct Layout {
  Strides q, k, v;
};

// score: 1 input (s) -> 1 output (t). out: (B, H, Nq, dv) contiguous; lse: (B, H, Nq) row logsumexp of
// t over the unmasked keys (+inf for a row without any; 0 for Norm::kNone), saved for the backward.
template <typename T>
void forward(const program::Program& score, Norm norm, const T* q, const T* k, const T* v, const uint8_t* mask,
             const Shape& s, const Layout& lay, T* out, T* lse);

// score_bwd: 2 inputs (s, g) -> 1 output g * f'(s). dout: (B, H, Nq, dv). Writes dq, dk, dv
// (shapes of q, k, v); recomputes the scores block by block.
template <typename T>
void backward(const program::Program& score, const program::Program& score_bwd, Norm norm, const T* q, const T* k,
              const T* v, const uint8_t* mask, const T* out, const T* lse, const T* dout, const Shape& s, T* dq,
              T* dk, T* dv);

}  // namespace autobert::attention
