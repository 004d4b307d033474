// Fused masked AdamW on CUDA, multi-tensor-apply style: the host cuts every tensor into chunks
// of kChunk elements and packs up to kMaxTensors tensors / kMaxChunks chunks into one kernel
// parameter block (no device-side metadata allocation); block b updates chunk b.
//
// Math follows torch.optim.AdamW's foreach path op by op (the same order as the CPU kernel in
// csrc/adamw): p *= 1 - lr*wd; m.lerp_(g, 1 - beta1); v = v*beta2 + (1 - beta2)*g*g;
// p += -(lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). float32/bfloat16/float16 storage is
// updated in float32 and rounded once; float64 in double. sqrt and division use the IEEE
// round-to-nearest intrinsics, so setup.py's --use_fast_math does not loosen them.
#include "cuda/masked_adamw.cuh"

#include <cmath>
#include <type_traits>
#include <vector>

namespace autobert::cuda {
namespace {

// The packing limits can be shrunk at compile time so the host-side test harness
// (tests/ext/test_cuda_sources.py) reaches every launch-splitting path with small tensors.
#ifndef AUTOBERT_ADAMW_CHUNK
#define AUTOBERT_ADAMW_CHUNK 65536
#endif
#ifndef AUTOBERT_ADAMW_MAX_TENSORS
#define AUTOBERT_ADAMW_MAX_TENSORS 24
#endif
#ifndef AUTOBERT_ADAMW_MAX_CHUNKS
#define AUTOBERT_ADAMW_MAX_CHUNKS 256
#endif

constexpr int kThreads = 512;
constexpr int kIlp = 4;  // elements per thread in flight: loads issued before any math
constexpr int64_t kChunk = AUTOBERT_ADAMW_CHUNK;
constexpr int kMaxTensors = AUTOBERT_ADAMW_MAX_TENSORS;  // 24 * 64 B + 256 * 5 B < 4 KB of parameters
constexpr int kMaxChunks = AUTOBERT_ADAMW_MAX_CHUNKS;

struct TensorMeta {
  void* p;
  const void* g;
  void* m;
  void* v;
  const bool* mask;
  int64_t numel;
  double neg_step_size;  // -(lr / (1 - beta1^step))
  double bc2_sqrt;       // (1 - beta2^step)^0.5
};

struct AdamWLaunch {
  TensorMeta t[kMaxTensors];
  int32_t chunk_index[kMaxChunks];
  uint8_t chunk_tensor[kMaxChunks];
  double decay;  // 1 - lr * weight_decay
  double lerp_weight;  // 1 - beta1
  double beta2;
  double one_minus_beta2;
  double eps;
  int32_t apply_decay;
};

__device__ __forceinline__ float to_math(float x) { return x; }
__device__ __forceinline__ double to_math(double x) { return x; }
__device__ __forceinline__ float to_math(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_math(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T, typename M>
__device__ __forceinline__ T from_math(M x) {
  if constexpr (std::is_same_v<T, __half>) return __float2half_rn(x);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16_rn(x);
  else return static_cast<T>(x);
}

// IEEE round-to-nearest sqrt / division on the device whatever the fast-math flags; the host
// versions (for the test harness) are IEEE already.
#ifdef __CUDA_ARCH__
__device__ __forceinline__ float rn_sqrt(float x) { return __fsqrt_rn(x); }
__device__ __forceinline__ double rn_sqrt(double x) { return __dsqrt_rn(x); }
__device__ __forceinline__ float rn_div(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double rn_div(double a, double b) { return __ddiv_rn(a, b); }
#else
inline float rn_sqrt(float x) { return std::sqrt(x); }
inline double rn_sqrt(double x) { return std::sqrt(x); }
inline float rn_div(float a, float b) { return a / b; }
inline double rn_div(double a, double b) { return a / b; }
#endif

// One AdamW update of one active entry in the math type M (float or double).
template <typename M>
__host__ __device__ __forceinline__ void adamw_update(M& p, M g, M& m, M& v, const AdamWLaunch& L, M neg_step,
                                                      M bc2_sqrt) {
  const M w = static_cast<M>(L.lerp_weight);
  if (L.apply_decay) p = p * static_cast<M>(L.decay);
  // ATen's lerp: weight < 0.5 ? m + w * (g - m) : g - (g - m) * (1 - w)
  m = w < M(0.5) ? m + w * (g - m) : g - (g - m) * (M(1) - w);
  v = v * static_cast<M>(L.beta2);
  v = v + static_cast<M>(L.one_minus_beta2) * g * g;
  const M denom = rn_div(rn_sqrt(v), bc2_sqrt) + static_cast<M>(L.eps);
  p = p + rn_div(neg_step * m, denom);
}

template <typename T, typename M>
__global__ void __launch_bounds__(kThreads) masked_adamw_kernel(const __grid_constant__ AdamWLaunch L) {
  const TensorMeta& t = L.t[L.chunk_tensor[blockIdx.x]];
  const int64_t start = static_cast<int64_t>(L.chunk_index[blockIdx.x]) * kChunk;
  const int64_t end = start + kChunk < t.numel ? start + kChunk : t.numel;
  const M neg_step = static_cast<M>(t.neg_step_size), bc2_sqrt = static_cast<M>(t.bc2_sqrt);
  T* P = static_cast<T*>(t.p);
  const T* G = static_cast<const T*>(t.g);
  T* Mo = static_cast<T*>(t.m);
  T* V = static_cast<T*>(t.v);
  for (int64_t i0 = start + threadIdx.x; i0 < end; i0 += static_cast<int64_t>(kThreads) * kIlp) {
    M p[kIlp], g[kIlp], m[kIlp], v[kIlp];
    bool act[kIlp];
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      const int64_t i = i0 + static_cast<int64_t>(k) * kThreads;
      act[k] = i < end && (t.mask == nullptr || t.mask[i]);
      if (act[k]) p[k] = to_math(P[i]), g[k] = to_math(G[i]), m[k] = to_math(Mo[i]), v[k] = to_math(V[i]);
    }
#pragma unroll
    for (int k = 0; k < kIlp; ++k) {
      if (!act[k]) continue;  // inactive entries: no math, no store (their bits never change)
      adamw_update<M>(p[k], g[k], m[k], v[k], L, neg_step, bc2_sqrt);
      const int64_t i = i0 + static_cast<int64_t>(k) * kThreads;
      P[i] = from_math<T>(p[k]);
      Mo[i] = from_math<T>(m[k]);
      V[i] = from_math<T>(v[k]);
    }
  }
}

std::string check(const AdamWSlot* slots, int64_t num_slots, const AdamWHyper& h) {
  const std::string op = "masked_adamw_cuda: ";
  if (num_slots < 0 || (num_slots > 0 && slots == nullptr)) return op + "bad slot list";
  if (!(h.lr >= 0.0)) return op + "lr must be >= 0";
  if (!(h.beta1 >= 0.0 && h.beta1 < 1.0)) return op + "beta1 must be in [0, 1)";
  if (!(h.beta2 >= 0.0 && h.beta2 < 1.0)) return op + "beta2 must be in [0, 1)";
  if (!(h.eps >= 0.0)) return op + "eps must be >= 0";
  if (!(h.weight_decay >= 0.0)) return op + "weight_decay must be >= 0";
  for (int64_t i = 0; i < num_slots; ++i) {
    const AdamWSlot& s = slots[i];
    const std::string at = op + "slot " + std::to_string(i) + ": ";
    if (s.numel < 0) return at + "numel must be >= 0";
    if (s.step < 1) return at + "step must be >= 1 (the count after this update)";
    if (s.numel > 0 && (!s.param || !s.grad || !s.exp_avg || !s.exp_avg_sq)) return at + "null buffer";
    if (s.numel / kChunk >= INT32_MAX) return at + "tensor too large";
    if (s.dtype != DType::kFloat32 && s.dtype != DType::kFloat64 && s.dtype != DType::kBFloat16 &&
        s.dtype != DType::kFloat16)
      return at + "unknown dtype";
  }
  return "";
}

// One launch: its parameter block and how many chunks (= blocks) it holds.
struct PlannedLaunch {
  AdamWLaunch params;
  int n_chunks;
};

// Splits the non-empty slots of one dtype into launches (host only, so it is testable without
// a GPU). A launch closes when its chunk table is full, or its tensor table is full at the end
// of a tensor; a tensor cut by a full chunk table continues as tensor 0 of the next launch.
inline std::vector<PlannedLaunch> plan_launches(const std::vector<const AdamWSlot*>& group, const AdamWHyper& h) {
  std::vector<PlannedLaunch> plan;
  PlannedLaunch cur{};
  AdamWLaunch& L = cur.params;
  L.decay = 1.0 - h.lr * h.weight_decay;
  L.apply_decay = h.weight_decay != 0.0;
  L.lerp_weight = 1.0 - h.beta1;
  L.beta2 = h.beta2;
  L.one_minus_beta2 = 1.0 - h.beta2;
  L.eps = h.eps;
  int n_tensors = 0;  // tensors registered in the open launch
  for (const AdamWSlot* s : group) {
    if (s->numel == 0) continue;
    // Same double expressions as torch.optim.adam (Python floats) and the CPU kernel.
    const double step = static_cast<double>(s->step);
    const double bc1 = 1.0 - std::pow(h.beta1, step), bc2 = 1.0 - std::pow(h.beta2, step);
    const TensorMeta meta{s->param, s->grad, s->exp_avg, s->exp_avg_sq, s->mask, s->numel,
                          (h.lr / bc1) * -1.0, std::pow(bc2, 0.5)};
    L.t[n_tensors] = meta;
    const int64_t chunks = (s->numel + kChunk - 1) / kChunk;
    for (int64_t c = 0; c < chunks; ++c) {
      L.chunk_tensor[cur.n_chunks] = static_cast<uint8_t>(n_tensors);
      L.chunk_index[cur.n_chunks] = static_cast<int32_t>(c);
      ++cur.n_chunks;
      const bool last_chunk = c + 1 == chunks;
      if (cur.n_chunks == kMaxChunks || (last_chunk && n_tensors + 1 == kMaxTensors)) {
        plan.push_back(cur);
        cur.n_chunks = 0;
        L.t[0] = meta;  // harmless when the tensor is done: slot 0 is rewritten by the next one
        n_tensors = last_chunk ? -1 : 0;
      }
    }
    ++n_tensors;
  }
  if (cur.n_chunks > 0) plan.push_back(cur);
  return plan;
}

template <typename T, typename M>
std::string run_group(const std::vector<const AdamWSlot*>& group, const AdamWHyper& h, cudaStream_t stream) {
  for (const PlannedLaunch& launch : plan_launches(group, h)) {
    masked_adamw_kernel<T, M><<<launch.n_chunks, kThreads, 0, stream>>>(launch.params);
    std::string err = launch_status("masked_adamw_cuda");
    if (!err.empty()) return err;
  }
  return "";
}

}  // namespace

std::string masked_adamw_cuda(const AdamWSlot* slots, int64_t num_slots, const AdamWHyper& hyper,
                              cudaStream_t stream) {
  std::string err = check(slots, num_slots, hyper);
  if (!err.empty()) return err;
  // One template instantiation per dtype: group the slots, keep list order within a group.
  const DType order[] = {DType::kFloat32, DType::kFloat64, DType::kBFloat16, DType::kFloat16};
  for (DType d : order) {
    std::vector<const AdamWSlot*> group;
    for (int64_t i = 0; i < num_slots; ++i)
      if (slots[i].dtype == d) group.push_back(&slots[i]);
    if (group.empty()) continue;
    switch (d) {
      case DType::kFloat32: err = run_group<float, float>(group, hyper, stream); break;
      case DType::kFloat64: err = run_group<double, double>(group, hyper, stream); break;
      case DType::kBFloat16: err = run_group<__nv_bfloat16, float>(group, hyper, stream); break;
      case DType::kFloat16: err = run_group<__half, float>(group, hyper, stream); break;
    }
    if (!err.empty()) return err;
  }
  return "";
}

}  // namespace autobert::cuda
