// Reductions. `axes` may be negative (counted from the end); an empty list means every axis.
// keepdim keeps reduced axes with size 1. sum(x) over everything gives a 0-d (scalar) Var.
#pragma once

#include <vector>

#include "framework/tape.h"

namespace stn {

Var sum(Var x, const std::vector<int>& axes = {}, bool keepdim = false);
Var mean(Var x, const std::vector<int>& axes = {}, bool keepdim = false);

}  // namespace stn
