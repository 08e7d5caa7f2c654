#include "stn/experiments/train.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "stn/experiments/build_info.h"
#include "stn/experiments/checkpoint.h"
#include "stn/experiments/datasets.h"
#include "stn/experiments/figures.h"
#include "stn/experiments/progress.h"
#include "stn/experiments/run_config.h"
#include "stn/experiments/run_dir.h"
#include "stn/experiments/test_files.h"
#include "stn/framework/data/loader.h"
#include "stn/framework/error.h"
#include "stn/framework/io/atomic_file.h"
#include "stn/framework/ops/loss.h"
#include "stn/framework/optim/optimizer.h"
#include "stn/framework/optim/schedule.h"
#include "stn/framework/threads.h"
#include "stn/framework/random.h"
#include "stn/layers/distributed.h"
#include "stn/layers/weights.h"
#include "stn/layers/parameter_groups.h"
#include "stn/layers/spatial_transformer.h"
#include "stn/models/models.h"

namespace stn::cli {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace dist = stn::distributed;

namespace {

// TrainConfig's fields under their config.json keys, the one list to_json and from_json
// share: visit(key, field) for each, with Config const or not.
template <class Config, class Visit>
void for_each_field(Config& c, Visit&& visit) {
  visit("dataset", c.dataset);
  visit("model", c.model);
  visit("preset", c.preset);
  visit("data_dir", c.data_dir);
  visit("cache_dir", c.cache_dir);
  visit("epochs", c.epochs);
  visit("iters", c.iters);
  visit("batch", c.batch);
  visit("micro_batches", c.micro_batches);
  visit("optimizer", c.optimizer);
  visit("lr", c.learning_rate);
  visit("momentum", c.momentum);
  visit("nesterov", c.nesterov);
  visit("weight_decay", c.weight_decay);
  visit("schedule", c.schedule);
  visit("step_every", c.step_every);
  visit("loc_lr_scale", c.localisation_lr_scale);
  visit("seed", c.seed);
  visit("test_seed", c.test_seed);
  visit("validation", c.validation);
  visit("threads", c.threads);
  visit("out", c.out);
  visit("log_every", c.log_every);
  visit("eval_every", c.eval_every);
  visit("checkpoint_every", c.checkpoint_every);
  visit("keep_checkpoints", c.keep_checkpoints);
  visit("anomaly", c.anomaly);
}

}  // namespace

json TrainConfig::to_json() const {
  json j = json::object();
  for_each_field(*this, [&](const char* key, const auto& field) { j[key] = field; });
  return j;
}

TrainConfig TrainConfig::from_json(const json& j) {
  TrainConfig c;
  for_each_field(c, [&](const char* key, auto& field) { field = j.value(key, field); });
  return c;
}

void TrainConfig::validate() const {
  auto fail = [](const std::string& m) { throw std::invalid_argument(m); };
  if (batch == 0) fail("--batch must be at least 1");
  if (batch > kMaxBatch)
    fail(fmt::format("--batch must be at most {} (got {}: memory grows with the batch, ~190 KB a sample for the CNN)",
                     kMaxBatch, batch));
  if (micro_batches == 0 || micro_batches > batch)
    fail(fmt::format("--micro-batches must be between 1 and the batch size ({}), got {}", batch, micro_batches));
  if (epochs && iters) fail("give --epochs or --iters, not both");
  if (iters > kMaxIterations) fail(fmt::format("--iters must be at most {}, got {}", kMaxIterations, iters));
  if (epochs > kMaxEpochs) fail(fmt::format("--epochs must be at most {}, got {}", kMaxEpochs, epochs));
  // {:g}: std::to_string would print 1e-50 (0 in single precision) and 1e-7 alike as 0.000000.
  if (!(learning_rate > 0.0f) || !std::isfinite(learning_rate))
    fail(fmt::format("--lr must be positive and finite, got {:g}{}", learning_rate,
                     learning_rate == 0.0f ? " (a value below about 1e-45 is 0 in single precision)" : ""));
  if (!(momentum >= 0.0f && momentum < 1.0f)) fail(fmt::format("--momentum must be in [0, 1), got {:g}", momentum));
  if (!(weight_decay >= 0.0f) || !std::isfinite(weight_decay)) fail("--weight-decay must be >= 0 and finite");
  if (!(localisation_lr_scale >= 0.0f) || !std::isfinite(localisation_lr_scale)) fail("--loc-lr-scale must be >= 0 and finite");
  if (optimizer != "sgd" && optimizer != "adam") fail("unknown optimizer '" + optimizer + "' (expected sgd or adam)");
  check_threads(threads);
  if (log_every == 0) fail("--log-every must be at least 1");
  if (keep_checkpoints == 0) fail("--keep-checkpoints must be at least 1");
  parse_schedule_kind(schedule);
}

void check_threads(int threads) {
  // OpenMP gives each thread a stack: tens of thousands of them crash the process.
  if (threads < 0 || threads > kMaxThreads)
    throw std::invalid_argument("--threads must be between 0 and " + std::to_string(kMaxThreads) +
                                " (0 = all cores), got " + std::to_string(threads));
}

namespace {

std::size_t count_correct(const Tensor& logits, const std::int32_t* labels,
                          std::vector<std::int32_t>* predictions = nullptr) {
  const std::size_t rows = logits.shape()[0], classes = logits.shape()[1];
  std::size_t correct = 0;
  for (std::size_t n = 0; n < rows; ++n) {
    const float* row = logits.data() + n * classes;
    std::size_t best = 0;
    for (std::size_t c = 1; c < classes; ++c)
      if (row[c] > row[best]) best = c;
    correct += static_cast<std::int32_t>(best) == labels[n];
    if (predictions) predictions->push_back(static_cast<std::int32_t>(best));
  }
  return correct;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, Module& model) {
  std::vector<ParameterGroup> groups = localisation_parameter_groups(model, c.localisation_lr_scale);
  if (c.optimizer == "adam")
    return std::make_unique<Adam>(groups, AdamOptions{.learning_rate = c.learning_rate, .weight_decay = c.weight_decay});
  return std::make_unique<SGD>(groups, SgdOptions{.learning_rate = c.learning_rate, .momentum = c.momentum,
                                                  .nesterov = c.nesterov && c.momentum > 0.0f,
                                                  .weight_decay = c.weight_decay});
}

ExperimentOptions experiment_options(const TrainConfig& c) {
  return ExperimentOptions{
      .data_dir = c.data_dir, .cache_dir = c.cache_dir, .test_seed = c.test_seed, .validation = c.validation};
}

// What a run evaluates on: the test set, or for a --validation run the validation set (and
// the name its figures go by: "test_error" or "validation_error").
struct EvaluationSet {
  const Dataset& data;
  std::string name;
};
EvaluationSet evaluation_set(const TrainConfig& c, const Experiment& experiment) {
  if (c.validation) return {experiment.validation, "validation"};
  return {experiment.test, "test"};
}

// Appends one JSON line at a time with one write(2) of the whole line, so a killed run leaves
// whole lines only. A failed write (a full disk) takes the partial line back out and throws
// naming the file.
class MetricsLog {
 public:
  // Starts empty, or (resuming) keeps the lines up to iteration `keep_through`; the kept
  // lines replace the file atomically, so a kill while resuming loses none.
  MetricsLog(const std::string& path, std::optional<std::size_t> keep_through) : path_(path) {
    std::string kept;
    if (keep_through && std::filesystem::exists(path)) {
      std::istringstream in(read_file(path));
      std::string line;
      while (std::getline(in, line)) {
        json j = json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.is_object() && j.value("iter", std::size_t{0}) <= *keep_through &&
            !j.contains("final"))
          kept += line + "\n";
      }
    }
    write_file_atomically(path, kept);
    descriptor_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (descriptor_ < 0) throw std::runtime_error(path + ": cannot open for appending: " + std::strerror(errno));
    size_ = kept.size();
  }
  MetricsLog() = default;  // writes nothing (the ranks other than 0 of a distributed run)
  ~MetricsLog() {
    if (descriptor_ >= 0) ::close(descriptor_);
  }
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const json& line) {
    if (descriptor_ < 0) return;
    const std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    std::size_t written = 0;
    while (written < text.size()) {
      const ssize_t n = ::write(descriptor_, text.data() + written, text.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int error_number = n < 0 ? errno : ENOSPC;
        if (written > 0 && ::ftruncate(descriptor_, static_cast<off_t>(size_)) != 0) {
          // Nothing more to do: the message below already says the file is damaged.
        }
        throw std::runtime_error(path_ + ": cannot write a metrics line: " + std::strerror(error_number));
      }
      written += static_cast<std::size_t>(n);
    }
    size_ += text.size();
  }

