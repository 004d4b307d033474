// Fused masked AdamW over a list of CUDA tensors (torch-free; the binding validates tensors).
//
// For each entry whose mask byte is nonzero (or every entry when the mask is null) it applies
// torch.optim.AdamW's update (decoupled weight decay, bias corrections from the tensor's own
// step; amsgrad/maximize not supported). Entries whose mask byte is zero are never stored to:
// param, exp_avg and exp_avg_sq keep their bits. Mirrors csrc/adamw/masked_adamw.h (CPU).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/common.cuh"

namespace autobert::cuda {

// One tensor of the list: four contiguous device buffers of `numel` elements of `dtype`.
struct AdamWSlot {
  void* param;
  const void* grad;
  void* exp_avg;
  void* exp_avg_sq;
  const bool* mask;  // numel bytes (device), true = active; nullptr = every entry active
  int64_t numel;
  int64_t step;  // this tensor's 1-based step count (after increment) for the bias corrections
  DType dtype;   // float32, float64, bfloat16 or float16 (math in float32; float64 in double)
};

// Hyper-parameters shared by all slots of a call (one torch.optim param group).
struct AdamWHyper {
  double lr;
  double beta1;
  double beta2;
  double eps;
  double weight_decay;
};

// Updates all slots in place, asynchronously on `stream`: multi-tensor-apply style, a few
// launches that each cover up to a fixed number of (tensor, chunk) pairs, so a list of many
// small tensors costs a handful of launches. Returns "" or an error message.
std::string masked_adamw_cuda(const AdamWSlot* slots, int64_t num_slots, const AdamWHyper& hyper,
                              cudaStream_t stream);

}  // namespace autobert::cuda
