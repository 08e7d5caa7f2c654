// Matrix products.
#pragma once

#include "stn/framework/tape.h"

namespace stn {

// [M, K] x [K, N] -> [M, N]; batched [B, M, K] x [B, K, N] -> [B, M, N]; and
// [B, M, K] x [K, N] -> [B, M, N] (one right-hand matrix shared by the batch).
Var matmul(Var a, Var b);

// y = x W^T + b, PyTorch's layout: x [N, in], weight [out, in], bias [out] (or Var{} for none).
Var linear(Var x, Var weight, Var bias = Var{});

}  // namespace stn