 private:
  std::string path_;
  int descriptor_ = -1;
  std::size_t size_ = 0;
};

}  // namespace

Evaluation evaluate(Module& model, const Dataset& data, std::size_t batch_size,
                    std::vector<std::int32_t>* predictions) {
  const bool was_training = model.is_training();
  model.eval();
  DataLoader loader(data, LoaderOptions{.batch_size = batch_size, .shuffle = false});
  loader.start_epoch(0);
  Batch batch;
  Tape tape;
  NoGradScope no_grad(tape);
  Evaluation result;
  std::size_t correct = 0;
  double loss_total = 0.0;
  const auto start = Clock::now();
  while (loader.next(batch)) {
    tape.clear();
    Var logits = model.forward(tape.input(batch.images));
    correct += count_correct(logits.value(), batch.labels.data(), predictions);
    loss_total += cross_entropy(logits, batch.labels).value()() * static_cast<double>(batch.labels.size());
    result.samples += batch.labels.size();
  }
  result.seconds = seconds_since(start);
  model.train(was_training);
  if (result.samples == 0) throw std::invalid_argument("evaluate: the dataset is empty");
  result.correct = correct;
  result.error_percent = 100.0 * static_cast<double>(result.samples - correct) / static_cast<double>(result.samples);
  result.loss = loss_total / static_cast<double>(result.samples);
  return result;
}

namespace {

volatile std::sig_atomic_t stop_signal = 0;
extern "C" void request_stop(int signal_number) { stop_signal = signal_number; }

// SIGINT / SIGTERM / SIGHUP (a closed terminal) set a flag the loop reads after each step.
// The previous handlers come back when training ends normally; after a stop the handlers
// stay, so that a second quick signal cannot kill the process before it has said how to
// continue.
class StopSignals {
 public:
  StopSignals() {
    stop_signal = 0;
    struct sigaction action {};
    action.sa_handler = request_stop;
    sigemptyset(&action.sa_mask);
    for (std::size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &action, &previous_[i]);
  }
  ~StopSignals() {
    if (stop_signal) return;
    for (std::size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &previous_[i], nullptr);
  }

