// Fused elementwise kernel: one pass over n same-shaped contiguous inputs computing m outputs with
// an op program. Torch-free interface (raw pointers); the binding handles tensors.
#pragma once
#include <cstdint>
#include <vector>

#include "program/program.h"

namespace autobert::elementwise {

// in: prog.n_inputs pointers to numel elements each; out: prog.outputs.size() pointers to numel
// elements each (fresh buffers, never aliasing an input). Multithreaded over chunks.
template <typename T>
void forward(const program::Program& prog, const std::vector<const T*>& in, const std::vector<T*>& out,
             int64_t numel);

}  // namespace autobert::elementwise
