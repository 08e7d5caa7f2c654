#include "stn/framework/gradcheck.h"

#include <cmath>
#include <sstream>

#include "stn/framework/autodiff.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/reduce.h"
#include "stn/framework/random.h"

namespace stn {

namespace {

double projected(const Tensor& output, const Tensor& direction) {
  double total = 0.0;
  for (std::size_t i = 0; i < output.size(); ++i)
    total += static_cast<double>(output.data()[i]) * direction.data()[i];
  return total;
}

Tensor random_direction(const Shape& shape, Generator& generator) {
  Tensor direction = empty(shape);
  for (std::size_t i = 0; i < direction.size(); ++i) direction.data()[i] = generator.uniform(-1.0f, 1.0f);
  return direction;
}

// L = sum(w * f(x)) recorded on `tape` with the engine's ops, w a constant.
Var projection(Tape& tape, const GradFunction& function, const std::vector<Var>& vars,
               const Tensor& direction) {
  Var output = function(vars);
  if (output.shape() != shape_of(direction))
    throw std::logic_error("gradcheck: the function's output shape changed between calls");
  return sum(mul(output, tape.constant(direction)));
}

// A scalar function of the inputs, differentiated numerically element by element.
using ScalarOfInputs = std::function<double(const std::vector<Tensor>&)>;

double richardson(const ScalarOfInputs& scalar, std::vector<Tensor>& perturbed, std::size_t i,
                  std::size_t j, double eps) {
  const float original = perturbed[i].data()[j];
  auto central = [&](double h) {
    perturbed[i].data()[j] = static_cast<float>(original + h);
    const double plus = scalar(perturbed);
    const double up = perturbed[i].data()[j];
    perturbed[i].data()[j] = static_cast<float>(original - h);
    const double minus = scalar(perturbed);
    const double down = perturbed[i].data()[j];
    perturbed[i].data()[j] = original;
    return (plus - minus) / (up - down);  // the step actually taken in float
  };
  const double d1 = central(eps), d2 = central(2 * eps);
  return (4 * d1 - d2) / 3;
}

void compare(GradcheckResult& result, const GradcheckOptions& options, const char* what,
             std::size_t input, const Tensor& value, std::size_t element, double got,
             double numeric) {
  const double error = std::abs(got - numeric);
  result.max_abs_error = std::max(result.max_abs_error, error);
  ++result.elements_checked;
  if (!(error <= options.atol + options.rtol * std::abs(numeric)) && result.ok) {
    result.ok = false;
    std::ostringstream message;
    message << what << ": input " << input << " " << shape_string(value) << " element " << element
            << ": analytic " << got << " vs numeric " << numeric << " (error " << error << ")";
    result.message = message.str();
  }
}

void finish(GradcheckResult& result, const char* what) {
  if (!result.ok) return;
  std::ostringstream message;
  message << what << " ok: " << result.elements_checked << " elements, max error "
          << result.max_abs_error;
  result.message = message.str();
}

bool checked(const GradcheckOptions& options, std::size_t i) {
  return options.requires_grad.empty() ||
         (i < options.requires_grad.size() && options.requires_grad[i]);
}

}  // namespace

GradcheckResult gradcheck(const GradFunction& function, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  // Analytic gradients from one backward pass seeded with the direction.
  Tape tape;
  std::vector<Var> vars;
  for (std::size_t i = 0; i < inputs.size(); ++i) vars.push_back(tape.input(inputs[i], checked(options, i)));
  Var output = function(vars);
  Generator generator(options.seed);
  const Tensor direction = random_direction(output.shape(), generator);
  tape.backward(output, direction);

  // Inputs keep requires_grad in the numeric evaluations too: the function may itself be a
  // gradient (stn::grad inside), as in the third-order checks.
  const ScalarOfInputs loss = [&](const std::vector<Tensor>& x) {
    Tape t;
    std::vector<Var> v;
    for (std::size_t i = 0; i < x.size(); ++i) v.push_back(t.input(x[i], checked(options, i)));
    return projected(function(v).value(), direction);
  };
  GradcheckResult result;
  std::vector<Tensor> perturbed = inputs;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!checked(options, i)) continue;
    const Tensor& analytic = vars[i].grad();
    for (std::size_t j = 0; j < inputs[i].size(); ++j) {
      const double got = shape_of(analytic) == shape_of(inputs[i]) ? analytic.data()[j] : 0.0;
      compare(result, options, "gradcheck", i, inputs[i], j, got,
              richardson(loss, perturbed, i, j, options.eps));
    }
  }
  finish(result, "gradcheck");
  return result;
}