 private:
  static constexpr std::array<int, 3> kSignals = {SIGINT, SIGTERM, SIGHUP};
  std::array<struct sigaction, 3> previous_{};
};

// Names the first tape entry that produced a NaN / Inf, in the forward or the backward.
[[noreturn]] void report_non_finite(const Tape& tape, std::size_t iteration, const char* what, bool resumed) {
  std::string culprit;
  if (auto forward = tape.first_non_finite_value())
    culprit = "first in the forward value of " + tape.describe_entry(*forward);
  else if (auto backward = tape.first_non_finite_gradient())
    culprit = "first in the gradient of " + tape.describe_entry(*backward);
  else
    culprit = "no single entry found";
  // A resumed run keeps its config, so the flags that would help go to a new run.
  const char* advice = resumed ? "the last checkpoint is intact; a resumed run keeps its config, so start a new run "
                                 "(another --out, or --overwrite) with a smaller --lr, or with --anomaly to stop at the op"
                               : "the last checkpoint is intact (try a smaller --lr, or --anomaly to stop at the op)";
  throw NonFiniteError(fmt::format("{} at iteration {} ({}); {}", what, iteration, culprit, advice));
}

bool gradients_finite(const Module& model) {
  for (const Parameter* p : model.parameters())
    if (!all_finite(p->grad)) return false;
  return true;
}

// The message of an interruption: what happened, and the command that continues the run.
std::string interruption(int signal_number, const std::string& what, const std::string& run_dir) {
  const std::string cause = signal_number == SIGPIPE ? "standard output was closed"
                                                     : fmt::format("interrupted by signal {}", signal_number);
  const std::string launcher = dist::active() ? fmt::format("mpirun -np {} ", dist::size()) : "";
  return fmt::format("{} {}; continue with: {}stn train --resume {}", cause, what, launcher, shell_quote(run_dir));
}

// The run's length: --iters, or --epochs (at least one) of whole batches of the training set.
std::size_t run_length(const TrainConfig& config, const Experiment& experiment) {
  const std::size_t per_epoch = std::max<std::size_t>(experiment.train.size() / config.batch, 1);
  const std::size_t iterations = config.iters ? config.iters : per_epoch * std::max<std::size_t>(config.epochs, 1);
  if (iterations > kMaxIterations)
    throw std::invalid_argument(fmt::format("--epochs {} makes {} iterations of batch {}, more than the {} allowed",
                                            config.epochs, iterations, config.batch, kMaxIterations));
  return iterations;
}

Schedule run_schedule(const TrainConfig& config, std::size_t iterations) {
  Schedule schedule;
  schedule.kind = parse_schedule_kind(config.schedule);
  schedule.step_every = config.step_every ? config.step_every : std::max<std::size_t>(iterations / 3, 1);
  schedule.total = iterations;
  return schedule;
}

// Everything one training run works with, built in the order the random draws need: the
// model's weights from model_generator, then the data stream. Not movable: `evaluation`
// refers into `experiment`.
struct Run {
  Run(const TrainConfig& run_config, bool resumed_run)
      : config(run_config),
        resumed(resumed_run),
        part(dist::share_of(config.batch)),
        experiment(load_experiment(config.dataset, experiment_options(config))),
        model_generator(config.seed),  // the initial weights (and any dropout masks)
        model(make_model(config.model, experiment.input, model_generator)),
        optimizer(make_optimizer(config, *model)),
        stream(experiment.stream(config.batch, config.seed, BatchPart{part.begin, part.end})),
        iterations(run_length(config, experiment)),
        schedule(run_schedule(config, iterations)),
        has_transformers(!find_transformers(*model).empty()),
        evaluation(evaluation_set(config, experiment)),
        error_key(evaluation.name + "_error"),
        loss_key(evaluation.name + "_loss"),
        weights_metadata{{"model", config.model}, {"dataset", config.dataset}, {"preset", config.preset}} {
    if (dist::active() || config.micro_batches > 1) reducer.emplace(*model);
    if (dist::active()) {
      const dist::Share share = dist::share_of(evaluation.data.size());
      evaluation_part = dataset_rows(evaluation.data, share.begin, share.end, evaluation.data.name);
    }
  }
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  TrainConfig config;
  bool resumed;
  dist::Share part;  // this rank's samples of every batch: all of them in one process
  Experiment experiment;
  Generator model_generator;
  std::shared_ptr<Module> model;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<TrainingStream> stream;
  std::size_t iterations;
  Schedule schedule;
  bool has_transformers;
  EvaluationSet evaluation;
  std::string error_key, loss_key;
  std::map<std::string, std::string> weights_metadata;

  // Where the run stands: the first iteration of this process, the training time so far,
  // the steps since the last metrics line.
  std::size_t start = 0;
  double train_seconds = 0.0;
  MetricsWindow window;
  // A checkpoint of an older version has no window: its first line then averages fewer steps.
  bool partial_window = false;
  double last_test_error = NAN;

