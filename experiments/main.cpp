// stn: the command-line program. Subcommands:
//   stn train   train a model, evaluate it, write a run directory
//   stn eval    reload a run's weights and evaluate them again
//   stn warp    apply one spatial transform to one image
//   stn models  list a dataset's models with their layers and parameter counts
//   stn data    write a grid of a dataset's training samples
//   stn table   collect finished runs into the paper's Table 1
// Every subcommand prints, as its last stdout line, one JSON object with its result.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "stn/experiments/commands.h"
#include "stn/experiments/presets.h"
#include "stn/experiments/train.h"
#include "stn/experiments/warp.h"
#include "stn/layers/distributed.h"

namespace {

using stn::cli::TrainConfig;

// The last stdout line. A path that is not UTF-8 is refused before the work starts; the
// replacement here only keeps a stray byte from failing a finished command.
void print_result(const nlohmann::json& result) {
  fmt::print("{}\n", result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// CLI11 would wrap "-1" into a huge unsigned count: refuse a sign before the conversion.
const CLI::Validator kNonNegative(
    [](std::string& value) {
      return value.find('-') != std::string::npos ? "must be a non-negative whole number, got " + value : std::string();
    },
    "COUNT");

// A train flag that overrides the preset's value only when given on the command line.
struct Override {
  CLI::Option* option;
  std::function<void(TrainConfig&)> apply;
};

struct TrainCommand {
  TrainConfig flags;
  std::string preset = "none";
  std::string resume;
  bool overwrite = false;
  CLI::Option* preset_option = nullptr;
  CLI::Option* resume_option = nullptr;
  std::vector<Override> overrides;

  template <class T>
  void option(CLI::App* command, const std::string& name, T TrainConfig::*field, const std::string& help) {
    CLI::Option* o = command->add_option(name, flags.*field, help);
    if constexpr (std::is_unsigned_v<T>) o->check(kNonNegative);
    overrides.push_back({o, [this, field](TrainConfig& c) { c.*field = flags.*field; }});
  }
  void flag(CLI::App* command, const std::string& name, bool TrainConfig::*field, const std::string& help) {
    CLI::Option* o = command->add_flag(name, flags.*field, help);
    overrides.push_back({o, [this, field](TrainConfig& c) { c.*field = flags.*field; }});
  }

  bool given(const std::string& name) const {
    for (const Override& o : overrides)
      if (o.option->get_name() == name && o.option->count() > 0) return true;
    return false;
  }

  // A resumed run keeps the config it started with; a flag that would change it is refused,
  // not silently dropped.
  void check_resume_flags() const {
    if (overwrite) throw std::invalid_argument("--overwrite starts a new run; it cannot be given with --resume");
    if (preset_option->count() > 0)
      throw std::invalid_argument("--resume continues the run with its own config; --preset cannot be given with it");
    for (const Override& o : overrides) {
      const std::string name = o.option->get_name();
      if (o.option->count() > 0 && name != "--threads" && name != "--iters" && name != "--data" && name != "--cache")
        throw std::invalid_argument("--resume continues the run with its own config; " + name +
                                    " cannot be changed (only --threads, --iters, --data and --cache can be given with it)");
    }
  }

  TrainConfig resolve() const {
    // A preset's numbers may depend on the dataset (the fast preset's TC runs are shorter) and
    // on the model (the table preset's localisation rate on RTS).
    const TrainConfig own = stn::cli::preset_config(preset);
    const std::string dataset = given("--dataset") ? flags.dataset : own.dataset;
    const std::string model = given("--model") ? flags.model : own.model;
    TrainConfig config = stn::cli::preset_config(preset, dataset, model);
    for (const Override& o : overrides)
      if (o.option->count() > 0) o.apply(config);
    // 0 would mean "not given" (one epoch) to the config: refused when it is given.
    if (given("--iters") && flags.iters == 0) throw std::invalid_argument("--iters must be at least 1");
    if (given("--epochs") && flags.epochs == 0) throw std::invalid_argument("--epochs must be at least 1");
    // --epochs and --iters replace each other.
    if (given("--epochs") && !given("--iters")) config.iters = 0;
    return config;
  }
};

void add_train_command(CLI::App& app, TrainCommand& train) {
  CLI::App* c = app.add_subcommand("train", "Train a model, evaluate it on the test set, write runs/NAME/");
  train.preset_option = c->add_option("--preset", train.preset, "Defaults to start from: none | demo | fast | table | paper (flags override them)")
      ->capture_default_str();
  train.option(c, "--dataset", &TrainConfig::dataset, "Dataset: mnist | fashion | r | rts | p | e | tc | add (default mnist)");
  train.option(c, "--model", &TrainConfig::model, "Model (see stn models --dataset X; default cnn)");
  train.option(c, "--data", &TrainConfig::data_dir, "Directory of the IDX files (default data/mnist, or the Debian Fashion-MNIST directory)");
  train.option(c, "--cache", &TrainConfig::cache_dir, "Directory for the cached distorted test sets (default data/cache)");
  train.option(c, "--epochs", &TrainConfig::epochs, "Passes over the training set (default 1 when --iters is not given)");
  train.option(c, "--iters", &TrainConfig::iters, "Training iterations (instead of --epochs)");
  train.option(c, "--batch", &TrainConfig::batch, "Batch size (default 64; under mpirun the global batch, split over the ranks)");
  train.option(c, "--micro-batches", &TrainConfig::micro_batches, "Forward and backward each batch (each rank's share) in this many parts, summing their gradients: the same step in less memory (default 1)");
  train.option(c, "--lr", &TrainConfig::learning_rate, "Base learning rate (default 0.05)");
  train.option(c, "--opt", &TrainConfig::optimizer, "Optimizer: sgd | adam (default sgd)");
  train.option(c, "--momentum", &TrainConfig::momentum, "SGD momentum (default 0.9)");
  train.option(c, "--nesterov", &TrainConfig::nesterov, "Nesterov momentum: true | false (default true)");
  train.option(c, "--weight-decay", &TrainConfig::weight_decay, "L2 weight decay (default 0)");
  train.option(c, "--schedule", &TrainConfig::schedule, "Learning-rate schedule: constant | step | cosine (default cosine)");
  train.option(c, "--step-every", &TrainConfig::step_every, "Step schedule: divide the rate by 10 every N iterations (default: a third of the run)");
  train.option(c, "--loc-lr-scale", &TrainConfig::localisation_lr_scale, "Learning-rate multiplier of the localisation networks (default 1)");
  train.option(c, "--seed", &TrainConfig::seed, "Random seed: initialisation and data (default 1)");
  train.option(c, "--test-seed", &TrainConfig::test_seed, "Seed of the distorted test set (default 1; keep it fixed across models)");
  train.flag(c, "--validation", &TrainConfig::validation, "Train on the first 50,000 training digits and report the error on the held-out 10,000 (validation_error) instead of the test set");
  train.option(c, "--threads", &TrainConfig::threads, "Threads (0 = all cores)");
  train.option(c, "--out", &TrainConfig::out, "Run directory (default runs/<dataset>-<model>-s<seed>)");
  train.option(c, "--log-every", &TrainConfig::log_every, "Iterations between metrics lines (default 50)");
  train.option(c, "--eval-every", &TrainConfig::eval_every, "Iterations between test evaluations and weight saves (default: only at the end)");
  train.option(c, "--checkpoint-every", &TrainConfig::checkpoint_every, "Iterations between checkpoints under RUN/checkpoints/ (default 500; one is always written at the end)");
  train.option(c, "--keep-checkpoints", &TrainConfig::keep_checkpoints, "How many of the newest checkpoints to keep (default 3)");
  train.flag(c, "--anomaly", &TrainConfig::anomaly, "Check every tape entry for NaN/Inf and stop at the op that made one");
  train.resume_option = c->add_option("--resume", train.resume, "Continue the run in this directory from its newest valid checkpoint (its config is reused; --threads, a larger --iters, and --data/--cache for the same files elsewhere may be given)");
  c->add_flag("--overwrite", train.overwrite, "Delete the run already in --out (only the files stn writes there) and start afresh");
  c->callback([&train]() {
    if (train.resume_option->count() > 0) {
      // An unset shell variable gives "": never a fresh default run in its place.
      if (train.resume.empty()) throw std::invalid_argument("--resume needs a run directory, got an empty string");
      train.check_resume_flags();
      const TrainConfig given = train.resolve();
      stn::cli::ResumeOptions options;
      if (train.given("--threads")) options.threads = given.threads;
      if (train.given("--iters")) options.iterations = given.iters;
      if (train.given("--data")) options.data_dir = given.data_dir;
      if (train.given("--cache")) options.cache_dir = given.cache_dir;
      print_result(stn::cli::resume_training(train.resume, options));
      return;
    }
    print_result(stn::cli::run_training(train.resolve(), train.overwrite));
  });
}

void add_eval_command(CLI::App& app, std::string& run_directory, stn::cli::EvalOptions& options) {
  CLI::App* eval = app.add_subcommand("eval", "Reload a run's weights and evaluate them on its test set, or on IDX files made elsewhere");
  eval->add_option("--run", run_directory, "Run directory written by stn train")->required();
  eval->add_option("--threads", options.threads, "Threads (0 = all cores)")->capture_default_str();
  eval->add_option("--test-images", options.test_images, "IDX images (unsigned bytes, N x H x W or N x C x H x W, plain or gzip) to evaluate on instead of the run's test set");
  eval->add_option("--test-labels", options.test_labels, "IDX labels (unsigned bytes, N) for --test-images");
  eval->add_option("--data-dir", options.data_dir, "MNIST directory to use instead of the one the run recorded");
  eval->add_option("--predictions", options.predictions, "Write the predicted label of every test sample here, one per line");
  eval->add_option("--figure", options.figure, "Draw the transformer figure of the first 8 test samples here (a .png), as stn train's transformer.png");
  eval->callback([&run_directory, &options]() {
    print_result(stn::cli::run_evaluation(run_directory, options));
  });
}

void add_warp_command(CLI::App& app, stn::cli::WarpConfig& config) {
  CLI::App* warp = app.add_subcommand("warp", "Apply one spatial transform to one image (PNG, .npy or an MNIST digit)");
  warp->add_option("--input", config.input, "PNG file, .npy file, or mnist:train:INDEX / mnist:test:INDEX")->required();
  warp->add_option("--data", config.data_dir, "MNIST directory for mnist: inputs")->capture_default_str();
  warp->add_option("--out", config.output, "Output .png or .npy")->required();
  warp->add_option("--affine", config.affine, "Affine theta a,b,c,d,e,f (row-major 2x3, normalised coordinates)")->delimiter(',');
  warp->add_option("--projective", config.projective, "Projective h11,h12,h13,h21,h22,h23,h31,h32 (h33 = 1)")->delimiter(',');
  warp->add_option("--tps", config.tps, "TPS: x1,y1,...: source positions of the k*k target control points")->delimiter(',');
  warp->add_option("--rotate", config.rotate, "Rotate the picture DEG degrees counter-clockwise about the centre");
  warp->add_option("--zoom", config.zoom, "Magnify S times about the centre");
  warp->add_option("--pan", config.pan, "Centre the output on input point TX,TY (normalised)")->delimiter(',');
  warp->add_option("--crop", config.crop, "Show the input box X0,Y0,X1,Y1 (normalised)")->delimiter(',');
  warp->add_option("--size", config.size, "Output size HxW (default: the input's)");
  warp->add_flag("--align-corners", config.align_corners, "Corner pixel centres at -1 and +1");
  warp->add_option("--padding", config.padding, "zeros | border")->capture_default_str();
  warp->add_flag("--nearest", config.nearest, "Nearest-neighbour sampling instead of bilinear");
  warp->add_flag("--print-theta", config.print_theta, "Print the composed affine matrix");
  warp->callback([&config]() { print_result(stn::cli::run_warp(config)); });
}

struct SmallCommands {
  std::string dataset = "rts", data_dir = "data/mnist", output = "sample.png", runs = "runs";
  std::size_t count = 32;
  std::uint64_t seed = 1;
  bool markdown = false;
};

void add_small_commands(CLI::App& app, SmallCommands& s) {
  CLI::App* models = app.add_subcommand("models", "List a dataset's models: layers and parameter counts");
  models->add_option("--dataset", s.dataset, "Dataset: mnist | fashion | r | rts | p | e | tc | add")->capture_default_str();
  models->callback([&s]() { print_result(stn::cli::run_models(s.dataset)); });

  CLI::App* data = app.add_subcommand("data", "Write a grid of a dataset's training samples to a PNG");
  data->add_option("--dataset", s.dataset, "Dataset: mnist | fashion | r | rts | p | e | tc | add")->capture_default_str();
  data->add_option("--data", s.data_dir, "MNIST directory")->capture_default_str();
  data->add_option("--out", s.output, "Output PNG")->capture_default_str();
  data->add_option("--count", s.count, "Samples")->capture_default_str()->check(kNonNegative);
  data->add_option("--seed", s.seed, "Seed")->capture_default_str()->check(kNonNegative);
  data->callback([&s]() { print_result(stn::cli::run_data(s.dataset, s.data_dir, s.output, s.count, s.seed)); });

  CLI::App* table = app.add_subcommand("table", "Collect finished runs into the paper's Table 1, beside the paper's numbers");
  table->add_option("--runs", s.runs, "Directory of run directories")->capture_default_str();
  table->add_flag("--markdown", s.markdown, "Print a Markdown table");
  table->callback([&s]() { print_result(stn::cli::run_table(s.runs, s.markdown)); });
}

}  // namespace

namespace {

// Under mpirun (stn train only): the ranks other than 0 print nothing to stdout (rank 0
// reports the run); their errors still reach stderr, naming the rank.
void quiet_other_ranks() {
  if (stn::distributed::rank() == 0) return;
  const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null >= 0) {
    std::fflush(stdout);
    ::dup2(null, STDOUT_FILENO);
    ::close(null);
  }
}

std::string rank_prefix() {
  if (!stn::distributed::active()) return "";
  return fmt::format(" (rank {} of {})", stn::distributed::rank(), stn::distributed::size());
}

// A failure on one rank of several ends all of them: the others would wait for it forever.
int fail(int status) {
  std::fflush(stdout);
  if (stn::distributed::active()) stn::distributed::abort(status);
  return status;
}

int run(int argc, char** argv) {
  CLI::App app{"stn: spatial transformer networks on a small reverse-mode tape framework"};
  app.require_subcommand(1);
  TrainCommand train;
  std::string run_directory;
  stn::cli::EvalOptions eval_options;
  stn::cli::WarpConfig warp;
  SmallCommands small;
  add_train_command(app, train);
  add_eval_command(app, run_directory, eval_options);
  add_warp_command(app, warp);
  add_small_commands(app, small);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return fail(app.exit(e));
  } catch (const stn::cli::Interrupted& e) {
    // With several ranks they all stopped after the same step (training agrees on it).
    std::fflush(stdout);
    if (stn::distributed::rank() == 0) fmt::print(stderr, "\nstn: {}\n", e.what());
    return 128 + e.signal;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    fmt::print(stderr, "\nstn: error{}: {}\n", rank_prefix(), e.what());
    return fail(1);
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    fmt::print(stderr, "stn: error: cannot write the result to standard output: {}\n", std::strerror(errno));
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stdout (`stn train | head -1`) becomes a write error that training turns into a
  // clean stop with a checkpoint, instead of a silent death.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    stn::distributed::Session mpi(argc, argv);  // MPI only when mpirun started this process
    if (stn::distributed::active()) {
      // Only training is data-parallel; any other command would run K times over.
      const bool training = argc > 1 && std::string(argv[1]) == "train";
      if (!training) {
        fmt::print(stderr, "stn: error{}: only `stn train` runs on several MPI ranks; run `stn {}` as one process, "
                           "without mpirun\n", rank_prefix(), argc > 1 ? argv[1] : "");
        return fail(2);
      }
      quiet_other_ranks();
    }
    return run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "stn: error: {}\n", e.what());
    return 1;
  }
}
