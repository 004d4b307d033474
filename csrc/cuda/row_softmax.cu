// Fused row-softmax kernels: one warp per row, kElems elements per lane per step (coalesced:
// element e of lane l is j0 + e * 32 + l). Forward makes two passes (online max/sum, then
// normalise + POST), recomputing PRE rather than storing x; backward makes two passes (the
// row sum of y * dy, then dx and PRE_BWD).
#include "cuda/row_softmax.cuh"

#include <cmath>

namespace autobert::cuda {
namespace {

constexpr int kWarps = 4;  // rows per block
constexpr int kThreads = 32 * kWarps;
constexpr int kElems = 4;
constexpr int kStep = 32 * kElems;  // row elements per warp step

struct Layout {
  int64_t rows, n, rows_per_batch, smb, smn;
  const uint8_t* mask;
};

struct FwdParams {
  DeviceProgram pre, post;
  const void* in[kMaxIO];
  void* out;
  void* y;
  Layout L;
};

struct BwdParams {
  DeviceProgram pre_bwd, post_bwd;
  const void* in[kMaxIO];
  const void* y;
  const void* g;
  void* din[kMaxIO];
  Layout L;
};

struct Lanes {
  int64_t idx[kElems];  // column of each element
  bool in[kElems];      // inside the row
  bool ok[kElems];      // inside the row and a real token
};

__device__ __forceinline__ Lanes lanes(const Layout& L, int64_t batch, int64_t j0, int lane) {
  Lanes s;
#pragma unroll
  for (int e = 0; e < kElems; ++e) {
    s.idx[e] = j0 + e * 32 + lane;
    s.in[e] = s.idx[e] < L.n;
    s.ok[e] = s.in[e] && (L.mask == nullptr || L.mask[batch * L.smb + s.idx[e] * L.smn] != 0);
  }
  return s;
}

// Loads the live inputs of `prog` (first n of them) for the elements of `s` into slots 0..n-1.
template <typename T>
__device__ __forceinline__ void load_inputs(const DeviceProgram& prog, int n, const void* const* in, int64_t base,
                                            const Lanes& s, float (&r)[kMaxSlots][kElems]) {
  for (int k = 0; k < n; ++k) {
    if (!(prog.input_live >> k & 1u)) continue;
    const T* src = static_cast<const T*>(in[k]);
#pragma unroll
    for (int e = 0; e < kElems; ++e) r[k][e] = s.in[e] ? to_float(src[base + s.idx[e]]) : 0.f;
  }
}

// (m, l) of a running softmax: max and sum of exp(x - m). m = -inf means "no element yet".
__device__ __forceinline__ void merge(float& m, float& l, float m2, float l2) {
  const float mx = fmaxf(m, m2);
  if (mx == -INFINITY) return;  // both empty
  l = l * precise_expf(m - mx) + l2 * precise_expf(m2 - mx);
  m = mx;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) row_softmax_fwd_kernel(const __grid_constant__ FwdParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= p.L.rows) return;  // whole warp leaves together: shuffles below stay full-warp
  const int64_t base = row * p.L.n, batch = row / p.L.rows_per_batch;
  const int x_slot = p.pre.out_slot[0];
  float r[kMaxSlots][kElems];
  float m = -INFINITY, l = 0.f;
  for (int64_t j0 = 0; j0 < p.L.n; j0 += kStep) {
    const Lanes s = lanes(p.L, batch, j0, lane);
    load_inputs<T>(p.pre, p.pre.n_inputs, p.in, base, s, r);
    run_program<kElems>(p.pre, r);
#pragma unroll
    for (int e = 0; e < kElems; ++e) {
      if (!s.ok[e]) continue;
      const float x = r[x_slot][e];  // one exp per element: rescale only when the max grows
      if (x > m) {
        l = l * precise_expf(m - x) + 1.f;
        m = x;
      } else if (x != -INFINITY) {
        l += precise_expf(x - m);
      }
    }
  }
  for (int off = 16; off > 0; off >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, off), l2 = __shfl_xor_sync(0xffffffffu, l, off);
    merge(m, l, m2, l2);
  }
  const float inv = l > 0.f ? 1.f / l : 0.f;  // no real key: y = 0
  const float m_use = m == -INFINITY ? 0.f : m;
  T* out = static_cast<T*>(p.out);
  T* y_out = static_cast<T*>(p.y);
  for (int64_t j0 = 0; j0 < p.L.n; j0 += kStep) {
    const Lanes s = lanes(p.L, batch, j0, lane);
    load_inputs<T>(p.pre, p.pre.n_inputs, p.in, base, s, r);
    run_program<kElems>(p.pre, r);
    float y[kElems];
#pragma unroll
    for (int e = 0; e < kElems; ++e) y[e] = s.ok[e] ? precise_expf(r[x_slot][e] - m_use) * inv : 0.f;
#pragma unroll
    for (int e = 0; e < kElems; ++e) r[0][e] = y[e];  // POST reads y from slot 0
    run_program<kElems>(p.post, r);
    const int o = p.post.out_slot[0];
#pragma unroll
    for (int e = 0; e < kElems; ++e) {
      if (!s.in[e]) continue;
      out[base + s.idx[e]] = from_float<T>(r[o][e]);
      if (y_out != nullptr) y_out[base + s.idx[e]] = from_float<T>(y[e]);
    }
  }
}

