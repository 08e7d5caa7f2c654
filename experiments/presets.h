// Training presets: named sets of defaults for `stn train`; flags given on the command line
// override them.
//
//   paper  the paper's schedule: SGD (momentum 0.9), batch 256, lr 0.01 divided by 10 every
//          50k iterations, 150k iterations, no weight decay.
//   fast   at most 30 minutes per model on a 2-core machine (see presets.cpp for the
//          numbers and why): 10k iterations of batch 128, 5k on TC.
//   table  the README's tables: fast's optimiser run as long as 30 minutes per model allow
//          (80k iterations on 28x28, 18k on RTS, 15k on addition, 7k on TC); the
//          localisation networks at 0.3x on P, E and TC and for the ST-FCN-Aff on RTS
//          (chosen on the validation split).
//   demo   at most 3 minutes: ST-CNN (affine) on RTS, then the transformer figure.
//   none   the plain defaults (used for MNIST and Fashion-MNIST).
#pragma once

#include <string>
#include <vector>

#include "stn/experiments/train.h"

namespace stn::cli {

// The defaults of `preset` for a run of `model` on `dataset` ("" = the preset's own dataset
// or model; the localisation rate may depend on both); throws std::invalid_argument for an
// unknown preset name.
TrainConfig preset_config(const std::string& preset, const std::string& dataset = "", const std::string& model = "");
std::vector<std::string> preset_names();

}  // namespace stn::cli
