#include "experiments/train.h"

#include <omp.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/core.h>

#include "experiments/datasets.h"
#include "experiments/progress.h"
#include "framework/data/loader.h"
#include "framework/error.h"
#include "framework/io/atomic_file.h"
#include "framework/ops/loss.h"
#include "framework/optim/optimizer.h"
#include "framework/optim/schedule.h"
#include "framework/random.h"
#include "layers/checkpoint.h"
#include "models/models.h"

namespace stn::cli {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

nlohmann::json TrainConfig::to_json() const {
  return json{{"dataset", dataset}, {"model", model},       {"data_dir", data_dir},
              {"epochs", epochs},   {"iters", iters},       {"batch", batch},
              {"optimizer", optimizer}, {"lr", learning_rate}, {"momentum", momentum},
              {"weight_decay", weight_decay}, {"schedule", schedule}, {"step_every", step_every},
              {"seed", seed},       {"threads", threads},   {"out", out},
              {"log_every", log_every}};
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  TrainConfig c;
  c.dataset = j.value("dataset", c.dataset);
  c.model = j.value("model", c.model);
  c.data_dir = j.value("data_dir", c.data_dir);
  c.epochs = j.value("epochs", c.epochs);
  c.iters = j.value("iters", c.iters);
  c.batch = j.value("batch", c.batch);
  c.optimizer = j.value("optimizer", c.optimizer);
  c.learning_rate = j.value("lr", c.learning_rate);
  c.momentum = j.value("momentum", c.momentum);
  c.weight_decay = j.value("weight_decay", c.weight_decay);
  c.schedule = j.value("schedule", c.schedule);
  c.step_every = j.value("step_every", c.step_every);
  c.seed = j.value("seed", c.seed);
  c.threads = j.value("threads", c.threads);
  c.out = j.value("out", c.out);
  c.log_every = j.value("log_every", c.log_every);
  return c;
}

void TrainConfig::validate() const {
  auto fail = [](const std::string& m) { throw std::invalid_argument(m); };
  if (batch == 0) fail("--batch must be at least 1");
  if (epochs && iters) fail("give --epochs or --iters, not both");
  if (!(learning_rate > 0.0f)) fail("--lr must be positive, got " + std::to_string(learning_rate));
  if (momentum < 0.0f || momentum >= 1.0f) fail("--momentum must be in [0, 1), got " + std::to_string(momentum));
  if (weight_decay < 0.0f) fail("--weight-decay must be >= 0");
  if (optimizer != "sgd" && optimizer != "adam") fail("unknown optimizer '" + optimizer + "' (expected sgd or adam)");
  if (threads < 0) fail("--threads must be >= 0 (0 = all cores)");
  if (log_every == 0) fail("--log-every must be at least 1");
  parse_schedule_kind(schedule);
}

void set_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

namespace {

// Index of the largest logit per row.
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

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, Module& model) {
  std::vector<ParameterGroup> groups = {{model.parameters(), 1.0f}};
  if (c.optimizer == "adam")
    return std::make_unique<Adam>(groups, AdamOptions{.learning_rate = c.learning_rate, .weight_decay = c.weight_decay});
  return std::make_unique<SGD>(groups, SgdOptions{.learning_rate = c.learning_rate, .momentum = c.momentum,
                                                  .weight_decay = c.weight_decay});
}

std::string default_run_directory(const TrainConfig& c) {
  return "runs/" + c.dataset + "-" + c.model + "-s" + std::to_string(c.seed);
}

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
    loss_total += cross_entropy(logits, batch.labels).value().data()[0] * static_cast<double>(batch.labels.size());
    result.samples += batch.labels.size();
  }
  result.seconds = seconds_since(start);
  model.train(was_training);
  if (result.samples == 0) throw std::invalid_argument("evaluate: the dataset is empty");
  result.error_percent = 100.0 * static_cast<double>(result.samples - correct) / static_cast<double>(result.samples);
  result.loss = loss_total / static_cast<double>(result.samples);
  return result;
}

