// Host launcher of the elementwise op-program kernel (torch-free; the binding validates tensors).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/common.cuh"
#include "cuda/program_interp.cuh"

namespace autobert::cuda {

// Evaluates `program` (n inputs -> m outputs) on `numel` elements of contiguous buffers:
// outputs[j][i] = program(inputs[0][i], ..., inputs[n-1][i])[j], computed in float32, stored in
// `dtype` (every buffer has it). inputs / outputs are host arrays of n / m device pointers.
// Asynchronous on `stream`; returns "" or an error message (bad program, unsupported dtype,
// launch failure).
std::string elementwise_program_cuda(const ProgramRef& program, const void* const* inputs, int n_inputs,
                                     void* const* outputs, int n_outputs, int64_t numel, DType dtype,
                                     cudaStream_t stream);

}  // namespace autobert::cuda
