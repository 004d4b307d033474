// Fused row softmax: out = POST(softmax_C(PRE(x_1..x_n))) over rows of C elements, with an optional
// key mask, and its backward. Torch-free interface (raw pointers); the binding handles tensors.
#pragma once
#include <cstdint>
#include <vector>

#include "program/program.h"

namespace autobert::softmax {

// Row geometry of inputs shaped (..., R, C): `rows` rows of `cols` contiguous elements. Row r uses
// mask row r / rows_per_mask (the mask is (B, C), broadcast over every dim between B and C).
struct Geometry {
  int64_t rows = 0, cols = 0, rows_per_mask = 1;
};

// in: pre.n_inputs row-major inputs; mask: nullable (rows / rows_per_mask, cols) bytes, 0 = padded
// (seen as -inf; a row with no valid entry has softmax 0); out: rows x cols.
template <typename T>
void forward(const program::Program& pre, const program::Program& post, const std::vector<const T*>& in,
             const uint8_t* mask, const Geometry& g, T* out);

// Recomputes y = softmax(PRE(x)), then gy = POST_BWD(y, grad), gx = y * (gy - sum(gy * y)) and
// grads_in = PRE_BWD(x_1..x_n, gx) (n outputs, each rows x cols).
template <typename T>
void backward(const program::Program& pre, const program::Program& post_bwd, const program::Program& pre_bwd,
              const std::vector<const T*>& in, const uint8_t* mask, const T* grad, const Geometry& g,
              const std::vector<T*>& grads_in);

}  // namespace autobert::softmax
