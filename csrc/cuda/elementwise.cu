// Elementwise op-program kernel: each thread interprets the program for kElems elements at a
// time (one instruction decode per kElems evaluations), grid-stride over the flat buffers.
#include "cuda/elementwise.cuh"

#include <algorithm>

namespace autobert::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kElems = 4;  // elements per thread per step: ILP and decode amortisation
constexpr int64_t kMaxBlocks = 8192;

struct ElementwiseParams {
  DeviceProgram prog;
  const void* in[kMaxIO];
  void* out[kMaxIO];
  int64_t numel;
};

// Element e of a thread's step is base + e * blockDim.x: consecutive threads touch consecutive
// addresses (coalesced) for every e.
template <typename T>
__global__ void __launch_bounds__(kThreads) elementwise_kernel(const __grid_constant__ ElementwiseParams p) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * kThreads * kElems;
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * kThreads * kElems + threadIdx.x; base < p.numel;
       base += step) {
    float r[kMaxSlots][kElems];
    for (int k = 0; k < p.prog.n_inputs; ++k) {
      if (!(p.prog.input_live >> k & 1u)) continue;
      const T* src = static_cast<const T*>(p.in[k]);
#pragma unroll
      for (int e = 0; e < kElems; ++e) {
        const int64_t i = base + static_cast<int64_t>(e) * kThreads;
        r[k][e] = i < p.numel ? to_float(src[i]) : 0.f;
      }
    }
    run_program<kElems>(p.prog, r);
    for (int j = 0; j < p.prog.n_outputs; ++j) {
      T* dst = static_cast<T*>(p.out[j]);
      const int s = p.prog.out_slot[j];
#pragma unroll
      for (int e = 0; e < kElems; ++e) {
        const int64_t i = base + static_cast<int64_t>(e) * kThreads;
        if (i < p.numel) dst[i] = from_float<T>(r[s][e]);
      }
    }
  }
}

}  // namespace

std::string elementwise_program_cuda(const ProgramRef& program, const void* const* inputs, int n_inputs,
                                     void* const* outputs, int n_outputs, int64_t numel, DType dtype,
                                     cudaStream_t stream) {
  ElementwiseParams p{};
  std::string err = pack_program(program, &p.prog);
  if (!err.empty()) return err;
  if (p.prog.n_inputs != n_inputs || p.prog.n_outputs != n_outputs)
    return "elementwise_program_cuda: the program's input/output counts do not match the buffers";
  if (numel < 0) return "elementwise_program_cuda: numel must be >= 0";
  for (int k = 0; k < n_inputs; ++k) p.in[k] = inputs[k];
  for (int j = 0; j < n_outputs; ++j) p.out[j] = outputs[j];
  p.numel = numel;
  if (numel == 0 || n_outputs == 0) return "";
  const int64_t per_block = static_cast<int64_t>(kThreads) * kElems;
  const unsigned blocks = static_cast<unsigned>(std::min((numel + per_block - 1) / per_block, kMaxBlocks));
  err = dispatch_float_dtype(dtype, "elementwise_program_cuda", [&](auto tag) {
    using T = decltype(tag);
    elementwise_kernel<T><<<blocks, kThreads, 0, stream>>>(p);
  });
  return err.empty() ? launch_status("elementwise_program_cuda") : err;
}

}  // namespace autobert::cuda
