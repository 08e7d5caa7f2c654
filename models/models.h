// The paper's networks (PAPER.md, "Networks"), built from layers and registered by name.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "stn/framework/random.h"
#include "stn/layers/module.h"

namespace stn {

// What a model is built for: input shape and number of classes.
struct InputSpec {
  int channels = 1;
  int height = 28;
  int width = 28;
  int classes = 10;
};

// FCN: flatten, `hidden_layers` fully connected ReLU layers of `hidden_units`, classifier.
struct FcnOptions {
  int hidden_units = 256;
  int hidden_layers = 2;
};
std::shared_ptr<Module> make_fcn(const InputSpec& input, Generator& generator, const FcnOptions& options = {});
// Its parameter count, from the layers' options (nothing is built or drawn).
std::size_t fcn_parameter_count(const InputSpec& input, const FcnOptions& options = {});

// CNN: conv 9x9 (c1 filters) -> ReLU -> max-pool 2 -> conv 7x7 (c2 filters) -> ReLU ->
// max-pool 2 -> linear classifier ("three weight layers").
struct CnnOptions {
  int conv1_filters = 32;
  int conv2_filters = 64;
};
std::shared_ptr<Module> make_cnn(const InputSpec& input, Generator& generator, const CnnOptions& options = {});
// Its parameter count, from the layers' options and output sizes (nothing is built or
// drawn); throws std::invalid_argument as make_cnn for an input too small.
std::size_t cnn_parameter_count(const InputSpec& input, const CnnOptions& options = {});

// The parameter budget of an experiment: its CNN baseline's count for this input.
std::size_t baseline_parameter_count(const InputSpec& input);
// The FCN with two hidden layers whose width matches the budget (PAPER.md: equal counts),
// but at least 128 units (PAPER.md: FCN layers have 128-256 units).
std::shared_ptr<Module> make_sized_fcn(const InputSpec& input, Generator& generator);

enum class TransformKind;
std::shared_ptr<Module> make_st_fcn(const InputSpec& input, TransformKind kind, Generator& generator);
std::shared_ptr<Module> make_st_cnn(const InputSpec& input, TransformKind kind, Generator& generator);
// Two transformers in parallel on the same input, outputs concatenated on channels.
std::shared_ptr<Module> make_2xst_fcn(const InputSpec& input, TransformKind kind, Generator& generator);

using ModelFactory = std::function<std::shared_ptr<Module>(const InputSpec&, Generator&)>;

// Builds a registered model, its weights drawn from `generator` (layer by layer, in the
// order of the model's parameters); throws std::invalid_argument listing the known names
// for an unknown one.
std::shared_ptr<Module> make_model(const std::string& name, const InputSpec& input, Generator& generator);
std::vector<std::string> model_names();

}  // namespace stn
