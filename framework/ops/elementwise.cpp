#include "stn/framework/ops/elementwise.h"

#include <cmath>

#include "stn/framework/error.h"
#include "stn/framework/kernels/broadcast.h"
#include "stn/framework/ops/reduce.h"

namespace stn {

Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()), 1);
  for (std::size_t k = 0; k < out.size(); ++k) {
    std::size_t da = k < a.size() ? a[a.size() - 1 - k] : 1;
    std::size_t db = k < b.size() ? b[b.size() - 1 - k] : 1;
    if (da != db && da != 1 && db != 1)
      throw_shape_error(op, "shapes " + shape_string(a) + " and " + shape_string(b) +
                                " do not broadcast");
    out[out.size() - 1 - k] = da == 1 ? db : da;
  }
  return out;
}

namespace {

// A binary op with broadcasting. `forward(a, b)` gives the value; `backward(g, a, b, y, &da,
// &db)` gives the partial gradients of one element (da is ignored when not needed).
template <class Forward, class Backward>
Var binary(const char* op, Var a, Var b, Forward forward, Backward backward, VjpFn vjp) {
  const Shape shape_a = a.shape(), shape_b = b.shape();
  const Shape out_shape = broadcast_shape(op, shape_a, shape_b);
  auto stride_a = kernels::broadcast_strides(shape_a, out_shape);
  auto stride_b = kernels::broadcast_strides(shape_b, out_shape);
  Tensor out = empty(out_shape);
  {
    const float* pa = a.value().data();
    const float* pb = b.value().data();
    float* po = out.data();
    if (shape_a == shape_b) {
      for (std::size_t i = 0; i < out.size(); ++i) po[i] = forward(pa[i], pb[i]);
    } else {
      kernels::for_each_broadcast(out_shape, stride_a, stride_b,
                                  [&](std::size_t o, std::size_t ia, std::size_t ib) {
                                    po[o] = forward(pa[ia], pb[ib]);
                                  });
    }
  }
  return a.tape().record(
      op, {a, b}, std::move(out),
      [out_shape, stride_a, stride_b, backward](const BackwardContext& ctx) {
        const float* g = ctx.grad_output.data();
        const float* pa = ctx.input(0).data();
        const float* pb = ctx.input(1).data();
        const float* py = ctx.output.data();
        float* ga = ctx.grad(0) ? ctx.grad(0)->data() : nullptr;
        float* gb = ctx.grad(1) ? ctx.grad(1)->data() : nullptr;
        kernels::for_each_broadcast(out_shape, stride_a, stride_b,
                                    [&](std::size_t o, std::size_t ia, std::size_t ib) {
                                      float da = 0, db = 0;
                                      backward(g[o], pa[ia], pb[ib], py[o], da, db);
                                      if (ga) ga[ia] += da;
                                      if (gb) gb[ib] += db;
                                    });
      },
      std::move(vjp));
}

// The gradients of a broadcasting binary op, summed back to each input's shape.
std::vector<Var> to_input_shapes(const VjpContext& ctx, Var da, Var db) {
  return {ctx.needed(0) ? sum_to(da, ctx.input(0).shape()) : Var{},
          ctx.needed(1) ? sum_to(db, ctx.input(1).shape()) : Var{}};
}

// Below this many elements a unary op runs on one thread: a single pass over memory does not
// pay for waking a second one.
constexpr std::ptrdiff_t kParallelElements = 256 * 1024;

// A unary op. `derivative(x, y)` is dy/dx at one element.
template <class Forward, class Derivative>
Var unary(const char* op, Var x, Forward forward, Derivative derivative, VjpFn vjp) {
  Tensor out = empty(x.shape());
  const float* px = x.value().data();
  float* po = out.data();
  // Element by element: the same bits for any thread count.
  const auto n = static_cast<std::ptrdiff_t>(out.size());
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (std::ptrdiff_t i = 0; i < n; ++i) po[i] = forward(px[i]);
  return x.tape().record(op, {x}, std::move(out), [derivative](const BackwardContext& ctx) {
    const float* g = ctx.grad_output.data();
    const float* px = ctx.input(0).data();
    const float* py = ctx.output.data();
    float* gx = ctx.grad(0)->data();
    const auto n = static_cast<std::ptrdiff_t>(ctx.output.size());
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
    for (std::ptrdiff_t i = 0; i < n; ++i) gx[i] += g[i] * derivative(px[i], py[i]);
  }, std::move(vjp));
}

// The differentiable backward of a unary op: g times a derivative written with ops.
template <class Derivative>
VjpFn unary_vjp(Derivative derivative) {
  return [derivative](const VjpContext& ctx) {
    return std::vector<Var>{derivative(ctx.grad_output, ctx.input(0), ctx.output)};
  };
}

}  // namespace

