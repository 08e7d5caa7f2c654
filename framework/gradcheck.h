// Checks an op's (or any function's) backward against central finite differences.
//
// The function maps Vars to one output Var of any shape. The check projects the output on a
// fixed random direction w (L = sum(w * f(x)), summed in double), and compares for every
// input element the analytic dL/dx from the tape with (L(x + eps) - L(x - eps)) / (2 eps).
//
// Tolerances, for float32 values: the finite difference carries a truncation error of
// O(eps^2 f''') and a rounding error of about sqrt(n) * 6e-8 * |f| / eps. With the defaults
// (eps = 1e-3, inputs and outputs of order 1) both are well below 1e-3, so an element passes
// when |analytic - numeric| <= atol + rtol * |numeric| with atol = 1e-3 and rtol = 1e-2.
// A wrong backward is off by O(1), not by 1e-3. Keep inputs away from kinks (ReLU at 0,
// max-pool ties, integer sampling points): finite differences across a kink are meaningless.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "framework/tape.h"

namespace stn {

struct GradcheckOptions {
  double eps = 1e-3;
  double atol = 1e-3;
  double rtol = 1e-2;
  std::uint64_t seed = 0;            // for the projection direction w
  std::vector<bool> requires_grad;  // which inputs to check; empty = all
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  std::size_t elements_checked = 0;
  std::string message;  // the first failing element (input, index, analytic, numeric)
};

using GradFunction = std::function<Var(const std::vector<Var>&)>;

GradcheckResult gradcheck(const GradFunction& function, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace stn
