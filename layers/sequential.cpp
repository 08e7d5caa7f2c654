#include "stn/layers/sequential.h"

namespace stn {

Var Sequential::forward(Var input) {
  Var x = input;
  for (const auto& [name, child] : children()) x = child->forward(x);
  return x;
}

}  // namespace stn
