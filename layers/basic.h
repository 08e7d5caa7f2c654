// Parameter-free layers: pooling, ReLU, Flatten, Dropout.
#pragma once

#include "stn/framework/ops/pool.h"
#include "stn/framework/random.h"
#include "stn/layers/module.h"

namespace stn {

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const Pool2dOptions& options = {}) : options_(options) {}
  Var forward(Var input) override;
  std::string describe() const override;

 private:
  Pool2dOptions options_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const Pool2dOptions& options = {}) : options_(options) {}
  Var forward(Var input) override;
  std::string describe() const override;

 private:
  Pool2dOptions options_;
};

class ReLU : public Module {
 public:
  Var forward(Var input) override;
  std::string describe() const override { return "ReLU"; }
};

// [N, ...] -> [N, prod(...)]
class Flatten : public Module {
 public:
  Var forward(Var input) override;
  std::string describe() const override { return "Flatten"; }
};

// Active only in training mode; draws its masks from `generator`, which the caller owns and
// which must outlive the module (a training loop keeps it with the run's other state).
class Dropout : public Module {
 public:
  Dropout(float probability, Generator& generator);
  Var forward(Var input) override;
  std::string describe() const override;

 private:
  float probability_;
  Generator* generator_;
};

}  // namespace stn
