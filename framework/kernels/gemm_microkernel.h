// The register-blocked GEMM micro-kernel (internal to gemm.cpp).
//
// One call computes a tile of C with ROWS rows and VECTORS SIMD vectors of columns, keeping
// all ROWS * VECTORS accumulators in registers (6 x 4, 8 x 3, 14 x 2, 16 x 1: 24 to 28 of
// the 32 zmm registers), over `depth` steps of k:
//   tile[i, :] += a(i, k) * b_panel[k, :]
// b_panel is a packed, zero-padded panel [depth, VECTORS * lanes]. a(i, k) is read in place
// as a broadcast, either from a row-major block (a[i * stride + k]) or a k-major block
// (a[k * stride + i], which is also the layout of a packed edge block), so A is never copied
// except for the rows of an edge tile.
#pragma once

#include <cstddef>

#include <xsimd/xsimd.hpp>

namespace stn::kernels::detail {

using Batch = xsimd::batch<float>;
constexpr int kLanes = static_cast<int>(Batch::size);

// Where a finished tile goes: C (i, j) of the tile is c[i * ldc + j], or c[j * ldc + i] when
// the product was computed transposed (C^T = B^T A^T). Only rows x columns of the tile are
// valid; the rest came from zero padding and is dropped.
struct TileTarget {
  float* c;
  std::ptrdiff_t ldc;
  bool transposed;
  float alpha;
  float beta;
  int rows;
  int columns;
};

// Writes the valid rows x columns of a tile held in memory ([rows][width]) to its target:
// edge tiles and transposed tiles, once per tile per depth block.
void store_tile_through_memory(const float* tile, int width, const TileTarget& target);

// tile[i, :] += sum over k of a(i, k) * b_panel[k, :], for depth >= 1 steps (the driver never
// passes an empty block; a do-while has no zero-trip path on which the accumulators would
// have to live in memory).
template <int ROWS, int VECTORS, bool kRowMajorA>
[[gnu::always_inline]] inline void accumulate(int depth, const float* a, std::ptrdiff_t a_stride,
                                              const float* b_panel,
                                              Batch (&accumulator)[ROWS][VECTORS]) {
  // Loops fully unrolled early, so the accumulators become registers, not an array.
#pragma GCC unroll 32
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < VECTORS; ++v) accumulator[i][v] = Batch(0.0f);
  do {
    Batch b[VECTORS];
#pragma GCC unroll 4
    for (int v = 0; v < VECTORS; ++v) b[v] = Batch::load_aligned(b_panel + v * kLanes);
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i) {
      const Batch a_ik(kRowMajorA ? a[i * a_stride] : a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < VECTORS; ++v) accumulator[i][v] = xsimd::fma(a_ik, b[v], accumulator[i][v]);
    }
    b_panel += VECTORS * kLanes;
    a += kRowMajorA ? 1 : a_stride;
  } while (--depth > 0);
}

// Edge and transposed tiles: a separate function, so that the main path's accumulators are
// never addressed (GCC would otherwise spill them to the stack after every tile).
template <int ROWS, int VECTORS, bool kRowMajorA>
[[gnu::noinline]] void micro_kernel_through_memory(int depth, const float* a,
                                                   std::ptrdiff_t a_stride, const float* b_panel,
                                                   const TileTarget& target) {
  Batch accumulator[ROWS][VECTORS];
  accumulate<ROWS, VECTORS, kRowMajorA>(depth, a, a_stride, b_panel, accumulator);
  alignas(64) float tile[ROWS * VECTORS * kLanes];
  for (int i = 0; i < ROWS; ++i)
    for (int v = 0; v < VECTORS; ++v) accumulator[i][v].store_aligned(tile + (i * VECTORS + v) * kLanes);
  store_tile_through_memory(tile, VECTORS * kLanes, target);
}

template <int ROWS, int VECTORS, bool kRowMajorA>
void micro_kernel(int depth, const float* a, std::ptrdiff_t a_stride, const float* b_panel,
                  const TileTarget& target) {
  if (target.transposed || target.rows < ROWS || target.columns < VECTORS * kLanes) {
    micro_kernel_through_memory<ROWS, VECTORS, kRowMajorA>(depth, a, a_stride, b_panel, target);
    return;
  }
  Batch accumulator[ROWS][VECTORS];
  accumulate<ROWS, VECTORS, kRowMajorA>(depth, a, a_stride, b_panel, accumulator);
  // Straight from the registers; beta == 0 does not read C.
  const Batch alpha(target.alpha);
  if (target.beta == 0.0f) {
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < VECTORS; ++v)
        (alpha * accumulator[i][v]).store_unaligned(target.c + i * target.ldc + v * kLanes);
  } else {
    const Batch beta(target.beta);
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < VECTORS; ++v) {
        float* c = target.c + i * target.ldc + v * kLanes;
        xsimd::fma(alpha, accumulator[i][v], beta * Batch::load_unaligned(c)).store_unaligned(c);
      }
  }
}

}  // namespace stn::kernels::detail