// dy = POST_BWD(y, g) for the elements of `s`, into dy[].
template <typename T>
__device__ __forceinline__ void post_grad(const BwdParams& p, int64_t base, const Lanes& s, float (&r)[kMaxSlots][kElems],
                                          float (&y)[kElems], float (&dy)[kElems]) {
  const T* ys = static_cast<const T*>(p.y);
  const T* gs = static_cast<const T*>(p.g);
#pragma unroll
  for (int e = 0; e < kElems; ++e) {
    y[e] = s.in[e] ? to_float(ys[base + s.idx[e]]) : 0.f;
    r[0][e] = y[e];
    r[1][e] = s.in[e] ? to_float(gs[base + s.idx[e]]) : 0.f;
  }
  run_program<kElems>(p.post_bwd, r);
#pragma unroll
  for (int e = 0; e < kElems; ++e) dy[e] = r[p.post_bwd.out_slot[0]][e];
}

template <typename T>
__global__ void __launch_bounds__(kThreads) row_softmax_bwd_kernel(const __grid_constant__ BwdParams p) {
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (row >= p.L.rows) return;
  const int64_t base = row * p.L.n, batch = row / p.L.rows_per_batch;
  const int n_in = p.pre_bwd.n_inputs - 1;  // PRE_BWD reads (x_1..x_n, dx)
  float r[kMaxSlots][kElems], y[kElems], dy[kElems];
  float acc = 0.f;
  for (int64_t j0 = 0; j0 < p.L.n; j0 += kStep) {
    const Lanes s = lanes(p.L, batch, j0, lane);
    post_grad<T>(p, base, s, r, y, dy);
#pragma unroll
    for (int e = 0; e < kElems; ++e) acc += s.ok[e] ? y[e] * dy[e] : 0.f;
  }
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  for (int64_t j0 = 0; j0 < p.L.n; j0 += kStep) {
    const Lanes s = lanes(p.L, batch, j0, lane);
    post_grad<T>(p, base, s, r, y, dy);
    load_inputs<T>(p.pre_bwd, n_in, p.in, base, s, r);
#pragma unroll
    for (int e = 0; e < kElems; ++e) r[n_in][e] = s.ok[e] ? y[e] * (dy[e] - acc) : 0.f;
    run_program<kElems>(p.pre_bwd, r);
    for (int k = 0; k < n_in; ++k) {
      T* dst = static_cast<T*>(p.din[k]);
      const int o = p.pre_bwd.out_slot[k];
#pragma unroll
      for (int e = 0; e < kElems; ++e)
        if (s.in[e]) dst[base + s.idx[e]] = from_float<T>(s.ok[e] ? r[o][e] : 0.f);
    }
  }
}

