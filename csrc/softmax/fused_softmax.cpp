// Fused row softmax kernels (see fused_softmax.h). Threads take whole rows; each row runs PRE,
// the masked softmax and POST (or their backward) on L1/L2-resident row buffers.
#include "program/interpreter.h"  // first: selects the vector ISA before any ATen header

#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>

#include "softmax/fused_softmax.h"

namespace autobert::softmax {
namespace {

using program::Evaluator;
using program::Plan;
using program::Program;

// y = softmax(x) over valid entries (mask byte != 0 or no mask); invalid entries and rows without
// a valid entry give 0. x is overwritten with -inf at invalid entries.
template <typename T>
void masked_softmax_row(T* x, const uint8_t* mask, int64_t n, T* y) {
  using V = at::vec::Vectorized<T>;
  const T ninf = -std::numeric_limits<T>::infinity();
  if (mask) {
    for (int64_t j = 0; j < n; ++j) {
      if (!mask[j]) x[j] = ninf;
    }
  }
  const T mx = at::vec::reduce_all<T>([](V a, V b) { return at::vec::maximum(a, b); }, x, n);
  if (mx == ninf) {  // no valid entry: the row's softmax is defined as 0
    std::fill(y, y + n, T(0));
    return;
  }
  const V vmx(mx);
  at::vec::map([vmx](V v) { return (v - vmx).exp(); }, y, x, n);
  const T sum = at::vec::reduce_all<T>([](V a, V b) { return a + b; }, y, n);
  const V inv(T(1) / sum);
  at::vec::map([inv](V v) { return v * inv; }, y, y, n);
}

template <typename T>
std::vector<const T*> row_ptrs(const std::vector<const T*>& base, int64_t off) {
  std::vector<const T*> p(base.size());
  for (size_t i = 0; i < base.size(); ++i) p[i] = base[i] + off;
  return p;
}

}  // namespace

template <typename T>
void forward(const Program& pre, const Program& post, const std::vector<const T*>& in, const uint8_t* mask,
             const Geometry& g, T* out) {
  const Plan pre_plan(pre), post_plan(post);
  const int64_t C = g.cols;
  // Grain: about 64K elements per task so short rows are not scheduled one by one.
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(C, 1));
  at::parallel_for(0, g.rows, grain, [&](int64_t r0, int64_t r1) {
    Evaluator<T> ev_pre(pre, pre_plan, C), ev_post(post, post_plan, C);
    std::vector<T> x(C), y(C);
    for (int64_t r = r0; r < r1; ++r) {
      const auto ip = row_ptrs(in, r * C);
      T* xp = x.data();
      ev_pre.run(ip.data(), &xp, C);
      masked_softmax_row(x.data(), mask ? mask + (r / g.rows_per_mask) * C : nullptr, C, y.data());
      const T* yp = y.data();
      T* op = out + r * C;
      ev_post.run(&yp, &op, C);
    }
  });
}

template <typename T>
void backward(const Program& pre, const Program& post_bwd, const Program& pre_bwd, const std::vector<const T*>& in,
              const uint8_t* mask, const T* grad, const Geometry& g, const std::vector<T*>& grads_in) {
  using V = at::vec::Vectorized<T>;
  const Plan pre_plan(pre), post_bwd_plan(post_bwd), pre_bwd_plan(pre_bwd);
  const int64_t C = g.cols;
  const size_t n_in = in.size();
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(C, 1));
  at::parallel_for(0, g.rows, grain, [&](int64_t r0, int64_t r1) {
    Evaluator<T> ev_pre(pre, pre_plan, C), ev_post_bwd(post_bwd, post_bwd_plan, C),
        ev_pre_bwd(pre_bwd, pre_bwd_plan, C);
    std::vector<T> x(C), y(C), gy(C);
    std::vector<const T*> bwd_in(n_in + 1);
    std::vector<T*> bwd_out(n_in);
    for (int64_t r = r0; r < r1; ++r) {
      const auto ip = row_ptrs(in, r * C);
      T* xp = x.data();
      ev_pre.run(ip.data(), &xp, C);
      masked_softmax_row(x.data(), mask ? mask + (r / g.rows_per_mask) * C : nullptr, C, y.data());
      const T* pb_in[2] = {y.data(), grad + r * C};
      T* gyp = gy.data();
      ev_post_bwd.run(pb_in, &gyp, C);
      const T dot = at::vec::map2_reduce_all<T>([](V a, V b) { return a * b; },
                                                 [](V a, V b) { return a + b; }, gy.data(), y.data(), C);
      // gx = y * (gy - dot), written over x (no longer needed); masked entries have y = 0.
      const V vdot(dot);
      at::vec::map2([vdot](V yv, V gv) { return yv * (gv - vdot); }, x.data(), y.data(), gy.data(), C);
      for (size_t i = 0; i < n_in; ++i) bwd_in[i] = ip[i];
      bwd_in[n_in] = x.data();
      for (size_t i = 0; i < n_in; ++i) bwd_out[i] = grads_in[i] + r * C;
      ev_pre_bwd.run(bwd_in.data(), bwd_out.data(), C);
    }
  });
}

#define AUTOBERT_INSTANTIATE(T)                                                                           \
  template void forward<T>(const Program&, const Program&, const std::vector<const T*>&, const uint8_t*,  \
                           const Geometry&, T*);                                                           \
  template void backward<T>(const Program&, const Program&, const Program&, const std::vector<const T*>&, \
                            const uint8_t*, const T*, const Geometry&, const std::vector<T*>&);
AUTOBERT_INSTANTIATE(float)
AUTOBERT_INSTANTIATE(double)
#undef AUTOBERT_INSTANTIATE

}  // namespace autobert::softmax
