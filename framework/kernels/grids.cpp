#include "stn/framework/kernels/grids.h"

#include <cmath>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>

#include "stn/framework/kernels/buffers.h"

// Every rounding step here copies PyTorch's (see grids.h); the compiler must not fuse a
// multiply and an add where PyTorch does not, so contraction is off (-ffp-contract=off for
// this file, CMakeLists.txt) and fused steps are explicit std::fma calls.

namespace stn::kernels {

std::vector<float> normalised_pixel_centres(std::size_t size, bool align_corners) {
  if (size <= 1) return std::vector<float>(size, 0.0f);
  // PyTorch's linspace: the first half counts up from -1, the second half down from +1,
  // each scalar step one fused multiply-add; full 16-element chunks are two 8-lane
  // aranges, base + k * step rounded twice.
  const long steps = static_cast<long>(size);
  const float start = -1.0f, end = 1.0f;
  const float step = (end - start) / static_cast<float>(steps - 1);
  const long halfway = steps / 2;
  auto scalar = [&](long index) {
    return index < halfway ? std::fma(step, static_cast<float>(index), start)
                           : std::fma(-step, static_cast<float>(steps - index - 1), end);
  };
  constexpr long lanes = 8;
  std::vector<float> values(size);
  long index = 0;
  for (; index + 2 * lanes <= steps; index += 2 * lanes) {
    for (long half = index; half < index + 2 * lanes; half += lanes) {
      const float base = scalar(half);
      values[half] = base;
      for (long lane = 1; lane < lanes; ++lane) {
        const float offset = static_cast<float>(lane) * step;
        values[half + lane] = base + offset;
      }
    }
  }
  for (; index < steps; ++index) values[index] = scalar(index);
  if (!align_corners) {
    // PyTorch: range * (S - 1) / S, a float multiply then a float divide.
    const float numerator = static_cast<float>(size - 1);
    const float denominator = static_cast<float>(size);
    for (float& v : values) v = v * numerator / denominator;
  }
  return values;
}

namespace {

// One row of A_theta applied to (x, y, 1), with PyTorch's rounding: its bmm is a plain float
// loop below 400 multiply-adds per batch item and OpenBLAS (a fused multiply-add) above.
inline float affine_row(bool fused, float x, float y, const float* row) {
  if (fused) return std::fma(y, row[1], x * row[0]) + row[2];
  return (x * row[0] + y * row[1]) + row[2];
}

bool affine_uses_fused_rounding(const GridGeometry& geometry) {
  return 3 * 2 * geometry.pixels() >= 400;
}

// A grid costs a few operations per pixel: threads from 32 Ki pixels in the batch on.
bool grid_worth_threads(const GridGeometry& geometry) {
  return worth_threads(static_cast<double>(geometry.batch) * geometry.pixels(), 32.0 * 1024);
}

}  // namespace

void affine_grid_forward(const GridGeometry& geometry, const float* theta, float* grid) {
  const std::vector<float> xs = normalised_pixel_centres(geometry.width, geometry.align_corners);
  const std::vector<float> ys = normalised_pixel_centres(geometry.height, geometry.align_corners);
  const bool fused = affine_uses_fused_rounding(geometry);
  const long batch = static_cast<long>(geometry.batch);
#pragma omp parallel for schedule(static) if (grid_worth_threads(geometry))
  for (long n = 0; n < batch; ++n) {
    const float* a = theta + n * 6;  // (2, 3)
    float* out = grid + n * geometry.pixels() * 2;  // (H', W', 2)
    for (std::size_t i = 0; i < geometry.height; ++i)
      for (std::size_t j = 0; j < geometry.width; ++j, out += 2) {
        out[0] = affine_row(fused, xs[j], ys[i], a);
        out[1] = affine_row(fused, xs[j], ys[i], a + 3);
      }
  }
}

void affine_grid_backward(const GridGeometry& geometry, const float* grad_grid,
                          float* grad_theta) {
  const std::vector<float> xs = normalised_pixel_centres(geometry.width, geometry.align_corners);
  const std::vector<float> ys = normalised_pixel_centres(geometry.height, geometry.align_corners);
  const long batch = static_cast<long>(geometry.batch);
#pragma omp parallel for schedule(static) if (grid_worth_threads(geometry))
  for (long n = 0; n < batch; ++n) {
    const float* g = grad_grid + n * geometry.pixels() * 2;
    // Sums over H'W' pixels: double keeps them accurate whatever the grid size.
    double sums[2][3] = {};
    for (std::size_t i = 0; i < geometry.height; ++i)
      for (std::size_t j = 0; j < geometry.width; ++j, g += 2)
        for (int row = 0; row < 2; ++row) {
          sums[row][0] += static_cast<double>(g[row]) * xs[j];
          sums[row][1] += static_cast<double>(g[row]) * ys[i];
          sums[row][2] += g[row];
        }
    float* out = grad_theta + n * 6;
    for (int row = 0; row < 2; ++row)
      for (int col = 0; col < 3; ++col) out[row * 3 + col] += static_cast<float>(sums[row][col]);
  }
}

void attention_grid_forward(const GridGeometry& geometry, const float* theta, float* grid) {
  const std::vector<float> xs = normalised_pixel_centres(geometry.width, geometry.align_corners);
  const std::vector<float> ys = normalised_pixel_centres(geometry.height, geometry.align_corners);
  const long batch = static_cast<long>(geometry.batch);
#pragma omp parallel for schedule(static) if (grid_worth_threads(geometry))
  for (long n = 0; n < batch; ++n) {
    const float scale = theta[n * 3], shift_x = theta[n * 3 + 1], shift_y = theta[n * 3 + 2];
    float* out = grid + n * geometry.pixels() * 2;
    for (std::size_t i = 0; i < geometry.height; ++i)
      for (std::size_t j = 0; j < geometry.width; ++j, out += 2) {
        // Equal, bit for bit, to the affine grid of [[s, 0, t_x], [0, s, t_y]].
        out[0] = xs[j] * scale + shift_x;
        out[1] = ys[i] * scale + shift_y;
      }
  }
}

void attention_grid_backward(const GridGeometry& geometry, const float* grad_grid,
                             float* grad_theta) {
  const std::vector<float> xs = normalised_pixel_centres(geometry.width, geometry.align_corners);
  const std::vector<float> ys = normalised_pixel_centres(geometry.height, geometry.align_corners);
  const long batch = static_cast<long>(geometry.batch);
#pragma omp parallel for schedule(static) if (grid_worth_threads(geometry))
  for (long n = 0; n < batch; ++n) {
    const float* g = grad_grid + n * geometry.pixels() * 2;
    double scale = 0.0, shift_x = 0.0, shift_y = 0.0;
    for (std::size_t i = 0; i < geometry.height; ++i)
      for (std::size_t j = 0; j < geometry.width; ++j, g += 2) {
        scale += static_cast<double>(g[0]) * xs[j] + static_cast<double>(g[1]) * ys[i];
        shift_x += g[0];
        shift_y += g[1];
      }
    grad_theta[n * 3] += static_cast<float>(scale);
    grad_theta[n * 3 + 1] += static_cast<float>(shift_x);
    grad_theta[n * 3 + 2] += static_cast<float>(shift_y);
  }
}

void projective_grid_forward(const GridGeometry& geometry, const float* theta, float* grid) {
  const std::vector<float> xs = normalised_pixel_centres(geometry.width, geometry.align_corners);
  const std::vector<float> ys = normalised_pixel_centres(geometry.height, geometry.align_corners);
  const bool fused = affine_uses_fused_rounding(geometry);
  const long batch = static_cast<long>(geometry.batch);
#pragma omp parallel for schedule(static) if (grid_worth_threads(geometry))
  for (long n = 0; n < batch; ++n) {
    const float* h = theta + n * 8;
    const float last_row[3] = {h[6], h[7], 1.0f};
    float* out = grid + n * geometry.pixels() * 2;
    for (std::size_t i = 0; i < geometry.height; ++i)
      for (std::size_t j = 0; j < geometry.width; ++j, out += 2) {
        // The numerators round like the affine grid, so h31 = h32 = 0 gives w' = 1 exactly
        // and the affine grid bit for bit.
        const float w = affine_row(fused, xs[j], ys[i], last_row);
        out[0] = affine_row(fused, xs[j], ys[i], h) / w;
        out[1] = affine_row(fused, xs[j], ys[i], h + 3) / w;
      }
  }
}

void projective_grid_backward(const GridGeometry& geometry, const float* theta,
                              const float* grad_grid, float* grad_theta) {
  const std::vector<float> xs = normalised_pixel_centres(geometry.width, geometry.align_corners);
  const std::vector<float> ys = normalised_pixel_centres(geometry.height, geometry.align_corners);
  const long batch = static_cast<long>(geometry.batch);
#pragma omp parallel for schedule(static) if (grid_worth_threads(geometry))
  for (long n = 0; n < batch; ++n) {
    const float* h = theta + n * 8;
    const float* g = grad_grid + n * geometry.pixels() * 2;
    double sums[8] = {};
    for (std::size_t i = 0; i < geometry.height; ++i)
      for (std::size_t j = 0; j < geometry.width; ++j, g += 2) {
        // A pixel the sampler ignored (outside, or w' = 0) must not turn 0 * inf into NaN.
        if (g[0] == 0.0f && g[1] == 0.0f) continue;
        const double x = xs[j], y = ys[i];
        const double w = h[6] * x + h[7] * y + 1.0;
        const double source_x = (h[0] * x + h[1] * y + h[2]) / w;
        const double source_y = (h[3] * x + h[4] * y + h[5]) / w;
        // d x_s / d h1j = b_j / w', d x_s / d h3j = -x_s b_j / w' (the quotient rule).
        const double along_x = g[0] / w, along_y = g[1] / w;
        const double along_w = -(g[0] * source_x + g[1] * source_y) / w;
        const double basis[3] = {x, y, 1.0};
        for (int k = 0; k < 3; ++k) {
          sums[k] += along_x * basis[k];
          sums[3 + k] += along_y * basis[k];
        }
        sums[6] += along_w * x;
        sums[7] += along_w * y;
      }
    for (int k = 0; k < 8; ++k) grad_theta[n * 8 + k] += static_cast<float>(sums[k]);
  }
}

double thin_plate_radial_basis(double squared_distance) {
  return squared_distance > 0.0 ? squared_distance * std::log(squared_distance) : 0.0;
}

std::size_t control_grid_side(std::size_t count) {
  std::size_t side = 0;
  while ((side + 1) * (side + 1) <= count) ++side;
  return side >= 2 && side * side == count ? side : 0;
}

namespace {

std::size_t checked_control_grid_side(std::size_t count) {
  const std::size_t side = control_grid_side(count);
  if (side == 0)
    throw std::invalid_argument("tps: " + std::to_string(count) +
                                " control points do not form a k x k grid with k >= 2");
  return side;
}

// Solves system (size x size) * X = rhs (size x columns) in place by Gaussian elimination
// with partial pivoting; rhs becomes X.
void solve_in_place(std::vector<double>& system, std::vector<double>& rhs, std::size_t size,
                    std::size_t columns) {
  for (std::size_t col = 0; col < size; ++col) {
    std::size_t pivot = col;
    for (std::size_t r = col + 1; r < size; ++r)
      if (std::abs(system[r * size + col]) > std::abs(system[pivot * size + col])) pivot = r;
    if (system[pivot * size + col] == 0.0)
      throw std::runtime_error("tps: the control point system is singular");
    if (pivot != col) {
      for (std::size_t k = 0; k < size; ++k)
        std::swap(system[col * size + k], system[pivot * size + k]);
      for (std::size_t k = 0; k < columns; ++k)
        std::swap(rhs[col * columns + k], rhs[pivot * columns + k]);
    }
    for (std::size_t r = 0; r < size; ++r) {
      if (r == col) continue;
      const double factor = system[r * size + col] / system[col * size + col];
      if (factor == 0.0) continue;
      for (std::size_t k = col; k < size; ++k)
        system[r * size + k] -= factor * system[col * size + k];
      for (std::size_t k = 0; k < columns; ++k)
        rhs[r * columns + k] -= factor * rhs[col * columns + k];
    }
  }
  for (std::size_t r = 0; r < size; ++r)
    for (std::size_t k = 0; k < columns; ++k) rhs[r * columns + k] /= system[r * size + r];
}

std::vector<float> solve_tps_grid_matrix(std::size_t count, const GridGeometry& geometry) {
  const std::vector<float> points = tps_control_points(count);
  const std::size_t size = count + 3;
  // L = [[U(|c_i - c_j|), P], [P^T, 0]], P = [1, x, y]; the right-hand side picks the first
  // K columns of L^-1 (the zero rows of [theta; 0] drop the other three).
  std::vector<double> system(size * size, 0.0), inverse(size * count, 0.0);
  for (std::size_t i = 0; i < count; ++i) {
    for (std::size_t j = 0; j < count; ++j) {
      const double dx = points[2 * i] - points[2 * j], dy = points[2 * i + 1] - points[2 * j + 1];
      system[i * size + j] = thin_plate_radial_basis(dx * dx + dy * dy);
    }
    const double affine[3] = {1.0, points[2 * i], points[2 * i + 1]};
    for (std::size_t k = 0; k < 3; ++k) {
      system[i * size + count + k] = affine[k];
      system[(count + k) * size + i] = affine[k];
    }
    inverse[i * count + i] = 1.0;
  }
  solve_in_place(system, inverse, size, count);

  const std::vector<float> xs = normalised_pixel_centres(geometry.width, geometry.align_corners);
  const std::vector<float> ys = normalised_pixel_centres(geometry.height, geometry.align_corners);
  std::vector<float> matrix(geometry.pixels() * count);
  std::vector<double> basis(size), row(count);
  for (std::size_t i = 0; i < geometry.height; ++i)
    for (std::size_t j = 0; j < geometry.width; ++j) {
      for (std::size_t k = 0; k < count; ++k) {
        const double dx = xs[j] - points[2 * k], dy = ys[i] - points[2 * k + 1];
        basis[k] = thin_plate_radial_basis(dx * dx + dy * dy);
      }
      basis[count] = 1.0;
      basis[count + 1] = xs[j];
      basis[count + 2] = ys[i];
      std::fill(row.begin(), row.end(), 0.0);
      for (std::size_t r = 0; r < size; ++r)
        for (std::size_t k = 0; k < count; ++k) row[k] += basis[r] * inverse[r * count + k];
      float* out = matrix.data() + (i * geometry.width + j) * count;
      for (std::size_t k = 0; k < count; ++k) out[k] = static_cast<float>(row[k]);
    }
  return matrix;
}

}  // namespace

std::vector<float> tps_control_points(std::size_t count) {
  const std::size_t side = checked_control_grid_side(count);
  std::vector<float> points(2 * count);
  for (std::size_t i = 0; i < side; ++i)
    for (std::size_t j = 0; j < side; ++j) {
      // Computed in double so that the grid is symmetric and hits -1, 0 (odd side) and +1.
      points[2 * (i * side + j)] = static_cast<float>(-1.0 + 2.0 * j / (side - 1));
      points[2 * (i * side + j) + 1] = static_cast<float>(-1.0 + 2.0 * i / (side - 1));
    }
  return points;
}

std::shared_ptr<const std::vector<float>> tps_grid_matrix(std::size_t count,
                                                         const GridGeometry& geometry) {
  using Key = std::tuple<std::size_t, std::size_t, std::size_t, bool>;
  static std::mutex mutex;
  static std::map<Key, std::shared_ptr<const std::vector<float>>> cache;
  const Key key{count, geometry.height, geometry.width, geometry.align_corners};
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto found = cache.find(key);
    if (found != cache.end()) return found->second;
  }
  // Solved outside the lock so other keys are not held up; if two threads race on one key
  // both solve it and the first insertion wins (the results are identical).
  auto matrix = std::make_shared<const std::vector<float>>(solve_tps_grid_matrix(count, geometry));
  std::lock_guard<std::mutex> lock(mutex);
  return cache.emplace(key, std::move(matrix)).first->second;
}