Var add(Var a, Var b) {
  return binary("add", a, b, [](float x, float y) { return x + y; },
                [](float g, float, float, float, float& da, float& db) { da = g; db = g; },
                [](const VjpContext& ctx) { return to_input_shapes(ctx, ctx.grad_output, ctx.grad_output); });
}
Var sub(Var a, Var b) {
  return binary("sub", a, b, [](float x, float y) { return x - y; },
                [](float g, float, float, float, float& da, float& db) { da = g; db = -g; },
                [](const VjpContext& ctx) {
                  return to_input_shapes(ctx, ctx.grad_output, ctx.needed(1) ? neg(ctx.grad_output) : Var{});
                });
}
Var mul(Var a, Var b) {
  return binary("mul", a, b, [](float x, float y) { return x * y; },
                [](float g, float x, float y, float, float& da, float& db) {
                  da = g * y;
                  db = g * x;
                },
                [](const VjpContext& ctx) {
                  // Named in a fixed order (b's first), not as two arguments of one call, whose
                  // order of evaluation, and so the tape's entry order, C++ leaves to the compiler.
                  const Var& g = ctx.grad_output;
                  const Var db = ctx.needed(1) ? mul(g, ctx.input(0)) : Var{};
                  const Var da = ctx.needed(0) ? mul(g, ctx.input(1)) : Var{};
                  return to_input_shapes(ctx, da, db);
                });
}
Var div(Var a, Var b) {
  return binary("div", a, b, [](float x, float y) { return x / y; },
                [](float g, float x, float y, float, float& da, float& db) {
                  da = g / y;
                  db = -g * x / (y * y);
                },
                [](const VjpContext& ctx) {  // d(a/b)/db = -(a/b)/b
                  const Var& g = ctx.grad_output;
                  const Var& b = ctx.input(1);
                  const Var db = ctx.needed(1) ? neg(div(mul(g, ctx.output), b)) : Var{};  // b's first, as in mul
                  const Var da = ctx.needed(0) ? div(g, b) : Var{};
                  return to_input_shapes(ctx, da, db);
                });
}

Var add(Var a, float s) {
  return unary("add_scalar", a, [s](float x) { return x + s; }, [](float, float) { return 1.0f; },
               unary_vjp([](Var g, Var, Var) { return g; }));
}
Var sub(Var a, float s) { return add(a, -s); }
Var sub(float s, Var a) {
  return unary("rsub_scalar", a, [s](float x) { return s - x; }, [](float, float) { return -1.0f; },
               unary_vjp([](Var g, Var, Var) { return neg(g); }));
}
Var mul(Var a, float s) {
  return unary("mul_scalar", a, [s](float x) { return x * s; }, [s](float, float) { return s; },
               unary_vjp([s](Var g, Var, Var) { return mul(g, s); }));
}
Var div(Var a, float s) {
  return unary("div_scalar", a, [s](float x) { return x / s; },
               [s](float, float) { return 1.0f / s; },
               unary_vjp([s](Var g, Var, Var) { return div(g, s); }));
}
Var div(float s, Var a) {
  return unary("rdiv_scalar", a, [s](float x) { return s / x; },
               [s](float x, float) { return -s / (x * x); },
               unary_vjp([](Var g, Var x, Var y) { return neg(div(mul(g, y), x)); }));
}

Var neg(Var x) {
  return unary("neg", x, [](float v) { return -v; }, [](float, float) { return -1.0f; },
               unary_vjp([](Var g, Var, Var) { return neg(g); }));
}
Var exp(Var x) {
  return unary("exp", x, [](float v) { return std::exp(v); }, [](float, float y) { return y; },
               unary_vjp([](Var g, Var, Var y) { return mul(g, y); }));
}
Var log(Var x) {
  return unary("log", x, [](float v) { return std::log(v); },
               [](float v, float) { return 1.0f / v; },
               unary_vjp([](Var g, Var x, Var) { return div(g, x); }));
}
Var sqrt(Var x) {
  return unary("sqrt", x, [](float v) { return std::sqrt(v); },
               [](float, float y) { return 0.5f / y; },
               unary_vjp([](Var g, Var, Var y) { return div(mul(g, 0.5f), y); }));
}
Var pow(Var x, float exponent) {
  return unary("pow", x, [exponent](float v) { return std::pow(v, exponent); },
               [exponent](float v, float) { return exponent * std::pow(v, exponent - 1.0f); },
               unary_vjp([exponent](Var g, Var x, Var) {
                 return mul(g, exponent == 1.0f ? x.tape().constant(full(x.shape(), 1.0f))
                                                : mul(pow(x, exponent - 1.0f), exponent));
               }));
}
Var relu(Var x) {
  return unary("relu", x, [](float v) { return v > 0.0f ? v : 0.0f; },
               [](float v, float) { return v > 0.0f ? 1.0f : 0.0f; },
               unary_vjp([](Var g, Var x, Var) {  // the step's own derivative is 0 (a.e.)
                 Tensor step = empty(x.shape());
                 const float* px = x.value().data();
                 for (std::size_t i = 0; i < step.size(); ++i) step.data()[i] = px[i] > 0.0f ? 1.0f : 0.0f;
                 return mul(g, x.tape().constant(std::move(step)));
               }));
}
Var sigmoid(Var x) {
  return unary("sigmoid", x,
               [](float v) {
                 // Split on the sign so exp never overflows.
                 if (v >= 0) return 1.0f / (1.0f + std::exp(-v));
                 float e = std::exp(v);
                 return e / (1.0f + e);
               },
               [](float, float y) { return y * (1.0f - y); },
               unary_vjp([](Var g, Var, Var y) { return mul(g, mul(y, sub(1.0f, y))); }));
}
Var tanh(Var x) {
  return unary("tanh", x, [](float v) { return std::tanh(v); },
               [](float, float y) { return 1.0f - y * y; },
               unary_vjp([](Var g, Var, Var y) { return mul(g, sub(1.0f, mul(y, y))); }));
}

}  // namespace stn
