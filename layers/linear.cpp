#include "stn/layers/linear.h"

#include <stdexcept>

#include "stn/framework/init.h"
#include "stn/framework/ops/linalg.h"

namespace stn {

std::size_t parameter_count(const LinearOptions& options) {
  const auto in = static_cast<std::size_t>(options.in), out = static_cast<std::size_t>(options.out);
  return out * in + (options.bias ? out : 0);
}

Linear::Linear(const LinearOptions& options, Generator& generator) : options_(options) {
  if (options.in <= 0 || options.out <= 0)
    throw std::invalid_argument("Linear: sizes must be positive, got in " +
                                std::to_string(options.in) + ", out " + std::to_string(options.out));
  const auto in = static_cast<std::size_t>(options.in), out = static_cast<std::size_t>(options.out);
  Tensor w = empty({out, in});
  init::pytorch_default(w, in, generator);
  weight_ = &register_parameter("weight", std::move(w));
  if (options.bias) {
    Tensor b = empty({out});
    init::pytorch_default(b, in, generator);
    bias_ = &register_parameter("bias", std::move(b));
  }
}

Var Linear::forward(Var input) {
  Tape& tape = input.tape();
  // The bias's entry first, then the weight's, whatever the compiler's order of evaluating
  // arguments (the order the tape printouts in docs/autodiff.md show).
  const Var bias = bias_ ? tape.param(*bias_) : Var{};
  const Var weight = tape.param(*weight_);
  return linear(input, weight, bias);
}

std::string Linear::describe() const {
  return "Linear(" + std::to_string(options_.in) + " -> " + std::to_string(options_.out) +
         (options_.bias ? "" : ", no bias") + ")";
}

}  // namespace stn
