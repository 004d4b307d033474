// The extension module autobert_ext._C. Each kernel family registers its functions from its own
// binding file in this folder (the only folder that sees pybind11); this file just calls them.
#include <torch/extension.h>

#include "bindings/registry.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "autobert fused kernels (C++ CPU; CUDA when built with it)";
#ifdef AUTOBERT_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  autobert::bindings::register_all(m);
}
