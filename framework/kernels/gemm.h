// Single-precision GEMM on raw row-major buffers:
//   C[M, N] = alpha * op(A)[M, K] * op(B)[K, N] + beta * C
// op(A) = A ([M, K], leading dimension lda) or A^T (A stored [K, M]); likewise B.
// beta == 0 overwrites C without reading it (NaNs in C are not propagated).
// `gemm` is the fast path used by every op; `gemm_reference` is the plain triple loop the
// tests compare it with. Both are single-threaded: callers parallelise over the batch.
#pragma once

namespace stn::kernels {

void gemm(bool transpose_a, bool transpose_b, int M, int N, int K, float alpha, const float* A,
          int lda, const float* B, int ldb, float beta, float* C, int ldc);

void gemm_reference(bool transpose_a, bool transpose_b, int M, int N, int K, float alpha,
                    const float* A, int lda, const float* B, int ldb, float beta, float* C,
                    int ldc);

}  // namespace stn::kernels
