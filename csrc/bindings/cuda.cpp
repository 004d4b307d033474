// CUDA implementations of the ops autobert_kernels::elementwise, fused_softmax,
// fused_softmax_backward and fused_masked_adamw_ (schemas in module.cpp; the CPU implementations in
// elementwise.cpp, softmax.cpp, adamw.cpp). Each validates its arguments the same way as its CPU
// twin (messages name the argument and what was expected), then hands raw device pointers to the
// torch-free launchers (csrc/cuda) on the current stream of the tensors' device and raises the
// error string they return.
//
// setup.py compiles every *.cpp, CUDA build or not; AUTOBERT_WITH_CUDA is defined only when the
// .cu sources are built too. Without it this file registers nothing.
#include <torch/extension.h>
#include <torch/library.h>

#ifdef AUTOBERT_WITH_CUDA

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <string>
#include <vector>

// The launcher headers carry `#pragma unroll` for nvcc; the host compiler only sees declarations.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#include "cuda/elementwise.cuh"
#include "cuda/masked_adamw.cuh"
#include "cuda/row_softmax.cuh"
#pragma GCC diagnostic pop
#include "bindings/adamw_checks.h"
#include "program/program.h"

namespace autobert::bindings {
namespace {

using Ints = std::vector<int64_t>;
using Floats = std::vector<double>;

// at::cuda::getCurrentCUDAStream is this function re-exported (ATen/cuda/CUDAContext.h, which also
// pulls in cuBLAS/cuSPARSE headers this file does not need).
cudaStream_t current_stream(const at::Device& device) {
  return c10::cuda::getCurrentCUDAStream(device.index()).stream();
}

cuda::ProgramRef program_ref(const Ints& ints, const Floats& floats) {
  return cuda::ProgramRef{ints.data(), static_cast<int64_t>(ints.size()), floats.data(),
                          static_cast<int64_t>(floats.size())};
}

// Same decoding and messages as the CPU bindings (n_in < 0: any arity).
program::Program decode_program(const char* op, const char* what, const Ints& ints, const Floats& floats,
                                int64_t n_in = -1, int64_t n_out = -1) {
  program::Program p;
  std::string err = program::decode(ints, floats, &p);
  if (err.empty() && n_in >= 0) err = program::expect_arity(p, n_in, n_out);
  TORCH_CHECK_VALUE(err.empty(), op, ": malformed ", what, " program: ", err);
  return p;
}

// Storage dtype of the op-program kernels: they compute in float32 and store float32, bfloat16 or
// float16. float64 is refused rather than silently computed in float32 (the CPU kernels compute
// it in double).
cuda::DType program_dtype(const char* op, at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return cuda::DType::kFloat32;
    case at::kBFloat16: return cuda::DType::kBFloat16;
    case at::kHalf: return cuda::DType::kFloat16;
    case at::kDouble:
      TORCH_CHECK(false, op, ": float64 CUDA tensors are not supported (the CUDA kernels compute in float32); "
                  "use float32, bfloat16 or float16, CPU tensors, or AUTOBERT_BACKEND=eager");
    default:
      TORCH_CHECK(false, op, ": expected floating inputs (float32, bfloat16, float16 on CUDA), got ", dtype);
  }
}

// `t` (called `name`) is a defined CUDA tensor on `device` (the device of `ref_name`).
void check_on_device(const char* op, const std::string& name, const at::Tensor& t, const at::Device& device,
                     const char* ref_name) {
  TORCH_CHECK(t.defined(), op, ": ", name, " is an undefined tensor");
  TORCH_CHECK(t.is_cuda(), op, ": ", name, " is on ", t.device(), ", expected a CUDA tensor");
  TORCH_CHECK(t.device() == device, op, ": ", name, " is on ", t.device(), ", expected ", device, " (the device of ",
              ref_name, ")");
}

std::string index_name(const char* list, size_t i) { return std::string(list) + "[" + std::to_string(i) + "]"; }

// Every input on the device of inputs[0] with its shape and dtype (inputs non-empty).
void check_like_first(const char* op, const std::vector<at::Tensor>& inputs) {
  const at::Tensor& first = inputs[0];
  for (size_t i = 0; i < inputs.size(); ++i) {
    const at::Tensor& t = inputs[i];
    check_on_device(op, index_name("inputs", i), t, first.device(), "inputs[0]");
    TORCH_CHECK(t.sizes() == first.sizes(), op, ": inputs[", i, "] has shape ", t.sizes(),
                ", expected the shape of inputs[0] ", first.sizes());
    TORCH_CHECK(t.scalar_type() == first.scalar_type(), op, ": inputs[", i, "] has dtype ", t.scalar_type(),
                ", expected the dtype of inputs[0] ", first.scalar_type());
  }
}

// ---- elementwise -------------------------------------------------------------------------------

constexpr const char* kElementwiseOp = "autobert.elementwise";

// inputs: n CUDA tensors of one shape, dtype and device. Returns the program's m outputs, each of
// that shape and dtype, computed in float32 (as the CPU kernel does for bfloat16/float16).
std::vector<at::Tensor> elementwise_cuda(const std::vector<at::Tensor>& inputs, const Ints& ints,
                                         const Floats& floats) {
  const char* op = kElementwiseOp;
  const program::Program prog = decode_program(op, "forward", ints, floats);
  TORCH_CHECK_VALUE(!inputs.empty(), op, ": expected at least one input tensor, got none");
  TORCH_CHECK_VALUE(static_cast<int64_t>(inputs.size()) == prog.n_inputs, op, ": the program takes ", prog.n_inputs,
                    " inputs but ", inputs.size(), " tensors were given");
  TORCH_CHECK_VALUE(!prog.outputs.empty(), op, ": the program has no outputs");
  const at::Tensor& first = inputs[0];
  TORCH_CHECK(first.defined(), op, ": inputs[0] is an undefined tensor");
  TORCH_CHECK(first.is_cuda(), op, ": inputs[0] is on ", first.device(), ", expected a CUDA tensor");
  check_like_first(op, inputs);
  const cuda::DType dtype = program_dtype(op, first.scalar_type());
  const int n_in = static_cast<int>(inputs.size());
  const int n_out = static_cast<int>(prog.outputs.size());
  TORCH_CHECK(n_in <= cuda::kMaxIO && n_out <= cuda::kMaxIO, op, ": the CUDA kernel takes at most ", cuda::kMaxIO,
              " inputs and ", cuda::kMaxIO, " outputs, the program has ", n_in, " and ", n_out);

  const c10::cuda::CUDAGuard guard(first.device());
  std::vector<at::Tensor> in;
  in.reserve(inputs.size());
  for (const auto& t : inputs) in.push_back(t.contiguous());
  std::vector<at::Tensor> out;
  for (int j = 0; j < n_out; ++j) out.push_back(at::empty(first.sizes(), first.options()));
  std::vector<const void*> ip;
  std::vector<void*> opt;
  for (const auto& t : in) ip.push_back(t.data_ptr());
  for (auto& t : out) opt.push_back(t.data_ptr());
  const std::string err = cuda::elementwise_program_cuda(program_ref(ints, floats), ip.data(), n_in, opt.data(),
                                                         n_out, first.numel(), dtype, current_stream(first.device()));
  TORCH_CHECK(err.empty(), op, ": ", err);
  return out;
}

// ---- fused row softmax -------------------------------------------------------------------------

constexpr const char* kSoftmaxOp = "autobert.fused_softmax";

// Validates inputs (all (..., R, C), one dtype, one CUDA device) and mask ((B, C) bool on that
// device, B = inputs[0].size(0), broadcast over the dims between B and C). Returns the row layout
// (mask read through its own strides; dtype left for the caller).
cuda::RowLayout prepare_softmax(const std::vector<at::Tensor>& inputs, const c10::optional<at::Tensor>& mask) {
  const char* op = kSoftmaxOp;
  TORCH_CHECK_VALUE(!inputs.empty(), op, ": expected at least one input tensor, got none");
  const at::Tensor& first = inputs[0];
  TORCH_CHECK(first.defined(), op, ": inputs[0] is an undefined tensor");
  TORCH_CHECK(first.dim() >= 2, op, ": inputs must have shape (..., R, C), got rank ", first.dim());
  TORCH_CHECK(first.is_cuda(), op, ": inputs[0] is on ", first.device(), ", expected a CUDA tensor");
  program_dtype(op, first.scalar_type());
  check_like_first(op, inputs);
  cuda::RowLayout L{};
  L.n = first.size(-1);
  L.rows = L.n ? first.numel() / L.n : 0;
  L.rows_per_batch = 1;
  L.key_mask = nullptr;
  if (mask.has_value() && mask->defined()) {
    const at::Tensor& m = *mask;
    TORCH_CHECK(first.dim() >= 3, op, ": key_padding_mask needs inputs of rank >= 3 (B, ..., R, C), got rank ",
                first.dim());
    TORCH_CHECK(m.scalar_type() == at::kBool, op, ": key_padding_mask must be bool, got ", m.scalar_type());
    TORCH_CHECK(m.device() == first.device(), op, ": key_padding_mask is on ", m.device(), ", expected ",
                first.device(), " (the device of inputs[0])");
    TORCH_CHECK(m.dim() == 2 && m.size(0) == first.size(0) && m.size(1) == L.n, op,
                ": key_padding_mask must have shape (B, C) = (", first.size(0), ", ", L.n, "), got ", m.sizes());
    // Row r of the flattened (rows, C) view belongs to batch r / rows_per_batch.
    L.rows_per_batch = first.size(0) > 0 && L.rows > 0 ? L.rows / first.size(0) : 1;
    L.key_mask = reinterpret_cast<const uint8_t*>(m.data_ptr<bool>());
    L.mask_stride_b = m.stride(0);
    L.mask_stride_n = m.stride(1);
  }
  return L;
}

void check_softmax_inputs_fit(size_t n, size_t limit, const char* why) {
  TORCH_CHECK(n <= limit, kSoftmaxOp, ": the CUDA kernel takes at most ", limit, " inputs", why, ", got ", n);
}

// inputs: n tensors (..., R, C); returns POST(masked softmax over C of PRE(inputs)), same
// shape/dtype; a row without a real key has softmax 0 (out = POST(0) there).
at::Tensor fused_softmax_cuda(const std::vector<at::Tensor>& inputs, const c10::optional<at::Tensor>& mask,
                              const Ints& pre_i, const Floats& pre_f, const Ints& post_i, const Floats& post_f) {
  const int64_t n = static_cast<int64_t>(inputs.size());
  decode_program(kSoftmaxOp, "pre", pre_i, pre_f, n, 1);
  decode_program(kSoftmaxOp, "post", post_i, post_f, 1, 1);
  cuda::RowLayout L = prepare_softmax(inputs, mask);
  check_softmax_inputs_fit(inputs.size(), cuda::kMaxIO, "");
  const at::Tensor& first = inputs[0];
  // Stored in the inputs' dtype, computed in float32 (the CPU kernel's float32 compute, rounded once).
  L.dtype = program_dtype(kSoftmaxOp, first.scalar_type());

  const c10::cuda::CUDAGuard guard(first.device());
  at::Tensor out = at::empty(first.sizes(), first.options());
  if (out.numel() == 0) return out;
  std::vector<at::Tensor> in;
  for (const auto& t : inputs) in.push_back(t.contiguous());
  cuda::RowSoftmaxFwdArgs args{};
  args.n_inputs = static_cast<int>(n);
  for (int64_t k = 0; k < n; ++k) args.inputs[k] = in[k].data_ptr();
  args.out = out.data_ptr();
  args.y = nullptr;
  const cuda::ProgramRef pre = program_ref(pre_i, pre_f), post = program_ref(post_i, post_f);
  const std::string err = cuda::row_softmax_fwd_cuda(&pre, &post, args, L, current_stream(first.device()));
  TORCH_CHECK(err.empty(), kSoftmaxOp, ": ", err);
  return out;
}

// grad: (..., R, C) gradient of the output; returns one gradient per input. Like the CPU kernel it
// recomputes y = softmax(PRE(inputs)) (nothing else is saved), then gy = POST_BWD(y, grad),
// gx = y * (gy - sum(gy * y)) (0 at padded keys) and PRE_BWD(inputs, gx).
std::vector<at::Tensor> fused_softmax_backward_cuda(const std::vector<at::Tensor>& inputs,
                                                    const c10::optional<at::Tensor>& mask, const at::Tensor& grad,
                                                    const Ints& pre_i, const Floats& pre_f, const Ints& post_bwd_i,
                                                    const Floats& post_bwd_f, const Ints& pre_bwd_i,
                                                    const Floats& pre_bwd_f) {
  const int64_t n = static_cast<int64_t>(inputs.size());
  decode_program(kSoftmaxOp, "pre", pre_i, pre_f, n, 1);
  decode_program(kSoftmaxOp, "post_bwd", post_bwd_i, post_bwd_f, 2, 1);
  decode_program(kSoftmaxOp, "pre_bwd", pre_bwd_i, pre_bwd_f, n + 1, n);
  cuda::RowLayout L = prepare_softmax(inputs, mask);
  check_softmax_inputs_fit(inputs.size(), cuda::kMaxIO - 1, " in backward (PRE_BWD also reads the gradient)");
  const at::Tensor& first = inputs[0];
  TORCH_CHECK(grad.defined(), kSoftmaxOp, ": grad is an undefined tensor");
  TORCH_CHECK(grad.sizes() == first.sizes(), kSoftmaxOp, ": grad has shape ", grad.sizes(), ", expected ",
              first.sizes());
  check_on_device(kSoftmaxOp, "grad", grad, first.device(), "inputs[0]");
  TORCH_CHECK(grad.is_floating_point(), kSoftmaxOp, ": grad must be a floating tensor, got ", grad.scalar_type());

  const c10::cuda::CUDAGuard guard(first.device());
  // Every buffer of a launch has one dtype, and y is a buffer here: compute the whole backward in
  // float32 (the CPU kernel's compute dtype for bfloat16/float16 too) so y and the intermediate
  // gradients are not rounded to bfloat16/float16; only the returned gradients are.
  L.dtype = cuda::DType::kFloat32;
  const auto f32 = first.options().dtype(at::kFloat);
  std::vector<at::Tensor> grads;
  for (int64_t i = 0; i < n; ++i) grads.push_back(at::empty(first.sizes(), f32));
  if (first.numel() > 0) {
    std::vector<at::Tensor> in;
    for (const auto& t : inputs) in.push_back(t.to(at::kFloat).contiguous());
    const at::Tensor g = grad.to(at::kFloat).contiguous();
    const at::Tensor y = at::empty(first.sizes(), f32);
    const cudaStream_t stream = current_stream(first.device());

    cuda::RowSoftmaxFwdArgs fwd{};
    fwd.n_inputs = static_cast<int>(n);
    for (int64_t k = 0; k < n; ++k) fwd.inputs[k] = in[k].data_ptr();
    fwd.out = y.data_ptr();  // POST omitted (identity): out is the softmax itself
    fwd.y = nullptr;
    const cuda::ProgramRef pre = program_ref(pre_i, pre_f);
    std::string err = cuda::row_softmax_fwd_cuda(&pre, nullptr, fwd, L, stream);
    TORCH_CHECK(err.empty(), kSoftmaxOp, ": ", err);

    cuda::RowSoftmaxBwdArgs bwd{};
    bwd.n_inputs = static_cast<int>(n);
    for (int64_t k = 0; k < n; ++k) bwd.inputs[k] = in[k].data_ptr(), bwd.grad_inputs[k] = grads[k].data_ptr();
    bwd.y = y.data_ptr();
    bwd.grad_out = g.data_ptr();
    const cuda::ProgramRef pre_bwd = program_ref(pre_bwd_i, pre_bwd_f), post_bwd = program_ref(post_bwd_i, post_bwd_f);
    err = cuda::row_softmax_bwd_cuda(&pre_bwd, &post_bwd, bwd, L, stream);
    TORCH_CHECK(err.empty(), kSoftmaxOp, ": ", err);
  }
  for (auto& t : grads) t = t.to(first.scalar_type());
  return grads;
}

// ---- masked AdamW --------------------------------------------------------------------------------

using adamw_args::MaskList;
using adamw_args::TensorList;
constexpr const char* kAdamWOp = adamw_args::kOp;

cuda::DType adamw_dtype(const at::Tensor& p, size_t i) {
  switch (p.scalar_type()) {
    case at::kFloat: return cuda::DType::kFloat32;
    case at::kDouble: return cuda::DType::kFloat64;
    case at::kBFloat16: return cuda::DType::kBFloat16;
    case at::kHalf: return cuda::DType::kFloat16;
    default:
      TORCH_CHECK(false, kAdamWOp, ": params[", i, "] has dtype ", p.scalar_type(),
                  "; supported dtypes are float32, float64, bfloat16 and float16");
  }
}

// Every param on the CUDA device of params[0]: one call launches on one device's stream.
void check_param(const at::Tensor& p, size_t i, const at::Tensor& p0) {
  TORCH_CHECK(p.defined(), kAdamWOp, ": params[", i, "] is an undefined tensor");
  TORCH_CHECK(p.is_cuda(), kAdamWOp, ": params[", i, "] is on ", p.device(), "; this is the CUDA kernel");
  TORCH_CHECK(p.device() == p0.device(), kAdamWOp, ": params[", i, "] is on ", p.device(), " but params[0] is on ",
              p0.device(), "; all tensors of one call must be on one device");
  TORCH_CHECK(p.is_contiguous(), kAdamWOp, ": params[", i, "] is not contiguous");
  adamw_dtype(p, i);
}

// Same arguments and semantics as the CPU fused_masked_adamw_ (csrc/bindings/adamw.cpp), plus
// float16; asynchronous on the current stream of the params' device.
void fused_masked_adamw_cuda(const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                             const TensorList& exp_avg_sqs, const MaskList& masks, const std::vector<int64_t>& steps,
                             double lr, double beta1, double beta2, double eps, double weight_decay) {
  const cuda::AdamWHyper hyper{lr, beta1, beta2, eps, weight_decay};
  adamw_args::check_hyper(hyper);
  adamw_args::check_lists(params, grads, exp_avgs, exp_avg_sqs, masks, steps,
                          [&](const at::Tensor& p, size_t i) { check_param(p, i, params[0]); });
  if (params.empty()) return;
  std::vector<cuda::AdamWSlot> slots(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const bool has_mask = adamw_args::has_mask(masks, i);
    slots[i] = cuda::AdamWSlot{params[i].data_ptr(), grads[i].data_ptr(), exp_avgs[i].data_ptr(),
                               exp_avg_sqs[i].data_ptr(), has_mask ? masks[i]->data_ptr<bool>() : nullptr,
                               params[i].numel(), steps.size() == 1 ? steps[0] : steps[i], adamw_dtype(params[i], i)};
  }
  const c10::cuda::CUDAGuard guard(params[0].device());
  const cudaStream_t stream = current_stream(params[0].device());
  const std::string err = cuda::masked_adamw_cuda(slots.data(), static_cast<int64_t>(slots.size()), hyper, stream);
  TORCH_CHECK(err.empty(), kAdamWOp, ": ", err);
  adamw_args::bump_versions(params, exp_avgs, exp_avg_sqs);
}

}  // namespace
}  // namespace autobert::bindings

TORCH_LIBRARY_IMPL(autobert_kernels, CUDA, m) {
  m.impl("elementwise", &autobert::bindings::elementwise_cuda);
  m.impl("fused_softmax", &autobert::bindings::fused_softmax_cuda);
  m.impl("fused_softmax_backward", &autobert::bindings::fused_softmax_backward_cuda);
  // in place over lists of contiguous CUDA tensors (float32/float64/bfloat16/float16) on one device
  m.impl("fused_masked_adamw_", &autobert::bindings::fused_masked_adamw_cuda);
}

#endif  // AUTOBERT_WITH_CUDA
