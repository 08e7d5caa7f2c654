#include "framework/gradcheck.h"

#include <cmath>
#include <sstream>

#include "framework/random.h"

namespace stn {

namespace {

double projected(const Tensor& output, const Tensor& direction) {
  double total = 0.0;
  for (std::size_t i = 0; i < output.size(); ++i)
    total += static_cast<double>(output.data()[i]) * direction.data()[i];
  return total;
}

double evaluate(const GradFunction& function, const std::vector<Tensor>& inputs,
                const Tensor& direction) {
  Tape tape;
  NoGradScope no_grad(tape);
  std::vector<Var> vars;
  for (const Tensor& t : inputs) vars.push_back(tape.input(t));
  return projected(function(vars).value(), direction);
}

}  // namespace

GradcheckResult gradcheck(const GradFunction& function, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  auto checked = [&](std::size_t i) {
    return options.requires_grad.empty() || (i < options.requires_grad.size() && options.requires_grad[i]);
  };

  // Analytic gradients from one backward pass seeded with the direction.
  Tape tape;
  std::vector<Var> vars;
  for (std::size_t i = 0; i < inputs.size(); ++i) vars.push_back(tape.input(inputs[i], checked(i)));
  Var output = function(vars);
  Generator generator(options.seed);
  Tensor direction = empty(output.shape());
  for (std::size_t i = 0; i < direction.size(); ++i) direction.data()[i] = generator.uniform(-1.0f, 1.0f);
  tape.backward(output, direction);

  GradcheckResult result;
  std::vector<Tensor> perturbed = inputs;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!checked(i)) continue;
    const Tensor& analytic = vars[i].grad();
    for (std::size_t j = 0; j < inputs[i].size(); ++j) {
      float original = inputs[i].data()[j];
      perturbed[i].data()[j] = static_cast<float>(original + options.eps);
      double plus = evaluate(function, perturbed, direction);
      perturbed[i].data()[j] = static_cast<float>(original - options.eps);
      double minus = evaluate(function, perturbed, direction);
      perturbed[i].data()[j] = original;
      // The step actually taken in float, not the nominal eps.
      double step = static_cast<double>(static_cast<float>(original + options.eps)) -
                    static_cast<double>(static_cast<float>(original - options.eps));
      double numeric = (plus - minus) / step;
      double got = shape_of(analytic) == shape_of(inputs[i]) ? analytic.data()[j] : 0.0;
      double error = std::abs(got - numeric);
      result.max_abs_error = std::max(result.max_abs_error, error);
      ++result.elements_checked;
      if (!(error <= options.atol + options.rtol * std::abs(numeric)) && result.ok) {
        result.ok = false;
        std::ostringstream message;
        message << "gradcheck: input " << i << " " << shape_string(inputs[i]) << " element "
                << j << ": analytic " << got << " vs numeric " << numeric << " (error " << error
                << ")";
        result.message = message.str();
      }
    }
  }
  if (result.ok) {
    std::ostringstream message;
    message << "gradcheck ok: " << result.elements_checked << " elements, max error "
            << result.max_abs_error;
    result.message = message.str();
  }
  return result;
}

}  // namespace stn
