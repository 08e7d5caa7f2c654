// `stn train` and `stn eval`: the training loop, evaluation and the run directory.
//
// A run directory holds config.json (every setting), metrics.jsonl (one JSON object per
// logged step, per evaluation, and a final one), model.safetensors (the weights, rewritten
// at every evaluation so an interrupted run keeps its last ones), result.json (the summary,
// only once the run has finished), transformer.png and curves.png.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "stn/framework/data/mnist.h"
#include "stn/framework/threads.h"
#include "stn/layers/module.h"

namespace stn::cli {

struct TrainConfig {
  std::string dataset = "mnist";
  std::string model = "cnn";
  std::string preset = "none";
  std::string data_dir;                  // empty: the dataset's default
  std::string cache_dir = "data/cache";  // distorted test sets
  std::size_t epochs = 0;                // one of epochs / iters; both 0 means 1 epoch
  std::size_t iters = 0;
  // The defaults (preset "none") train the plain-MNIST CNN to under 1% test error in 3
  // epochs: SGD with Nesterov momentum, batch 64, lr 0.05 with a cosine decay.
  std::size_t batch = 64;
  // Each batch (each rank's share, under mpirun) in this many parts, one forward and backward
  // each, their gradients summed before the step: the same step in less memory. K parts in
  // one process sum their gradients as K ranks do (the same step as `mpirun -np K`).
  std::size_t micro_batches = 1;
  std::string optimizer = "sgd";
  float learning_rate = 0.05f;
  float momentum = 0.9f;  // SGD only
  bool nesterov = true;
  float weight_decay = 0.0f;
  std::string schedule = "cosine";
  std::size_t step_every = 0;          // step schedule: 0 = a third of the run
  float localisation_lr_scale = 1.0f;  // learning-rate multiplier of the transformers' localisation nets
  std::uint64_t seed = 1;
  std::uint64_t test_seed = 1;  // the distorted test set's seed (the same for every model)
  // Train on the first 50,000 training digits and evaluate on the held-out 10,000 (the
  // validation set) instead of the test set, which such a run never reads.
  bool validation = false;
  int threads = 0;              // 0: all cores
  std::string out;              // run directory; empty: runs/<dataset>-<model>-s<seed>
  std::size_t log_every = 50;
  std::size_t eval_every = 0;  // 0: only at the end
  std::size_t checkpoint_every = 500;  // iterations between checkpoints (and one at the end)
  std::size_t keep_checkpoints = 3;
  bool anomaly = false;  // check every tape entry for NaN / Inf

  nlohmann::json to_json() const;
  static TrainConfig from_json(const nlohmann::json& j);
  void validate() const;  // throws std::invalid_argument naming the bad flag
};

// Limits checked before anything is allocated (README, Reliability): a batch of 60000
// would ask for ~11 GB, an iteration count near 2^64 would run forever.
constexpr std::size_t kMaxBatch = 4096;
constexpr std::size_t kMaxIterations = 1'000'000'000;
constexpr std::size_t kMaxEpochs = 100'000;

struct Evaluation {
  double error_percent = 0.0;
  double loss = 0.0;
  std::size_t samples = 0;
  std::size_t correct = 0;
  double seconds = 0.0;
};

// Test-set error of `model` in evaluation mode, without recording a backward; `predictions`,
// if given, receives the predicted class of every sample in order.
Evaluation evaluate(Module& model, const Dataset& data, std::size_t batch_size = 500,
                    std::vector<std::int32_t>* predictions = nullptr);

// Trains, evaluates, writes the run directory; returns the final JSON summary (also printed
// as the last stdout line by the command). Started by mpirun as one of K ranks
// (stn::distributed), every rank trains on its share of each batch, the gradients are summed
// across the ranks before every step, and only rank 0 touches the run directory; every rank
// must be given the same flags (checked at the start). The run directory must be new or empty, unless
// `overwrite` (which removes the previous run in it first); it is locked for the life of the
// run (experiments/run_dir.h). SIGINT / SIGTERM / SIGHUP, and a standard output that can no
// longer be written, finish the current step, write a checkpoint and throw Interrupted. A
// NaN or Inf in the loss or the gradients stops the run with a NonFiniteError naming the
// iteration and the first tape entry that produced it.
nlohmann::json run_training(const TrainConfig& config, bool overwrite = false);

// What a resume may change: `threads` (default: the count the run recorded), a larger
// `iterations` (to extend it; a smaller one is refused), and where the data and the cached
// test sets are (a run carried to another machine: the same files elsewhere, which do not
// change the run's bits).
struct ResumeOptions {
  std::optional<int> threads;
  std::optional<std::size_t> iterations;
  std::optional<std::string> data_dir, cache_dir;
};

// Continues the run in `run_directory` from its newest valid checkpoint, with its own
// config but for `options`.
nlohmann::json resume_training(const std::string& run_directory, const ResumeOptions& options = {});

struct Interrupted : std::runtime_error {
  Interrupted(int signal_number, const std::string& message) : std::runtime_error(message), signal(signal_number) {}
  int signal;
};

struct EvalOptions {
  int threads = 0;
  std::string test_images, test_labels;  // both or neither: test data made elsewhere (IDX)
  std::string data_dir;                  // replaces the run's recorded data directory
  std::string predictions;               // if set, one predicted label per line is written here
  std::string figure;                    // if set (a .png), the transformer figure of the first 8 samples
};

// Reloads a run's weights and evaluates them on its test set (a --validation run: on its
// validation set), or on the IDX files of options.test_images / test_labels; with
// options.figure, also draws the transformer figure (as stn train's transformer.png) of the
// first 8 samples evaluated, with the code of this build.
nlohmann::json run_evaluation(const std::string& run_directory, const EvalOptions& options);

// Throws std::invalid_argument unless 0 <= threads <= kMaxThreads (0: OpenMP's default).
constexpr int kMaxThreads = kMaxNumThreads;
void check_threads(int threads);

}  // namespace stn::cli
