// Model-level benchmarks (issue 6): whole training steps of the paper's CNN and ST-CNN at
// 28x28 and 42x42, the conv2d op forward and backward at the models' layer shapes, max-pool,
// the spatial transformer's sampler (affine_grid + grid_sample), and the fixed per-op cost of
// the tape (every op on a tiny input).
//
//   build-bench/bench/stn_bench --benchmark_filter='^BM_TrainStep/'
//   STN_THREADS=1,2 build-bench/bench/stn_bench --benchmark_filter='^BM_TrainStep/st_cnn28/'
//
// Threads: every case takes a "threads" argument (its name ends in /threads:T) and runs with
// omp_set_num_threads(T). The thread counts registered come from the environment variable
// STN_THREADS (one number, or a comma-separated list such as "1,2"); without it, one entry
// with OpenMP's default (all cores, or OMP_NUM_THREADS).
//
// Counters (rates are per second of wall-clock time: every case uses real time, since the
// work runs on several OpenMP threads):
//   samples/s   training samples (images) per second
//   GFLOP/s     the GEMM arithmetic of a conv (2 * MACs per GEMM: forward, weight gradient,
//               input gradient when the layer needs it)
//   Mpixel/s    sampler output pixels (N * H' * W' * C) per second
//   params      the model's learnable parameter count (compare_pytorch.py checks it)
//
// A training step is exactly what `stn train` does per iteration: tape.clear(), forward,
// cross-entropy, backward, SGD (momentum 0.9, lr 0.01) step, zero_grad, on a fixed random
// batch of 256 images (uniform in [0, 1)) with fixed random labels.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "stn/framework/ops/conv.h"
#include "stn/framework/ops/elementwise.h"
#include "stn/framework/ops/linalg.h"
#include "stn/framework/ops/loss.h"
#include "stn/framework/ops/pool.h"
#include "stn/framework/ops/reduce.h"
#include "stn/framework/ops/shape.h"
#include "stn/framework/ops/spatial_grid.h"
#include "stn/framework/ops/spatial_sample.h"
#include "stn/framework/optim/optimizer.h"
#include "stn/framework/random.h"
#include "stn/framework/tape.h"
#include "stn/framework/tensor.h"
#include "stn/layers/layers.h"
#include "stn/layers/spatial_transformer.h"
#include "stn/models/models.h"

