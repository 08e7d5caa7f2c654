// The transformer learns: only theta is trained (a free leaf, re-entered each step), by
// plain gradient descent on the mean squared error between grid_sample(image,
// affine_grid(theta)) and a target made by warping the same smooth image with a known
// rotation + scale + shift. The gradient reaches theta only through eq. 7 and the affine
// grid's backward, so convergence to the true transform tests the whole chain.
#include <gtest/gtest.h>

#include <cmath>

#include "stn/framework/ops/spatial.h"

namespace stn {
namespace {

// Three anisotropic Gaussian blobs: smooth (bilinear sampling is nearly exact), no
// symmetry that would make two transforms equally good, and close to 0 at the border, so
// content leaving the field of view costs little.
Tensor smooth_image(std::size_t size) {
  Tensor image = zeros({1, 1, size, size});
  const float blobs[3][5] = {// centre x, centre y, width x, width y, height
                             {-0.3f, -0.2f, 0.25f, 0.15f, 1.0f},
                             {0.35f, 0.1f, 0.15f, 0.3f, 0.8f},
                             {0.0f, 0.45f, 0.2f, 0.12f, 0.6f}};
  for (std::size_t i = 0; i < size; ++i)
    for (std::size_t j = 0; j < size; ++j) {
      const float x = (2.0f * j + 1.0f) / size - 1.0f, y = (2.0f * i + 1.0f) / size - 1.0f;
      for (const auto& b : blobs) {
        const float dx = (x - b[0]) / b[2], dy = (y - b[1]) / b[3];
        image(0, 0, i, j) += b[4] * std::exp(-0.5f * (dx * dx + dy * dy));
      }
    }
  return image;
}

TEST(SpatialLearning, GradientDescentOnThetaRecoversTheWarp) {
  const std::size_t size = 32;
  const Tensor image = smooth_image(size);
  const float angle = 0.2f, scale = 0.9f, shift_x = 0.08f, shift_y = -0.06f;
  Tensor true_theta = zeros({1, 2, 3});
  true_theta(0, 0, 0) = scale * std::cos(angle);
  true_theta(0, 0, 1) = -scale * std::sin(angle);
  true_theta(0, 0, 2) = shift_x;
  true_theta(0, 1, 0) = scale * std::sin(angle);
  true_theta(0, 1, 1) = scale * std::cos(angle);
  true_theta(0, 1, 2) = shift_y;
  const Tensor target = grid_sample(image, affine_grid(true_theta, size, size));

  Tensor theta = zeros({1, 2, 3});
  theta(0, 0, 0) = theta(0, 1, 1) = 1.0f;  // the identity, as a localisation net starts
  // The largest stable step is about 1 (the loss's curvature in the scale terms); 2 already
  // oscillates, 0.5 converges in about 500 steps.
  const float learning_rate = 0.5f;
  const std::size_t pixels = size * size;
  double first_loss = 0.0, loss = 0.0;
  for (int step = 0; step < 600; ++step) {
    Tape tape;
    Var t = tape.input(theta, true);
    Var warped = grid_sample(tape.input(image), affine_grid(t, size, size));
    // MSE = mean((V - target)^2); its gradient 2 (V - target) / P seeds the backward.
    Tensor seed = empty(warped.shape());
    loss = 0.0;
    for (std::size_t p = 0; p < pixels; ++p) {
      const float residual = warped.value().data()[p] - target.data()[p];
      loss += static_cast<double>(residual) * residual / pixels;
      seed.data()[p] = 2.0f * residual / pixels;
    }
    if (step == 0) first_loss = loss;
    tape.backward(warped, seed);
    for (std::size_t k = 0; k < 6; ++k) theta.data()[k] -= learning_rate * t.grad().data()[k];
  }
  // At the optimum the loss is exactly 0 (the target came from the same op) and the loss
  // is locally quadratic in theta with a well-conditioned Hessian (blob edges run in every
  // direction), so gradient descent converges linearly, until float rounding of the
  // gradient (about 1e-7 relative) stops it: it reaches about 5e-7 after 500 steps. 1e-4 in
  // normalised units is 0.002 pixel of translation, or 0.006 degree of rotation, on this
  // 32-pixel image: far below what any wrong gradient would leave.
  EXPECT_LT(loss, 1e-8 * first_loss) << "first loss " << first_loss;
  for (std::size_t k = 0; k < 6; ++k)
    EXPECT_NEAR(theta.data()[k], true_theta.data()[k], 1e-4f) << "theta element " << k;
}

}  // namespace
}  // namespace stn