  // Several ranks: the gradients' allreduce, and this rank's share of the evaluation set.
  std::optional<dist::GradientReducer> reducer;  // also sums micro-batches
  Dataset evaluation_part;
  Batch micro_batch;  // --micro-batches: the piece being trained on

  // Only rank 0 writes the run directory.
  bool writes() const { return dist::rank() == 0; }
  void checkpoint(std::size_t done) {
    if (dist::active()) check_ranks_agree(done);
    if (writes())
      write_checkpoint(config.out, *model, *optimizer, model_generator, CheckpointState{done, train_seconds, window},
                       config.keep_checkpoints);
  }
  void save_weights() {
    if (writes()) save_parameters(config.out + "/model.safetensors", *model, weights_metadata);
  }

  // Every rank takes the same step from the same sum, so the models stay equal bit for bit;
  // checked at every checkpoint, so that a checkpoint never stands for ranks that drifted.
  void check_ranks_agree(std::size_t done) const {
    if (const int differ = dist::ranks_differing_from(*model))
      throw std::runtime_error(fmt::format("after iteration {}, {} of the {} ranks hold parameters that differ from "
                                           "rank 0's (the gradient sums reached them differently); no checkpoint "
                                           "of this iteration was written",
                                           done, differ, dist::size()));
  }
};

// The run's evaluation set: with several ranks each evaluates its share and the counts are
// summed, so every rank gets the whole set's figures.
Evaluation evaluate_run(Run& run) {
  if (!dist::active()) return evaluate(*run.model, run.evaluation.data);
  Evaluation result;
  if (run.evaluation_part.size() > 0) result = evaluate(*run.model, run.evaluation_part);
  double sums[3] = {static_cast<double>(result.correct), result.loss * static_cast<double>(result.samples),
                    static_cast<double>(result.samples)};
  dist::allreduce_sum(std::span<double>(sums));
  result.correct = static_cast<std::size_t>(sums[0]);
  result.samples = static_cast<std::size_t>(sums[2]);
  result.error_percent = 100.0 * (sums[2] - sums[0]) / sums[2];
  result.loss = sums[1] / sums[2];
  return result;
}

// A stop asked for on this rank: a signal, or (rank 0) a standard output that failed.
int local_stop(const Progress& progress) {
  if (progress.output_failed() && !stop_signal) stop_signal = SIGPIPE;
  return stop_signal;
}

// The stop all ranks agree on after a step: with several ranks, a stop asked for on any of
// them stops all of them after the same step (else the others would wait for it forever).
// The signal reported is this rank's own, else the one the stopping ranks got (a launcher
// sends all of them the same).
int agreed_stop(const Progress& progress) {
  const int mine = local_stop(progress);
  if (!dist::active()) return mine;
  double votes[2] = {mine ? 1.0 : 0.0, static_cast<double>(mine)};
  dist::allreduce_sum(std::span<double>(votes));
  if (mine) return mine;
  return votes[0] > 0 ? static_cast<int>(votes[1] / votes[0]) : 0;
}

// Rank 0's training state on every rank, for a resumed run: the parameters, the optimizer's
// state and step count, and where the run stands (none: rank 0 found no checkpoint).
void broadcast_state(Run& run, std::optional<CheckpointState>& state) {
  dist::broadcast_parameters(*run.model);
  for (auto& [name, tensor] : run.optimizer->state()) dist::broadcast(std::span<float>(tensor->data(), tensor->size()));
  const bool window = state && state->window;
  double numbers[8] = {state ? 1.0 : 0.0,
                       state ? static_cast<double>(state->iteration) : 0.0,
                       state ? state->train_seconds : 0.0,
                       window ? 1.0 : 0.0,
                       window ? state->window->loss_sum : 0.0,
                       window ? static_cast<double>(state->window->correct) : 0.0,
                       window ? static_cast<double>(state->window->samples) : 0.0,
                       static_cast<double>(run.optimizer->steps_taken())};
  dist::broadcast(std::span<double>(numbers));
  run.optimizer->set_steps_taken(static_cast<std::size_t>(numbers[7]));
  if (numbers[0] == 0) {
    state.reset();
    return;
  }
  state = CheckpointState{static_cast<std::size_t>(numbers[1]), numbers[2], std::nullopt};
  if (numbers[3] != 0)
    state->window = MetricsWindow{numbers[4], static_cast<std::size_t>(numbers[5]), static_cast<std::size_t>(numbers[6])};
}

// Restores the model, optimizer, generator and stream from the newest checkpoint (with
// several ranks: rank 0 reads it and sends it to the others).
void resume_from_checkpoint(Run& run) {
  std::optional<CheckpointState> state;
  if (run.writes()) state = load_newest_checkpoint(run.config.out, *run.model, *run.optimizer, run.model_generator);
  if (dist::active()) broadcast_state(run, state);
  if (!state)
    throw DataError(run.config.out + ": no usable checkpoint to resume from (to start the run afresh: stn train --out " +
                    shell_quote(run.config.out) + " --overwrite, with its flags)");
  if (state->iteration > run.iterations)
    throw DataError(fmt::format("{}: its newest checkpoint is of iteration {}, past the run's {} iterations",
                                run.config.out, state->iteration, run.iterations));
  run.start = state->iteration;
  run.train_seconds = state->train_seconds;
  run.window = state->window.value_or(MetricsWindow{});
  run.partial_window = !state->window && run.start % run.config.log_every != 0;
  run.stream->seek(run.start);
  fmt::print("resuming {} from the checkpoint of iteration {}\n", run.config.out, run.start);
}

// config.json: the config, with what the run resolved (absolute paths, the iteration count)
// and the keys recorded_keys() in run_config.cpp lists.
void write_run_config(const Run& run) {
  const TrainConfig& config = run.config;
  json config_json = config.to_json();
  // Absolute, so that a resume from another working directory finds the same files.
  config_json["data_dir"] = std::filesystem::absolute(config.data_dir).lexically_normal().string();
  config_json["cache_dir"] = std::filesystem::absolute(config.cache_dir).lexically_normal().string();
  config_json["iterations"] = run.iterations;
  config_json["params"] = run.model->parameter_count();
  config_json["training_digits"] = run.experiment.train.size();
  config_json["commit"] = build_commit();
  config_json["schedule_description"] = run.schedule.describe();
  config_json["ranks"] = dist::size();  // MPI processes; "threads" is per process
  if (!run.has_transformers) config_json.erase("loc_lr_scale");  // no localisation net to scale
  write_file_atomically(config.out + "/config.json", config_json.dump(2) + "\n");
}

// One step on `batch`: forward, backward, optimizer step; the loss and the batch's correct
// predictions go into the window.
float train_step(Run& run, Tape& tape, const Batch& batch, std::size_t iteration) {
  const auto step_start = Clock::now();
  run.optimizer->set_learning_rate(run.schedule.learning_rate(run.config.learning_rate, iteration));
  const std::size_t done = iteration + 1;
  const std::size_t parts = run.config.micro_batches;
  // The batch's (this rank's share's) loss sum, correct predictions and samples.
  double step[3] = {0.0, 0.0, 0.0};
  float loss_value = 0.0f;
  for (std::size_t k = 0; k < parts; ++k) {
    const Batch* piece = &batch;
    if (parts > 1) {
      const dist::Share share = dist::share_of(batch.labels.size(), static_cast<int>(k), static_cast<int>(parts));
      copy_batch_rows(batch, share.begin, share.end, run.micro_batch);
      piece = &run.micro_batch;
    }
    tape.clear();
    Var logits = run.model->forward(tape.input(piece->images));
    Var loss = cross_entropy(logits, piece->labels);
    if (!std::isfinite(loss.value()())) report_non_finite(tape, done, "the loss is not finite", run.resumed);
    tape.backward(loss);
    // The gradient of the mean loss over this piece, weighted by the piece's part of the whole
    // batch: the sum over pieces (and ranks) is the gradient of the mean over the batch.
    if (run.reducer) {
      run.reducer->accumulate(static_cast<float>(piece->labels.size()) / static_cast<float>(run.config.batch));
      if (parts > 1) run.model->zero_grad();
    }
    loss_value = loss.value()();
    step[0] += loss_value * static_cast<double>(piece->labels.size());
    step[1] += static_cast<double>(count_correct(logits.value(), piece->labels.data()));
    step[2] += static_cast<double>(piece->labels.size());
  }
  if (run.reducer) run.reducer->allreduce();
  if (!gradients_finite(*run.model)) report_non_finite(tape, done, "a gradient is not finite", run.resumed);
  run.optimizer->step();
  run.optimizer->zero_grad();

  if (dist::active()) dist::allreduce_sum(std::span<double>(step));  // the whole batch's figures, on every rank
  if (dist::active() || parts > 1) loss_value = static_cast<float>(step[0] / step[2]);
  run.train_seconds += seconds_since(step_start);
  run.window.loss_sum += step[0];
  run.window.correct += static_cast<std::size_t>(step[1]);
  run.window.samples += static_cast<std::size_t>(step[2]);
  return loss_value;
}

// The metrics line (and progress line) closing the window after `done` steps; the window
// starts again.
void log_window(Run& run, const Tape& tape, MetricsLog& metrics, Progress& progress, std::size_t done,
                double samples_per_s) {
  const double samples = static_cast<double>(run.window.samples);
  json line = {{"iter", done},
               {"loss", run.window.loss_sum / samples},
               {"train_accuracy", static_cast<double>(run.window.correct) / samples},
               {"lr", run.optimizer->learning_rate()},
               {"samples_per_s", samples_per_s}};
  if (run.has_transformers) line["transformers"] = transformer_health(tape, *run.model);
  if (run.partial_window) {
    line["partial_window"] = run.window.samples / run.config.batch;  // the steps averaged, fewer than log_every
    run.partial_window = false;
  }
  metrics.write(line);
  progress.update(done, fmt::format("loss {:.4f}  acc {:.2f}%  {:.0f} samples/s{}", run.window.loss_sum / samples,
                                    100.0 * static_cast<double>(run.window.correct) / samples, samples_per_s,
                                    std::isnan(run.last_test_error)
                                        ? ""
                                        : fmt::format("  {} {:.2f}%", run.evaluation.name, run.last_test_error)));
  run.window = MetricsWindow{};
}

// A signal or a closed standard output, seen after step `done`: checkpoint and stop.
void stop_if_asked(Run& run, const Progress& progress, std::size_t done) {
  const int signal_number = agreed_stop(progress);
  if (!signal_number) return;
  run.checkpoint(done);
  run.save_weights();
  throw Interrupted(signal_number,
                    interruption(signal_number, fmt::format("after iteration {}; checkpoint written", done), run.config.out));
}

// After the last step: the final checkpoint and weights, the evaluation, the figures and
// result.json; returns the summary.
json finish_run(Run& run, MetricsLog& metrics, Progress& progress) {
  const TrainConfig& config = run.config;
  run.checkpoint(run.iterations);
  run.save_weights();
  // A signal during the final evaluation or figures is not swallowed: the weights are final
  // and checkpointed, and a resume redoes only what follows.
  // Up to the end of the evaluation every rank takes part, and they stop together; after it
  // only rank 0 works on.
  auto check_stop = [&](const char* during, bool all_ranks) {
    const int signal_number = all_ranks ? agreed_stop(progress) : local_stop(progress);
    if (signal_number)
      throw Interrupted(signal_number, interruption(signal_number,
                                                    fmt::format("during {}, after all {} iterations; the final "
                                                                "checkpoint and weights are written",
                                                                during, run.iterations),
                                                    config.out));
  };
  check_stop("the final checkpoint", true);
  Evaluation test = evaluate_run(run);
  check_stop("the final evaluation", true);
  if (!run.writes()) return {{run.error_key, test.error_percent}, {"rank", dist::rank()}};
  metrics.write({{"iter", run.iterations}, {run.error_key, test.error_percent}, {run.loss_key, test.loss}, {"final", true}});
  if (run.has_transformers && write_transformer_figure(*run.model, run.evaluation.data, 8, config.out + "/transformer.png"))
    fmt::print("transformer figure: {}/transformer.png\n", config.out);
  check_stop("the figures", false);
  if (write_training_curves(config.out)) fmt::print("training curves: {}/curves.png\n", config.out);
  check_stop("the figures", false);
  json summary = {{run.error_key, test.error_percent},
                  {run.loss_key, test.loss},
                  {"iters", run.iterations},
                  {"params", run.model->parameter_count()},
                  {"samples_per_s", static_cast<double>(run.iterations * config.batch) / run.train_seconds},
                  {"seconds", run.train_seconds},
                  {"dataset", config.dataset},
                  {"model", config.model},
                  {"preset", config.preset},
                  {"seed", config.seed},
                  {"threads", num_threads()},
                  {"ranks", dist::size()},
                  {"commit", build_commit()},
                  {"run", config.out}};
  if (dist::active()) summary["allreduce_seconds"] = run.reducer->seconds();
  write_file_atomically(config.out + "/result.json", summary.dump(2) + "\n");
  return summary;
}

json train_loop(TrainConfig config, std::optional<std::string> resume_from) {
  check_threads(config.threads);
  if (config.threads > 0) set_num_threads(config.threads);
  config.threads = num_threads();  // recorded resolved: bitwise reproducibility needs the same count
  Run run(config, resume_from.has_value());
  if (resume_from)
    resume_from_checkpoint(run);
  else
    dist::broadcast_parameters(*run.model);  // every rank starts from rank 0's weights
  std::unique_ptr<MetricsLog> metrics;
  if (run.writes()) {
    std::filesystem::remove(config.out + "/result.json");  // present only once this run finishes
    write_run_config(run);
    metrics = std::make_unique<MetricsLog>(config.out + "/metrics.jsonl",
                                           resume_from ? std::optional<std::size_t>(run.start) : std::nullopt);
  } else {
    metrics = std::make_unique<MetricsLog>();  // the other ranks' lines go nowhere
  }

  fmt::print("training {} on {} ({} preset): {} parameters, {} iterations of batch {}, {} threads{} -> {}\n",
             config.model, config.dataset, config.preset, run.model->parameter_count(), run.iterations, config.batch,
             num_threads(),
             dist::active() ? fmt::format(" on each of {} ranks (MPI; {} samples of each batch on rank 0)",
                                          dist::size(), run.part.size())
                            : "",
             config.out);
  std::fflush(stdout);  // a redirected log shows the run at once, not at the first progress line
  Progress progress("train", run.iterations, std::max<std::size_t>(run.iterations / 20, 1), run.start);
  StopSignals signals;
  Tape tape;
  tape.set_anomaly_detection(config.anomaly);
  Batch batch;
  run.model->train();
  for (std::size_t iteration = run.start; iteration < run.iterations; ++iteration) {
    run.stream->next(batch);
    const float loss_value = train_step(run, tape, batch, iteration);
    const std::size_t done = iteration + 1;
    // Both counts run over the whole run, resumed parts included.
    const double samples_per_s = static_cast<double>(done * config.batch) / std::max(run.train_seconds, 1e-9);
    if (done % config.log_every == 0 || done == run.iterations)
      log_window(run, tape, *metrics, progress, done, samples_per_s);
    else
      progress.update(done, fmt::format("loss {:.4f}  {:.0f} samples/s", loss_value, samples_per_s));
    if (config.eval_every && done % config.eval_every == 0 && done < run.iterations) {
      tape.clear();
      Evaluation test = evaluate_run(run);
      run.last_test_error = test.error_percent;
      metrics->write({{"iter", done}, {run.error_key, test.error_percent}, {run.loss_key, test.loss}});
      run.save_weights();
    }
    if (config.checkpoint_every && done % config.checkpoint_every == 0 && done < run.iterations) run.checkpoint(done);
    stop_if_asked(run, progress, done);
  }
  progress.finish(fmt::format("done in {}", format_duration(run.train_seconds)));
  tape.clear();
  return finish_run(run, *metrics, progress);
}

}  // namespace

