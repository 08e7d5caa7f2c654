// Linear: y = x W^T + b, x [N, in] -> [N, out]. Initialised like PyTorch's nn.Linear, from
// the generator it is built with (weight first, then bias).
#pragma once

#include "stn/framework/random.h"
#include "stn/layers/module.h"

namespace stn {

struct LinearOptions {
  int in = 0;
  int out = 0;
  bool bias = true;
};

// The parameter count of a Linear of these options, without building one.
std::size_t parameter_count(const LinearOptions& options);

class Linear : public Module {
 public:
  Linear(const LinearOptions& options, Generator& generator);
  Var forward(Var input) override;
  std::string describe() const override;

  Parameter& weight() { return *weight_; }
  Parameter* bias() { return bias_; }
  const LinearOptions& options() const { return options_; }

 private:
  LinearOptions options_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
};

}  // namespace stn
