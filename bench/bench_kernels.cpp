// Kernel benchmarks: our single-threaded sgemm at the model's shapes (conv1 / conv2 of the
// 28x28 CNN per sample, their backward GEMMs, the linear layer, squares), next to OpenBLAS's
// cblas_sgemm at the same shapes when built with STN_BENCH_OPENBLAS (the two run one after
// the other for each shape, so machine noise hits both alike; compare the GFLOP/s counters).
// Also im2col and the pooling kernels at the CNN's sizes.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "stn/framework/kernels/conv.h"
#include "stn/framework/kernels/gemm.h"
#include "stn/framework/kernels/gemm_plan.h"
#include "stn/framework/ops/conv.h"
#include "stn/framework/random.h"
#include "stn/framework/tape.h"
#include "stn/framework/tensor.h"

#if defined(STN_BENCH_OPENBLAS)
#include <cblas.h>
#endif

namespace {

using stn::kernels::gemm;

struct GemmShape {
  const char* name;
  bool transpose_a, transpose_b;
  int M, N, K;
};

// C[M, N] = op(A)[M, K] op(B)[K, N], as the ops call them.
const GemmShape kShapes[] = {
    {"conv1_forward", false, false, 32, 400, 81},    // W [32, 81] x columns [81, 400]
    {"conv1_weight_grad", false, true, 32, 81, 400},  // dY [32, 400] x columns^T
    {"conv2_forward", false, false, 64, 16, 1568},
    {"conv2_weight_grad", false, true, 64, 1568, 16},
    {"conv2_input_grad", true, false, 1568, 16, 64},  // W^T x dY
    {"linear_forward", false, true, 256, 10, 1024},   // X [256, 1024] x W^T, W [10, 1024]
    {"linear_input_grad", false, false, 256, 1024, 10},
    {"linear_weight_grad", true, false, 10, 1024, 256},
    {"conv1_forward_42", false, false, 32, 1156, 81},
    {"conv2_forward_42", false, false, 64, 121, 1568},
    {"square_256", false, false, 256, 256, 256},
    {"square_512", false, false, 512, 512, 512},
};

struct Operands {
  stn::Tensor a, b, c;
};

Operands make_operands(const GemmShape& shape) {
  stn::Generator generator(7);
  auto random = [&](std::size_t rows, std::size_t columns) {
    stn::Tensor t = stn::empty({rows, columns});
    for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = generator.uniform(-1.0f, 1.0f);
    return t;
  };
  const auto M = static_cast<std::size_t>(shape.M), N = static_cast<std::size_t>(shape.N),
             K = static_cast<std::size_t>(shape.K);
  return {shape.transpose_a ? random(K, M) : random(M, K),
          shape.transpose_b ? random(N, K) : random(K, N), stn::zeros({M, N})};
}

void set_flops(benchmark::State& state, const GemmShape& shape) {
  const double flops = 2.0 * shape.M * shape.N * shape.K;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9 * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

void gemm_stn(benchmark::State& state, GemmShape shape) {
  Operands x = make_operands(shape);
  const int lda = shape.transpose_a ? shape.M : shape.K;
  const int ldb = shape.transpose_b ? shape.K : shape.N;
  for (auto _ : state) {
    gemm(shape.transpose_a, shape.transpose_b, shape.M, shape.N, shape.K, 1.0f, x.a.data(), lda,
         x.b.data(), ldb, 0.0f, x.c.data(), shape.N);
    benchmark::DoNotOptimize(x.c.data());
  }
  set_flops(state, shape);
  state.SetLabel(stn::kernels::to_string(
      stn::kernels::choose_gemm_plan(shape.transpose_a, shape.transpose_b, shape.M, shape.N,
                                     shape.K, lda, ldb)));
}

// Every plan at every shape, to check (and tune) the cost model's choice:
// --benchmark_filter=gemm_plan/conv1_forward/
void gemm_plan(benchmark::State& state, GemmShape shape, stn::kernels::GemmPlan plan) {
  Operands x = make_operands(shape);
  const int lda = shape.transpose_a ? shape.M : shape.K;
  const int ldb = shape.transpose_b ? shape.K : shape.N;
  for (auto _ : state) {
    stn::kernels::gemm_with_plan(plan, shape.transpose_a, shape.transpose_b, shape.M, shape.N,
                                 shape.K, 1.0f, x.a.data(), lda, x.b.data(), ldb, 0.0f,
                                 x.c.data(), shape.N);
    benchmark::DoNotOptimize(x.c.data());
  }
  set_flops(state, shape);
}

#if defined(STN_BENCH_OPENBLAS)
void gemm_openblas(benchmark::State& state, GemmShape shape) {
  openblas_set_num_threads(1);
  Operands x = make_operands(shape);
  const int lda = shape.transpose_a ? shape.M : shape.K;
  const int ldb = shape.transpose_b ? shape.K : shape.N;
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, shape.transpose_a ? CblasTrans : CblasNoTrans,
                shape.transpose_b ? CblasTrans : CblasNoTrans, shape.M, shape.N, shape.K, 1.0f,
                x.a.data(), lda, x.b.data(), ldb, 0.0f, x.c.data(), shape.N);
    benchmark::DoNotOptimize(x.c.data());
  }
  set_flops(state, shape);
}
#endif

