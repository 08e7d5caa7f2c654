#include "stn/framework/ops/linalg.h"

#include "stn/framework/error.h"
#include "stn/framework/kernels/gemm.h"
#include "stn/framework/ops/reduce.h"
#include "stn/framework/ops/shape.h"

namespace stn {

using kernels::gemm;

Var matmul(Var a, Var b) {
  const Shape sa = a.shape(), sb = b.shape();
  const bool batched = sa.size() == 3;
  const bool shared_b = batched && sb.size() == 2;
  const bool valid = (sa.size() == 2 && sb.size() == 2) ||
                     (batched && (shared_b || (sb.size() == 3 && sb[0] == sa[0])));
  if (!valid || sa[sa.size() - 1] != sb[sb.size() - 2])
    throw_shape_error("matmul", "cannot multiply " + shape_string(sa) + " by " + shape_string(sb));
  const int batch = batched ? static_cast<int>(sa[0]) : 1;
  const int M = static_cast<int>(sa[sa.size() - 2]);
  const int K = static_cast<int>(sa.back());
  const int N = static_cast<int>(sb.back());
  const std::size_t step_a = static_cast<std::size_t>(M) * K;
  const std::size_t step_b = shared_b || !batched ? 0 : static_cast<std::size_t>(K) * N;
  const std::size_t step_c = static_cast<std::size_t>(M) * N;

  Shape out_shape = batched ? Shape{sa[0], sa[1], sb.back()} : Shape{sa[0], sb.back()};
  Tensor out = empty(out_shape);
  for (int n = 0; n < batch; ++n)
    gemm(false, false, M, N, K, 1.0f, a.value().data() + n * step_a, K,
         b.value().data() + n * step_b, N, 0.0f, out.data() + n * step_c, N);

  return a.tape().record("matmul", {a, b}, std::move(out), [=](const BackwardContext& ctx) {
    const float* g = ctx.grad_output.data();
    for (int n = 0; n < batch; ++n) {
      if (Tensor* ga = ctx.grad(0))  // dA = dC B^T
        gemm(false, true, M, K, N, 1.0f, g + n * step_c, N, ctx.input(1).data() + n * step_b, N,
             1.0f, ga->data() + n * step_a, K);
      if (Tensor* gb = ctx.grad(1))  // dB = A^T dC (summed over the batch when shared)
        gemm(true, false, K, N, M, 1.0f, ctx.input(0).data() + n * step_a, K, g + n * step_c, N,
             1.0f, gb->data() + n * step_b, N);
    }
  }, [shared_b](const VjpContext& ctx) {
    const Var& g = ctx.grad_output;
    std::vector<Var> grads(2);
    if (ctx.needed(0)) grads[0] = matmul(g, transpose(ctx.input(1), -2, -1));
    if (ctx.needed(1)) {
      if (shared_b)  // B was used by every batch element: sum over the batch
        grads[1] = matmul(transpose(reshape(ctx.input(0), {-1, static_cast<std::int64_t>(ctx.input(0).dim(-1))}), 0, 1),
                          reshape(g, {-1, static_cast<std::int64_t>(g.dim(-1))}));
      else
        grads[1] = matmul(transpose(ctx.input(0), -2, -1), g);
    }
    return grads;
  });
}

Var linear(Var x, Var weight, Var bias) {
  const Shape sx = x.shape(), sw = weight.shape();
  if (sx.size() != 2 || sw.size() != 2 || sx[1] != sw[1])
    throw_shape_error("linear", "input " + shape_string(sx) + " does not fit weight " +
                                    shape_string(sw) + " (expected input [N, " +
                                    (sw.size() == 2 ? std::to_string(sw[1]) : "?") + "])");
  const bool has_bias = bias.valid();
  if (has_bias && bias.shape() != Shape{sw[0]})
    throw_shape_error("linear", "bias " + shape_string(bias.value()) + " does not match weight " +
                                    shape_string(sw));
  const int N = static_cast<int>(sx[0]), in = static_cast<int>(sx[1]), out_features = static_cast<int>(sw[0]);
  Tensor out = empty({sx[0], sw[0]});
  if (has_bias) {
    const float* pb = bias.value().data();
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < out_features; ++o) out.data()[n * out_features + o] = pb[o];
  }
  gemm(false, true, N, out_features, in, 1.0f, x.value().data(), in, weight.value().data(), in,
       has_bias ? 1.0f : 0.0f, out.data(), out_features);

  std::vector<Var> inputs = {x, weight};
  if (has_bias) inputs.push_back(bias);
  return x.tape().record("linear", inputs, std::move(out), [=](const BackwardContext& ctx) {
    const float* g = ctx.grad_output.data();
    if (Tensor* gx = ctx.grad(0))  // dx = dy W
      gemm(false, false, N, in, out_features, 1.0f, g, out_features, ctx.input(1).data(), in, 1.0f,
           gx->data(), in);
    if (Tensor* gw = ctx.grad(1))  // dW = dy^T x
      gemm(true, false, out_features, in, N, 1.0f, g, out_features, ctx.input(0).data(), in, 1.0f,
           gw->data(), in);
    if (has_bias)
      if (Tensor* gb = ctx.grad(2))
        for (int n = 0; n < N; ++n)
          for (int o = 0; o < out_features; ++o) gb->data()[o] += g[n * out_features + o];
  }, [has_bias](const VjpContext& ctx) {
    const Var& g = ctx.grad_output;
    std::vector<Var> grads(ctx.inputs.size());
    if (ctx.needed(0)) grads[0] = matmul(g, ctx.input(1));                 // dx = dy W
    if (ctx.needed(1)) grads[1] = matmul(transpose(g, 0, 1), ctx.input(0));  // dW = dy^T x
    if (has_bias && ctx.needed(2)) grads[2] = sum(g, {0});
    return grads;
  });
}

}  // namespace stn
