#include "experiments/train.h"

#include <omp.h>

#include <chrono>
#include <cstdio>
#include <csignal>
#include <optional>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/core.h>

#include "experiments/checkpoint.h"
#include "experiments/datasets.h"
#include "experiments/figures.h"
#include "experiments/progress.h"
#include "framework/data/loader.h"
#include "framework/error.h"
#include "framework/io/atomic_file.h"
#include "framework/ops/loss.h"
#include "framework/optim/optimizer.h"
#include "framework/optim/schedule.h"
#include "framework/random.h"
#include "layers/checkpoint.h"
#include "layers/spatial_transformer.h"
#include "models/models.h"

namespace stn::cli {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

json TrainConfig::to_json() const {
  return json{{"dataset", dataset}, {"model", model}, {"preset", preset}, {"data_dir", data_dir},
              {"cache_dir", cache_dir}, {"epochs", epochs}, {"iters", iters}, {"batch", batch},
              {"optimizer", optimizer}, {"lr", learning_rate}, {"momentum", momentum}, {"nesterov", nesterov},
              {"weight_decay", weight_decay}, {"schedule", schedule}, {"step_every", step_every},
              {"loc_lr_scale", localisation_lr_scale}, {"seed", seed}, {"test_seed", test_seed}, {"validation", validation},
              {"threads", threads}, {"out", out}, {"log_every", log_every}, {"eval_every", eval_every},
              {"checkpoint_every", checkpoint_every}, {"keep_checkpoints", keep_checkpoints}, {"anomaly", anomaly}};
}

TrainConfig TrainConfig::from_json(const json& j) {
  TrainConfig c;
  c.dataset = j.value("dataset", c.dataset);
  c.model = j.value("model", c.model);
  c.preset = j.value("preset", c.preset);
  c.data_dir = j.value("data_dir", c.data_dir);
  c.cache_dir = j.value("cache_dir", c.cache_dir);
  c.epochs = j.value("epochs", c.epochs);
  c.iters = j.value("iters", c.iters);
  c.batch = j.value("batch", c.batch);
  c.optimizer = j.value("optimizer", c.optimizer);
  c.learning_rate = j.value("lr", c.learning_rate);
  c.momentum = j.value("momentum", c.momentum);
  c.nesterov = j.value("nesterov", c.nesterov);
  c.weight_decay = j.value("weight_decay", c.weight_decay);
  c.schedule = j.value("schedule", c.schedule);
  c.step_every = j.value("step_every", c.step_every);
  c.localisation_lr_scale = j.value("loc_lr_scale", c.localisation_lr_scale);
  c.seed = j.value("seed", c.seed);
  c.test_seed = j.value("test_seed", c.test_seed);
  c.validation = j.value("validation", c.validation);
  c.threads = j.value("threads", c.threads);
  c.out = j.value("out", c.out);
  c.log_every = j.value("log_every", c.log_every);
  c.eval_every = j.value("eval_every", c.eval_every);
  c.checkpoint_every = j.value("checkpoint_every", c.checkpoint_every);
  c.keep_checkpoints = j.value("keep_checkpoints", c.keep_checkpoints);
  c.anomaly = j.value("anomaly", c.anomaly);
  return c;
}

void TrainConfig::validate() const {
  auto fail = [](const std::string& m) { throw std::invalid_argument(m); };
  if (batch == 0) fail("--batch must be at least 1");
  if (epochs && iters) fail("give --epochs or --iters, not both");
  if (!(learning_rate > 0.0f) || !std::isfinite(learning_rate)) fail("--lr must be positive, got " + std::to_string(learning_rate));
  if (!(momentum >= 0.0f && momentum < 1.0f)) fail("--momentum must be in [0, 1), got " + std::to_string(momentum));
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

void set_threads(int threads) {
  check_threads(threads);
  if (threads > 0) omp_set_num_threads(threads);
}

namespace {

std::size_t count_correct(const Tensor& logits, const std::int32_t* labels) {
  const std::size_t rows = logits.shape()[0], classes = logits.shape()[1];
  std::size_t correct = 0;
  for (std::size_t n = 0; n < rows; ++n) {
    const float* row = logits.data() + n * classes;
    std::size_t best = 0;
    for (std::size_t c = 1; c < classes; ++c)
      if (row[c] > row[best]) best = c;
    correct += static_cast<std::int32_t>(best) == labels[n];
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

// Appends one JSON line and flushes it, so a killed run leaves every line written so far.
class MetricsLog {
 public:
  // Starts empty, or (resuming) keeps the lines up to iteration `keep_through`.
  MetricsLog(const std::string& path, std::optional<std::size_t> keep_through) {
    std::string kept;
    if (keep_through) {
      std::ifstream in(path);
      std::string line;
      while (std::getline(in, line)) {
        json j = json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.value("iter", std::size_t{0}) <= *keep_through && !j.contains("final"))
          kept += line + "\n";
      }
    }
    out_.open(path, std::ios::trunc);
    if (!out_) throw std::runtime_error(path + ": cannot open for writing");
    out_ << kept << std::flush;
  }
  void write(const json& line) { out_ << line.dump() << std::endl; }

 private:
  std::ofstream out_;
};

}  // namespace

Evaluation evaluate(Module& model, const Dataset& data, std::size_t batch_size) {
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
    correct += count_correct(logits.value(), batch.labels.data());
    loss_total += cross_entropy(logits, batch.labels).value()() * static_cast<double>(batch.labels.size());
    result.samples += batch.labels.size();
  }
  result.seconds = seconds_since(start);
  model.train(was_training);
  if (result.samples == 0) throw std::invalid_argument("evaluate: the dataset is empty");
  result.error_percent = 100.0 * static_cast<double>(result.samples - correct) / static_cast<double>(result.samples);
  result.loss = loss_total / static_cast<double>(result.samples);
  return result;
}

namespace {

volatile std::sig_atomic_t stop_signal = 0;
extern "C" void request_stop(int signal_number) { stop_signal = signal_number; }

// SIGINT / SIGTERM set a flag the loop reads after each step; the previous handlers come
// back when training ends.
class StopSignals {
 public:
  StopSignals() {
    stop_signal = 0;
    struct sigaction action {};
    action.sa_handler = request_stop;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous_int_);
    sigaction(SIGTERM, &action, &previous_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &previous_int_, nullptr);
    sigaction(SIGTERM, &previous_term_, nullptr);
  }

 private:
  struct sigaction previous_int_ {}, previous_term_ {};
};

// Names the first tape entry that produced a NaN / Inf, in the forward or the backward.
[[noreturn]] void report_non_finite(const Tape& tape, std::size_t iteration, const char* what) {
  std::string culprit;
  if (auto forward = tape.first_non_finite_value())
    culprit = "first in the forward value of " + tape.describe_entry(*forward);
  else if (auto backward = tape.first_non_finite_gradient())
    culprit = "first in the gradient of " + tape.describe_entry(*backward);
  else
    culprit = "no single entry found";
  throw NonFiniteError(fmt::format("{} at iteration {} ({}); the last checkpoint is intact (try a smaller --lr, or "
                                   "--anomaly to stop at the op)",
                                   what, iteration, culprit));
}

bool gradients_finite(const Module& model) {
  for (const Parameter* p : model.parameters())
    if (!all_finite(p->grad)) return false;
  return true;
}

json train_loop(TrainConfig config, std::optional<std::string> resume_from) {
  set_threads(config.threads);
  manual_seed(config.seed);
  Experiment experiment = load_experiment(config.dataset, experiment_options(config));
  std::shared_ptr<Module> model = make_model(config.model, experiment.input);
  std::unique_ptr<Optimizer> optimizer = make_optimizer(config, *model);
  std::unique_ptr<TrainingStream> stream = experiment.stream(config.batch, config.seed);
  const std::size_t per_epoch = std::max<std::size_t>(experiment.train.size() / config.batch, 1);
  const std::size_t iterations = config.iters ? config.iters : per_epoch * std::max<std::size_t>(config.epochs, 1);
  Schedule schedule;
  schedule.kind = parse_schedule_kind(config.schedule);
  schedule.step_every = config.step_every ? config.step_every : std::max<std::size_t>(iterations / 3, 1);
  schedule.total = iterations;
  const bool has_transformers = !find_transformers(*model).empty();
  const EvaluationSet evaluation = evaluation_set(config, experiment);
  const std::string error_key = evaluation.name + "_error", loss_key = evaluation.name + "_loss";

  std::size_t start = 0;
  double train_seconds = 0.0;
  if (resume_from) {
    std::optional<CheckpointState> state = load_newest_checkpoint(config.out, *model, *optimizer);
    if (!state) throw DataError(config.out + ": no usable checkpoint to resume from");
    start = state->iteration;
    train_seconds = state->train_seconds;
    stream->seek(start);
    fmt::print("resuming {} from the checkpoint of iteration {}\n", config.out, start);
  }
  std::filesystem::create_directories(config.out);
  std::filesystem::remove(config.out + "/result.json");  // present only once this run finishes
  json config_json = config.to_json();
  config_json["iterations"] = iterations;
  config_json["params"] = model->parameter_count();
  config_json["training_digits"] = experiment.train.size();
  config_json["schedule_description"] = schedule.describe();
  if (!has_transformers) config_json.erase("loc_lr_scale");  // no localisation net to scale
  write_file_atomically(config.out + "/config.json", config_json.dump(2) + "\n");
  MetricsLog metrics(config.out + "/metrics.jsonl", resume_from ? std::optional<std::size_t>(start) : std::nullopt);
  const std::map<std::string, std::string> weights_metadata = {
      {"model", config.model}, {"dataset", config.dataset}, {"preset", config.preset}};
  auto checkpoint = [&](std::size_t done) {
    write_checkpoint(config.out, *model, *optimizer, CheckpointState{done, train_seconds}, config.keep_checkpoints);
  };

  fmt::print("training {} on {} ({} preset): {} parameters, {} iterations of batch {}, {} threads -> {}\n",
             config.model, config.dataset, config.preset, model->parameter_count(), iterations, config.batch,
             omp_get_max_threads(), config.out);
  std::fflush(stdout);  // a redirected log shows the run at once, not at the first progress line
  Progress progress("train", iterations, std::max<std::size_t>(iterations / 20, 1), start);
  StopSignals signals;
  Tape tape;
  tape.set_anomaly_detection(config.anomaly);
  Batch batch;
  double window_loss = 0.0, last_test_error = NAN;
  std::size_t window_correct = 0, window_samples = 0;
  model->train();
  for (std::size_t iteration = start; iteration < iterations; ++iteration) {
    stream->next(batch);
    const auto step_start = Clock::now();
    optimizer->set_learning_rate(schedule.learning_rate(config.learning_rate, iteration));
    tape.clear();
    Var logits = model->forward(tape.input(batch.images));
    Var loss = cross_entropy(logits, batch.labels);
    const std::size_t done = iteration + 1;
    if (!std::isfinite(loss.value()())) report_non_finite(tape, done, "the loss is not finite");
    tape.backward(loss);
    if (!gradients_finite(*model)) report_non_finite(tape, done, "a gradient is not finite");
    optimizer->step();
    optimizer->zero_grad();
    train_seconds += seconds_since(step_start);

    const float loss_value = loss.value()();
    window_loss += loss_value * static_cast<double>(batch.labels.size());
    window_correct += count_correct(logits.value(), batch.labels.data());
    window_samples += batch.labels.size();
    // Both counts run over the whole run, resumed parts included.
    const double samples_per_s = static_cast<double>(done * config.batch) / std::max(train_seconds, 1e-9);
    if (done % config.log_every == 0 || done == iterations) {
      json line = {{"iter", done},
                   {"loss", window_loss / static_cast<double>(window_samples)},
                   {"train_accuracy", static_cast<double>(window_correct) / static_cast<double>(window_samples)},
                   {"lr", optimizer->learning_rate()},
                   {"samples_per_s", samples_per_s}};
      if (has_transformers) line["transformers"] = transformer_health(*model);
      metrics.write(line);
      progress.update(done, fmt::format("loss {:.4f}  acc {:.2f}%  {:.0f} samples/s{}",
                                        window_loss / static_cast<double>(window_samples),
                                        100.0 * static_cast<double>(window_correct) / static_cast<double>(window_samples),
                                        samples_per_s,
                                        std::isnan(last_test_error) ? "" : fmt::format("  {} {:.2f}%", evaluation.name, last_test_error)));
      window_loss = 0.0;
      window_correct = window_samples = 0;
    } else {
      progress.update(done, fmt::format("loss {:.4f}  {:.0f} samples/s", loss_value, samples_per_s));
    }
    if (config.eval_every && done % config.eval_every == 0 && done < iterations) {
      tape.clear();
      Evaluation test = evaluate(*model, evaluation.data);
      last_test_error = test.error_percent;
      metrics.write({{"iter", done}, {error_key, test.error_percent}, {loss_key, test.loss}});
      save_parameters(config.out + "/model.safetensors", *model, weights_metadata);
    }
    if (config.checkpoint_every && done % config.checkpoint_every == 0 && done < iterations) checkpoint(done);
    if (stop_signal) {
      const int signal_number = stop_signal;
      checkpoint(done);
      save_parameters(config.out + "/model.safetensors", *model, weights_metadata);
      throw Interrupted(signal_number, fmt::format("interrupted by signal {} after iteration {}; checkpoint written, "
                                                   "continue with: stn train --resume {}",
                                                   signal_number, done, config.out));
    }
  }
  progress.finish(fmt::format("done in {}", format_duration(train_seconds)));
  tape.clear();

  checkpoint(iterations);
  save_parameters(config.out + "/model.safetensors", *model, weights_metadata);
  Evaluation test = evaluate(*model, evaluation.data);
  metrics.write({{"iter", iterations}, {error_key, test.error_percent}, {loss_key, test.loss}, {"final", true}});
  if (has_transformers && write_transformer_figure(*model, evaluation.data, 8, config.out + "/transformer.png"))
    fmt::print("transformer figure: {}/transformer.png\n", config.out);
  if (write_training_curves(config.out)) fmt::print("training curves: {}/curves.png\n", config.out);
  json summary = {{error_key, test.error_percent},
                  {loss_key, test.loss},
                  {"iters", iterations},
                  {"params", model->parameter_count()},
                  {"samples_per_s", static_cast<double>(iterations * config.batch) / train_seconds},
                  {"seconds", train_seconds},
                  {"dataset", config.dataset},
                  {"model", config.model},
                  {"preset", config.preset},
                  {"seed", config.seed},
                  {"threads", omp_get_max_threads()},
                  {"run", config.out}};
  write_file_atomically(config.out + "/result.json", summary.dump(2) + "\n");
  return summary;
}

// A run's config.json: its TrainConfig and the iteration count the run resolved to. A file
// that is not JSON, or holds a field of the wrong type, is named in the error.
struct RunConfig {
  TrainConfig config;
  std::size_t iterations = 0;
};

RunConfig read_run_config(const std::string& run_directory) {
  const std::string config_path = run_directory + "/config.json";
  if (!std::filesystem::exists(config_path)) throw DataError(run_directory + ": not a run directory (no config.json)");
  try {
    const json config_json = json::parse(read_file(config_path));
    return {TrainConfig::from_json(config_json), config_json.value("iterations", std::size_t{0})};
  } catch (const json::exception& e) {
    throw DataError(config_path + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace

json run_training(const TrainConfig& input_config) {
  TrainConfig config = input_config;
  config.validate();
  if (config.out.empty()) config.out = "runs/" + config.dataset + "-" + config.model + "-s" + std::to_string(config.seed);
  if (config.data_dir.empty()) config.data_dir = default_data_dir(config.dataset);
  return train_loop(config, std::nullopt);
}

json resume_training(const std::string& run_directory, int threads, std::size_t iterations) {
  TrainConfig config = read_run_config(run_directory).config;
  config.out = run_directory;
  if (threads > 0) config.threads = threads;
  if (iterations > 0) {
    config.iters = iterations;
    config.epochs = 0;
  }
  config.validate();
  return train_loop(config, run_directory);
}

json run_evaluation(const std::string& run_directory, int threads) {
  const RunConfig run = read_run_config(run_directory);
  const TrainConfig& config = run.config;
  set_threads(threads);
  Experiment experiment = load_experiment(config.dataset, experiment_options(config));
  std::shared_ptr<Module> model = make_model(config.model, experiment.input);
  load_parameters(run_directory + "/model.safetensors", *model);
  const EvaluationSet evaluation = evaluation_set(config, experiment);
  Evaluation test = evaluate(*model, evaluation.data);
  return json{{evaluation.name + "_error", test.error_percent},
              {evaluation.name + "_loss", test.loss},
              {"iters", run.iterations},
              {"params", model->parameter_count()},
              {"samples_per_s", static_cast<double>(test.samples) / test.seconds},
              {"seconds", test.seconds},
              {"dataset", config.dataset},
              {"model", config.model},
              {"preset", config.preset},
              {"run", run_directory}};
}

}  // namespace stn::cli
