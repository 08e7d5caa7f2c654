// Parameter initialisers. All draw from the Generator they are given, so a model's initial
// weights are a function of its generator's seed.
#pragma once

#include "stn/framework/random.h"
#include "stn/framework/tensor.h"

namespace stn::init {

// Every element uniform in [-bound, bound].
void uniform(Tensor& tensor, float bound, Generator& generator);
// Kaiming (He) uniform: bound = gain * sqrt(3 / fan_in); gain = sqrt(2) suits ReLU.
void kaiming_uniform(Tensor& tensor, std::size_t fan_in, Generator& generator, float gain = 1.41421356f);
// Glorot (Xavier) uniform: bound = sqrt(6 / (fan_in + fan_out)).
void glorot_uniform(Tensor& tensor, std::size_t fan_in, std::size_t fan_out, Generator& generator);
// PyTorch's default for Linear and Conv2d weights and biases: kaiming_uniform with
// a = sqrt(5), which works out to uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)].
void pytorch_default(Tensor& tensor, std::size_t fan_in, Generator& generator);

}  // namespace stn::init
