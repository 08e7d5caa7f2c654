#include "stn/framework/kernels/gemm.h"

namespace stn::kernels {

void gemm_reference(bool transpose_a, bool transpose_b, int M, int N, int K, float alpha,
                    const float* A, int lda, const float* B, int ldb, float beta, float* C,
                    int ldc) {
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int k = 0; k < K; ++k) {
        float a = transpose_a ? A[k * lda + i] : A[i * lda + k];
        float b = transpose_b ? B[j * ldb + k] : B[k * ldb + j];
        acc += static_cast<double>(a) * b;
      }
      float previous = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
      C[i * ldc + j] = alpha * static_cast<float>(acc) + previous;
    }
}

}  // namespace stn::kernels