const int kRegistered = [] {
  for (const GemmShape& shape : kShapes) {
    benchmark::RegisterBenchmark((std::string("gemm/") + shape.name + "/stn").c_str(), gemm_stn, shape);
#if defined(STN_BENCH_OPENBLAS)
    benchmark::RegisterBenchmark((std::string("gemm/") + shape.name + "/openblas").c_str(),
                                 gemm_openblas, shape);
#endif
  }
  for (const GemmShape& shape : kShapes)
    for (const stn::kernels::GemmPlan& plan : stn::kernels::gemm_plans())
      benchmark::RegisterBenchmark(
          (std::string("gemm_plan/") + shape.name + "/" + stn::kernels::to_string(plan)).c_str(),
          gemm_plan, shape, plan);
  return 0;
}();

// The 28x28 CNN per sample: conv1 1 -> 32 channels, 9x9 on 28x28; conv2 32 -> 64, 7x7 on 10x10.
void im2col_conv2(benchmark::State& state) {
  stn::kernels::Window2d window{7, 7};
  std::vector<float> image(32 * 10 * 10, 0.5f), columns(32 * 49 * 16);
  for (auto _ : state) {
    stn::kernels::im2col(image.data(), 32, 10, 10, window, columns.data());
    benchmark::DoNotOptimize(columns.data());
  }
  state.SetBytesProcessed(state.iterations() * columns.size() * sizeof(float));
}
BENCHMARK(im2col_conv2);

void col2im_conv2(benchmark::State& state) {
  stn::kernels::Window2d window{7, 7};
  std::vector<float> image(32 * 10 * 10), columns(32 * 49 * 16, 0.5f);
  for (auto _ : state) {
    stn::kernels::col2im_add(columns.data(), 32, 10, 10, window, image.data());
    benchmark::DoNotOptimize(image.data());
  }
  state.SetBytesProcessed(state.iterations() * columns.size() * sizeof(float));
}
BENCHMARK(col2im_conv2);

void max_pool_forward_backward(benchmark::State& state) {
  // After conv1: 256 images x 32 channels of 20x20, pooled 2x2.
  stn::kernels::Window2d window{2, 2, 2, 2};
  const int planes = 256 * 32;
  std::vector<float> input(planes * 400), output(planes * 100), grad_input(planes * 400);
  std::vector<std::int32_t> argmax(planes * 100);
  stn::Generator generator(3);
  for (float& v : input) v = generator.uniform(-1.0f, 1.0f);
  for (auto _ : state) {
    stn::kernels::max_pool2d_forward(input.data(), planes, 20, 20, window, output.data(), argmax.data());
    stn::kernels::max_pool2d_backward_add(output.data(), argmax.data(), planes, 20, 20, window,
                                          grad_input.data());
    benchmark::DoNotOptimize(grad_input.data());
  }
  state.SetBytesProcessed(state.iterations() * input.size() * sizeof(float));
}
BENCHMARK(max_pool_forward_backward);

// The conv2d op, forward and backward, on a batch of 256 with all OpenMP threads, at the
// CNN's two layers; the first layer's input gradient is not needed (as in training).
struct ConvLayer {
  const char* name;
  int channels, size, out_channels, kernel;
  bool input_grad;
};

void conv2d_layer(benchmark::State& state, ConvLayer layer) {
  const std::size_t batch = 256;
  stn::Generator generator(5);
  auto random = [&](const stn::Shape& shape) {
    stn::Tensor t = stn::empty(shape);
    for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = generator.uniform(-1.0f, 1.0f);
    return t;
  };
  const auto c = static_cast<std::size_t>(layer.channels), o = static_cast<std::size_t>(layer.out_channels),
             k = static_cast<std::size_t>(layer.kernel), size = static_cast<std::size_t>(layer.size);
  const std::size_t out = size - k + 1;
  stn::Tensor images = random({batch, c, size, size}), seed = random({batch, o, out, out});
  stn::Parameter weight("weight", random({o, c, k, k})), bias("bias", random({o}));
  for (auto _ : state) {
    stn::Tape tape;
    stn::Var y = stn::conv2d(tape.input(images, layer.input_grad), tape.param(weight), tape.param(bias));
    tape.backward(y, seed);
    benchmark::DoNotOptimize(weight.grad.data());
  }
  const double gemms = layer.input_grad ? 3.0 : 2.0;
  const double flops = gemms * 2.0 * batch * o * c * k * k * out * out;
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

const int kConvRegistered = [] {
  for (ConvLayer layer : {ConvLayer{"conv1_28", 1, 28, 32, 9, false}, ConvLayer{"conv2_28", 32, 10, 64, 7, true},
                          ConvLayer{"conv1_42", 3, 42, 32, 9, false}, ConvLayer{"conv2_42", 32, 17, 64, 7, true}})
    benchmark::RegisterBenchmark((std::string("conv2d_forward_backward/") + layer.name).c_str(),
                                 conv2d_layer, layer)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
