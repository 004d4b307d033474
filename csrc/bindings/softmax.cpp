// CPU implementations of the ops autobert_kernels::fused_softmax / fused_softmax_backward (module.cpp).
#include <torch/extension.h>
#include <torch/library.h>

#include "softmax/fused_softmax.h"

namespace autobert::bindings {
namespace {

constexpr const char* kOp = "autobert.fused_softmax";
using Ints = std::vector<int64_t>;
using Floats = std::vector<double>;

program::Program decode_program(const char* what, const Ints& ints, const Floats& floats, int64_t n_in,
                                int64_t n_out) {
  program::Program p;
  std::string err = program::decode(ints, floats, &p);
  if (err.empty()) err = program::expect_arity(p, n_in, n_out);
  TORCH_CHECK_VALUE(err.empty(), kOp, ": malformed ", what, " program: ", err);
  return p;
}

// Validates inputs (all (..., R, C), one dtype, cpu) and mask ((B, C) bool, B = inputs[0].size(0)).
// Returns the compute dtype; fills contiguous copies and the row geometry.
at::ScalarType prepare(const std::vector<at::Tensor>& inputs, const c10::optional<at::Tensor>& mask,
                       std::vector<at::Tensor>* in, at::Tensor* mask_c, softmax::Geometry* g) {
  TORCH_CHECK_VALUE(!inputs.empty(), kOp, ": expected at least one input tensor, got none");
  const at::Tensor& first = inputs[0];
  TORCH_CHECK(first.dim() >= 2, kOp, ": inputs must have shape (..., R, C), got rank ", first.dim());
  const auto dtype = first.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kBFloat16 || dtype == at::kHalf, kOp,
              ": expected floating inputs (float32, float64, bfloat16, float16), got ", dtype);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const at::Tensor& t = inputs[i];
    TORCH_CHECK(t.device().is_cpu(), kOp, ": inputs[", i, "] is on ", t.device(), ", expected cpu");
    TORCH_CHECK(t.sizes() == first.sizes(), kOp, ": inputs[", i, "] has shape ", t.sizes(),
                ", expected the shape of inputs[0] ", first.sizes());
    TORCH_CHECK(t.scalar_type() == dtype, kOp, ": inputs[", i, "] has dtype ", t.scalar_type(), ", expected ", dtype);
  }
  const auto compute = (dtype == at::kDouble) ? at::kDouble : at::kFloat;
  for (const auto& t : inputs) in->push_back(t.to(compute).contiguous());
  g->cols = first.size(-1);
  g->rows = g->cols ? first.numel() / g->cols : 0;
  g->rows_per_mask = 1;
  if (mask.has_value()) {
    const at::Tensor& m = *mask;
    TORCH_CHECK(first.dim() >= 3, kOp, ": key_padding_mask needs inputs of rank >= 3 (B, ..., R, C), got rank ",
                first.dim());
    TORCH_CHECK(m.scalar_type() == at::kBool, kOp, ": key_padding_mask must be bool, got ", m.scalar_type());
    TORCH_CHECK(m.device().is_cpu(), kOp, ": key_padding_mask is on ", m.device(), ", expected cpu");
    TORCH_CHECK(m.dim() == 2 && m.size(0) == first.size(0) && m.size(1) == g->cols, kOp,
                ": key_padding_mask must have shape (B, C) = (", first.size(0), ", ", g->cols, "), got ", m.sizes());
    *mask_c = m.contiguous();
    g->rows_per_mask = first.size(0) ? g->rows / first.size(0) : 1;
  }
  return compute;
}

const uint8_t* mask_ptr(const at::Tensor& m) {
  return m.defined() ? reinterpret_cast<const uint8_t*>(m.data_ptr<bool>()) : nullptr;
}

// inputs: n tensors (..., R, C); returns POST(masked softmax over C of PRE(inputs)), same shape/dtype.
at::Tensor fused_softmax(const std::vector<at::Tensor>& inputs, const c10::optional<at::Tensor>& mask,
                         const Ints& pre_i, const Floats& pre_f, const Ints& post_i, const Floats& post_f) {
  const auto pre = decode_program("pre", pre_i, pre_f, static_cast<int64_t>(inputs.size()), 1);
  const auto post = decode_program("post", post_i, post_f, 1, 1);
  std::vector<at::Tensor> in;
  at::Tensor m;
  softmax::Geometry g;
  const auto compute = prepare(inputs, mask, &in, &m, &g);
  at::Tensor out = at::empty(inputs[0].sizes(), in[0].options());
  if (out.numel() == 0) return out.to(inputs[0].scalar_type());
  AT_DISPATCH_FLOATING_TYPES(compute, "autobert_fused_softmax", [&] {
    std::vector<const scalar_t*> ip;
    for (const auto& t : in) ip.push_back(t.data_ptr<scalar_t>());
    softmax::forward<scalar_t>(pre, post, ip, mask_ptr(m), g, out.data_ptr<scalar_t>());
  });
  return out.to(inputs[0].scalar_type());
}

// grad: (..., R, C) gradient of the output; returns one gradient per input.
std::vector<at::Tensor> fused_softmax_backward(const std::vector<at::Tensor>& inputs, const c10::optional<at::Tensor>& mask,
                                               const at::Tensor& grad, const Ints& pre_i, const Floats& pre_f,
                                               const Ints& post_bwd_i, const Floats& post_bwd_f, const Ints& pre_bwd_i,
                                               const Floats& pre_bwd_f) {
  const int64_t n = static_cast<int64_t>(inputs.size());
  const auto pre = decode_program("pre", pre_i, pre_f, n, 1);
  const auto post_bwd = decode_program("post_bwd", post_bwd_i, post_bwd_f, 2, 1);
  const auto pre_bwd = decode_program("pre_bwd", pre_bwd_i, pre_bwd_f, n + 1, n);
  std::vector<at::Tensor> in;
  at::Tensor m;
  softmax::Geometry g;
  const auto compute = prepare(inputs, mask, &in, &m, &g);
  TORCH_CHECK(grad.sizes() == inputs[0].sizes(), kOp, ": grad has shape ", grad.sizes(), ", expected ",
              inputs[0].sizes());
  TORCH_CHECK(grad.device().is_cpu(), kOp, ": grad is on ", grad.device(), ", expected cpu");
  const at::Tensor gc = grad.to(compute).contiguous();
  std::vector<at::Tensor> grads;
  for (int64_t i = 0; i < n; ++i) grads.push_back(at::empty(inputs[0].sizes(), in[0].options()));
  if (gc.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES(compute, "autobert_fused_softmax_backward", [&] {
      std::vector<const scalar_t*> ip;
      std::vector<scalar_t*> gp;
      for (const auto& t : in) ip.push_back(t.data_ptr<scalar_t>());
      for (auto& t : grads) gp.push_back(t.data_ptr<scalar_t>());
      softmax::backward<scalar_t>(pre, post_bwd, pre_bwd, ip, mask_ptr(m), gc.data_ptr<scalar_t>(), g, gp);
    });
  }
  for (auto& t : grads) t = t.to(inputs[0].scalar_type());
  return grads;
}

}  // namespace
}  // namespace autobert::bindings

TORCH_LIBRARY_IMPL(autobert_kernels, CPU, m) {
  m.impl("fused_softmax", &autobert::bindings::fused_softmax);
  m.impl("fused_softmax_backward", &autobert::bindings::fused_softmax_backward);
}
