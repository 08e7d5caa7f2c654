#include "stn/framework/optim/schedule.h"

#include <cmath>
#include <stdexcept>

namespace stn {

float Schedule::learning_rate(float base, std::size_t iteration) const {
  float rate = base;
  switch (kind) {
    case Kind::Constant:
      break;
    case Kind::Step:
      if (step_every > 0) rate = base * std::pow(step_factor, static_cast<float>(iteration / step_every));
      break;
    case Kind::Cosine: {
      double progress = total > 0 ? std::min(1.0, static_cast<double>(iteration) / static_cast<double>(total)) : 1.0;
      double cosine = 0.5 * (1.0 + std::cos(3.141592653589793 * progress));
      rate = static_cast<float>(base * (minimum_fraction + (1.0 - minimum_fraction) * cosine));
      break;
    }
  }
  if (warmup > 0 && iteration < warmup) rate *= static_cast<float>(iteration + 1) / static_cast<float>(warmup);
  return rate;
}

std::string Schedule::describe() const {
  std::string s;
  switch (kind) {
    case Kind::Constant: s = "constant"; break;
    case Kind::Step: s = "step (x" + std::to_string(step_factor) + " every " + std::to_string(step_every) + ")"; break;
    case Kind::Cosine: s = "cosine over " + std::to_string(total); break;
  }
  if (warmup) s += ", warm-up " + std::to_string(warmup);
  return s;
}

Schedule::Kind parse_schedule_kind(const std::string& name) {
  if (name == "constant") return Schedule::Kind::Constant;
  if (name == "step") return Schedule::Kind::Step;
  if (name == "cosine") return Schedule::Kind::Cosine;
  throw std::invalid_argument("unknown schedule '" + name + "' (expected constant, step or cosine)");
}

}  // namespace stn
