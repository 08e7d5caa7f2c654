// A custom op: softplus(x) = log(1 + e^x), recorded on the tape with its backward (and its
// backward as ops, for second derivatives), then checked against finite differences.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

#include <stn/stn.h>

stn::Var softplus(stn::Var x) {
  const stn::Tensor& in = x.value();
  stn::Tensor out = stn::empty(stn::shape_of(in));
  for (std::size_t i = 0; i < in.size(); ++i) {
    const float v = in.data()[i];
    out.data()[i] = std::max(v, 0.0f) + std::log1p(std::exp(-std::abs(v)));  // no overflow
  }
  // d softplus / dx = sigmoid(x). The backward adds (+=) into the input's gradient.
  stn::BackwardFn backward = [](const stn::BackwardContext& ctx) {
    stn::Tensor* grad = ctx.grad(0);  // nullptr when x needs no gradient
    if (!grad) return;
    const stn::Tensor& x = ctx.input(0);
    for (std::size_t i = 0; i < x.size(); ++i) {
      grad->data()[i] += ctx.grad_output.data()[i] / (1.0f + std::exp(-x.data()[i]));
    }
  };
  // The same backward written with differentiable ops, so that stn::grad can differentiate it.
  stn::VjpFn vjp = [](const stn::VjpContext& ctx) -> std::vector<stn::Var> {
    return {stn::mul(ctx.grad_output, stn::sigmoid(ctx.input(0)))};
  };
  return x.tape().record("softplus", {x}, std::move(out), std::move(backward), std::move(vjp));
}

int main() {
  stn::Generator generator(3);
  stn::Tensor x = stn::empty({3, 4});
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = generator.uniform(-3, 3);

  auto function = [](const std::vector<stn::Var>& inputs) { return softplus(inputs[0]); };
  const stn::GradcheckResult first = stn::gradcheck(function, {x});
  const stn::GradcheckResult second = stn::gradgradcheck(function, {x});
  std::printf("%s (%zu elements, max error %.2g)\n", first.ok ? "gradcheck: ok" : first.message.c_str(),
              first.elements_checked, first.max_abs_error);
  std::printf("%s (%zu elements, max error %.2g)\n", second.ok ? "gradgradcheck: ok" : second.message.c_str(),
              second.elements_checked, second.max_abs_error);
  return first.ok && second.ok ? 0 : 1;
}
