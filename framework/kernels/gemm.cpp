// The fast single-precision GEMM: cache blocking in the style of GotoBLAS / BLIS, with the
// vector dimension along the columns of C (row-major C gets contiguous vector stores).
//
//   for each depth block (k0, kb)            kb: a packed B micro-panel [kb, width] ~ 48 KiB
//     for each column block (j0, nb)         packed B block [kb, nb] stays in L2
//       pack op(B) into zero-padded panels [kb, width]
//       for each row block (i0, mb)          the A rows it reads stay in L2
//         for each panel, for each tile of `rows` rows: micro-kernel (registers)
//
// A is not packed: the micro-kernel broadcasts op(A)'s elements straight from A, which is
// cheap when read row-major (one stream per tile row) or k-major (one contiguous run per k).
// In the model's skinny shapes (N = 16 columns, K = 1568) every element of A is used once,
// so packing it would cost as much as the arithmetic. Only the last, partial tile of rows
// is copied into a zero-padded block. When N is small and M large, computing C^T instead
// fills the vectors better; a small cost model picks the orientation and the tile shape.
#include "stn/framework/kernels/gemm.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <vector>

#include "stn/framework/kernels/buffers.h"
#include "stn/framework/kernels/gemm_microkernel.h"
#include "stn/framework/kernels/gemm_pack.h"
#include "stn/framework/kernels/gemm_plan.h"

