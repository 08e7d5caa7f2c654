// stn: the command-line program. Subcommands:
//   stn train   train a model, evaluate it, write a run directory
//   stn eval    reload a run's weights and evaluate them again
// Every subcommand prints, as its last stdout line, one JSON object with its result.
#include <cstdio>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "experiments/train.h"
#include "framework/error.h"

namespace {

void add_train_command(CLI::App& app, stn::cli::TrainConfig& config) {
  CLI::App* train = app.add_subcommand("train", "Train a model, evaluate it on the test set, write runs/NAME/");
  train->add_option("--dataset", config.dataset, "Dataset: mnist | fashion")->capture_default_str();
  train->add_option("--model", config.model, "Model: fcn | cnn")->capture_default_str();
  train->add_option("--data", config.data_dir, "Directory of the IDX files (default: data/mnist, or the Debian Fashion-MNIST directory)");
  train->add_option("--epochs", config.epochs, "Passes over the training set (default 1 when --iters is not given)");
  train->add_option("--iters", config.iters, "Training iterations (instead of --epochs)");
  train->add_option("--batch", config.batch, "Batch size")->capture_default_str();
  train->add_option("--lr", config.learning_rate, "Base learning rate")->capture_default_str();
  train->add_option("--opt", config.optimizer, "Optimizer: sgd | adam")->capture_default_str();
  train->add_option("--momentum", config.momentum, "SGD momentum")->capture_default_str();
  train->add_option("--weight-decay", config.weight_decay, "L2 weight decay")->capture_default_str();
  train->add_option("--schedule", config.schedule, "Learning-rate schedule: constant | step | cosine")->capture_default_str();
  train->add_option("--step-every", config.step_every, "Step schedule: divide the rate by 10 every N iterations (default: a third of the run)");
  train->add_option("--seed", config.seed, "Random seed (initialisation, data order)")->capture_default_str();
  train->add_option("--threads", config.threads, "Threads (0 = all cores)")->capture_default_str();
  train->add_option("--out", config.out, "Run directory (default runs/<dataset>-<model>-s<seed>)");
  train->add_option("--log-every", config.log_every, "Iterations between metrics lines")->capture_default_str();
  train->callback([&config]() {
    nlohmann::json summary = stn::cli::run_training(config);
    fmt::print("{}\n", summary.dump());
  });
}

void add_eval_command(CLI::App& app, std::string& run_directory, int& threads) {
  CLI::App* eval = app.add_subcommand("eval", "Reload a run's weights and evaluate them on its test set");
  eval->add_option("--run", run_directory, "Run directory written by stn train")->required();
  eval->add_option("--threads", threads, "Threads (0 = all cores)")->capture_default_str();
  eval->callback([&run_directory, &threads]() {
    nlohmann::json summary = stn::cli::run_evaluation(run_directory, threads);
    fmt::print("{}\n", summary.dump());
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"stn: spatial transformer networks on a small reverse-mode tape framework"};
  app.require_subcommand(1);
  stn::cli::TrainConfig train_config;
  std::string run_directory;
  int eval_threads = 0;
  add_train_command(app, train_config);
  add_eval_command(app, run_directory, eval_threads);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    fmt::print(stderr, "\nstn: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
