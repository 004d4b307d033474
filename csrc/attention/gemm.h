// Small register-blocked GEMM for the attention tiles: C (+)= A * B, where B rows and C rows are
// contiguous with a column count that is a multiple of the vector width (the callers pad), and A
// is read through two strides so both A and A^T tiles work without a transpose copy.
#pragma once
#include "program/vec.h"

#include <algorithm>
#include <cstdint>

namespace autobert::attention {

using at::vec::Vectorized;

// Micro-kernel: C[MR x NV*W] (+)= sum_p A(i, p) * B[p, :] for p < K, A(i, p) = A[i*rsa + p*csa].
// MR*NV accumulators stay in vector registers for the whole K loop.
template <typename T, int MR, int NV, bool ACC>
inline void micro(int64_t K, const T* __restrict__ A, int64_t rsa, int64_t csa, const T* __restrict__ B, int64_t ldb,
                  T* __restrict__ C, int64_t ldc) {
  using V = Vectorized<T>;
  constexpr int W = V::size();
  V acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = ACC ? V::loadu(C + i * ldc + v * W) : V(T(0));
  }
  for (int64_t p = 0; p < K; ++p) {
    V b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b[v] = V::loadu(B + p * ldb + v * W);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const V a(A[i * rsa + p * csa]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = at::vec::fmadd(a, b[v], acc[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v].store(C + i * ldc + v * W);
  }
}

// Register tile: 6 rows x 4 vectors = 24 accumulators (fits the 32 AVX-512 registers with the
// 4 B vectors and a broadcast; with 16 AVX2 registers the compiler spills a little, still correct).
constexpr int kMR = 6;
constexpr int kNV = 4;

template <typename T, bool ACC, int MR>
inline void micro_cols(int nv, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t ldb, T* C,
                       int64_t ldc) {
  switch (nv) {
    case 4: micro<T, MR, 4, ACC>(K, A, rsa, csa, B, ldb, C, ldc); break;
    case 3: micro<T, MR, 3, ACC>(K, A, rsa, csa, B, ldb, C, ldc); break;
    case 2: micro<T, MR, 2, ACC>(K, A, rsa, csa, B, ldb, C, ldc); break;
    default: micro<T, MR, 1, ACC>(K, A, rsa, csa, B, ldb, C, ldc); break;
  }
}

// C[M x Ncols] (+)= A[M x K] * B[K x Ncols]; Ncols must be a multiple of the vector width.
// Column panels outer, row tiles inner: a K x 64 panel of B stays in L1 across the row tiles.
template <typename T, bool ACC>
inline void gemm(int64_t M, int64_t Ncols, int64_t K, const T* A, int64_t rsa, int64_t csa, const T* B, int64_t ldb,
                 T* C, int64_t ldc) {
  constexpr int W = Vectorized<T>::size();
  for (int64_t j = 0; j < Ncols; j += kNV * W) {
    const int nv = static_cast<int>(std::min<int64_t>(kNV, (Ncols - j) / W));
    const T* Bj = B + j;
    T* Cj = C + j;
    int64_t i = 0;
    for (; i + kMR <= M; i += kMR) micro_cols<T, ACC, kMR>(nv, K, A + i * rsa, rsa, csa, Bj, ldb, Cj + i * ldc, ldc);
    const T* Ai = A + i * rsa;
    T* Ci = Cj + i * ldc;
    switch (M - i) {
      case 5: micro_cols<T, ACC, 5>(nv, K, Ai, rsa, csa, Bj, ldb, Ci, ldc); break;
      case 4: micro_cols<T, ACC, 4>(nv, K, Ai, rsa, csa, Bj, ldb, Ci, ldc); break;
      case 3: micro_cols<T, ACC, 3>(nv, K, Ai, rsa, csa, Bj, ldb, Ci, ldc); break;
      case 2: micro_cols<T, ACC, 2>(nv, K, Ai, rsa, csa, Bj, ldb, Ci, ldc); break;
      case 1: micro_cols<T, ACC, 1>(nv, K, Ai, rsa, csa, Bj, ldb, Ci, ldc); break;
      default: break;
    }
  }
}

}  // namespace autobert::attention
