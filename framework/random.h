// The framework's seedable random generator. Every random draw (initialisation, data order,
// dropout masks, augmentations) goes through a Generator that the caller passes in: there is
// no process-wide one, so two models (or two replicas of one) never share random state by
// accident, and a run is reproducible from its seeds. The bit generator is std::mt19937_64 (fully specified by the standard); the
// conversions to floats below are our own, so results do not depend on the standard
// library's distribution implementations.
#pragma once

#include <cstdint>
#include <random>

namespace stn {

// SplitMix64's finaliser (Steele, Lea and Flood 2014): a bijection that scatters nearby
// inputs, so seeds 0, 1, 2 (or a seed and epochs 0, 1, 2) give unrelated generator states.
constexpr std::uint64_t splitmix64(std::uint64_t value) {
  value += 0x9E3779B97F4A7C15ull;
  value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9ull;
  value = (value ^ (value >> 27)) * 0x94D049BB133111EBull;
  return value ^ (value >> 31);
}

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}

  void seed(std::uint64_t seed) { engine_.seed(seed); }
  std::uint64_t next_u64() { return engine_(); }
  // Uniform in [0, 1) with 24 random bits (exactly representable as float).
  float uniform() { return static_cast<float>(engine_() >> 40) * (1.0f / 16777216.0f); }
  float uniform(float low, float high) { return low + (high - low) * uniform(); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform_double() { return static_cast<double>(engine_() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform integer in [0, n), without modulo bias.
  std::uint64_t below(std::uint64_t n);
  // Standard normal (Box-Muller on two doubles).
  double normal();
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  std::mt19937_64& engine() { return engine_; }
  const std::mt19937_64& engine() const { return engine_; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace stn
