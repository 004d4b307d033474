// Fused masked AdamW on CPU: one pass over (param, grad, exp_avg, exp_avg_sq, mask) per element,
// vectorised with at::vec and split over threads by element count across all tensors.
//
// at::vec picks its implementation from CPU_CAPABILITY_* macros, which ATen defines only inside its
// own per-ISA dispatch units; an extension unit has to choose one itself, before any ATen include.
// Take the widest the compile flags (-march) allow. Vectorized lives in the inline namespace
// at::vec::CPU_CAPABILITY, so these definitions never clash with another unit's choice.
#if !defined(CPU_CAPABILITY)
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#elif defined(__AVX2__) && defined(__FMA__)
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#else
#define CPU_CAPABILITY DEFAULT
#define CPU_CAPABILITY_DEFAULT
#endif
#endif

// GCC 12 flags its own _mm512_undefined_* placeholders inside sqrt/convert intrinsics as
// "may be used uninitialized" (a known false positive); keep the build log readable.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "adamw/masked_adamw.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "adamw/masked_adamw_vec.h"

namespace autobert::adamw {
namespace {

// Elements per parallel work unit: large enough that the per-unit bookkeeping is noise, small
// enough that two threads split a 10M-element step evenly.
constexpr int64_t kGrain = 32768;

Coeffs make_coeffs(const Hyper& h, int64_t step) {
  // Same double-precision expressions, in the same order, as torch.optim.adam._multi_tensor_adam
  // (Python floats), so the scalars handed to the vector code carry identical bits.
  const double s = static_cast<double>(step);
  const double bc1 = 1.0 - std::pow(h.beta1, s);
  const double bc2 = 1.0 - std::pow(h.beta2, s);
  Coeffs c;
  c.apply_decay = h.weight_decay != 0.0;
  c.decay = 1.0 - h.lr * h.weight_decay;
  c.lerp_weight = 1.0 - h.beta1;
  c.beta2 = h.beta2;
  c.one_minus_beta2 = 1.0 - h.beta2;
  c.neg_step_size = (h.lr / bc1) * -1.0;
  c.bc2_sqrt = std::pow(bc2, 0.5);
  c.eps = h.eps;
  return c;
}

// Updates elements [begin, end) of one slot.
void update_slot_range(const Slot& s, const Coeffs& c, int64_t begin, int64_t end) {
  switch (s.dtype) {
    case Dtype::kFloat32:
      update_range<float>(s, VecCoeffs<float>(c), begin, end);
      break;
    case Dtype::kFloat64:
      update_range<double>(s, VecCoeffs<double>(c), begin, end);
      break;
    case Dtype::kBFloat16:
      update_range_bf16(s, VecCoeffs<float>(c), begin, end);
      break;
  }
}

}  // namespace

void masked_adamw_cpu(const Slot* slots, int64_t num_slots, const Hyper& hyper) {
  // offsets[i] = first global element index of slot i; the threads split [0, total).
  std::vector<int64_t> offsets(num_slots + 1, 0);
  std::vector<Coeffs> coeffs(num_slots);
  for (int64_t i = 0; i < num_slots; ++i) {
    offsets[i + 1] = offsets[i] + slots[i].numel;
    coeffs[i] = make_coeffs(hyper, slots[i].step);
  }
  const int64_t total = offsets[num_slots];
  if (total == 0) return;
  at::parallel_for(0, total, kGrain, [&](int64_t begin, int64_t end) {
    // First slot whose range reaches past `begin` (empty slots are skipped by the search).
    int64_t i = std::upper_bound(offsets.begin(), offsets.end(), begin) - offsets.begin() - 1;
    for (; i < num_slots && offsets[i] < end; ++i) {
      const int64_t lo = std::max(begin, offsets[i]) - offsets[i];
      const int64_t hi = std::min(end, offsets[i + 1]) - offsets[i];
      if (lo < hi) update_slot_range(slots[i], coeffs[i], lo, hi);
    }
  });
}

}  // namespace autobert::adamw
