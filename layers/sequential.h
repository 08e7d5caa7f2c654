// Sequential: runs its children in order. Children are named "0", "1", ... unless named.
#pragma once

#include <memory>
#include <string>

#include "stn/layers/module.h"

namespace stn {

class Sequential : public Module {
 public:
  Sequential() = default;

  template <class M>
  std::shared_ptr<M> add(std::shared_ptr<M> module) {
    return add(std::to_string(children().size()), std::move(module));
  }
  template <class M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> module) {
    return register_module(name, std::move(module));
  }

  Var forward(Var input) override;
  std::string describe() const override { return "Sequential"; }
};

}  // namespace stn
