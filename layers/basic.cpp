#include "stn/layers/basic.h"

#include <stdexcept>

#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/loss.h"
#include "stn/framework/ops/shape.h"

namespace stn {

namespace {
std::string window_text(const Pool2dOptions& o) {
  std::string s = std::to_string(o.kernel) + "x" + std::to_string(o.kernel);
  int stride = o.stride < 0 ? o.kernel : o.stride;
  if (stride != o.kernel) s += ", stride " + std::to_string(stride);
  if (o.padding) s += ", padding " + std::to_string(o.padding);
  return s;
}
}  // namespace

Var MaxPool2d::forward(Var input) { return max_pool2d(input, options_); }
std::string MaxPool2d::describe() const { return "MaxPool2d(" + window_text(options_) + ")"; }

Var AvgPool2d::forward(Var input) { return avg_pool2d(input, options_); }
std::string AvgPool2d::describe() const { return "AvgPool2d(" + window_text(options_) + ")"; }

Var ReLU::forward(Var input) { return relu(input); }

Var Flatten::forward(Var input) { return flatten(input, 1); }

Dropout::Dropout(float probability, Generator& generator)
    : probability_(probability), generator_(&generator) {
  if (!(probability >= 0.0f && probability < 1.0f))
    throw std::invalid_argument("Dropout: probability must be in [0, 1), got " + std::to_string(probability));
}
Var Dropout::forward(Var input) { return dropout(input, probability_, is_training(), *generator_); }
std::string Dropout::describe() const { return "Dropout(p = " + std::to_string(probability_) + ")"; }

}  // namespace stn
