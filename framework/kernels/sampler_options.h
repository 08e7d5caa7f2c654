// The sampler's options: the one kernels header that is part of the public API (grid_sample
// takes them), so it holds nothing else.
#pragma once

namespace stn::kernels {

enum class SampleMode { bilinear, nearest };
enum class PaddingMode { zeros, border };

struct GridSampleOptions {
  SampleMode mode = SampleMode::bilinear;
  PaddingMode padding = PaddingMode::zeros;
  bool align_corners = false;
};

}  // namespace stn::kernels