GradcheckResult gradgradcheck(const GradFunction& function, const std::vector<Tensor>& inputs,
                              const GradcheckOptions& options) {
  std::vector<std::size_t> wrt;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (checked(options, i)) wrt.push_back(i);

  // The output direction w, from the output's shape, and one direction v per checked input.
  Tensor direction;
  {
    Tape t;
    std::vector<Var> v;
    for (std::size_t i = 0; i < inputs.size(); ++i) v.push_back(t.input(inputs[i], checked(options, i)));
    Generator generator(options.seed);
    direction = random_direction(function(v).shape(), generator);
  }
  Generator second(options.seed + 1);
  std::vector<Tensor> tangents;
  for (std::size_t i : wrt) tangents.push_back(random_direction(shape_of(inputs[i]), second));

  // S(x) = sum_k <dL/dx_k, v_k> with first-order gradients of either backward.
  auto first_order = [&](Tape& t, const std::vector<Tensor>& x, bool create_graph,
                         std::vector<Var>& vars) {
    for (std::size_t i = 0; i < x.size(); ++i) vars.push_back(t.input(x[i], checked(options, i)));
    std::vector<Var> targets;
    for (std::size_t i : wrt) targets.push_back(vars[i]);
    return grad(projection(t, function, vars, direction), targets, {.create_graph = create_graph});
  };
  const ScalarOfInputs s_of = [&](const std::vector<Tensor>& x) {
    Tape t;
    std::vector<Var> vars;
    std::vector<Var> g = first_order(t, x, false, vars);
    double total = 0;
    for (std::size_t k = 0; k < g.size(); ++k) total += projected(g[k].value(), tangents[k]);
    return total;
  };

  GradcheckResult result;
  Tape tape;
  std::vector<Var> vars;
  std::vector<Var> recorded = first_order(tape, inputs, true, vars);
  {  // The recorded first-order gradients must equal the fast backward's.
    Tape t;
    std::vector<Var> unused;
    std::vector<Var> fast = first_order(t, inputs, false, unused);
    for (std::size_t k = 0; k < wrt.size(); ++k)
      for (std::size_t j = 0; j < fast[k].numel(); ++j)
        compare(result, options, "gradgradcheck (first order, recorded vs not)", wrt[k],
                inputs[wrt[k]], j, recorded[k].value().data()[j], fast[k].value().data()[j]);
  }
  const Var s = inner_product(tape, recorded, tangents);
  std::vector<Var> targets;
  for (std::size_t i : wrt) targets.push_back(vars[i]);
  std::vector<Var> analytic;
  if (s.valid() && s.requires_grad()) {
    analytic = grad(s, targets);
  } else {  // the first-order gradients do not depend on x: every second derivative is 0
    for (std::size_t i : wrt) analytic.push_back(tape.constant(zeros(shape_of(inputs[i]))));
  }
  std::vector<Tensor> perturbed = inputs;
  for (std::size_t k = 0; k < wrt.size(); ++k)
    for (std::size_t j = 0; j < inputs[wrt[k]].size(); ++j)
      compare(result, options, "gradgradcheck", wrt[k], inputs[wrt[k]], j,
              analytic[k].value().data()[j], richardson(s_of, perturbed, wrt[k], j, options.eps));
  finish(result, "gradgradcheck");
  return result;
}

}  // namespace stn
