// The training policy a model with spatial transformers needs: its localisation networks
// learn with a smaller learning rate than the rest (at the defaults the predicted transform
// runs off the image and the model stops learning), so the optimizer gets two groups.
#pragma once

#include <vector>

#include "stn/framework/optim/optimizer.h"
#include "stn/layers/module.h"

namespace stn {

// Two optimizer groups: the transformers' localisation parameters with learning-rate scale
// `localisation_scale`, everything else with 1 (a single group when there are none).
std::vector<ParameterGroup> localisation_parameter_groups(const Module& model, float localisation_scale);

}  // namespace stn
