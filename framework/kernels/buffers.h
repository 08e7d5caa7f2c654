// Small helpers the kernels and the ops over them share (internal): per-thread scratch
// memory, rounding, plane sizes, and when a pass is worth a second thread.
#pragma once

#include <cstddef>
#include <vector>

#include <xsimd/memory/xsimd_aligned_allocator.hpp>

namespace stn::kernels {

using AlignedBuffer = std::vector<float, xsimd::aligned_allocator<float, 64>>;

// Scratch that only grows: kept per thread (thread_local at the caller; OpenMP keeps its
// workers between regions), steady-state calls allocate nothing.
inline float* scratch(AlignedBuffer& buffer, std::size_t size) {
  if (buffer.size() < size) buffer.resize(size);
  return buffer.data();
}

inline int round_up(int value, int multiple) { return (value + multiple - 1) / multiple * multiple; }

// Elements of one (height, width) plane.
inline std::ptrdiff_t plane_size(int height, int width) { return static_cast<std::ptrdiff_t>(height) * width; }

// Waking a second thread costs microseconds, far more on a busy machine where it waits for a
// core: a pass with less than `threshold` work (each caller's own unit and threshold,
// measured for its kernel) runs on one thread.
inline bool worth_threads(double work, double threshold) { return work >= threshold; }

}  // namespace stn::kernels
