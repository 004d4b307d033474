// Registration hooks: one function per kernel family, defined in that family's binding file.
#pragma once
#include <torch/extension.h>

namespace autobert::bindings {

void register_info(pybind11::module_& m);
void register_elementwise(pybind11::module_& m);  // csrc/bindings/elementwise.cpp
void register_softmax(pybind11::module_& m);      // csrc/bindings/softmax.cpp
void register_attention(pybind11::module_& m);    // csrc/bindings/attention.cpp
void register_adamw(pybind11::module_& m);
void register_cuda(pybind11::module_& m);        // csrc/bindings/cuda.cpp (no-op without CUDA)

inline void register_all(pybind11::module_& m) {
  register_info(m);
  register_elementwise(m);
  register_softmax(m);
  register_attention(m);
  register_adamw(m);
  register_cuda(m);
}

}  // namespace autobert::bindings
