// Host launchers of the fused row-softmax kernels (torch-free; the binding validates tensors).
//
// Forward, per row of length N: x = PRE(x_1..x_n); y = softmax(x) with padded keys (mask 0) at
// -inf and y = 0 on a row without real keys; out = POST(y).
// Backward: dy = POST_BWD(y, g); dx = y * (dy - sum(y * dy)) (0 at padded keys);
// (dx_1..dx_n) = PRE_BWD(x_1..x_n, dx).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/common.cuh"
#include "cuda/program_interp.cuh"

namespace autobert::cuda {

// Rows and the optional key mask shared by both directions. Every (rows, N) buffer is
// contiguous; row r belongs to batch r / rows_per_batch (inputs (B, ..., N) flattened).
struct RowLayout {
  int64_t rows;
  int64_t n;
  int64_t rows_per_batch;
  const uint8_t* key_mask;  // (B, N) bytes, nonzero = real token; nullptr = no mask
  int64_t mask_stride_b;
  int64_t mask_stride_n;
  DType dtype;  // of every buffer
};

struct RowSoftmaxFwdArgs {
  const void* inputs[kMaxIO];  // n_inputs (rows, N) buffers
  int n_inputs;
  void* out;  // (rows, N): POST(y)
  void* y;    // (rows, N): softmax saved for backward, or nullptr (not stored)
};

struct RowSoftmaxBwdArgs {
  const void* inputs[kMaxIO];  // the forward inputs
  int n_inputs;
  const void* y;         // saved softmax (the forward's `out` when POST is the identity)
  const void* grad_out;  // gradient of out
  void* grad_inputs[kMaxIO];
};

// pre: n_inputs -> 1 or nullptr (identity, n_inputs == 1); post: 1 -> 1 or nullptr.
// Returns "" or an error message. Asynchronous on `stream`.
std::string row_softmax_fwd_cuda(const ProgramRef* pre, const ProgramRef* post, const RowSoftmaxFwdArgs& args,
                                 const RowLayout& layout, cudaStream_t stream);

// pre_bwd: (x_1..x_n, g) -> n, or nullptr when PRE is the identity; post_bwd: (y, g) -> 1, or
// nullptr when POST is the identity.
std::string row_softmax_bwd_cuda(const ProgramRef* pre_bwd, const ProgramRef* post_bwd,
                                 const RowSoftmaxBwdArgs& args, const RowLayout& layout, cudaStream_t stream);

}  // namespace autobert::cuda
