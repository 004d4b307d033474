// The Python module's own functions (build facts); the kernels are dispatcher ops (module.cpp).
#pragma once
#include <torch/extension.h>

namespace autobert::bindings {

void register_info(pybind11::module_& m);  // csrc/bindings/info.cpp

}  // namespace autobert::bindings
