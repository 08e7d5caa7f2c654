// Data movement for gemm.cpp (internal): the oriented problem, packing of op(B) panels and of
// edge rows of op(A), and stores of tiles that cannot go straight from registers to C.
#pragma once

#include <cstddef>

namespace stn::kernels::detail {

// The product in one orientation: C' [M, N] = alpha * a [M, K] * b [K, N] + beta * C', where
// a(i, k) = a[i * lda + k] (row-major) or a[k * lda + i], b(k, j) = b[k * ldb + j] (row-major)
// or b[j * ldb + k], and C'(i, j) = c[i * ldc + j], or c[j * ldc + i] when transposed.
struct Problem {
  int M, N, K;
  const float* a;
  std::ptrdiff_t lda;
  bool a_row_major;
  const float* b;
  std::ptrdiff_t ldb;
  bool b_row_major;
  float alpha, beta;
  float* c;
  std::ptrdiff_t ldc;
  bool c_transposed;
};

// b [k0 : k0 + kb, j0 : j0 + nb] -> consecutive panels of `width` columns, each [kb, panel
// width] with the panel width rounded up to whole vectors and the padding zeroed.
void pack_b(const Problem& p, int k0, int kb, int j0, int nb, int width, float* out);

// Rows [i0, i0 + rows) of a over [k0, k0 + kb), k-major [kb, tile_rows], zero-padded.
void pack_a_edge(const Problem& p, int i0, int rows, int k0, int kb, int tile_rows, float* out);

}  // namespace stn::kernels::detail
