// CPU implementation of the op autobert_kernels::elementwise(inputs, ints, floats) (module.cpp).
#include <torch/extension.h>
#include <torch/library.h>

#include "elementwise/elementwise.h"

namespace autobert::bindings {
namespace {

constexpr const char* kOp = "autobert.elementwise";

program::Program decode_program(const char* what, const std::vector<int64_t>& ints, const std::vector<double>& floats) {
  program::Program p;
  const std::string err = program::decode(ints, floats, &p);
  TORCH_CHECK_VALUE(err.empty(), kOp, ": malformed ", what, " program: ", err);
  return p;
}

// inputs: n tensors of one shape and dtype (float32/float64; bfloat16/float16 computed in float32).
// Returns the program's m outputs, each of that shape and dtype.
std::vector<at::Tensor> elementwise(const std::vector<at::Tensor>& inputs, const std::vector<int64_t>& ints,
                                    const std::vector<double>& floats) {
  const program::Program prog = decode_program("forward", ints, floats);
  TORCH_CHECK_VALUE(!inputs.empty(), kOp, ": expected at least one input tensor, got none");
  TORCH_CHECK_VALUE(static_cast<int64_t>(inputs.size()) == prog.n_inputs, kOp, ": the program takes ", prog.n_inputs,
                    " inputs but ", inputs.size(), " tensors were given");
  TORCH_CHECK_VALUE(!prog.outputs.empty(), kOp, ": the program has no outputs");
  const at::Tensor& first = inputs[0];
  for (size_t i = 0; i < inputs.size(); ++i) {
    const at::Tensor& t = inputs[i];
    TORCH_CHECK(t.device().is_cpu(), kOp, ": inputs[", i, "] is on ", t.device(), ", expected cpu");
    TORCH_CHECK(t.sizes() == first.sizes(), kOp, ": inputs[", i, "] has shape ", t.sizes(),
                ", expected the shape of inputs[0] ", first.sizes());
    TORCH_CHECK(t.scalar_type() == first.scalar_type(), kOp, ": inputs[", i, "] has dtype ", t.scalar_type(),
                ", expected the dtype of inputs[0] ", first.scalar_type());
  }
  const auto dtype = first.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kBFloat16 || dtype == at::kHalf, kOp,
              ": expected floating inputs (float32, float64, bfloat16, float16), got ", dtype);
  // Reduced precision is computed in float32: one conversion pass is cheap next to the program.
  const auto compute = (dtype == at::kDouble) ? at::kDouble : at::kFloat;
  std::vector<at::Tensor> in;
  for (const auto& t : inputs) in.push_back(t.to(compute).contiguous());
  std::vector<at::Tensor> out;
  for (size_t j = 0; j < prog.outputs.size(); ++j) out.push_back(at::empty(first.sizes(), in[0].options()));
  const int64_t numel = first.numel();
  AT_DISPATCH_FLOATING_TYPES(compute, "autobert_elementwise", [&] {
    std::vector<const scalar_t*> ip;
    std::vector<scalar_t*> op;
    for (const auto& t : in) ip.push_back(t.data_ptr<scalar_t>());
    for (auto& t : out) op.push_back(t.data_ptr<scalar_t>());
    elementwise::forward<scalar_t>(prog, ip, op, numel);
  });
  if (compute != dtype) {
    for (auto& t : out) t = t.to(dtype);
  }
  return out;
}

}  // namespace
}  // namespace autobert::bindings

TORCH_LIBRARY_IMPL(autobert_kernels, CPU, m) { m.impl("elementwise", &autobert::bindings::elementwise); }