json run_training(const TrainConfig& input_config) {
  TrainConfig config = input_config;
  config.validate();
  if (config.out.empty()) config.out = default_run_directory(config);
  if (config.data_dir.empty()) config.data_dir = default_data_dir(config.dataset);
  set_threads(config.threads);
  manual_seed(config.seed);

  DatasetPair data = load_dataset(config.dataset, config.data_dir);
  std::shared_ptr<Module> model = make_model(config.model, data.input);
  std::unique_ptr<Optimizer> optimizer = make_optimizer(config, *model);

  DataLoader loader(data.train, LoaderOptions{.batch_size = config.batch, .shuffle = true, .drop_last = true,
                                              .seed = config.seed});
  const std::size_t per_epoch = loader.batches_per_epoch();
  if (per_epoch == 0)
    throw std::invalid_argument("--batch " + std::to_string(config.batch) + " is larger than the training set (" +
                                std::to_string(data.train.size()) + " samples)");
  const std::size_t iterations = config.iters ? config.iters : per_epoch * std::max<std::size_t>(config.epochs, 1);
  Schedule schedule;
  schedule.kind = parse_schedule_kind(config.schedule);
  schedule.step_every = config.step_every ? config.step_every : std::max<std::size_t>(iterations / 3, 1);
  schedule.total = iterations;

  std::filesystem::create_directories(config.out);
  json config_json = config.to_json();
  config_json["iterations"] = iterations;
  config_json["params"] = model->parameter_count();
  config_json["schedule_description"] = schedule.describe();
  write_file_atomically(config.out + "/config.json", config_json.dump(2) + "\n");
  std::ofstream metrics(config.out + "/metrics.jsonl", std::ios::trunc);
  if (!metrics) throw std::runtime_error(config.out + "/metrics.jsonl: cannot open for writing");

  fmt::print("training {} on {}: {} parameters, {} iterations of batch {} ({} per epoch), {} threads\n",
             config.model, config.dataset, model->parameter_count(), iterations, config.batch, per_epoch,
             omp_get_max_threads());
  Progress progress("train", iterations, std::max<std::size_t>(iterations / 20, 1));
  Tape tape;
  Batch batch;
  std::size_t epoch = 0;
  loader.start_epoch(epoch);
  double train_seconds = 0.0, window_loss = 0.0;
  std::size_t window_correct = 0, window_samples = 0;
  model->train();
  for (std::size_t iteration = 0; iteration < iterations; ++iteration) {
    if (!loader.next(batch)) {
      loader.start_epoch(++epoch);
      loader.next(batch);
    }
    const auto step_start = Clock::now();
    optimizer->set_learning_rate(schedule.learning_rate(config.learning_rate, iteration));
    tape.clear();
    Var logits = model->forward(tape.input(batch.images));
    Var loss = cross_entropy(logits, batch.labels);
    tape.backward(loss);
    optimizer->step();
    optimizer->zero_grad();
    train_seconds += seconds_since(step_start);

    const float loss_value = loss.value().data()[0];
    if (!std::isfinite(loss_value))
      throw std::runtime_error("training diverged: loss is " + std::to_string(loss_value) + " at iteration " +
                               std::to_string(iteration + 1) + " (try a smaller --lr)");
    window_loss += loss_value * static_cast<double>(batch.labels.size());
    window_correct += count_correct(logits.value(), batch.labels.data());
    window_samples += batch.labels.size();
    const double samples_per_s = static_cast<double>((iteration + 1) * config.batch) / train_seconds;
    if ((iteration + 1) % config.log_every == 0 || iteration + 1 == iterations) {
      metrics << json{{"iter", iteration + 1},
                      {"epoch", epoch},
                      {"loss", window_loss / static_cast<double>(window_samples)},
                      {"train_accuracy", static_cast<double>(window_correct) / static_cast<double>(window_samples)},
                      {"lr", optimizer->learning_rate()},
                      {"samples_per_s", samples_per_s}}
                      .dump()
              << std::endl;
      progress.update(iteration + 1, fmt::format("loss {:.4f}  acc {:.2f}%  {:.0f} samples/s",
                                                 window_loss / static_cast<double>(window_samples),
                                                 100.0 * static_cast<double>(window_correct) / static_cast<double>(window_samples),
                                                 samples_per_s));
      window_loss = 0.0;
      window_correct = window_samples = 0;
    } else {
      progress.update(iteration + 1, fmt::format("loss {:.4f}  {:.0f} samples/s", loss_value, samples_per_s));
    }
  }
  progress.finish(fmt::format("done in {}", format_duration(train_seconds)));
  tape.clear();

  save_parameters(config.out + "/model.safetensors", *model,
                  {{"model", config.model}, {"dataset", config.dataset}, {"iters", std::to_string(iterations)}});
  Evaluation test = evaluate(*model, data.test);
  json summary = {{"test_error", test.error_percent},
                  {"test_loss", test.loss},
                  {"iters", iterations},
                  {"params", model->parameter_count()},
                  {"samples_per_s", static_cast<double>(iterations * config.batch) / train_seconds},
                  {"seconds", train_seconds},
                  {"dataset", config.dataset},
                  {"model", config.model},
                  {"run", config.out}};
  metrics << json{{"final", true}, {"iter", iterations}, {"test_error", test.error_percent}, {"test_loss", test.loss}}.dump()
          << std::endl;
  write_file_atomically(config.out + "/result.json", summary.dump(2) + "\n");
  return summary;
}

json run_evaluation(const std::string& run_directory, int threads) {
  const std::string config_path = run_directory + "/config.json";
  if (!std::filesystem::exists(config_path))
    throw DataError(run_directory + ": not a run directory (no config.json)");
  json config_json;
  try {
    config_json = json::parse(read_file(config_path));
  } catch (const json::exception& e) {
    throw DataError(config_path + ": not valid JSON (" + e.what() + ")");
  }
  TrainConfig config = TrainConfig::from_json(config_json);
  set_threads(threads);
  DatasetPair data = load_dataset(config.dataset, config.data_dir);
  std::shared_ptr<Module> model = make_model(config.model, data.input);
  load_parameters(run_directory + "/model.safetensors", *model);
  Evaluation test = evaluate(*model, data.test);
  return json{{"test_error", test.error_percent},
              {"test_loss", test.loss},
              {"iters", config_json.value("iterations", std::size_t{0})},
              {"params", model->parameter_count()},
              {"samples_per_s", static_cast<double>(test.samples) / test.seconds},
              {"seconds", test.seconds},
              {"dataset", config.dataset},
              {"model", config.model},
              {"run", run_directory}};
}

}  // namespace stn::cli
