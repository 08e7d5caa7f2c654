// Forward mode and Hessian-vector products, built on the reverse-mode tape.
//
//   stn::JvpResult r = stn::jvp(f, {x}, {v});     // r.output = f(x), r.jvp = J_f(x) v
//   stn::HvpResult h = stn::hvp(loss, {w}, {v});  // h.output = loss(w), h.hvp[0] = H(w) v
//
// jvp is the double-vjp construction, not a forward tangent pass: with a dummy u of the
// output's shape (a leaf that requires a gradient; its value never matters),
//
//   g(u) = J^T u               stn::grad(<f(x), u>, x, {.create_graph = true}),
//   J v  = d<g(u), v>/du       stn::grad once more, with respect to u,
//
// because g is linear in u. Why this and not tangents propagated forward op by op: every op
// already has a differentiable backward (its VjpFn), and that is all this needs, so there is
// no second set of per-op derivative rules (one jvp rule per op) to write, test against
// PyTorch and keep in sync with the backward rules; a new op that is differentiable twice
// gets forward mode for free. The price: about two backward passes on top of the forward
// (the recorded one, then one over it), and the tape holds the forward, the recorded
// backward and the entries of its backward at once, where a tangent pass would cost about
// one more forward. For what forward mode is used for here (directional derivatives,
// Jacobian columns, checks on small functions) that is the right trade.
//
// hvp is reverse over reverse: g = dL/dx recorded with create_graph, then d<g, v>/dx. One
// recorded backward and one backward of it: the Hessian is never formed.
//
// Both take the function the way gradcheck does (stn::GradFunction)
// and plain tensors for the point and the directions, run on a private tape, and return
// tensors: the results are values, not Vars on a caller's tape (a caller who wants to
// differentiate a Jacobian-vector product again writes the two stn::grad calls itself, as
// in docs/autodiff.md).
#pragma once

#include <functional>
#include <vector>

#include "stn/framework/tensor.h"

namespace stn {

class Var;

// The same alias as in framework/gradcheck.h (redeclaring it is allowed): Vars in, one Var out.
using GradFunction = std::function<Var(const std::vector<Var>&)>;

struct JvpResult {
  Tensor output;  // f(inputs), any shape
  Tensor jvp;     // sum_k J_k tangents[k], the output's shape
};

// J v of `function` at `inputs`: one tangent per input, each of that input's shape.
// Throws std::invalid_argument when the counts or shapes differ.
JvpResult jvp(const GradFunction& function, const std::vector<Tensor>& inputs,
              const std::vector<Tensor>& tangents);

struct HvpResult {
  float output = 0.0f;       // the function's value (it must have one element)
  std::vector<Tensor> grad;  // dL/dx_k, one per input
  std::vector<Tensor> hvp;   // sum_j d2L/dx_k dx_j vectors[j], one per input
};

// H v of the one-element `function` at `inputs`, one direction per input (cross terms
// between inputs included). Throws std::invalid_argument for mismatched counts or shapes,
// ShapeError when the function's output has more than one element.
HvpResult hvp(const GradFunction& function, const std::vector<Tensor>& inputs,
              const std::vector<Tensor>& vectors);

class Tape;

// sum_k sum(a_k * b_k) recorded on `tape`, the b_k constants of the a_k's shapes: the
// directional derivative <g, v> that jvp, hvp and gradgradcheck differentiate once more.
// An invalid Var when `a` is empty.
Var inner_product(Tape& tape, const std::vector<Var>& a, const std::vector<Tensor>& b);

}  // namespace stn
