// Conv2d: [N, in, H, W] -> [N, out, H', W']. Initialised like PyTorch's nn.Conv2d, from the
// generator it is built with (weight first, then bias).
#pragma once

#include "stn/framework/ops/conv.h"
#include "stn/framework/random.h"
#include "stn/layers/module.h"

namespace stn {

struct Conv2dLayerOptions {
  int in = 0;
  int out = 0;
  int kernel = 3;
  int stride = 1;
  int padding = 0;
  int dilation = 1;
  bool bias = true;
};

// What a Conv2d of these options gives, without building one: the output side of a square
// input of `input` pixels (<= 0 when the kernel does not fit), and the parameter count.
int output_side(const Conv2dLayerOptions& options, int input);
std::size_t parameter_count(const Conv2dLayerOptions& options);

class Conv2d : public Module {
 public:
  Conv2d(const Conv2dLayerOptions& options, Generator& generator);
  Var forward(Var input) override;
  std::string describe() const override;

  Parameter& weight() { return *weight_; }
  Parameter* bias() { return bias_; }

 private:
  Conv2dLayerOptions options_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
};

}  // namespace stn
