#include "stn/framework/ops/loss.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "stn/framework/error.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/reduce.h"

namespace stn {

namespace {

// (outer, length, inner) around the softmax axis: element (o, k, i) sits at
// (o * length + k) * inner + i.
struct Rows {
  std::size_t outer = 1, length = 1, inner = 1;
};

Rows rows_around(const char* op, const Shape& shape, int axis) {
  const int a = normalise_axis(op, axis, shape);
  Rows r;
  for (int d = 0; d < a; ++d) r.outer *= shape[d];
  r.length = shape[a];
  for (std::size_t d = a + 1; d < shape.size(); ++d) r.inner *= shape[d];
  return r;
}

// Writes log_softmax of x into out.
void log_softmax_rows(const float* x, const Rows& r, float* out) {
  for (std::size_t o = 0; o < r.outer; ++o)
    for (std::size_t i = 0; i < r.inner; ++i) {
      const std::size_t base = o * r.length * r.inner + i;
      float maximum = -INFINITY;
      for (std::size_t k = 0; k < r.length; ++k) maximum = std::max(maximum, x[base + k * r.inner]);
      double total = 0.0;
      for (std::size_t k = 0; k < r.length; ++k) total += std::exp(x[base + k * r.inner] - maximum);
      const float log_total = static_cast<float>(std::log(total));
      for (std::size_t k = 0; k < r.length; ++k)
        out[base + k * r.inner] = (x[base + k * r.inner] - maximum) - log_total;
    }
}

}  // namespace

Var log_softmax(Var x, int axis) {
  const Rows r = rows_around("log_softmax", x.shape(), axis);
  Tensor out = empty(x.shape());
  log_softmax_rows(x.value().data(), r, out.data());
  return x.tape().record("log_softmax", {x}, std::move(out), [r](const BackwardContext& ctx) {
    // dx = g - softmax * sum(g) along the axis
    const float* g = ctx.grad_output.data();
    const float* y = ctx.output.data();
    float* gx = ctx.grad(0)->data();
    for (std::size_t o = 0; o < r.outer; ++o)
      for (std::size_t i = 0; i < r.inner; ++i) {
        const std::size_t base = o * r.length * r.inner + i;
        double total = 0.0;
        for (std::size_t k = 0; k < r.length; ++k) total += g[base + k * r.inner];
        for (std::size_t k = 0; k < r.length; ++k) {
          std::size_t e = base + k * r.inner;
          gx[e] += g[e] - std::exp(y[e]) * static_cast<float>(total);
        }
      }
  }, [axis](const VjpContext& ctx) {
    const Var& g = ctx.grad_output;
    return std::vector<Var>{sub(g, mul(exp(ctx.output), sum(g, {axis}, true)))};
  });
}

Var softmax(Var x, int axis) {
  const Rows r = rows_around("softmax", x.shape(), axis);
  Tensor out = empty(x.shape());
  log_softmax_rows(x.value().data(), r, out.data());
  for (std::size_t e = 0; e < out.size(); ++e) out.data()[e] = std::exp(out.data()[e]);
  return x.tape().record("softmax", {x}, std::move(out), [r](const BackwardContext& ctx) {
    // dx = y * (g - sum(g * y)) along the axis
    const float* g = ctx.grad_output.data();
    const float* y = ctx.output.data();
    float* gx = ctx.grad(0)->data();
    for (std::size_t o = 0; o < r.outer; ++o)
      for (std::size_t i = 0; i < r.inner; ++i) {
        const std::size_t base = o * r.length * r.inner + i;
        double dot = 0.0;
        for (std::size_t k = 0; k < r.length; ++k) dot += g[base + k * r.inner] * y[base + k * r.inner];
        for (std::size_t k = 0; k < r.length; ++k) {
          std::size_t e = base + k * r.inner;
          gx[e] += y[e] * (g[e] - static_cast<float>(dot));
        }
      }
  }, [axis](const VjpContext& ctx) {
    const Var& g = ctx.grad_output;
    const Var& y = ctx.output;
    return std::vector<Var>{mul(y, sub(g, sum(mul(g, y), {axis}, true)))};
  });
}

Var cross_entropy(Var logits, const std::vector<std::int32_t>& labels) {
  const Shape shape = logits.shape();
  if (shape.size() != 2)
    throw_shape_error("cross_entropy", "logits must be [N, C], got " + shape_string(shape));
  const std::size_t N = shape[0], C = shape[1];
  if (labels.size() != N)
    throw_shape_error("cross_entropy", "logits " + shape_string(shape) + " but " +
                                           std::to_string(labels.size()) + " labels");
  if (N == 0) throw_shape_error("cross_entropy", "empty batch");
  for (std::size_t n = 0; n < N; ++n)
    if (labels[n] < 0 || static_cast<std::size_t>(labels[n]) >= C)
      throw_shape_error("cross_entropy", "label " + std::to_string(labels[n]) + " at index " +
                                             std::to_string(n) + " is outside [0, " + std::to_string(C) + ")");
  Tensor log_probabilities = empty(shape);
  log_softmax_rows(logits.value().data(), Rows{N, C, 1}, log_probabilities.data());
  double total = 0.0;
  for (std::size_t n = 0; n < N; ++n) total -= log_probabilities.data()[n * C + labels[n]];
  Tensor out = full({}, static_cast<float>(total / static_cast<double>(N)));
  const bool keep = logits.tape().needs_grad({logits});
  const std::size_t saved = keep ? log_probabilities.size() * sizeof(float) + N * sizeof(std::int32_t) : 0;
  return logits.tape().record(
      "cross_entropy", {logits}, std::move(out),
      [log_probabilities = keep ? std::move(log_probabilities) : Tensor(), labels, N,
       C](const BackwardContext& ctx) {
        const float scale = ctx.grad_output.data()[0] / static_cast<float>(N);
        float* gx = ctx.grad(0)->data();
        for (std::size_t n = 0; n < N; ++n)
          for (std::size_t c = 0; c < C; ++c) {
            float p = std::exp(log_probabilities.data()[n * C + c]);
            gx[n * C + c] += scale * (p - (static_cast<std::int32_t>(c) == labels[n] ? 1.0f : 0.0f));
          }
      },
      [labels, N, C](const VjpContext& ctx) {  // (softmax - one_hot) * g / N
        Tensor one_hot = zeros({N, C});
        for (std::size_t n = 0; n < N; ++n) one_hot.data()[n * C + labels[n]] = 1.0f;
        // The one-hot constant's entry first, then the softmax's (named, not left to the
        // compiler's order of evaluating two arguments).
        const Var target = ctx.output.tape().constant(std::move(one_hot));
        const Var probabilities = softmax(ctx.input(0), 1);
        Var difference = sub(probabilities, target);
        return std::vector<Var>{mul(difference, mul(ctx.grad_output, 1.0f / static_cast<float>(N)))};
      },
      saved);
}

Var mse_loss(Var prediction, Var target) {
  if (prediction.shape() != target.shape())
    throw_shape_error("mse_loss", "prediction " + shape_string(prediction.value()) +
                                      " and target " + shape_string(target.value()) + " differ");
  const std::size_t count = prediction.numel();
  if (count == 0) throw_shape_error("mse_loss", "empty input");
  const float* p = prediction.value().data();
  const float* t = target.value().data();
  double total = 0.0;
  for (std::size_t i = 0; i < count; ++i) total += static_cast<double>(p[i] - t[i]) * (p[i] - t[i]);
  Tensor out = full({}, static_cast<float>(total / static_cast<double>(count)));
  return prediction.tape().record("mse_loss", {prediction, target}, std::move(out),
                                  [count](const BackwardContext& ctx) {
                                    const float scale = 2.0f * ctx.grad_output.data()[0] / static_cast<float>(count);
                                    const float* p = ctx.input(0).data();
                                    const float* t = ctx.input(1).data();
                                    if (Tensor* gp = ctx.grad(0))
                                      for (std::size_t i = 0; i < count; ++i) gp->data()[i] += scale * (p[i] - t[i]);
                                    if (Tensor* gt = ctx.grad(1))
                                      for (std::size_t i = 0; i < count; ++i) gt->data()[i] -= scale * (p[i] - t[i]);
                                  },
                                  [count](const VjpContext& ctx) {  // 2 (p - t) g / count
                                    Var d = mul(sub(ctx.input(0), ctx.input(1)),
                                                mul(ctx.grad_output, 2.0f / static_cast<float>(count)));
                                    return std::vector<Var>{ctx.needed(0) ? d : Var{}, ctx.needed(1) ? neg(d) : Var{}};
                                  });
}

Var dropout(Var x, float p, bool training, Generator& generator) {
  if (!(p >= 0.0f && p < 1.0f))
    throw std::invalid_argument("dropout: probability must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0.0f) return x;
  const float scale = 1.0f / (1.0f - p);
  Tensor mask = empty(x.shape());
  for (std::size_t i = 0; i < mask.size(); ++i) mask.data()[i] = generator.uniform() < p ? 0.0f : scale;
  Tensor out = empty(x.shape());
  for (std::size_t i = 0; i < out.size(); ++i) out.data()[i] = x.value().data()[i] * mask.data()[i];
  const std::size_t saved = mask.size() * sizeof(float);
  // Shared by both backward forms: the mask is fixed once drawn, so dropout is linear.
  auto kept = std::make_shared<const Tensor>(std::move(mask));
  return x.tape().record("dropout", {x}, std::move(out),
                         [kept](const BackwardContext& ctx) {
                           const float* g = ctx.grad_output.data();
                           const float* m = kept->data();
                           float* gx = ctx.grad(0)->data();
                           for (std::size_t i = 0; i < kept->size(); ++i) gx[i] += g[i] * m[i];
                         },
                         [kept](const VjpContext& ctx) {
                           return std::vector<Var>{mul(ctx.grad_output, ctx.output.tape().constant(*kept))};
                         },
                         saved);
}

}  // namespace stn
