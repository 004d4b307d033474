// Argument checks of fused_masked_adamw_ shared by the CPU binding (adamw.cpp) and the CUDA one
// (cuda.cpp): every message names the list, the index and what is wrong. What differs between the
// two (the device rule and the supported dtypes of params) comes in as check_param.
#pragma once
#include <torch/extension.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

namespace autobert::bindings::adamw_args {

using TensorList = std::vector<at::Tensor>;
using MaskList = std::vector<std::optional<at::Tensor>>;
constexpr const char* kOp = "fused_masked_adamw_";

inline bool has_mask(const MaskList& masks, size_t i) { return masks[i].has_value() && masks[i]->defined(); }

// Checks that `t` (list `name`, index i) can be read/written alongside params[i].
inline void check_companion(const at::Tensor& t, const at::Tensor& p, const char* name, size_t i, bool is_mask) {
  TORCH_CHECK(t.defined(), kOp, ": ", name, "[", i, "] is an undefined tensor");
  TORCH_CHECK(t.device() == p.device(), kOp, ": ", name, "[", i, "] is on ", t.device(), " but params[", i,
              "] is on ", p.device());
  if (is_mask) {
    TORCH_CHECK(t.scalar_type() == at::kBool, kOp, ": masks[", i, "] has dtype ", t.scalar_type(),
                "; masks must be bool (True = entry used by the active child) or None");
  } else {
    TORCH_CHECK(t.scalar_type() == p.scalar_type(), kOp, ": ", name, "[", i, "] has dtype ", t.scalar_type(),
                " but params[", i, "] has dtype ", p.scalar_type(), "; the four tensors of an entry must share one dtype");
  }
  TORCH_CHECK(t.sizes() == p.sizes(), kOp, ": ", name, "[", i, "] has shape ", t.sizes(), " but params[", i,
              "] has shape ", p.sizes());
  TORCH_CHECK(t.is_contiguous(), kOp, ": ", name, "[", i, "] is not contiguous");
}

// Hyper: any struct with lr, beta1, beta2, eps, weight_decay (adamw::Hyper, cuda::AdamWHyper).
template <typename Hyper>
void check_hyper(const Hyper& h) {
  TORCH_CHECK(h.lr >= 0.0, kOp, ": lr must be >= 0, got ", h.lr);
  TORCH_CHECK(h.beta1 >= 0.0 && h.beta1 < 1.0, kOp, ": beta1 must be in [0, 1), got ", h.beta1);
  TORCH_CHECK(h.beta2 >= 0.0 && h.beta2 < 1.0, kOp, ": beta2 must be in [0, 1), got ", h.beta2);
  TORCH_CHECK(h.eps >= 0.0, kOp, ": eps must be >= 0, got ", h.eps);
  TORCH_CHECK(h.weight_decay >= 0.0, kOp, ": weight_decay must be >= 0, got ", h.weight_decay);
}

// Two list entries writing the same buffer would race between threads; refuse them.
inline void check_no_shared_outputs(const TensorList& params, const TensorList& exp_avgs,
                                    const TensorList& exp_avg_sqs) {
  std::vector<std::pair<const void*, std::pair<const char*, size_t>>> seen;
  const std::pair<const char*, const TensorList*> lists[] = {
      {"params", &params}, {"exp_avgs", &exp_avgs}, {"exp_avg_sqs", &exp_avg_sqs}};
  for (const auto& [name, list] : lists) {
    for (size_t i = 0; i < list->size(); ++i) {
      if ((*list)[i].numel() > 0) seen.push_back({(*list)[i].data_ptr(), {name, i}});
    }
  }
  std::sort(seen.begin(), seen.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t k = 1; k < seen.size(); ++k) {
    TORCH_CHECK(seen[k].first != seen[k - 1].first, kOp, ": ", seen[k - 1].second.first, "[",
                seen[k - 1].second.second, "] and ", seen[k].second.first, "[", seen[k].second.second,
                "] are the same memory; each updated tensor must be distinct");
  }
}

// check_param(params[i], i): the binding's device and dtype rule for params[i].
template <typename CheckParam>
void check_lists(const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                 const TensorList& exp_avg_sqs, const MaskList& masks, const std::vector<int64_t>& steps,
                 CheckParam check_param) {
  const size_t n = params.size();
  const std::pair<const char*, size_t> sizes[] = {
      {"grads", grads.size()}, {"exp_avgs", exp_avgs.size()}, {"exp_avg_sqs", exp_avg_sqs.size()},
      {"masks", masks.size()}};
  for (const auto& [name, size] : sizes) {
    TORCH_CHECK(size == n, kOp, ": ", name, " has ", size, " tensors but params has ", n);
  }
  TORCH_CHECK(steps.size() == 1 || steps.size() == n, kOp, ": steps has ", steps.size(),
              " entries; expected 1 (shared) or one per param (", n, ")");
  for (size_t i = 0; i < steps.size(); ++i) {
    TORCH_CHECK(steps[i] >= 1, kOp, ": steps[", i, "] is ", steps[i],
                "; the step count after incrementing must be >= 1");
  }
  for (size_t i = 0; i < n; ++i) {
    check_param(params[i], i);
    check_companion(grads[i], params[i], "grads", i, false);
    check_companion(exp_avgs[i], params[i], "exp_avgs", i, false);
    check_companion(exp_avg_sqs[i], params[i], "exp_avg_sqs", i, false);
    if (has_mask(masks, i)) check_companion(*masks[i], params[i], "masks", i, true);
  }
  check_no_shared_outputs(params, exp_avgs, exp_avg_sqs);
}

// The kernels write through raw pointers: tell autograd these tensors changed in place.
inline void bump_versions(const TensorList& params, const TensorList& exp_avgs, const TensorList& exp_avg_sqs) {
  for (const TensorList* list : {&params, &exp_avgs, &exp_avg_sqs}) {
    for (const auto& t : *list) t.unsafeGetTensorImpl()->bump_version();
  }
}

}  // namespace autobert::bindings::adamw_args
