#include "stn/layers/conv.h"

#include <stdexcept>

#include "stn/framework/init.h"

namespace stn {

int output_side(const Conv2dLayerOptions& options, int input) {
  return conv2d_output_size(input, options.kernel,
                            {.stride = options.stride, .padding = options.padding, .dilation = options.dilation});
}

std::size_t parameter_count(const Conv2dLayerOptions& options) {
  const auto in = static_cast<std::size_t>(options.in), out = static_cast<std::size_t>(options.out);
  const auto k = static_cast<std::size_t>(options.kernel);
  return out * in * k * k + (options.bias ? out : 0);
}

Conv2d::Conv2d(const Conv2dLayerOptions& options, Generator& generator) : options_(options) {
  if (options.in <= 0 || options.out <= 0 || options.kernel <= 0)
    throw std::invalid_argument("Conv2d: channels and kernel must be positive, got in " +
                                std::to_string(options.in) + ", out " + std::to_string(options.out) +
                                ", kernel " + std::to_string(options.kernel));
  const auto in = static_cast<std::size_t>(options.in), out = static_cast<std::size_t>(options.out);
  const auto k = static_cast<std::size_t>(options.kernel);
  const std::size_t fan_in = in * k * k;
  Tensor w = empty({out, in, k, k});
  init::pytorch_default(w, fan_in, generator);
  weight_ = &register_parameter("weight", std::move(w));
  if (options.bias) {
    Tensor b = empty({out});
    init::pytorch_default(b, fan_in, generator);
    bias_ = &register_parameter("bias", std::move(b));
  }
}

Var Conv2d::forward(Var input) {
  Tape& tape = input.tape();
  Conv2dOptions conv{.stride = options_.stride, .padding = options_.padding, .dilation = options_.dilation};
  // The bias's entry first, then the weight's, whatever the compiler's order of evaluating
  // arguments (the order the tape printouts in docs/autodiff.md show).
  const Var bias = bias_ ? tape.param(*bias_) : Var{};
  const Var weight = tape.param(*weight_);
  return conv2d(input, weight, bias, conv);
}

std::string Conv2d::describe() const {
  std::string s = "Conv2d(" + std::to_string(options_.in) + " -> " + std::to_string(options_.out) +
                  ", kernel " + std::to_string(options_.kernel) + "x" + std::to_string(options_.kernel);
  if (options_.stride != 1) s += ", stride " + std::to_string(options_.stride);
  if (options_.padding != 0) s += ", padding " + std::to_string(options_.padding);
  if (options_.dilation != 1) s += ", dilation " + std::to_string(options_.dilation);
  return s + ")";
}

}  // namespace stn
