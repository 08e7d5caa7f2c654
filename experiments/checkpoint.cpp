#include "stn/experiments/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include <fmt/core.h>

#include "stn/framework/error.h"
#include "stn/framework/io/safetensors.h"
#include "stn/framework/random.h"
#include "stn/layers/weights.h"

namespace stn::cli {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "stn-train-state";
constexpr const char* kVersion = "1";

std::string step_stem(const std::string& run_dir, std::size_t iteration) {
  return fmt::format("{}/checkpoints/step-{:08}", run_dir, iteration);
}

// Iterations of the checkpoints present (either file), newest first.
std::vector<std::size_t> checkpoint_iterations(const std::string& run_dir) {
  std::set<std::size_t> found;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir)) return {};
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step-", 0) != 0 || name.size() < 13) continue;
    try {
      std::size_t used = 0;
      const std::size_t iteration = std::stoull(name.substr(5, 8), &used);
      if (used == 8) found.insert(iteration);
    } catch (const std::exception&) {
    }
  }
  return {found.rbegin(), found.rend()};
}

std::size_t parse_count(const std::map<std::string, std::string>& metadata, const std::string& key,
                        const std::string& path) {
  auto it = metadata.find(key);
  if (it == metadata.end()) throw DataError(path + ": metadata lacks '" + key + "'");
  try {
    std::size_t used = 0;
    const std::size_t value = std::stoull(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument(key);
    return value;
  } catch (const std::exception&) {
    throw DataError(path + ": metadata '" + key + "' is not a count: '" + it->second + "'");
  }
}

}  // namespace

void write_checkpoint(const std::string& run_dir, const Module& model, Optimizer& optimizer,
                      const Generator& model_generator, const CheckpointState& state, std::size_t keep) {
  fs::create_directories(fs::path(run_dir) / "checkpoints");
  const std::string stem = step_stem(run_dir, state.iteration);
  std::vector<NamedTensor> tensors;
  for (auto& [name, tensor] : optimizer.state()) tensors.push_back({name, tensor});
  std::ostringstream generator_state;
  generator_state << model_generator.engine();
  save_safetensors(stem + ".state.safetensors", tensors,
                   {{"format", kFormat},
                    {"version", kVersion},
                    {"iteration", std::to_string(state.iteration)},
                    {"optimizer_steps", std::to_string(optimizer.steps_taken())},
                    {"train_seconds", fmt::format("{:.17g}", state.train_seconds)},
                    {"model_generator", generator_state.str()},
                    {"window_loss", fmt::format("{:.17g}", state.window ? state.window->loss_sum : 0.0)},
                    {"window_correct", std::to_string(state.window ? state.window->correct : 0)},
                    {"window_samples", std::to_string(state.window ? state.window->samples : 0)}});
  save_parameters(stem + ".safetensors", model, {{"iteration", std::to_string(state.iteration)}});
  const std::vector<std::size_t> iterations = checkpoint_iterations(run_dir);
  for (std::size_t k = keep; k < iterations.size(); ++k) {
    fs::remove(step_stem(run_dir, iterations[k]) + ".safetensors");
    fs::remove(step_stem(run_dir, iterations[k]) + ".state.safetensors");
  }
}

std::optional<CheckpointState> load_newest_checkpoint(const std::string& run_dir, Module& model,
                                                      Optimizer& optimizer, Generator& model_generator) {
  for (std::size_t iteration : checkpoint_iterations(run_dir)) {
    const std::string stem = step_stem(run_dir, iteration);
    try {
      const std::string state_path = stem + ".state.safetensors";
      SafetensorsFile state = load_safetensors(state_path);
      if (state.metadata["format"] != kFormat || state.metadata["version"] != kVersion)
        throw DataError(state_path + ": not an stn training state of version " + kVersion);
      if (parse_count(state.metadata, "iteration", state_path) != iteration)
        throw DataError(state_path + ": its iteration does not match its file name");
      auto slots = optimizer.state();
      if (slots.size() != state.tensors.size())
        throw DataError(state_path + ": holds " + std::to_string(state.tensors.size()) +
                        " optimizer tensors, the optimizer has " + std::to_string(slots.size()) +
                        " (a different optimizer or model?)");
      for (auto& [name, tensor] : slots) {
        const Tensor* saved = state.find(name);
        if (!saved || shape_of(*saved) != shape_of(*tensor))
          throw DataError(state_path + ": optimizer tensor '" + name + "' is missing or has another shape");
        for (std::size_t i = 0; i < saved->size(); ++i)
          if (!std::isfinite(saved->data()[i]))
            throw DataError(fmt::format("{}: optimizer tensor '{}' holds {} at element {}", state_path, name,
                                        std::isnan(saved->data()[i]) ? "a NaN" : "an infinity", i));
      }
      // Checkpoints written before generators were explicit call it "default_generator".
      const char* generator_key = state.metadata.count("model_generator") ? "model_generator" : "default_generator";
      std::istringstream generator_state(state.metadata[generator_key]);
      std::mt19937_64 engine;
      generator_state >> engine;
      if (generator_state.fail()) throw DataError(state_path + ": unreadable generator state");
      const std::size_t optimizer_steps = parse_count(state.metadata, "optimizer_steps", state_path);
      double seconds = 0.0;
      try {
        seconds = std::stod(state.metadata["train_seconds"]);
      } catch (const std::exception&) {
        throw DataError(state_path + ": unreadable train_seconds");
      }
      std::optional<MetricsWindow> window;
      if (state.metadata.count("window_loss")) {
        MetricsWindow w;
        try {
          std::size_t used = 0;
          w.loss_sum = std::stod(state.metadata["window_loss"], &used);
          if (used != state.metadata["window_loss"].size() || !std::isfinite(w.loss_sum)) throw std::invalid_argument("");
        } catch (const std::exception&) {
          throw DataError(state_path + ": unreadable window_loss");
        }
        w.correct = parse_count(state.metadata, "window_correct", state_path);
        w.samples = parse_count(state.metadata, "window_samples", state_path);
        window = w;
      }
      load_parameters(stem + ".safetensors", model);  // validates everything before changing the model
      for (auto& [name, tensor] : slots) *tensor = *state.find(name);
      optimizer.set_steps_taken(optimizer_steps);
      model_generator.engine() = engine;
      return CheckpointState{iteration, seconds, window};
    } catch (const std::exception& e) {
      std::fprintf(stderr, "warning: checkpoint of iteration %zu is unusable: %s; trying the previous one\n",
                   iteration, e.what());
    }
  }
  return std::nullopt;
}

}  // namespace stn::cli