std::string check_layout(const RowLayout& L, const char* what) {
  if (L.rows < 0 || L.n < 0) return std::string(what) + ": rows and N must be >= 0";
  if (L.rows > 0 && L.rows_per_batch <= 0) return std::string(what) + ": rows_per_batch must be > 0";
  return "";
}

// Packs `ref` (or the identity when null) and checks its shape n_in -> n_out.
std::string pack_or_identity(const ProgramRef* ref, int n_in, int n_out, int identity_input, DeviceProgram* out,
                             const char* what) {
  if (ref == nullptr) {
    if (n_out != 1 || (identity_input != 0 && n_in != 2) || (identity_input == 0 && n_in != 1))
      return std::string(what) + " may be omitted (identity) only for a single input";
    *out = identity_program(n_in, identity_input);
    return "";
  }
  std::string err = pack_program(*ref, out);
  if (!err.empty()) return std::string(what) + ": " + err;
  if (out->n_inputs != n_in || out->n_outputs != n_out)
    return std::string(what) + " must map " + std::to_string(n_in) + " inputs to " + std::to_string(n_out) + " outputs";
  return "";
}

Layout device_layout(const RowLayout& L) {
  return Layout{L.rows, L.n, L.rows_per_batch, L.mask_stride_b, L.mask_stride_n, L.key_mask};
}

}  // namespace

std::string row_softmax_fwd_cuda(const ProgramRef* pre, const ProgramRef* post, const RowSoftmaxFwdArgs& args,
                                 const RowLayout& layout, cudaStream_t stream) {
  const char* what = "row_softmax_fwd_cuda";
  std::string err = check_layout(layout, what);
  if (!err.empty()) return err;
  if (args.n_inputs < 1 || args.n_inputs > kMaxIO) return std::string(what) + ": bad number of inputs";
  FwdParams p{};
  if (!(err = pack_or_identity(pre, args.n_inputs, 1, 0, &p.pre, "pre")).empty()) return err;
  if (!(err = pack_or_identity(post, 1, 1, 0, &p.post, "post")).empty()) return err;
  for (int k = 0; k < args.n_inputs; ++k) p.in[k] = args.inputs[k];
  p.out = args.out;
  p.y = args.y;
  p.L = device_layout(layout);
  if (layout.rows == 0 || layout.n == 0) return "";
  const unsigned blocks = static_cast<unsigned>((layout.rows + kWarps - 1) / kWarps);
  err = dispatch_float_dtype(layout.dtype, what, [&](auto tag) {
    row_softmax_fwd_kernel<decltype(tag)><<<blocks, kThreads, 0, stream>>>(p);
  });
  return err.empty() ? launch_status(what) : err;
}

std::string row_softmax_bwd_cuda(const ProgramRef* pre_bwd, const ProgramRef* post_bwd,
                                 const RowSoftmaxBwdArgs& args, const RowLayout& layout, cudaStream_t stream) {
  const char* what = "row_softmax_bwd_cuda";
  std::string err = check_layout(layout, what);
  if (!err.empty()) return err;
  const int n = args.n_inputs;
  if (n < 1 || n + 1 > kMaxIO) return std::string(what) + ": bad number of inputs";
  BwdParams p{};
  if (!(err = pack_or_identity(pre_bwd, n + 1, n, 1, &p.pre_bwd, "pre_bwd")).empty()) return err;
  if (!(err = pack_or_identity(post_bwd, 2, 1, 1, &p.post_bwd, "post_bwd")).empty()) return err;
  for (int k = 0; k < n; ++k) p.in[k] = args.inputs[k], p.din[k] = args.grad_inputs[k];
  p.y = args.y;
  p.g = args.grad_out;
  p.L = device_layout(layout);
  if (layout.rows == 0 || layout.n == 0) return "";
  const unsigned blocks = static_cast<unsigned>((layout.rows + kWarps - 1) / kWarps);
  err = dispatch_float_dtype(layout.dtype, what, [&](auto tag) {
    row_softmax_bwd_kernel<decltype(tag)><<<blocks, kThreads, 0, stream>>>(p);
  });
  return err.empty() ? launch_status(what) : err;
}

}  // namespace autobert::cuda
