// Optimizers update parameters from their accumulated gradients. Parameters come in groups,
// each with a learning-rate multiplier (the localisation network of a spatial transformer
// often trains better with a smaller one).
//
//   stn::SGD optimizer({{model.parameters()}}, {.learning_rate = 0.01f, .momentum = 0.9f});
//   ... tape.backward(loss); optimizer.step(); optimizer.zero_grad();
#pragma once

#include <string>
#include <vector>

#include "stn/framework/tape.h"

namespace stn {

struct ParameterGroup {
  std::vector<Parameter*> parameters;
  float learning_rate_scale = 1.0f;
};

class Optimizer {
 public:
  explicit Optimizer(std::vector<ParameterGroup> groups);
  virtual ~Optimizer() = default;

  virtual void step() = 0;
  void zero_grad();

  float learning_rate() const { return learning_rate_; }
  void set_learning_rate(float learning_rate) { learning_rate_ = learning_rate; }
  const std::vector<ParameterGroup>& groups() const { return groups_; }
  std::size_t steps_taken() const { return steps_; }
  // For resuming from a checkpoint (Adam's bias correction depends on it).
  void set_steps_taken(std::size_t steps) { steps_ = steps; }

  // The optimizer's per-parameter state (momentum buffers, Adam moments), named
  // "<parameter>.<slot>", for checkpoints.
  virtual std::vector<std::pair<std::string, Tensor*>> state() = 0;

 protected:
  std::vector<ParameterGroup> groups_;
  float learning_rate_ = 0.0f;
  std::size_t steps_ = 0;
};

struct SgdOptions {
  float learning_rate = 0.01f;
  float momentum = 0.0f;
  bool nesterov = false;
  float weight_decay = 0.0f;
};

// SGD as PyTorch defines it: g = grad + weight_decay * w; v = momentum * v + g;
// w -= lr * (nesterov ? g + momentum * v : v).
class SGD : public Optimizer {
 public:
  SGD(std::vector<ParameterGroup> groups, const SgdOptions& options);
  void step() override;
  std::vector<std::pair<std::string, Tensor*>> state() override;

 private:
  SgdOptions options_;
  std::vector<Tensor> velocity_;  // one per parameter, in group order
};

struct AdamOptions {
  float learning_rate = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  float weight_decay = 0.0f;
};

// Adam (Kingma & Ba) with PyTorch's bias correction and L2 weight decay.
class Adam : public Optimizer {
 public:
  Adam(std::vector<ParameterGroup> groups, const AdamOptions& options);
  void step() override;
  std::vector<std::pair<std::string, Tensor*>> state() override;

 private:
  AdamOptions options_;
  std::vector<Tensor> first_moment_, second_moment_;
};

}  // namespace stn
