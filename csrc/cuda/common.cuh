// Shared pieces of the CUDA kernels: storage dtypes, float conversions, launch-error reporting.
// Torch-free (CUDA runtime + cuda_fp16/cuda_bf16 only): the torch binding lives in csrc/bindings/.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace autobert::cuda {

// Storage dtype of a buffer. Op-program kernels take the first three; AdamW also takes float64.
enum class DType : int8_t { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2, kFloat64 = 3 };

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kFloat64: return "float64";
  }
  return "unknown";
}

template <typename T>
__device__ __forceinline__ float to_float(T x);
template <>
__device__ __forceinline__ float to_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ float to_float<__half>(__half x) { return __half2float(x); }
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// exp through double: setup.py compiles with --use_fast_math, which turns expf into __expf
// (error grows with |x|: ~1.5e-6 relative at x = 20). The op programs promise the eager
// meaning, and these kernels are memory bound, so the double evaluation costs little.
__host__ __device__ __forceinline__ float precise_expf(float x) {
  return static_cast<float>(::exp(static_cast<double>(x)));
}

// "" when the last launch succeeded, else "<what>: <CUDA error>" (the binding raises it).
inline std::string launch_status(const char* what) {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? std::string() : std::string(what) + ": " + cudaGetErrorString(e);
}

// Dispatches a float-storage dtype of the op-program kernels to a template instantiation.
template <typename F>
inline std::string dispatch_float_dtype(DType d, const char* what, F&& f) {
  switch (d) {
    case DType::kFloat32: f(float{}); return "";
    case DType::kFloat16: f(__half{}); return "";
    case DType::kBFloat16: f(__nv_bfloat16{}); return "";
    default: return std::string(what) + ": dtype " + dtype_name(d) + " is not supported (float32/float16/bfloat16)";
  }
}

}  // namespace autobert::cuda
