// Shared pieces of the attention kernels: operand packing, key-mask bits, the linear-score fast
// path and tile sizes. Included only from the attention kernel translation units.
#pragma once
#include "program/vec.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "attention/streaming_attention.h"

namespace autobert::attention {

using at::vec::Vectorized;

// Horizontal reductions of one vector (Vectorized<double> has no reduce_add/reduce_max members).
template <typename T>
inline T hsum(const Vectorized<T>& v) {
  return at::vec::vec_reduce_all<T>([](Vectorized<T> a, Vectorized<T> b) { return a + b; }, v);
}
template <typename T>
inline T hmax(const Vectorized<T>& v) {
  return at::vec::vec_reduce_all<T>([](Vectorized<T> a, Vectorized<T> b) { return at::vec::maximum(a, b); }, v);
}

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }
inline int64_t ceil_div(int64_t n, int64_t m) { return (n + m - 1) / m; }

// If `reg` flows to the program's single output through copy/mulc only, the program is
// t = scale * reg: return true and the scale (such programs skip the interpreter entirely).
inline bool linear_in(const program::Program& p, int32_t reg, double* scale) {
  if (p.outputs.size() != 1) return false;
  int32_t r = p.outputs[0];
  double c = 1.0;
  while (r != reg) {
    if (r < p.n_inputs) return false;
    const program::Instr& ins = p.instrs[r - p.n_inputs];
    if (ins.op == program::kMulc) {
      c *= ins.imm;
    } else if (ins.op != program::kCopy) {
      return false;
    }
    r = ins.a;
  }
  *scale = c;
  return true;
}

// Per batch row, a vector-bit mask over the padded keys (all-ones = keep, 0 = drop; padding
// columns are dropped) and, per key block, whether it has none / some / only kept keys.
template <typename T>
struct KeyMask {
  enum Block : int8_t { kEmpty = 0, kPartial = 1, kFull = 2 };
  int64_t nk_pad = 0, block = 0, n_blocks = 0;
  std::vector<T> bits;       // (B, nk_pad)
  std::vector<int8_t> kind;  // (B, n_blocks)

  KeyMask(const uint8_t* mask, int64_t B, int64_t Nk, int64_t nk_pad_, int64_t block_)
      : nk_pad(nk_pad_), block(block_), n_blocks(ceil_div(nk_pad_, block_)), bits(B * nk_pad_), kind(B * n_blocks) {
    T ones;
    std::memset(&ones, 0xff, sizeof(T));
    for (int64_t b = 0; b < B; ++b) {
      T* row = bits.data() + b * nk_pad;
      for (int64_t j = 0; j < nk_pad; ++j) row[j] = (j < Nk && (!mask || mask[b * Nk + j])) ? ones : T(0);
      for (int64_t kb = 0; kb < n_blocks; ++kb) {
        const int64_t j0 = kb * block, j1 = std::min(nk_pad, j0 + block);
        int64_t kept = 0;
        for (int64_t j = j0; j < j1; ++j) kept += (j < Nk && (!mask || mask[b * Nk + j])) ? 1 : 0;
        kind[b * n_blocks + kb] = kept == 0 ? kEmpty : (kept == j1 - j0 ? kFull : kPartial);
      }
    }
  }
  const T* row(int64_t b, int64_t kb) const { return bits.data() + b * nk_pad + kb * block; }
  Block at(int64_t b, int64_t kb) const { return static_cast<Block>(kind[b * n_blocks + kb]); }
};

// dst (rows x ld_dst, zero padded to ld_dst columns and rows_pad rows) = src (rows x cols, rows ld_src apart).
template <typename T>
inline void pack_rows(const T* src, int64_t rows, int64_t cols, T* dst, int64_t rows_pad, int64_t ld_dst,
                      int64_t ld_src) {
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(dst + r * ld_dst, src + r * ld_src, cols * sizeof(T));
    std::fill(dst + r * ld_dst + cols, dst + (r + 1) * ld_dst, T(0));
  }
  std::fill(dst + rows * ld_dst, dst + rows_pad * ld_dst, T(0));
}

// dst (cols x w) = rows r0 .. r0+w of src (n_rows x cols, rows ld_src apart), transposed; rows past
// n_rows are zero.
template <typename T>
inline void pack_panel_transposed(const T* src, int64_t n_rows, int64_t cols, int64_t ld_src, int64_t r0, int64_t w,
                                  T* dst) {
  for (int64_t c = 0; c < cols; ++c) {
    T* d = dst + c * w;
    for (int64_t j = 0; j < w; ++j) d[j] = (r0 + j < n_rows) ? src[(r0 + j) * ld_src + c] : T(0);
  }
}

// K^T of a whole (b, h) slice cut into key blocks: block kb (width w = min(block, ld - kb*block))
// is a contiguous (cols x w) panel at dst + kb*block*cols. Contiguous panels keep the GEMM's B
// rows w apart (a stride of ld would map a panel's rows onto the same few L1 sets).
template <typename T>
inline void pack_transposed_blocked(const T* src, int64_t rows, int64_t cols, int64_t ld_src, T* dst, int64_t ld,
                                    int64_t block) {
  for (int64_t j0 = 0; j0 < ld; j0 += block) {
    pack_panel_transposed(src, rows, cols, ld_src, j0, std::min(block, ld - j0), dst + j0 * cols);
  }
}

}  // namespace autobert::attention
