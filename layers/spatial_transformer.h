// SpatialTransformer (paper §3): a localisation network predicts theta from its input U, a
// grid generator maps the output grid through T_theta, and the sampler reads U there:
//
//   theta = regression(localisation(U)),   V = grid_sample(U, grid_theta(H', W'))
//
// The regression layer (features -> number of transform parameters) belongs to the
// transformer and starts at the identity transform (zero weights, identity bias), so a
// fresh transformer passes its input through (resampled to H' x W'). It can sit on the input
// or on any feature map. ParallelTransformers runs several on the same input and concatenates
// their outputs along channels (the paper's 2xST for MNIST addition).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stn/framework/ops/spatial_sample.h"
#include "stn/layers/linear.h"
#include "stn/layers/module.h"

namespace stn {

enum class TransformKind { affine, attention, projective, tps };

// "aff"/"affine", "att"/"attention", "proj"/"projective", "tps"; throws for others.
TransformKind parse_transform_kind(const std::string& name);
std::string transform_name(TransformKind kind);
// Parameters per sample: 6, 3, 8, or 2 * tps_points.
int transform_parameter_count(TransformKind kind, int tps_points = 16);
// The identity transform's parameters, flat.
std::vector<float> identity_parameters(TransformKind kind, int tps_points = 16);

struct SpatialTransformerOptions {
  TransformKind kind = TransformKind::affine;
  int output_height = 28;
  int output_width = 28;
  int localisation_features = 0;  // width of the localisation network's output [N, F]
  int tps_points = 16;            // K, a square number
  GridSampleOptions sampler{};
};

class SpatialTransformer : public Module {
 public:
  // The regression layer is built from `generator` like any Linear, then set to the
  // identity: its draws are discarded but still taken, so the layers built after it get the
  // same weights as in the runs recorded before generators were explicit.
  SpatialTransformer(std::shared_ptr<Module> localisation, const SpatialTransformerOptions& options,
                     Generator& generator);

  struct Result {
    Var output;         // V (N, C, H', W')
    Var theta;          // the predicted transform parameters, (N, 2, 3) / (N, 3) / (N, 8) / (N, K, 2)
    Var sampling_grid;  // (N, H', W', 2)
  };
  // Also reports the result on the input's tape (Tape::report), for result_on.
  Result transform(Var input);
  Var forward(Var input) override { return transform(input).output; }
  std::string describe() const override;

  // The result of this transformer's last pass on `tape` (since its last clear()), when a
  // model holding it ran forward there: how training reads the transformers' health and
  // draws their figures from a whole model's forward. std::nullopt if it has not run.
  std::optional<Result> result_on(const Tape& tape) const;
  const SpatialTransformerOptions& options() const { return options_; }
  Module& localisation() { return *localisation_; }
  Linear& regression() { return *regression_; }
  // The localisation network's and the regression layer's parameters.
  std::vector<Parameter*> localisation_parameters() const;

 private:
  SpatialTransformerOptions options_;
  std::shared_ptr<Module> localisation_;
  std::shared_ptr<Linear> regression_;
};

class ParallelTransformers : public Module {
 public:
  explicit ParallelTransformers(std::vector<std::shared_ptr<SpatialTransformer>> transformers);
  Var forward(Var input) override;  // outputs concatenated along channels
  std::string describe() const override;
  const std::vector<std::shared_ptr<SpatialTransformer>>& transformers() const { return transformers_; }

 private:
  std::vector<std::shared_ptr<SpatialTransformer>> transformers_;
};

// Every SpatialTransformer inside `model` (depth-first).
std::vector<SpatialTransformer*> find_transformers(const Module& model);

}  // namespace stn
