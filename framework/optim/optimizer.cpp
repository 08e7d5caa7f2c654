#include "stn/framework/optim/optimizer.h"

#include <cmath>
#include <stdexcept>
#include <string>

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

// Tape::backward and zero_grad() give a gradient its value's shape, and the state buffers are
// sized when the optimizer is built: a mismatch means a value replaced by one of another
// shape since, and the loops below would run past a buffer.
void check_sizes(const char* optimizer, const Parameter& p, std::size_t state_size) {
  const std::size_t n = p.value.size();
  if (p.grad.size() != n || state_size != n)
    throw std::logic_error(std::string(optimizer) + ": parameter '" + p.name + "' has " + std::to_string(n) +
                           " values but a gradient of " + std::to_string(p.grad.size()) + " and optimizer state of " +
                           std::to_string(state_size) + " (its value changed shape after the optimizer was built)");
}

// check_sizes for every parameter before any is updated; state_size(k, p) is the size of
// parameter k's state.
template <class StateSize>
void check_all_sizes(const char* optimizer, const std::vector<ParameterGroup>& groups, StateSize state_size) {
  std::size_t k = 0;
  for (const ParameterGroup& group : groups)
    for (const Parameter* p : group.parameters) check_sizes(optimizer, *p, state_size(k++, *p));
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
  check_all_sizes("SGD", groups_, [&](std::size_t k, const Parameter& p) {
    return velocity_.empty() ? p.value.size() : velocity_[k].size();
  });
  std::size_t k = 0;
  for (ParameterGroup& group : groups_) {
    const float lr = learning_rate_ * group.learning_rate_scale;
    for (Parameter* p : group.parameters) {
      float* w = p->value.data();
      const float* g = p->grad.data();
      const std::size_t n = p->value.size();
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
  check_all_sizes("Adam", groups_, [&](std::size_t k, const Parameter&) { return first_moment_[k].size(); });
  ++steps_;
  const double t = static_cast<double>(steps_);
  const float correction1 = static_cast<float>(1.0 - std::pow(options_.beta1, t));
  const float correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(options_.beta2, t)));
  std::size_t k = 0;
  for (ParameterGroup& group : groups_) {
    const float step_size = learning_rate_ * group.learning_rate_scale / correction1;
    for (Parameter* p : group.parameters) {
      const std::size_t n = p->value.size();
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
