#include "stn/layers/spatial_transformer.h"

#include <cmath>
#include <stdexcept>

#include "stn/framework/ops/shape.h"
#include "stn/framework/ops/spatial_grid.h"

namespace stn {

TransformKind parse_transform_kind(const std::string& name) {
  if (name == "aff" || name == "affine") return TransformKind::affine;
  if (name == "att" || name == "attention") return TransformKind::attention;
  if (name == "proj" || name == "projective") return TransformKind::projective;
  if (name == "tps") return TransformKind::tps;
  throw std::invalid_argument("unknown transform '" + name + "' (expected aff, att, proj or tps)");
}

std::string transform_name(TransformKind kind) {
  switch (kind) {
    case TransformKind::affine: return "affine";
    case TransformKind::attention: return "attention";
    case TransformKind::projective: return "projective";
    case TransformKind::tps: return "tps";
  }
  return "?";
}

int transform_parameter_count(TransformKind kind, int tps_points) {
  switch (kind) {
    case TransformKind::affine: return 6;
    case TransformKind::attention: return 3;
    case TransformKind::projective: return 8;
    case TransformKind::tps: return 2 * tps_points;
  }
  return 0;
}

std::vector<float> identity_parameters(TransformKind kind, int tps_points) {
  switch (kind) {
    case TransformKind::affine: return {1, 0, 0, 0, 1, 0};
    case TransformKind::attention: return {1, 0, 0};
    case TransformKind::projective: return {1, 0, 0, 0, 1, 0, 0, 0};
    case TransformKind::tps: {
      Tensor points = tps_control_points(static_cast<std::size_t>(tps_points));
      return std::vector<float>(points.data(), points.data() + points.size());
    }
  }
  return {};
}

SpatialTransformer::SpatialTransformer(std::shared_ptr<Module> localisation,
                                       const SpatialTransformerOptions& options, Generator& generator)
    : options_(options) {
  if (!localisation) throw std::invalid_argument("SpatialTransformer: no localisation network");
  if (options.output_height <= 0 || options.output_width <= 0)
    throw std::invalid_argument("SpatialTransformer: output size must be positive, got " +
                                std::to_string(options.output_height) + "x" + std::to_string(options.output_width));
  if (options.localisation_features <= 0)
    throw std::invalid_argument("SpatialTransformer: localisation_features must be positive");
  if (options.kind == TransformKind::tps &&
      (options.tps_points < 4 || tps_grid_side(static_cast<std::size_t>(options.tps_points)) == 0))
    throw std::invalid_argument("SpatialTransformer: tps_points must be a square >= 4, got " +
                                std::to_string(options.tps_points));
  localisation_ = register_module("localisation", std::move(localisation));
  const int count = transform_parameter_count(options.kind, options.tps_points);
  regression_ = register_module(
      "regression", std::make_shared<Linear>(LinearOptions{.in = options.localisation_features, .out = count}, generator));
  // Identity at the start: zero weights, identity bias.
  regression_->weight().value.fill(0.0f);
  const std::vector<float> identity = identity_parameters(options.kind, options.tps_points);
  std::copy(identity.begin(), identity.end(), regression_->bias()->value.data());
}

SpatialTransformer::Result SpatialTransformer::transform(Var input) {
  const auto height = static_cast<std::size_t>(options_.output_height);
  const auto width = static_cast<std::size_t>(options_.output_width);
  const bool corners = options_.sampler.align_corners;
  Var features = localisation_->forward(input);
  if (features.ndim() != 2 || features.dim(1) != static_cast<std::size_t>(options_.localisation_features))
    throw std::invalid_argument("SpatialTransformer: the localisation network gave " + shape_string(features.value()) +
                                ", expected [N, " + std::to_string(options_.localisation_features) + "]");
  Var flat = regression_->forward(features);
  const auto n = static_cast<std::int64_t>(input.dim(0));
  Var theta, grid;
  switch (options_.kind) {
    case TransformKind::affine:
      theta = reshape(flat, {n, 2, 3});
      grid = affine_grid(theta, height, width, corners);
      break;
    case TransformKind::attention:
      theta = flat;
      grid = attention_grid(theta, height, width, corners);
      break;
    case TransformKind::projective:
      theta = flat;
      grid = projective_grid(theta, height, width, corners);
      break;
    case TransformKind::tps:
      theta = reshape(flat, {n, options_.tps_points, 2});
      grid = tps_grid(theta, height, width, corners);
      break;
  }
  Result result{grid_sample(input, grid, options_.sampler), theta, grid};
  input.tape().report(this, {result.output, result.theta, result.sampling_grid});
  return result;
}

std::optional<SpatialTransformer::Result> SpatialTransformer::result_on(const Tape& tape) const {
  const std::vector<Var>* report = tape.last_report(this);
  if (!report) return std::nullopt;
  return Result{(*report)[0], (*report)[1], (*report)[2]};
}

std::string SpatialTransformer::describe() const {
  return "SpatialTransformer(" + transform_name(options_.kind) + ", output " +
         std::to_string(options_.output_height) + "x" + std::to_string(options_.output_width) +
         (options_.sampler.padding == PaddingMode::border ? ", border" : "") +
         (options_.sampler.align_corners ? ", align corners" : "") + ")";
}

std::vector<Parameter*> SpatialTransformer::localisation_parameters() const {
  std::vector<Parameter*> all = localisation_->parameters();
  for (Parameter* p : regression_->parameters()) all.push_back(p);
  return all;
}

ParallelTransformers::ParallelTransformers(std::vector<std::shared_ptr<SpatialTransformer>> transformers)
    : transformers_(std::move(transformers)) {
  if (transformers_.empty()) throw std::invalid_argument("ParallelTransformers: no transformers");
  for (std::size_t i = 0; i < transformers_.size(); ++i)
    register_module("st" + std::to_string(i + 1), transformers_[i]);
}

Var ParallelTransformers::forward(Var input) {
  std::vector<Var> outputs;
  for (auto& transformer : transformers_) outputs.push_back(transformer->forward(input));
  return outputs.size() == 1 ? outputs[0] : concat(outputs, 1);
}

std::string ParallelTransformers::describe() const {
  return std::to_string(transformers_.size()) + " parallel transformers, outputs concatenated on channels";
}

namespace {
void collect(const Module& module, std::vector<SpatialTransformer*>& found) {
  for (const auto& [name, child] : module.children()) {
    if (auto* st = dynamic_cast<SpatialTransformer*>(child.get())) found.push_back(st);
    collect(*child, found);
  }
}
}  // namespace

std::vector<SpatialTransformer*> find_transformers(const Module& model) {
  std::vector<SpatialTransformer*> found;
  if (auto* st = dynamic_cast<const SpatialTransformer*>(&model)) found.push_back(const_cast<SpatialTransformer*>(st));
  collect(model, found);
  return found;
}

}  // namespace stn
