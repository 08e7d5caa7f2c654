#include "stn/framework/init.h"

#include <cmath>

namespace stn::init {

void uniform(Tensor& tensor, float bound, Generator& generator) {
  for (std::size_t i = 0; i < tensor.size(); ++i) tensor.data()[i] = generator.uniform(-bound, bound);
}

void kaiming_uniform(Tensor& tensor, std::size_t fan_in, Generator& generator, float gain) {
  uniform(tensor, gain * std::sqrt(3.0f / static_cast<float>(fan_in)), generator);
}

void glorot_uniform(Tensor& tensor, std::size_t fan_in, std::size_t fan_out, Generator& generator) {
  uniform(tensor, std::sqrt(6.0f / static_cast<float>(fan_in + fan_out)), generator);
}

void pytorch_default(Tensor& tensor, std::size_t fan_in, Generator& generator) {
  uniform(tensor, 1.0f / std::sqrt(static_cast<float>(fan_in)), generator);
}

}  // namespace stn::init
