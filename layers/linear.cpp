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
  return linear(input, tape.param(*weight_), bias_ ? tape.param(*bias_) : Var{});
}

std::string Linear::describe() const {
  return "Linear(" + std::to_string(options_.in) + " -> " + std::to_string(options_.out) +
         (options_.bias ? "" : ", no bias") + ")";
}

}  // namespace stn
