#include "stn/framework/kernels/broadcast.h"

namespace stn::kernels {

std::vector<std::size_t> broadcast_strides(const Dims& shape, const Dims& out) {
  std::vector<std::size_t> strides(out.size(), 0);
  std::size_t stride = 1;
  for (std::size_t k = 0; k < shape.size(); ++k) {
    std::size_t d = shape.size() - 1 - k;
    std::size_t o = out.size() - 1 - k;
    strides[o] = shape[d] == 1 && out[o] != 1 ? 0 : stride;
    stride *= shape[d];
  }
  return strides;
}

}  // namespace stn::kernels
