// Reductions. `axes` may be negative (counted from the end); an empty list means every axis.
// keepdim keeps reduced axes with size 1. sum(x) over everything gives a 0-d (scalar) Var.
#pragma once

#include <vector>

#include "stn/framework/tape.h"

namespace stn {

Var sum(Var x, const std::vector<int>& axes = {}, bool keepdim = false);
Var mean(Var x, const std::vector<int>& axes = {}, bool keepdim = false);

// The two halves of broadcasting, each the other's backward: broadcast_to repeats x along
// the axes where it has size 1 (or is missing on the left) up to `shape`; sum_to sums a
// broadcast value back down to `shape`. Both return x itself when the shapes are equal.
Var broadcast_to(Var x, const Shape& shape);
Var sum_to(Var x, const Shape& shape);

}  // namespace stn