namespace {

constexpr std::size_t kBatch = 256;

// ---- threads ----------------------------------------------------------------------------

std::vector<int> thread_counts() {
  std::vector<int> counts;
  if (const char* env = std::getenv("STN_THREADS"); env && *env) {
    std::stringstream list(env);
    std::string item;
    while (std::getline(list, item, ',')) {
      const int t = std::atoi(item.c_str());
      if (t > 0) counts.push_back(t);
    }
  }
  if (counts.empty()) counts.push_back(omp_get_max_threads());
  return counts;
}

// Sets the OpenMP thread count for one case and restores the previous one after it.
class ThreadScope {
 public:
  explicit ThreadScope(const benchmark::State& state) : previous_(omp_get_max_threads()) {
    const auto threads = static_cast<int>(state.range(0));
    if (threads > 0) omp_set_num_threads(threads);
  }
  ~ThreadScope() { omp_set_num_threads(previous_); }
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_;
};

// Registers `name`/threads:T for every thread count; every case measures real time.
template <class Function, class... Extra>
void register_case(const std::string& name, Function function, benchmark::TimeUnit unit, Extra... extra) {
  auto* bench = benchmark::RegisterBenchmark(name.c_str(), function, extra...);
  bench->ArgName("threads")->UseRealTime()->Unit(unit);
  for (int t : thread_counts()) bench->Arg(t);
}

// ---- data -------------------------------------------------------------------------------

stn::Tensor random_tensor(const stn::Shape& shape, std::uint64_t seed, float low = -1.0f, float high = 1.0f) {
  stn::Generator generator(seed);
  stn::Tensor t = stn::empty(shape);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = generator.uniform(low, high);
  return t;
}

std::vector<std::int32_t> random_labels(std::size_t count, int classes, std::uint64_t seed) {
  stn::Generator generator(seed);
  std::vector<std::int32_t> labels(count);
  for (auto& l : labels) l = static_cast<std::int32_t>(generator.below(static_cast<std::uint64_t>(classes)));
  return labels;
}

void set_rate(benchmark::State& state, const char* name, double per_iteration) {
  state.counters[name] =
      benchmark::Counter(per_iteration * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// ---- whole training steps ---------------------------------------------------------------

struct ModelCase {
  const char* name;   // benchmark name part
  const char* model;  // registry name
  stn::InputSpec input;
};

const ModelCase kModels[] = {
    {"cnn28", "cnn", {.channels = 1, .height = 28, .width = 28, .classes = 10}},
    // Affine ST-CNN: localisation net on a 2x average-pooled copy of the input; the
    // transformer samples 28x28.
    {"st_cnn28", "st-cnn-aff", {.channels = 1, .height = 28, .width = 28, .classes = 10}},
    {"cnn42", "cnn", {.channels = 1, .height = 42, .width = 42, .classes = 10}},
    // At 42x42 (RTS) our ST-CNN samples a 56x56 output and average-pools it to 28x28 for its
    // classifier (models/spatial_models.cpp), so its classifier is the 28x28 CNN's.
    {"st_cnn42", "st-cnn-aff", {.channels = 1, .height = 42, .width = 42, .classes = 10}},
};

void train_step(benchmark::State& state, ModelCase c) {
  ThreadScope threads(state);
  stn::Generator init(1);
  std::shared_ptr<stn::Module> model = stn::make_model(c.model, c.input, init);
  model->train();
  stn::SGD optimizer({{model->parameters()}}, {.learning_rate = 0.01f, .momentum = 0.9f});
  const stn::Tensor images = random_tensor(
      {kBatch, static_cast<std::size_t>(c.input.channels), static_cast<std::size_t>(c.input.height),
       static_cast<std::size_t>(c.input.width)},
      11, 0.0f, 1.0f);
  const std::vector<std::int32_t> labels = random_labels(kBatch, c.input.classes, 12);
  stn::Tape tape;
  auto step = [&] {
    tape.clear();
    stn::Var logits = model->forward(tape.input(images));
    stn::Var loss = stn::cross_entropy(logits, labels);
    tape.backward(loss);
    optimizer.step();
    optimizer.zero_grad();
    return loss;
  };
  step();  // warm-up: first-touch allocations, caches (TPS / grid tables) outside the timing
  for (auto _ : state) {
    stn::Var loss = step();
    benchmark::DoNotOptimize(loss.value().data());
  }
  set_rate(state, "samples/s", static_cast<double>(kBatch));
  state.counters["params"] = static_cast<double>(model->parameter_count());
  state.counters["tape_entries"] = static_cast<double>(tape.size());
}

// ---- conv2d forward / backward at the models' layer shapes --------------------------------

struct ConvCase {
  const char* name;
  std::size_t channels, size, out_channels, kernel;
  bool input_grad;  // the layer's input needs a gradient (not for a layer on the raw image)
};

const ConvCase kConvs[] = {
    // CNN 28x28 (and the ST-CNN classifiers: their conv1 input is the sampler output, which
    // needs a gradient to train theta, hence the _dx variant).
    {"conv1_28", 1, 28, 32, 9, false},
    {"conv1_28_dx", 1, 28, 32, 9, true},
    {"conv2_28", 32, 10, 64, 7, true},
    // CNN 42x42.
    {"conv1_42", 1, 42, 32, 9, false},
    {"conv2_42", 32, 17, 64, 7, true},
    // ST-CNN localisation nets (2x downsampled input: 14x14 and 21x21).
    {"loc_conv1_28", 1, 14, 20, 5, false},
    {"loc_conv2_28", 20, 5, 20, 5, true},
    {"loc_conv1_42", 1, 21, 20, 5, false},
    {"loc_conv2_42", 20, 8, 20, 5, true},
};

struct ConvFixture {
  stn::Tensor images, seed;
  stn::Parameter weight, bias;
  double forward_flops = 0;

  explicit ConvFixture(const ConvCase& c)
      : images(random_tensor({kBatch, c.channels, c.size, c.size}, 5)),
        seed(random_tensor({kBatch, c.out_channels, c.size - c.kernel + 1, c.size - c.kernel + 1}, 6)),
        weight("weight", random_tensor({c.out_channels, c.channels, c.kernel, c.kernel}, 7, -0.1f, 0.1f)),
        bias("bias", random_tensor({c.out_channels}, 8)) {
    const double out = static_cast<double>(c.size - c.kernel + 1);
    forward_flops = 2.0 * kBatch * c.out_channels * c.channels * c.kernel * c.kernel * out * out;
  }
};

void conv_forward(benchmark::State& state, ConvCase c) {
  ThreadScope threads(state);
  ConvFixture x(c);
  stn::Tape tape;
  for (auto _ : state) {
    tape.clear();
    stn::Var y = stn::conv2d(tape.input(x.images, c.input_grad), tape.param(x.weight), tape.param(x.bias));
    benchmark::DoNotOptimize(y.value().data());
  }
  set_rate(state, "GFLOP/s", x.forward_flops * 1e-9);
  set_rate(state, "samples/s", static_cast<double>(kBatch));
}

// Backward only: the forward is recorded with the timer paused.
void conv_backward(benchmark::State& state, ConvCase c) {
  ThreadScope threads(state);
  ConvFixture x(c);
  stn::Tape tape;
  for (auto _ : state) {
    state.PauseTiming();
    tape.clear();
    stn::Var y = stn::conv2d(tape.input(x.images, c.input_grad), tape.param(x.weight), tape.param(x.bias));
    state.ResumeTiming();
    tape.backward(y, x.seed);
    benchmark::DoNotOptimize(x.weight.grad.data());
  }
  set_rate(state, "GFLOP/s", (c.input_grad ? 2.0 : 1.0) * x.forward_flops * 1e-9);
  set_rate(state, "samples/s", static_cast<double>(kBatch));
}

// ---- max-pool ------------------------------------------------------------------------------

struct PoolCase {
  const char* name;
  std::size_t channels, size;
};

const PoolCase kPools[] = {
    {"cnn28_pool1", 32, 20}, {"cnn28_pool2", 64, 4}, {"cnn42_pool1", 32, 34}, {"cnn42_pool2", 64, 11},
};

void max_pool_forward_backward(benchmark::State& state, PoolCase c) {
  ThreadScope threads(state);
  const stn::Tensor input = random_tensor({kBatch, c.channels, c.size, c.size}, 9);
  const std::size_t out = c.size / 2;
  const stn::Tensor seed = random_tensor({kBatch, c.channels, out, out}, 10);
  stn::Tape tape;
  for (auto _ : state) {
    tape.clear();
    stn::Var y = stn::max_pool2d(tape.input(input, true));
    tape.backward(y, seed);
    benchmark::DoNotOptimize(tape.entry(0).grad.data());
  }
  set_rate(state, "samples/s", static_cast<double>(kBatch));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size() * sizeof(float)));
}

// ---- the sampler -------------------------------------------------------------------------

struct SamplerCase {
  const char* name;
  std::size_t channels, in_size, out_size;
  bool input_grad;  // U needs a gradient (a transformer on a feature map, not on the image)
};

const SamplerCase kSamplers[] = {
    {"affine28", 1, 28, 28, false},     // issue 6's sampler figure; the ST-CNN 28 case
    {"affine28_dU", 1, 28, 28, true},   // with the scatter-add gradient to U
    {"affine42to56", 1, 42, 56, false}, // the ST-CNN 42 case
};

// theta: the identity plus a fixed random perturbation, so samples fall between pixels and
// some outside the image (both code paths of the bilinear kernel).
stn::Tensor random_theta(std::size_t batch) {
  stn::Tensor theta = random_tensor({batch, 2, 3}, 13, -0.2f, 0.2f);
  for (std::size_t n = 0; n < batch; ++n) {
    theta(n, 0, 0) += 1.0f;
    theta(n, 1, 1) += 1.0f;
  }
  return theta;
}

void sampler_forward_backward(benchmark::State& state, SamplerCase c) {
  ThreadScope threads(state);
  const stn::Tensor input = random_tensor({kBatch, c.channels, c.in_size, c.in_size}, 14, 0.0f, 1.0f);
  const stn::Tensor theta = random_theta(kBatch);
  const stn::Tensor seed = random_tensor({kBatch, c.channels, c.out_size, c.out_size}, 15);
  stn::Tape tape;
  for (auto _ : state) {
    tape.clear();
    stn::Var t = tape.input(theta, true);
    stn::Var grid = stn::affine_grid(t, c.out_size, c.out_size);
    stn::Var v = stn::grid_sample(tape.input(input, c.input_grad), grid);
    tape.backward(v, seed);
    benchmark::DoNotOptimize(t.grad().data());
  }
  set_rate(state, "Mpixel/s", static_cast<double>(kBatch * c.channels * c.out_size * c.out_size) * 1e-6);
  set_rate(state, "samples/s", static_cast<double>(kBatch));
}

void sampler_forward(benchmark::State& state, SamplerCase c) {
  ThreadScope threads(state);
  const stn::Tensor input = random_tensor({kBatch, c.channels, c.in_size, c.in_size}, 14, 0.0f, 1.0f);
  const stn::Tensor theta = random_theta(kBatch);
  stn::Tape tape;
  for (auto _ : state) {
    tape.clear();
    stn::Var t = tape.input(theta, true);
    stn::Var v = stn::grid_sample(tape.input(input, c.input_grad), stn::affine_grid(t, c.out_size, c.out_size));
    benchmark::DoNotOptimize(v.value().data());
  }
  set_rate(state, "Mpixel/s", static_cast<double>(kBatch * c.channels * c.out_size * c.out_size) * 1e-6);
}

// ---- per-op cost ---------------------------------------------------------------------------
//
// BM_OpOverhead/<op>: the op recorded on the tape and its backward run, on a tiny input
// (one or a few elements): the time is the fixed cost per op (tape entry, std::function,
// tensor allocations, OpenMP region start-up), which the 10-20 ops of a training step pay
// twice each (forward and backward) regardless of the batch.
// BM_Op/<op>_<where>: the same ops at their shapes in the ST-CNN 28 training step, batch 256,
// forward + backward, so their sum can be set against BM_TrainStep/st_cnn28.

using OpFunction = stn::Var (*)(stn::Tape&, const std::vector<stn::Var>&);

struct OpCase {
  const char* name;
  std::vector<stn::Shape> inputs;  // every input needs a gradient
  OpFunction op;
};

std::vector<std::int32_t> zero_labels(std::size_t n) { return std::vector<std::int32_t>(n, 0); }

const std::vector<OpCase>& op_cases_tiny() {
  static const std::vector<OpCase> cases = {
      {"add", {{1, 4}, {1, 4}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::add(x[0], x[1]); }},
      {"mul", {{1, 4}, {1, 4}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::mul(x[0], x[1]); }},
      {"relu", {{1, 4}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::relu(x[0]); }},
      {"reshape", {{1, 4}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::reshape(x[0], {2, 2}); }},
      {"flatten", {{1, 1, 2, 2}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::flatten(x[0]); }},
      {"sum", {{1, 4}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::sum(x[0]); }},
      {"linear", {{1, 4}, {2, 4}, {2}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::linear(x[0], x[1], x[2]); }},
      {"conv2d", {{1, 1, 2, 2}, {1, 1, 1, 1}, {1}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::conv2d(x[0], x[1], x[2]); }},
      {"max_pool2d", {{1, 1, 2, 2}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::max_pool2d(x[0]); }},
      {"avg_pool2d", {{1, 1, 2, 2}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::avg_pool2d(x[0]); }},
      {"cross_entropy", {{1, 4}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::cross_entropy(x[0], zero_labels(1)); }},
      {"affine_grid", {{1, 2, 3}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::affine_grid(x[0], 2, 2); }},
      {"grid_sample", {{1, 1, 2, 2}, {1, 2, 2, 2}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::grid_sample(x[0], x[1]); }},
  };
  return cases;
}

const std::vector<OpCase>& op_cases_model() {
  static const std::vector<OpCase> cases = {
      {"avg_pool2d_downsample", {{kBatch, 1, 28, 28}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::avg_pool2d(x[0]); }},
      {"loc_conv1", {{kBatch, 1, 14, 14}, {20, 1, 5, 5}, {20}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::conv2d(x[0], x[1], x[2]); }},
      {"loc_relu1", {{kBatch, 20, 10, 10}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::relu(x[0]); }},
      {"loc_pool", {{kBatch, 20, 10, 10}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::max_pool2d(x[0]); }},
      {"loc_conv2", {{kBatch, 20, 5, 5}, {20, 20, 5, 5}, {20}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::conv2d(x[0], x[1], x[2]); }},
      {"loc_fc", {{kBatch, 20}, {20, 20}, {20}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::linear(x[0], x[1], x[2]); }},
      {"regression", {{kBatch, 20}, {6, 20}, {6}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::linear(x[0], x[1], x[2]); }},
      {"affine_grid", {{kBatch, 2, 3}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::affine_grid(x[0], 28, 28); }},
      {"conv1", {{kBatch, 1, 28, 28}, {32, 1, 9, 9}, {32}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::conv2d(x[0], x[1], x[2]); }},
      {"relu1", {{kBatch, 32, 20, 20}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::relu(x[0]); }},
      {"pool1", {{kBatch, 32, 20, 20}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::max_pool2d(x[0]); }},
      {"conv2", {{kBatch, 32, 10, 10}, {58, 32, 7, 7}, {58}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::conv2d(x[0], x[1], x[2]); }},
      {"relu2", {{kBatch, 58, 4, 4}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::relu(x[0]); }},
      {"pool2", {{kBatch, 58, 4, 4}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::max_pool2d(x[0]); }},
      {"flatten", {{kBatch, 58, 2, 2}}, [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::flatten(x[0]); }},
      {"classifier", {{kBatch, 232}, {10, 232}, {10}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::linear(x[0], x[1], x[2]); }},
      {"cross_entropy", {{kBatch, 10}},
       [](stn::Tape&, const std::vector<stn::Var>& x) { return stn::cross_entropy(x[0], zero_labels(kBatch)); }},
  };
  return cases;
}

void op_forward_backward(benchmark::State& state, const OpCase* c) {
  ThreadScope threads(state);
  std::vector<stn::Tensor> values;
  for (std::size_t i = 0; i < c->inputs.size(); ++i) values.push_back(random_tensor(c->inputs[i], 20 + i));
  stn::Tape tape;
  stn::Tensor seed;
  for (auto _ : state) {
    tape.clear();
    std::vector<stn::Var> inputs;
    for (const stn::Tensor& v : values) inputs.push_back(tape.input(v, true));
    stn::Var y = c->op(tape, inputs);
    if (seed.size() != y.numel() || stn::shape_of(seed) != y.shape()) seed = stn::full(y.shape(), 0.5f);
    tape.backward(y, seed);
    benchmark::DoNotOptimize(tape.entry(0).grad.data());
  }
  set_rate(state, "ops/s", 1.0);
}

// An empty step: tape.clear() and one input leaf, the floor under every other case.
void tape_floor(benchmark::State& state) {
  ThreadScope threads(state);
  const stn::Tensor value = random_tensor({1, 4}, 30);
  stn::Tape tape;
  for (auto _ : state) {
    tape.clear();
    stn::Var x = tape.input(value, true);
    benchmark::DoNotOptimize(x.value().data());
  }
}

// ---- registration ----------------------------------------------------------------------

const int kRegistered = [] {
  for (const ModelCase& c : kModels)
    register_case(std::string("BM_TrainStep/") + c.name, train_step, benchmark::kMillisecond, c);
  for (const ConvCase& c : kConvs) {
    register_case(std::string("BM_Conv2d/forward/") + c.name, conv_forward, benchmark::kMillisecond, c);
    register_case(std::string("BM_Conv2d/backward/") + c.name, conv_backward, benchmark::kMillisecond, c);
  }
  for (const PoolCase& c : kPools)
    register_case(std::string("BM_MaxPool2d/forward_backward/") + c.name, max_pool_forward_backward,
                  benchmark::kMicrosecond, c);
  for (const SamplerCase& c : kSamplers) {
    register_case(std::string("BM_Sampler/forward_backward/") + c.name, sampler_forward_backward,
                  benchmark::kMicrosecond, c);
    register_case(std::string("BM_Sampler/forward/") + c.name, sampler_forward, benchmark::kMicrosecond, c);
  }
  register_case("BM_OpOverhead/tape_floor", tape_floor, benchmark::kMicrosecond);
  for (const OpCase& c : op_cases_tiny())
    register_case(std::string("BM_OpOverhead/") + c.name, op_forward_backward, benchmark::kMicrosecond, &c);
  for (const OpCase& c : op_cases_model())
    register_case(std::string("BM_Op/st_cnn28/") + c.name, op_forward_backward, benchmark::kMicrosecond, &c);
  return 0;
}();

}  // namespace