namespace {

// Training with the run directory locked; a failed allocation names what asked for it.
json train_locked(const TrainConfig& config, std::optional<std::string> resume_from) {
  try {
    return train_loop(config, resume_from);
  } catch (const std::bad_alloc&) {
    throw std::runtime_error(fmt::format("out of memory training {} on {} with --batch {} (try a smaller --batch)",
                                         config.model, config.dataset, config.batch));
  }
}

// With several ranks: the flags must be the same on all of them, except the thread count
// and the paths (another host may keep the data elsewhere; only rank 0 writes the run). Every
// rank learns whether any differs before anything is written (an --overwrite would otherwise
// delete the old run for a job that cannot start); a rank that differs names the flags.
void check_same_config_on_every_rank(const TrainConfig& config) {
  if (!dist::active()) return;
  if (config.batch < static_cast<std::size_t>(dist::size()))
    throw std::invalid_argument(fmt::format("--batch {} is smaller than the {} ranks: every rank needs at least one "
                                            "sample of each batch", config.batch, dist::size()));
  json mine = config.to_json();
  for (const char* key : {"threads", "out", "data_dir", "cache_dir"}) mine.erase(key);
  std::string text = mine.dump();
  dist::broadcast(text);
  const json root = json::parse(text);
  std::string differences;
  for (const auto& [key, value] : root.items())
    if (!mine.contains(key) || mine[key] != value)
      differences += fmt::format("{}{} {} (rank 0: {})", differences.empty() ? "" : ", ", key,
                                 mine.value(key, json()).dump(), value.dump());
  double differ = differences.empty() ? 0.0 : 1.0;
  dist::allreduce_sum(std::span<double>(&differ, 1));
  if (!differences.empty())
    throw std::invalid_argument(fmt::format("rank {} of {} was started with other training flags than rank 0: {}; "
                                            "start every rank with the same flags (only --threads, --data, --cache "
                                            "and --out may differ)",
                                            dist::rank(), dist::size(), differences));
  if (differ > 0)
    throw std::invalid_argument(fmt::format("{} of the {} ranks were started with other training flags than rank 0 "
                                            "(their messages name them); nothing was written",
                                            differ, dist::size()));
}

}  // namespace

