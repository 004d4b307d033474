// Fused masked AdamW step on raw CPU buffers (torch-free interface; the binding validates tensors).
//
// One call updates every tensor of a list. For each entry whose mask byte is true (or every entry
// of a tensor whose mask is null) it applies exactly torch.optim.AdamW's update; entries whose mask
// byte is false are never stored to, so the parameter and both moments keep their bits.
#pragma once
#include <cstdint>

namespace autobert::adamw {

enum class Dtype : int8_t { kFloat32, kFloat64, kBFloat16 };

// One tensor of the list: four contiguous buffers of `numel` elements of `dtype`, plus its mask.
struct Slot {
  void* param;
  const void* grad;
  void* exp_avg;
  void* exp_avg_sq;
  const bool* mask;  // numel bytes, true = active; nullptr = every entry active
  int64_t numel;
  int64_t step;      // this tensor's 1-based step count (after increment) for the bias corrections
  Dtype dtype;
};

// Hyper-parameters shared by all slots of a call (one torch.optim param group).
struct Hyper {
  double lr;
  double beta1;
  double beta2;
  double eps;
  double weight_decay;
};

// Updates all slots in place. Work is split over the concatenation of all slots, so threads get
// equal element counts however unequal the tensors are. Thread-safe for disjoint slot buffers.
void masked_adamw_cpu(const Slot* slots, int64_t num_slots, const Hyper& hyper);

}  // namespace autobert::adamw
