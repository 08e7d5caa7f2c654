// Linear: y = x W^T + b, x [N, in] -> [N, out]. Initialised like PyTorch's nn.Linear.
#pragma once

#include "layers/module.h"

namespace stn {

struct LinearOptions {
  int in = 0;
  int out = 0;
  bool bias = true;
};

class Linear : public Module {
 public:
  explicit Linear(const LinearOptions& options);
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