json run_training(const TrainConfig& input_config, bool overwrite) {
  TrainConfig config = input_config;
  config.validate();
  if (config.out.empty()) config.out = "runs/" + config.dataset + "-" + config.model + "-s" + std::to_string(config.seed);
  if (config.data_dir.empty()) config.data_dir = default_data_dir(config.dataset);
  check_run_directory_path(config.out, "--out");
  require_utf8(config.data_dir, "--data");
  require_utf8(config.cache_dir, "--cache");
  check_same_config_on_every_rank(config);
  // Before any data is read: a run directory that cannot be used fails at once.
  std::optional<RunDirectory> run_directory;
  if (dist::rank() == 0)
    run_directory.emplace(config.out, overwrite ? RunDirectoryMode::overwrite : RunDirectoryMode::fresh);
  return train_locked(config, std::nullopt);
}

namespace {

// A resume's --data / --cache: the same files in another place (a run carried to another
// machine). The new place is what config.json records from then on; a note names both.
void relocate(std::string& recorded, const std::optional<std::string>& given, const std::string& run_directory,
              const char* what) {
  if (!given) return;
  const std::string now = std::filesystem::absolute(*given).lexically_normal().string();
  if (now != recorded) fmt::print(stderr, "note: {} resumes with its {} in {} (recorded: {})\n", run_directory, what, now, recorded);
  recorded = *given;
}

// Rank 0's side of --resume: the run's config, checked, with the thread count, length and
// data places given now; the run directory stays locked by `lock`.
TrainConfig resumed_config(const std::string& run_directory, const ResumeOptions& options,
                           std::optional<RunDirectory>& lock) {
  const std::optional<int>& threads = options.threads;
  const std::optional<std::size_t>& iterations = options.iterations;
  check_run_directory_path(run_directory, "--resume");
  const RunConfig run = read_run_config(run_directory);
  lock.emplace(run_directory, RunDirectoryMode::resume);
  if (lock->stale_files_removed())
    fmt::print("removed {} temporary file{} left by a killed process\n", lock->stale_files_removed(),
               lock->stale_files_removed() == 1 ? "" : "s");
  TrainConfig config = run.config;
  config.out = run_directory;
  if (threads) {
    check_threads(*threads);
    const int wanted = *threads > 0 ? *threads : num_threads();  // 0: OpenMP's default, nothing set yet
    if (config.threads > 0 && wanted != config.threads)
      fmt::print(stderr,
                 "note: {} was trained with {} threads and resumes with {}: the weights will not be bitwise identical "
                 "to an uninterrupted run (that needs the same thread count)\n",
                 run_directory, config.threads, wanted);
    config.threads = *threads;
  } else if (config.threads == 0) {
    fmt::print(stderr,
               "note: {}/config.json does not record the thread count the run used (threads 0 = all cores); resuming "
               "with {}: bitwise identical to an uninterrupted run only if that had {} too\n",
               run_directory, num_threads(), num_threads());
  }
  if (run.ranks != static_cast<std::size_t>(dist::size()))
    fmt::print(stderr,
               "note: {} was trained on {} rank{} and resumes on {}: each step's gradient is summed in another order, "
               "so the weights will not be bitwise identical to an uninterrupted run (that needs the same ranks and "
               "threads)\n",
               run_directory, run.ranks, run.ranks == 1 ? "" : "s", dist::size());
  if (iterations) {
    if (*iterations < run.iterations)
      throw std::invalid_argument(fmt::format("--iters {} is smaller than the run's {} iterations; --resume can only "
                                              "extend a run (start a new one for a shorter run)",
                                              *iterations, run.iterations));
    config.iters = *iterations;
    config.epochs = 0;
  }
  if (!options.data_dir && !std::filesystem::is_directory(config.data_dir))
    throw DataError(fmt::format("{}: the run's data directory {} (recorded in its config.json) does not exist; if the "
                                "files are elsewhere now (a run carried to another machine), say where: stn train "
                                "--resume {} --data DIR",
                                run_directory, config.data_dir, shell_quote(run_directory)));
  relocate(config.data_dir, options.data_dir, run_directory, "data");
  relocate(config.cache_dir, options.cache_dir, run_directory, "cached test sets");
  config.validate();
  return config;
}

}  // namespace

