// Learning-rate schedules: the learning rate at iteration t (0-based) from the base rate.
#pragma once

#include <cstddef>
#include <string>

namespace stn {

struct Schedule {
  enum class Kind { Constant, Step, Cosine };
  Kind kind = Kind::Constant;
  std::size_t step_every = 50000;  // Step: multiply by step_factor every step_every iterations
  float step_factor = 0.1f;        // (the paper divides by 10 every 50k)
  std::size_t total = 0;           // Cosine: decays from base to minimum over `total` iterations
  float minimum_fraction = 0.0f;   // Cosine: the floor, as a fraction of the base rate
  std::size_t warmup = 0;          // linear warm-up iterations (any kind)

  float learning_rate(float base, std::size_t iteration) const;
  std::string describe() const;
};

// "constant", "step", "cosine": throws std::invalid_argument naming the value otherwise.
Schedule::Kind parse_schedule_kind(const std::string& name);

}  // namespace stn
