// Parameter initialisers. All draw from a Generator (the default one unless given), so a
// model's initial weights are a function of the seed.
#pragma once

#include "framework/random.h"
#include "framework/tensor.h"

namespace stn::init {

// Every element uniform in [-bound, bound].
void uniform(Tensor& tensor, float bound, Generator& generator = default_generator());
// Kaiming (He) uniform: bound = gain * sqrt(3 / fan_in); gain = sqrt(2) suits ReLU.
void kaiming_uniform(Tensor& tensor, std::size_t fan_in, float gain = 1.41421356f,
                     Generator& generator = default_generator());
// Glorot (Xavier) uniform: bound = sqrt(6 / (fan_in + fan_out)).
void glorot_uniform(Tensor& tensor, std::size_t fan_in, std::size_t fan_out,
                    Generator& generator = default_generator());
// PyTorch's default for Linear and Conv2d weights and biases: kaiming_uniform with
// a = sqrt(5), which works out to uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)].
void pytorch_default(Tensor& tensor, std::size_t fan_in, Generator& generator = default_generator());

}  // namespace stn::init
