// Softmax family and losses.
#pragma once

#include <cstdint>
#include <vector>

#include "stn/framework/random.h"
#include "stn/framework/tape.h"

namespace stn {

// Along `axis` (default: the last), computed stably (the maximum is subtracted first).
Var softmax(Var x, int axis = -1);
Var log_softmax(Var x, int axis = -1);

// Mean over the batch of -log softmax(logits)[label]: logits [N, C], labels N integers in
// [0, C). Fused: the backward is (softmax - one_hot) / N.
Var cross_entropy(Var logits, const std::vector<std::int32_t>& labels);

// Mean of (prediction - target)^2 over all elements; shapes must be equal.
Var mse_loss(Var prediction, Var target);

// Inverted dropout: in training, zeroes each element with probability p and scales the rest
// by 1 / (1 - p); outside training (or p == 0) the identity.
Var dropout(Var x, float p, bool training, Generator& generator);

}  // namespace stn
