// CPU implementations of the ops autobert_kernels::streaming_attention(_backward) (module.cpp).
#include <torch/extension.h>
#include <torch/library.h>

#include "attention/streaming_attention.h"

namespace autobert::bindings {
namespace {

constexpr const char* kOp = "autobert.streaming_attention";
using Ints = std::vector<int64_t>;
using Floats = std::vector<double>;

program::Program decode_program(const char* what, const Ints& ints, const Floats& floats, int64_t n_in) {
  program::Program p;
  std::string err = program::decode(ints, floats, &p);
  if (err.empty()) err = program::expect_arity(p, n_in, 1);
  TORCH_CHECK_VALUE(err.empty(), kOp, ": malformed ", what, " program: ", err);
  return p;
}

attention::Norm parse_norm(const std::string& norm) {
  TORCH_CHECK_VALUE(norm == "softmax" || norm == "none", kOp, ": norm must be 'softmax' or 'none', got '", norm, "'");
  return norm == "softmax" ? attention::Norm::kSoftmax : attention::Norm::kNone;
}

// Checks q, k, v are (B, H, N, d) cpu tensors of one floating dtype and the mask is (B, N) bool.
attention::Shape check_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const c10::optional<at::Tensor>& mask) {
  const std::pair<const char*, const at::Tensor*> named[] = {{"q", &q}, {"k", &k}, {"v", &v}};
  for (const auto& [name, t] : named) {
    TORCH_CHECK(t->dim() == 4, kOp, ": ", name, " must have shape (B, H, N, d), got rank ", t->dim(), " shape ",
                t->sizes());
    TORCH_CHECK(t->device().is_cpu(), kOp, ": ", name, " is on ", t->device(), ", expected cpu");
    TORCH_CHECK(t->scalar_type() == q.scalar_type(), kOp, ": ", name, " has dtype ", t->scalar_type(),
                ", expected the dtype of q (", q.scalar_type(), ")");
  }
  const auto dt = q.scalar_type();
  TORCH_CHECK(dt == at::kFloat || dt == at::kDouble || dt == at::kBFloat16 || dt == at::kHalf, kOp,
              ": expected floating q/k/v (float32, float64, bfloat16, float16), got ", dt);
  TORCH_CHECK(k.sizes() == q.sizes() && v.sizes() == q.sizes(), kOp,
              ": q, k and v must have the same shape (B, H, N, d), got q ", q.sizes(), ", k ", k.sizes(), ", v ",
              v.sizes());
  attention::Shape s;
  s.B = q.size(0), s.H = q.size(1), s.Nq = q.size(2), s.Nk = k.size(2), s.d = q.size(3), s.dv = v.size(3);
  if (mask.has_value()) {
    const at::Tensor& m = *mask;
    TORCH_CHECK(m.scalar_type() == at::kBool, kOp, ": key_padding_mask must be bool (True = real token), got ",
                m.scalar_type());
    TORCH_CHECK(m.device().is_cpu(), kOp, ": key_padding_mask is on ", m.device(), ", expected cpu");
    TORCH_CHECK(m.dim() == 2 && m.size(0) == s.B && m.size(1) == s.Nk, kOp,
                ": key_padding_mask must have shape (B, N) = (", s.B, ", ", s.Nk, "), got ", m.sizes());
  }
  return s;
}

at::ScalarType compute_type(const at::Tensor& q) { return q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

// t itself when the forward can read it in place (compute dtype, contiguous rows), else a contiguous copy.
at::Tensor rows_readable(const at::Tensor& t, at::ScalarType ct) {
  if (t.scalar_type() == ct && (t.size(3) <= 1 || t.stride(3) == 1)) return t;
  return t.to(ct).contiguous();
}

attention::Strides strides_of(const at::Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

const uint8_t* mask_ptr(const at::Tensor& m) {
  return m.defined() ? reinterpret_cast<const uint8_t*>(m.data_ptr<bool>()) : nullptr;
}

// Returns (out (B, H, N, d), lse (B, H, N) in the compute dtype: float32, or float64 for float64).
std::tuple<at::Tensor, at::Tensor> streaming_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                       const c10::optional<at::Tensor>& mask, const Ints& score_i,
                                                       const Floats& score_f, const std::string& norm) {
  const auto score = decode_program("score", score_i, score_f, 1);
  const auto nm = parse_norm(norm);
  const auto s = check_qkv(q, k, v, mask);
  const auto ct = compute_type(q);
  const at::Tensor qc = rows_readable(q, ct), kc = rows_readable(k, ct), vc = rows_readable(v, ct);
  const attention::Layout lay{strides_of(qc), strides_of(kc), strides_of(vc)};
  const at::Tensor mc = mask.has_value() ? mask->contiguous() : at::Tensor();
  at::Tensor out = at::empty({s.B, s.H, s.Nq, s.dv}, qc.options());
  at::Tensor lse = at::empty({s.B, s.H, s.Nq}, qc.options());
  AT_DISPATCH_FLOATING_TYPES(ct, "autobert_streaming_attention", [&] {
    attention::forward<scalar_t>(score, nm, qc.data_ptr<scalar_t>(), kc.data_ptr<scalar_t>(),
                                 vc.data_ptr<scalar_t>(), mask_ptr(mc), s, lay, out.data_ptr<scalar_t>(),
                                 lse.data_ptr<scalar_t>());
  });
  return {out.to(q.scalar_type()), lse};
}

// Returns (dq, dk, dv) for the gradient dout of out; out/lse are the forward's results.
std::tuple<at::Tensor, at::Tensor, at::Tensor> streaming_attention_backward(
    const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const c10::optional<at::Tensor>& mask,
    const at::Tensor& out, const at::Tensor& lse, const at::Tensor& dout, const Ints& score_i, const Floats& score_f,
    const Ints& score_bwd_i, const Floats& score_bwd_f, const std::string& norm) {
  const auto score = decode_program("score", score_i, score_f, 1);
  const auto score_bwd = decode_program("score_bwd", score_bwd_i, score_bwd_f, 2);
  const auto nm = parse_norm(norm);
  const auto s = check_qkv(q, k, v, mask);
  const std::vector<int64_t> out_shape{s.B, s.H, s.Nq, s.dv}, lse_shape{s.B, s.H, s.Nq};
  TORCH_CHECK(out.sizes() == out_shape, kOp, ": out must have shape ", out_shape, ", got ", out.sizes());
  TORCH_CHECK(dout.sizes() == out_shape, kOp, ": grad_out must have shape ", out_shape, ", got ", dout.sizes());
  TORCH_CHECK(lse.sizes() == lse_shape, kOp, ": lse must have shape ", lse_shape, ", got ", lse.sizes());
  for (const at::Tensor* t : {&out, &lse, &dout}) {
    TORCH_CHECK(t->device().is_cpu(), kOp, ": out/lse/grad_out must be on cpu, got ", t->device());
    TORCH_CHECK(at::isFloatingType(t->scalar_type()), kOp, ": out/lse/grad_out must be floating, got ",
                t->scalar_type());
  }
  const auto ct = compute_type(q);
  const at::Tensor qc = q.to(ct).contiguous(), kc = k.to(ct).contiguous(), vc = v.to(ct).contiguous();
  const at::Tensor oc = out.to(ct).contiguous(), lc = lse.to(ct).contiguous(), gc = dout.to(ct).contiguous();
  const at::Tensor mc = mask.has_value() ? mask->contiguous() : at::Tensor();
  at::Tensor dq = at::empty_like(qc), dk = at::empty_like(kc), dv = at::empty_like(vc);
  AT_DISPATCH_FLOATING_TYPES(ct, "autobert_streaming_attention_backward", [&] {
    attention::backward<scalar_t>(score, score_bwd, nm, qc.data_ptr<scalar_t>(), kc.data_ptr<scalar_t>(),
                                  vc.data_ptr<scalar_t>(), mask_ptr(mc), oc.data_ptr<scalar_t>(),
                                  lc.data_ptr<scalar_t>(), gc.data_ptr<scalar_t>(), s, dq.data_ptr<scalar_t>(),
                                  dk.data_ptr<scalar_t>(), dv.data_ptr<scalar_t>());
  });
  const auto dt = q.scalar_type();
  return {dq.to(dt), dk.to(dt), dv.to(dt)};
}

}  // namespace
}  // namespace autobert::bindings

TORCH_LIBRARY_IMPL(autobert_kernels, CPU, m) {
  m.impl("streaming_attention", &autobert::bindings::streaming_attention);
  m.impl("streaming_attention_backward", &autobert::bindings::streaming_attention_backward);
}
