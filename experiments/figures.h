// What a run shows a person: the transformers' health numbers, the transformer figure
// (input, input with the sampling box T_theta(G), output; the paper's Table 1, right) and the
// training curves.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "stn/framework/data/mnist.h"
#include "stn/layers/module.h"

namespace stn::cli {

// Per transformer in the model, from its last forward pass on `tape`: mean distance of theta from the
// identity (L2 over the parameters, averaged over the batch), for affine transforms the
// mean and minimum determinant of the 2x2 part, and the fraction of sampling points outside
// the input ([-1, 1]^2). A collapsing transformer (zooming out to nothing, leaving the
// image) shows as a determinant near 0 or an outside fraction near 1.
nlohmann::json transformer_health(const Tape& tape, const Module& model);

// For the first `count` test samples: one row each, input | input with the sampling box |
// each transformer's output. When a box reaches beyond the input (a transformer zooming
// out), the middle column shows the input smaller, in a view up to twice its size, so that
// the boxes fit. Needs a model with at least one transformer (returns false otherwise).
bool write_transformer_figure(Module& model, const Dataset& test, std::size_t count, const std::string& path);

// Loss and test error against iterations, from run_dir/metrics.jsonl, drawn by gnuplot into
// run_dir/curves.png. gnuplot runs without a shell, in run_dir, from a script that names no
// user-chosen path. Returns false (and says why on stderr) if gnuplot is not installed;
// throws std::runtime_error naming the file when gnuplot fails, writes no complete PNG, or a
// write fails.
bool write_training_curves(const std::string& run_dir);

}  // namespace stn::cli
