// Module: the base of every layer and model. A module owns its parameters (with names) and
// its child modules (with names), so every parameter of a model has a hierarchical name such
// as "localisation.conv1.weight", the same names checkpoints use. Modules switch between
// training and evaluation mode together with their children.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "stn/framework/tape.h"

namespace stn {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Var forward(Var input) = 0;
  Var operator()(Var input) { return forward(input); }

  // Every parameter of this module and its descendants, in registration order.
  std::vector<Parameter*> parameters() const;
  std::size_t parameter_count() const;
  void zero_grad();

  void train(bool training = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // One line about this module alone: "Conv2d(1 -> 32, kernel 9x9)".
  virtual std::string describe() const = 0;
  // The whole tree, one module per line, with parameter counts.
  std::string summary() const;

  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

 protected:
  Parameter& register_parameter(const std::string& name, Tensor value);
  // Registers a child; its parameters' names get "name." in front.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    adopt(name, module);
    return module;
  }

 private:
  void adopt(const std::string& name, std::shared_ptr<Module> module);
  void summarise(const std::string& name, int depth, std::string& out) const;

  std::vector<std::unique_ptr<Parameter>> parameters_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace stn