namespace stn::kernels {

namespace {

using detail::kLanes;
using detail::pack_a_edge;
using detail::pack_b;
using detail::Problem;
using detail::TileTarget;

using MicroKernel = void (*)(int, const float*, std::ptrdiff_t, const float*, const TileTarget&);

struct KernelEntry {
  int rows;
  int vectors;
  MicroKernel row_major_a;
  MicroKernel k_major_a;
};

template <int ROWS, int VECTORS>
constexpr KernelEntry kernel_entry() {
  return {ROWS, VECTORS, &detail::micro_kernel<ROWS, VECTORS, true>,
          &detail::micro_kernel<ROWS, VECTORS, false>};
}

// Each plan's shape, plus narrower ones with the same rows for a plan's last column panel.
constexpr KernelEntry kKernels[] = {
    kernel_entry<6, 4>(),  kernel_entry<6, 3>(), kernel_entry<6, 2>(), kernel_entry<6, 1>(),
    kernel_entry<8, 3>(),  kernel_entry<8, 2>(), kernel_entry<8, 1>(),
    kernel_entry<14, 2>(), kernel_entry<14, 1>(),
    kernel_entry<16, 1>(),
};

const KernelEntry& find_kernel(int rows, int vectors) {
  for (const KernelEntry& kernel : kKernels)
    if (kernel.rows == rows && kernel.vectors == vectors) return kernel;
  throw std::logic_error("gemm: no micro-kernel " + std::to_string(rows) + "x" +
                         std::to_string(vectors));
}

// Block sizes in bytes. The B micro-panel [kb, width] is reused by every row tile: up to
// 48 KiB, more than Zen 4's 32 KiB L1d, measured best among 12..64 KiB (longer depth blocks
// mean fewer reloads of C, and the panel streams well from L2). The packed B block and the
// A rows of a row block stay in L2 (1 MiB per core).
constexpr int kPanelBytes = 48 * 1024;
constexpr int kL2BlockBytes = 320 * 1024;

int divide_up(int value, int divisor) { return (value + divisor - 1) / divisor; }

int depth_block(int width) {
  return std::clamp(kPanelBytes / (width * static_cast<int>(sizeof(float))) / 8 * 8, 64, 1024);
}

Problem orient(bool transposed, bool transpose_a, bool transpose_b, int M, int N, int K,
               float alpha, const float* A, int lda, const float* B, int ldb, float beta,
               float* C, int ldc) {
  if (!transposed)
    return {M, N, K, A, lda, !transpose_a, B, ldb, !transpose_b, alpha, beta, C, ldc, false};
  // C^T = op(B)^T op(A)^T: a'(i, k) = op(B)(k, i) and b'(k, j) = op(A)(j, k).
  return {N, M, K, B, ldb, transpose_b, A, lda, transpose_a, alpha, beta, C, ldc, true};
}

void run(const GemmPlan& plan, const Problem& p) {
  thread_local AlignedBuffer packed_b_buffer, edge_buffer;
  const int tile_rows = plan.rows;
  const int width = plan.vectors * kLanes;
  const int kc = depth_block(width);
  const int block_bytes = kc * static_cast<int>(sizeof(float));
  const int nc = std::max(width, kL2BlockBytes / block_bytes / width * width);
  const int mc = std::max(tile_rows, kL2BlockBytes / block_bytes / tile_rows * tile_rows);
  const KernelEntry& full_kernel = find_kernel(tile_rows, plan.vectors);

  for (int k0 = 0; k0 < p.K; k0 += kc) {
    const int kb = std::min(kc, p.K - k0);
    const float beta = k0 == 0 ? p.beta : 1.0f;
    for (int j0 = 0; j0 < p.N; j0 += nc) {
      const int nb = std::min(nc, p.N - j0);
      float* panels = scratch(packed_b_buffer, static_cast<std::size_t>(kb) * round_up(nb, kLanes));
      pack_b(p, k0, kb, j0, nb, width, panels);
      for (int i0 = 0; i0 < p.M; i0 += mc) {
        const int mb = std::min(mc, p.M - i0);
        const int full_rows = mb / tile_rows * tile_rows;
        float* edge = nullptr;
        if (full_rows < mb) {
          edge = scratch(edge_buffer, static_cast<std::size_t>(kb) * tile_rows);
          pack_a_edge(p, i0 + full_rows, mb - full_rows, k0, kb, tile_rows, edge);
        }
        const float* panel = panels;
        for (int jp = 0; jp < nb; jp += width) {
          const int columns = std::min(width, nb - jp);
          const int vectors = divide_up(columns, kLanes);
          const KernelEntry& kernel =
              vectors == plan.vectors ? full_kernel : find_kernel(tile_rows, vectors);
          for (int i = 0; i < mb; i += tile_rows) {
            const int row = i0 + i, column = j0 + jp;
            TileTarget target{p.c_transposed ? p.c + column * p.ldc + row : p.c + row * p.ldc + column,
                              p.ldc, p.c_transposed, p.alpha, beta,
                              std::min(tile_rows, mb - i), columns};
            if (target.rows < tile_rows)
              kernel.k_major_a(kb, edge, tile_rows, panel, target);
            else if (p.a_row_major)
              kernel.row_major_a(kb, p.a + row * p.lda + k0, p.lda, panel, target);
            else
              kernel.k_major_a(kb, p.a + k0 * p.lda + row, p.lda, panel, target);
          }
          panel += static_cast<std::ptrdiff_t>(kb) * vectors * kLanes;
        }
      }
    }
  }
}

void scale(int M, int N, float beta, float* C, int ldc) {
  for (int i = 0; i < M; ++i) {
    float* row = C + static_cast<std::ptrdiff_t>(i) * ldc;
    if (beta == 0.0f) std::fill(row, row + N, 0.0f);
    else if (beta != 1.0f)
      for (int j = 0; j < N; ++j) row[j] *= beta;
  }
}

// The most tile rows that share one L1 set (Zen 4: 64 sets of 8 lines of 64 bytes) when a
// tile broadcasts from `rows` rows of a row-major A: with a power-of-two leading dimension
// (1024 floats in the linear layer) all rows land in the same set and, beyond 8, every
// broadcast misses L1.
int rows_per_l1_set(int rows, std::ptrdiff_t lda) {
  constexpr int kSets = 64, kLineFloats = 16;
  int count[kSets] = {};
  int most = 0;
  for (int i = 0; i < rows; ++i)
    most = std::max(most, ++count[(i * lda / kLineFloats) % kSets]);
  return most;
}

// Rough cycles on a core issuing one 16-lane FMA and two loads per cycle.
double estimated_cycles(const GemmPlan& plan, bool transpose_a, bool transpose_b, int M, int N,
                        int K, int lda) {
  const int rows = plan.transposed ? N : M, columns = plan.transposed ? M : N;
  const bool a_row_major = plan.transposed ? transpose_b : !transpose_a;
  const bool b_row_major = plan.transposed ? transpose_a : !transpose_b;
  const int vectors = divide_up(columns, kLanes);
  const int tiles = divide_up(rows, plan.rows);
  // A broadcast that misses L1 costs an L2 line fill (about 2 cycles).
  const bool thrashing = a_row_major && rows_per_l1_set(plan.rows, lda) > 8;
  auto tile_step = [&](int tile_vectors) {
    double loads = thrashing ? plan.rows * 2.0 : (plan.rows + tile_vectors) * 0.5;
    return std::max<double>(plan.rows * tile_vectors, loads);
  };
  // Measured on Zen 4 against the 8-row kernels: 6 rows leave the FMA pipes a little less
  // busy; 14 and 16 rows read row-major need more address registers than x86 has.
  const double efficiency = plan.rows == 8 ? 1.0 : plan.rows == 6 ? 1.04
                            : a_row_major ? 1.15 : 1.06;
  const int remainder = vectors % plan.vectors;
  double compute = static_cast<double>(tiles) * K * efficiency *
                   ((vectors / plan.vectors) * tile_step(plan.vectors) +
                    (remainder ? tile_step(remainder) : 0.0));
  const int depth_blocks = divide_up(K, depth_block(plan.vectors * kLanes));
  double packing = (b_row_major ? 2.0 * vectors : 0.35 * columns) * K;
  double edge = rows % plan.rows ? 1.0 * K * plan.rows : 0.0;
  double stores = static_cast<double>(depth_blocks) * tiles * plan.rows * vectors * 2.0;
  if (plan.transposed) stores += 1.5 * depth_blocks * tiles * plan.rows * columns;
  return compute + packing + edge + stores;
}

}  // namespace

const std::vector<GemmPlan>& gemm_plans() {
  static const std::vector<GemmPlan> plans = [] {
    std::vector<GemmPlan> all;
    for (bool transposed : {false, true})
      for (auto [rows, vectors] : {std::pair{6, 4}, {8, 3}, {14, 2}, {16, 1}})
        all.push_back({rows, vectors, transposed});
    return all;
  }();
  return plans;
}

GemmPlan choose_gemm_plan(bool transpose_a, bool transpose_b, int M, int N, int K, int lda, int ldb) {
  GemmPlan best;
  double best_cycles = 0.0;
  for (const GemmPlan& plan : gemm_plans()) {
    // The transposed orientation reads op(B)^T as its A.
    const int a_stride = plan.transposed ? ldb : lda;
    const double cycles = estimated_cycles(plan, transpose_a, transpose_b, M, N, K, a_stride);
    if (best_cycles == 0.0 || cycles < best_cycles) best = plan, best_cycles = cycles;
  }
  return best;
}

std::string to_string(const GemmPlan& plan) {
  return std::to_string(plan.rows) + "x" + std::to_string(plan.vectors) + (plan.transposed ? "T" : "");
}

void gemm_with_plan(const GemmPlan& plan, bool transpose_a, bool transpose_b, int M, int N,
                    int K, float alpha, const float* A, int lda, const float* B, int ldb,
                    float beta, float* C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale(M, N, beta, C, ldc);
    return;
  }
  run(plan, orient(plan.transposed, transpose_a, transpose_b, M, N, K, alpha, A, lda, B, ldb,
                   beta, C, ldc));
}

void gemm(bool transpose_a, bool transpose_b, int M, int N, int K, float alpha, const float* A,
          int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  gemm_with_plan(choose_gemm_plan(transpose_a, transpose_b, M, N, K, lda, ldb), transpose_a,
                 transpose_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace stn::kernels
