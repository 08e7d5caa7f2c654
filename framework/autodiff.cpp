#include "stn/framework/autodiff.h"

#include <stdexcept>
#include <string>

#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/reduce.h"
#include "stn/framework/tape.h"

namespace stn {

namespace {

void check_directions(const char* op, const char* what, const std::vector<Tensor>& inputs,
                      const std::vector<Tensor>& directions) {
  if (inputs.empty()) throw std::invalid_argument(std::string(op) + ": no inputs to differentiate with respect to");
  if (directions.size() != inputs.size())
    throw std::invalid_argument(std::string(op) + ": " + std::to_string(inputs.size()) + " inputs but " +
                                std::to_string(directions.size()) + " " + what + " (one per input)");
  for (std::size_t k = 0; k < inputs.size(); ++k)
    if (shape_of(directions[k]) != shape_of(inputs[k]))
      throw std::invalid_argument(std::string(op) + ": " + what + " " + std::to_string(k) + " has shape " +
                                  shape_string(directions[k]) + ", input " + std::to_string(k) +
                                  " has shape " + shape_string(inputs[k]));
}

std::vector<Var> leaves(Tape& tape, const std::vector<Tensor>& inputs) {
  std::vector<Var> vars;
  vars.reserve(inputs.size());
  for (const Tensor& x : inputs) vars.push_back(tape.input(x, true));
  return vars;
}

}  // namespace

Var inner_product(Tape& tape, const std::vector<Var>& a, const std::vector<Tensor>& b) {
  Var total;
  for (std::size_t k = 0; k < a.size(); ++k) {
    Var term = sum(mul(a[k], tape.constant(b[k])));
    total = total.valid() ? add(total, term) : term;
  }
  return total;
}

JvpResult jvp(const GradFunction& function, const std::vector<Tensor>& inputs,
              const std::vector<Tensor>& tangents) {
  check_directions("jvp", "tangents", inputs, tangents);
  Tape tape;
  const std::vector<Var> x = leaves(tape, inputs);
  const Var y = function(x);
  tape.check_var("jvp: the function's output", y);
  // J^T u is linear in u, so the value of u never reaches d<J^T u, v>/du = J v.
  const Var u = tape.input(zeros(y.shape()), true);
  const std::vector<Var> vjp = grad(sum(mul(y, u)), x, {.create_graph = true});
  const Var directional = inner_product(tape, vjp, tangents);
  return {y.value(), grad(directional, {u})[0].value()};
}

HvpResult hvp(const GradFunction& function, const std::vector<Tensor>& inputs,
              const std::vector<Tensor>& vectors) {
  check_directions("hvp", "vectors", inputs, vectors);
  Tape tape;
  const std::vector<Var> x = leaves(tape, inputs);
  const Var loss = function(x);
  tape.check_var("hvp: the function's output", loss);
  const std::vector<Var> g = grad(loss, x, {.create_graph = true});  // throws unless one element
  const std::vector<Var> hv = grad(inner_product(tape, g, vectors), x);
  HvpResult result;
  result.output = loss.value().data()[0];
  for (std::size_t k = 0; k < x.size(); ++k) {
    result.grad.push_back(g[k].value());
    result.hvp.push_back(hv[k].value());
  }
  return result;
}

}  // namespace stn
