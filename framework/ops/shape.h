// Ops that move data without arithmetic. All outputs are fresh contiguous tensors.
#pragma once

#include <cstdint>
#include <vector>

#include "stn/framework/tape.h"

namespace stn {

// New shape with the same number of elements; one entry may be -1 (inferred).
Var reshape(Var x, const std::vector<std::int64_t>& shape);
// Merges axes start_axis..end of x into one: [N, C, H, W] -> [N, C*H*W] for start_axis = 1.
Var flatten(Var x, int start_axis = 1);
// Output axis i is input axis order[i].
Var permute(Var x, const std::vector<int>& order);
Var transpose(Var x, int axis0, int axis1);
// Joins along `axis`; every other dimension must agree.
Var concat(const std::vector<Var>& xs, int axis);
// Elements [start, end) along `axis` (negative start/end count from the end, end clamped).
Var slice(Var x, int axis, std::int64_t start, std::int64_t end);

}  // namespace stn
