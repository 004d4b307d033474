// The extension module autobert_ext._C. Loading it registers the kernel ops autobert_kernels::*
// with the PyTorch dispatcher: the schemas below, and per op one implementation per device: CPU in
// the family's binding file in this folder, CUDA in cuda.cpp (CUDA builds only). Python calls
// torch.ops.autobert_kernels.<op>; the dispatcher picks the implementation by the tensors' device.
#include <torch/extension.h>
#include <torch/library.h>

#include "bindings/registry.h"

TORCH_LIBRARY(autobert_kernels, m) {
  // Programs travel as their encoding (program.encode): int[] + float[].
  m.def("elementwise(Tensor[] inputs, int[] ints, float[] floats) -> Tensor[]");
  m.def("fused_softmax(Tensor[] inputs, Tensor? mask, int[] pre_ints, float[] pre_floats, int[] post_ints, "
        "float[] post_floats) -> Tensor");
  m.def("fused_softmax_backward(Tensor[] inputs, Tensor? mask, Tensor grad, int[] pre_ints, float[] pre_floats, "
        "int[] post_bwd_ints, float[] post_bwd_floats, int[] pre_bwd_ints, float[] pre_bwd_floats) -> Tensor[]");
  m.def("streaming_attention(Tensor q, Tensor k, Tensor v, Tensor? mask, int[] score_ints, float[] score_floats, "
        "str norm) -> (Tensor, Tensor)");
  m.def("streaming_attention_backward(Tensor q, Tensor k, Tensor v, Tensor? mask, Tensor out, Tensor lse, "
        "Tensor grad_out, int[] score_ints, float[] score_floats, int[] score_bwd_ints, float[] score_bwd_floats, "
        "str norm) -> (Tensor, Tensor, Tensor)");
  m.def("fused_masked_adamw_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] exp_avgs, Tensor(c!)[] exp_avg_sqs, "
        "Tensor?[] masks, int[] steps, float lr, float beta1, float beta2, float eps, float weight_decay) -> ()");
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "autobert fused kernels (C++ CPU; CUDA when built with it), registered as torch.ops.autobert_kernels";
#ifdef AUTOBERT_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  autobert::bindings::register_info(m);
}
