// Build facts of the compiled extension (used by `autobert info` and the tests).
#include <torch/extension.h>

#include "bindings/registry.h"

namespace autobert::bindings {

void register_info(pybind11::module_& m) {
  m.def("build_info", []() {
    pybind11::dict d;
#ifdef _OPENMP
    d["openmp"] = true;
#else
    d["openmp"] = false;
#endif
    d["compiler"] = __VERSION__;
    d["num_threads"] = at::get_num_threads();
    return d;
  }, "Compiler and threading facts of this build.");
}

}  // namespace autobert::bindings
