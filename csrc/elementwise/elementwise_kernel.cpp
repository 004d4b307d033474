// Fused elementwise kernel (see elementwise.h): chunks split across threads, each chunk evaluated
// in L1-sized blocks by the op-program interpreter.
#include "program/interpreter.h"  // first: selects the vector ISA before any ATen header

#include <ATen/Parallel.h>

#include <algorithm>

#include "elementwise/elementwise.h"

namespace autobert::elementwise {

template <typename T>
void forward(const program::Program& prog, const std::vector<const T*>& in, const std::vector<T*>& out,
             int64_t numel) {
  // 1024 elements per block: a handful of live registers stays within L1; the per-instruction
  // dispatch is amortised over 64 (float) vector iterations.
  constexpr int64_t kBlock = 1024;
  const program::Plan plan(prog);
  at::parallel_for(0, numel, 32 * kBlock, [&](int64_t begin, int64_t end) {
    program::Evaluator<T> ev(prog, plan, kBlock);
    std::vector<const T*> ip(in.size());
    std::vector<T*> op(out.size());
    for (int64_t s = begin; s < end; s += kBlock) {
      const int64_t n = std::min(kBlock, end - s);
      for (size_t i = 0; i < in.size(); ++i) ip[i] = in[i] + s;
      for (size_t j = 0; j < out.size(); ++j) op[j] = out[j] + s;
      ev.run(ip.data(), op.data(), n);
    }
  });
}

template void forward<float>(const program::Program&, const std::vector<const float*>&,
                             const std::vector<float*>&, int64_t);
template void forward<double>(const program::Program&, const std::vector<const double*>&,
                              const std::vector<double*>&, int64_t);

}  // namespace autobert::elementwise
