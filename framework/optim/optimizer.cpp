#include "stn/framework/optim/optimizer.h"

#include <cmath>
#include <stdexcept>

namespace stn {

Optimizer::Optimizer(std::vector<ParameterGroup> groups) : groups_(std::move(groups)) {
  for (const ParameterGroup& group : groups_) {
    if (!(group.learning_rate_scale >= 0.0f))
      throw std::invalid_argument("optimizer: a parameter group's learning-rate scale must be >= 0");
    for (const Parameter* p : group.parameters)
      if (!p) throw std::invalid_argument("optimizer: null parameter");
  }
}

void Optimizer::zero_grad() {
  for (ParameterGroup& group : groups_)
    for (Parameter* p : group.parameters) p->zero_grad();
}

namespace {

void check_learning_rate(const char* name, float learning_rate) {
  if (!(learning_rate > 0.0f) || !std::isfinite(learning_rate))
    throw std::invalid_argument(std::string(name) + ": learning rate must be positive, got " +
                                std::to_string(learning_rate));
}

std::vector<Tensor> zeros_like_all(const std::vector<ParameterGroup>& groups) {
  std::vector<Tensor> buffers;
  for (const ParameterGroup& group : groups)
    for (const Parameter* p : group.parameters) buffers.push_back(zeros(shape_of(p->value)));
  return buffers;
}

}  // namespace

SGD::SGD(std::vector<ParameterGroup> groups, const SgdOptions& options)
    : Optimizer(std::move(groups)), options_(options) {
  check_learning_rate("SGD", options.learning_rate);
  if (options.momentum < 0.0f || options.weight_decay < 0.0f)
    throw std::invalid_argument("SGD: momentum and weight decay must be >= 0");
  if (options.nesterov && options.momentum == 0.0f)
    throw std::invalid_argument("SGD: Nesterov momentum needs momentum > 0");
  learning_rate_ = options.learning_rate;
  if (options.momentum > 0.0f) velocity_ = zeros_like_all(groups_);
}

void SGD::step() {
  std::size_t k = 0;
  for (ParameterGroup& group : groups_) {
    const float lr = learning_rate_ * group.learning_rate_scale;
    for (Parameter* p : group.parameters) {
      float* w = p->value.data();
      const float* g = p->grad.data();
      const std::size_t n = p->value.size();
      if (p->grad.size() != n) {  // never reached by a backward: nothing to do
        ++k;
        continue;
      }
      if (velocity_.empty()) {
        for (std::size_t i = 0; i < n; ++i) w[i] -= lr * (g[i] + options_.weight_decay * w[i]);
      } else {
        float* v = velocity_[k].data();
        const float m = options_.momentum;
        for (std::size_t i = 0; i < n; ++i) {
          float d = g[i] + options_.weight_decay * w[i];
          v[i] = m * v[i] + d;
          w[i] -= lr * (options_.nesterov ? d + m * v[i] : v[i]);
        }
      }
      ++k;
    }
  }
  ++steps_;
}

std::vector<std::pair<std::string, Tensor*>> SGD::state() {
  std::vector<std::pair<std::string, Tensor*>> out;
  std::size_t k = 0;
  for (ParameterGroup& group : groups_)
    for (Parameter* p : group.parameters) {
      if (!velocity_.empty()) out.emplace_back(p->name + ".momentum", &velocity_[k]);
      ++k;
    }
  return out;
}

Adam::Adam(std::vector<ParameterGroup> groups, const AdamOptions& options)
    : Optimizer(std::move(groups)), options_(options) {
  check_learning_rate("Adam", options.learning_rate);
  if (!(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1))
    throw std::invalid_argument("Adam: betas must be in [0, 1)");
  learning_rate_ = options.learning_rate;
  first_moment_ = zeros_like_all(groups_);
  second_moment_ = zeros_like_all(groups_);
}

void Adam::step() {
  ++steps_;
  const double t = static_cast<double>(steps_);
  const float correction1 = static_cast<float>(1.0 - std::pow(options_.beta1, t));
  const float correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(options_.beta2, t)));
  std::size_t k = 0;
  for (ParameterGroup& group : groups_) {
    const float step_size = learning_rate_ * group.learning_rate_scale / correction1;
    for (Parameter* p : group.parameters) {
      const std::size_t n = p->value.size();
      if (p->grad.size() != n) {
        ++k;
        continue;
      }
      float* w = p->value.data();
      const float* g = p->grad.data();
      float* m = first_moment_[k].data();
      float* v = second_moment_[k].data();
      for (std::size_t i = 0; i < n; ++i) {
        float d = g[i] + options_.weight_decay * w[i];
        m[i] = options_.beta1 * m[i] + (1.0f - options_.beta1) * d;
        v[i] = options_.beta2 * v[i] + (1.0f - options_.beta2) * d * d;
        w[i] -= step_size * m[i] / (std::sqrt(v[i]) / correction2_sqrt + options_.epsilon);
      }
      ++k;
    }
  }
}

std::vector<std::pair<std::string, Tensor*>> Adam::state() {
  std::vector<std::pair<std::string, Tensor*>> out;
  std::size_t k = 0;
  for (ParameterGroup& group : groups_)
    for (Parameter* p : group.parameters) {
      out.emplace_back(p->name + ".adam_m", &first_moment_[k]);
      out.emplace_back(p->name + ".adam_v", &second_moment_[k]);
      ++k;
    }
  return out;
}

}  // namespace stn
