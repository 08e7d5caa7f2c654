// Parameter-free layers: pooling, ReLU, Flatten, Dropout.
#pragma once

#include "framework/ops/pool.h"
#include "framework/random.h"
#include "layers/module.h"

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

// Active only in training mode; draws its masks from `generator` (the default one if none).
class Dropout : public Module {
 public:
  explicit Dropout(float probability, Generator* generator = nullptr);
  Var forward(Var input) override;
  std::string describe() const override;

 private:
  float probability_;
  Generator* generator_;
};

}  // namespace stn
