// Checks an op's (or any function's) backward against finite differences, to first order
// (gradcheck) and to second order (gradgradcheck).
//
// The function maps Vars to one output Var of any shape. The check projects the output on a
// fixed random direction w (L = sum(w * f(x)), summed in double), and compares for every
// input element the analytic dL/dx from the tape with a finite difference of L.
//
// Differencing: Richardson extrapolation of two central differences,
//   D(h) = (L(x + h) - L(x - h)) / 2h,   numeric = (4 D(h) - D(2h)) / 3,
// whose truncation error is O(h^4 L^(5)) instead of O(h^2 L'''). That allows a larger step
// (h = 2^-8 by default, the stencil reaching 2h = 0.0078), so float32 rounding in L, about
// sqrt(n) * 6e-8 * |f| / h, stays near 1e-4 for outputs of order 1, and an element passes
// when |analytic - numeric| <= atol + rtol * |numeric| with atol = 5e-4 and rtol = 2e-3: a
// backward 1% wrong fails (a test shows it). Keep inputs at least 2h away from kinks (ReLU
// at 0, max-pool ties, integer sampling points): finite differences across a kink are
// meaningless.
//
// gradgradcheck checks the backward recorded by stn::grad with create_graph: with a second
// random direction v, S(x) = sum_k <dL/dx_k, v_k>; its gradient from the tape (a double
// backward) is compared with finite differences of S computed from first-order gradients
// (the fast, unrecorded backward). It also checks that the recorded first-order gradients
// equal the unrecorded ones. Second derivatives 5% wrong fail (a test shows it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "stn/framework/tape.h"

namespace stn {

struct GradcheckOptions {
  double eps = 1.0 / 256;
  double atol = 5e-4;
  double rtol = 2e-3;
  std::uint64_t seed = 0;            // for the projection directions w (and v)
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

GradcheckResult gradgradcheck(const GradFunction& function, const std::vector<Tensor>& inputs,
                              const GradcheckOptions& options = {});

}  // namespace stn
