// NumPy broadcasting over raw buffers: the output shape of two shapes, and a loop that visits
// every output element with the matching flat offsets of both inputs.
#pragma once

#include <cstddef>
#include <vector>

namespace stn::kernels {

using Dims = std::vector<std::size_t>;

// Strides (in elements) of `shape` seen through the broadcast to `out` (right-aligned); a
// broadcast dimension gets stride 0.
std::vector<std::size_t> broadcast_strides(const Dims& shape, const Dims& out);

// Calls visit(out_offset, a_offset, b_offset) for every element of `out` in row-major order.
template <class Visit>
void for_each_broadcast(const Dims& out, const std::vector<std::size_t>& stride_a,
                        const std::vector<std::size_t>& stride_b, Visit&& visit) {
  const std::size_t rank = out.size();
  std::size_t total = 1;
  for (std::size_t d : out) total *= d;
  if (total == 0) return;
  if (rank == 0) {
    visit(std::size_t{0}, std::size_t{0}, std::size_t{0});
    return;
  }
  const std::size_t inner = out[rank - 1];
  const std::size_t inner_a = stride_a[rank - 1], inner_b = stride_b[rank - 1];
  std::vector<std::size_t> index(rank, 0);
  std::size_t base_a = 0, base_b = 0;
  for (std::size_t o = 0; o < total; o += inner) {
    for (std::size_t i = 0; i < inner; ++i) visit(o + i, base_a + i * inner_a, base_b + i * inner_b);
    // Advance the outer counter (all dimensions but the last).
    for (std::size_t d = rank - 1; d-- > 0;) {
      base_a += stride_a[d];
      base_b += stride_b[d];
      if (++index[d] < out[d]) break;
      base_a -= stride_a[d] * out[d];
      base_b -= stride_b[d] * out[d];
      index[d] = 0;
    }
  }
}

}  // namespace stn::kernels