void tps_grid_forward(const GridGeometry& geometry, std::size_t count, const float* matrix,
                      const float* theta, float* grid) {
  const long batch = static_cast<long>(geometry.batch);
  const std::size_t pixels = geometry.pixels();
#pragma omp parallel for schedule(static) if (grid_worth_threads(geometry))
  for (long n = 0; n < batch; ++n) {
    const float* points = theta + n * count * 2;  // (K, 2)
    float* out = grid + n * pixels * 2;           // (H'W', 2)
    for (std::size_t p = 0; p < pixels; ++p) {
      const float* weights = matrix + p * count;
      double x = 0.0, y = 0.0;
      for (std::size_t k = 0; k < count; ++k) {
        x += static_cast<double>(weights[k]) * points[2 * k];
        y += static_cast<double>(weights[k]) * points[2 * k + 1];
      }
      out[2 * p] = static_cast<float>(x);
      out[2 * p + 1] = static_cast<float>(y);
    }
  }
}

void tps_grid_backward(const GridGeometry& geometry, std::size_t count, const float* matrix,
                       const float* grad_grid, float* grad_theta) {
  const long batch = static_cast<long>(geometry.batch);
  const std::size_t pixels = geometry.pixels();
#pragma omp parallel for schedule(static) if (grid_worth_threads(geometry))
  for (long n = 0; n < batch; ++n) {
    const float* g = grad_grid + n * pixels * 2;
    std::vector<double> sums(count * 2, 0.0);
    for (std::size_t p = 0; p < pixels; ++p) {
      const float* weights = matrix + p * count;
      for (std::size_t k = 0; k < count; ++k) {
        sums[2 * k] += static_cast<double>(weights[k]) * g[2 * p];
        sums[2 * k + 1] += static_cast<double>(weights[k]) * g[2 * p + 1];
      }
    }
    float* out = grad_theta + n * count * 2;
    for (std::size_t k = 0; k < 2 * count; ++k) out[k] += static_cast<float>(sums[k]);
  }
}

}  // namespace stn::kernels
