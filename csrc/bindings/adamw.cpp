// CPU implementation of the op autobert_kernels::fused_masked_adamw_ (module.cpp): validates the
// tensor lists (every message names the list index and what is wrong), then hands raw buffers to
// the torch-free kernel in csrc/adamw.
#include <torch/extension.h>
#include <torch/library.h>

#include <vector>

#include "adamw/masked_adamw.h"
#include "bindings/adamw_checks.h"

namespace autobert::bindings {
namespace {

using adamw_args::kOp;
using adamw_args::MaskList;
using adamw_args::TensorList;

adamw::Dtype kernel_dtype(const at::Tensor& p, size_t i) {
  switch (p.scalar_type()) {
    case at::kFloat: return adamw::Dtype::kFloat32;
    case at::kDouble: return adamw::Dtype::kFloat64;
    case at::kBFloat16: return adamw::Dtype::kBFloat16;
    default:
      TORCH_CHECK(false, kOp, ": params[", i, "] has dtype ", p.scalar_type(),
                  "; supported dtypes are float32, float64 and bfloat16");
  }
}

void check_param(const at::Tensor& p, size_t i) {
  TORCH_CHECK(p.defined(), kOp, ": params[", i, "] is an undefined tensor");
  TORCH_CHECK(p.device().is_cpu(), kOp, ": params[", i, "] is on ", p.device(),
              "; this build has the CPU kernel only");
  TORCH_CHECK(p.is_contiguous(), kOp, ": params[", i, "] is not contiguous");
  kernel_dtype(p, i);
}

void fused_masked_adamw(const TensorList& params, const TensorList& grads,
                        const TensorList& exp_avgs, const TensorList& exp_avg_sqs,
                        const MaskList& masks, const std::vector<int64_t>& steps, double lr,
                        double beta1, double beta2, double eps, double weight_decay) {
  const adamw::Hyper hyper{lr, beta1, beta2, eps, weight_decay};
  adamw_args::check_hyper(hyper);
  adamw_args::check_lists(params, grads, exp_avgs, exp_avg_sqs, masks, steps, check_param);
  std::vector<adamw::Slot> slots(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const bool has_mask = adamw_args::has_mask(masks, i);
    slots[i] = adamw::Slot{params[i].data_ptr(), grads[i].data_ptr(), exp_avgs[i].data_ptr(),
                           exp_avg_sqs[i].data_ptr(),
                           has_mask ? masks[i]->data_ptr<bool>() : nullptr,
                           params[i].numel(), steps.size() == 1 ? steps[0] : steps[i],
                           kernel_dtype(params[i], i)};
  }
  adamw::masked_adamw_cpu(slots.data(), static_cast<int64_t>(slots.size()), hyper);  // (torch.ops released the GIL)
  adamw_args::bump_versions(params, exp_avgs, exp_avg_sqs);
}

}  // namespace
}  // namespace autobert::bindings

// In place over lists of contiguous CPU tensors (float32/float64/bfloat16). masks[i]: bool tensor of
// params[i]'s shape (True = update) or None (all entries). steps: one step count per tensor, or one
// for all. Inactive entries are never written.
TORCH_LIBRARY_IMPL(autobert_kernels, CPU, m) { m.impl("fused_masked_adamw_", &autobert::bindings::fused_masked_adamw); }