json resume_training(const std::string& run_directory, const ResumeOptions& options) {
  const std::optional<int>& threads = options.threads;
  std::optional<RunDirectory> lock;
  TrainConfig config;
  if (dist::rank() == 0) config = resumed_config(run_directory, options, lock);
  if (dist::active()) {
    // The run directory may be on rank 0's host only: the others take its config from it,
    // with their own --threads.
    std::string text = dist::rank() == 0 ? config.to_json().dump() : std::string();
    dist::broadcast(text);
    if (dist::rank() != 0) {
      config = TrainConfig::from_json(json::parse(text));
      if (threads) {
        check_threads(*threads);
        config.threads = *threads;
      }
      // Like --threads, this rank's own --data and --cache (another host may keep them elsewhere).
      if (options.data_dir) config.data_dir = *options.data_dir;
      if (options.cache_dir) config.cache_dir = *options.cache_dir;
    }
    check_same_config_on_every_rank(config);
  }
  return train_locked(config, run_directory);
}

json run_evaluation(const std::string& run_directory, const EvalOptions& options) {
  check_run_directory_path(run_directory, "--run");
  if (options.test_images.empty() != options.test_labels.empty())
    throw std::invalid_argument("--test-images and --test-labels go together (got only " +
                                std::string(options.test_images.empty() ? "--test-labels" : "--test-images") + ")");
  if (!options.figure.empty() && std::filesystem::path(options.figure).extension() != ".png")
    throw std::invalid_argument("--figure: '" + options.figure + "' must end in .png (the figure is a PNG)");
  const RunConfig run = read_run_config(run_directory);
  TrainConfig config = run.config;
  if (!options.data_dir.empty()) config.data_dir = options.data_dir;
  check_threads(options.threads);
  if (options.threads > 0) set_num_threads(options.threads);
  const bool own_files = !options.test_images.empty();
  std::optional<Experiment> experiment;
  Dataset files;
  InputSpec input;
  if (own_files) {
    input = input_spec_for(config.dataset);
    files = load_test_files(options.test_images, options.test_labels, input);
  } else {
    experiment = load_experiment(config.dataset, experiment_options(config));
    input = experiment->input;
  }
  Generator unused(0);  // the weights are loaded next
  std::shared_ptr<Module> model = make_model(config.model, input, unused);
  if (!options.figure.empty() && find_transformers(*model).empty())
    throw std::invalid_argument("--figure: model " + config.model +
                                " has no spatial transformer, and the figure shows what transformers do");
  load_parameters(run_directory + "/model.safetensors", *model);
  const EvaluationSet evaluation =
      own_files ? EvaluationSet{files, "test"} : evaluation_set(config, *experiment);
  std::vector<std::int32_t> predictions;
  Evaluation test = evaluate(*model, evaluation.data, 500, options.predictions.empty() ? nullptr : &predictions);
  if (!options.predictions.empty()) {
    std::string text;
    for (std::int32_t label : predictions) text += std::to_string(label) + "\n";
    write_file_atomically(options.predictions, text);
  }
  json result{{evaluation.name + "_error", test.error_percent},
              {evaluation.name + "_loss", test.loss},
              {"samples", test.samples},
              {"iters", run.iterations},
              {"params", model->parameter_count()},
              {"samples_per_s", static_cast<double>(test.samples) / test.seconds},
              {"seconds", test.seconds},
              {"dataset", config.dataset},
              {"model", config.model},
              {"preset", config.preset},
              {"run", run_directory}};
  if (own_files) result["test_images"] = options.test_images, result["test_labels"] = options.test_labels;
  if (!options.figure.empty()) {
    write_transformer_figure(*model, evaluation.data, 8, options.figure);
    result["figure"] = options.figure;
  }
  return result;
}

}  // namespace stn::cli
