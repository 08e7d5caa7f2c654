#include "stn/experiments/commands.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include <fmt/core.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "stn/experiments/datasets.h"
#include "stn/experiments/run_dir.h"
#include "stn/experiments/distorted.h"
#include "stn/framework/io/atomic_file.h"
#include "stn/experiments/canvas.h"
#include "stn/framework/io/png.h"
#include "stn/layers/spatial_transformer.h"
#include "stn/models/models.h"

namespace stn::cli {

using json = nlohmann::json;

namespace {

// The paper's test errors (PAPER.md), by model then dataset column.
const std::map<std::string, std::map<std::string, double>>& paper_results() {
  static const std::map<std::string, std::map<std::string, double>> table = {
      {"fcn", {{"r", 2.1}, {"rts", 5.2}, {"p", 3.1}, {"e", 3.2}, {"tc", 13.2}, {"add", 47.7}}},
      {"cnn", {{"r", 1.2}, {"rts", 0.8}, {"p", 1.5}, {"e", 1.4}, {"tc", 3.5}, {"add", 14.7}}},
      {"st-fcn-aff", {{"r", 1.2}, {"rts", 0.8}, {"p", 1.5}, {"e", 2.7}, {"tc", 2.0}}},
      {"st-fcn-proj", {{"r", 1.3}, {"rts", 0.9}, {"p", 1.4}, {"e", 2.6}}},
      // Addition: the ST-FCN beside the 2xST-FCN uses the same (TPS) transformer.
      {"st-fcn-tps", {{"r", 1.1}, {"rts", 0.8}, {"p", 1.4}, {"e", 2.4}, {"add", 18.5}}},
      {"st-cnn-aff", {{"r", 0.7}, {"rts", 0.5}, {"p", 0.8}, {"e", 1.2}, {"tc", 1.7}}},
      {"st-cnn-proj", {{"r", 0.8}, {"rts", 0.6}, {"p", 0.8}, {"e", 1.3}}},
      {"st-cnn-tps", {{"r", 0.7}, {"rts", 0.5}, {"p", 0.8}, {"e", 1.1}}},
      {"2xst-fcn", {{"add", 5.8}}},
  };
  return table;
}

// The columns a UTF-8 string takes in a terminal ("±" is two bytes, one column).
std::size_t display_width(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

}  // namespace

json run_models(const std::string& dataset) {
  const InputSpec input = input_spec_for(dataset);
  const std::size_t budget = baseline_parameter_count(input);
  json list = json::array();
  fmt::print("dataset {}: input {}x{}x{}, {} classes; parameter budget {} (the CNN's)\n\n", dataset, input.channels,
             input.height, input.width, input.classes, budget);
  for (const std::string& name : model_names()) {
    if (name == "2xst-fcn" && dataset != "add") continue;
    Generator generator(0);
    std::shared_ptr<Module> model = make_model(name, input, generator);
    Tape tape;
    NoGradScope no_grad(tape);
    model->eval();
    Var out = model->forward(tape.input(zeros({1, static_cast<std::size_t>(input.channels),
                                                static_cast<std::size_t>(input.height),
                                                static_cast<std::size_t>(input.width)})));
    const std::size_t count = model->parameter_count();
    const double ratio = static_cast<double>(count) / static_cast<double>(budget);
    fmt::print("== {} ({} parameters, {:+.1f}% of the budget), output {}\n{}\n", name, count, 100.0 * (ratio - 1.0),
               shape_string(out.value()), model->summary());
    list.push_back({{"model", name}, {"params", count}, {"budget_ratio", ratio}});
  }
  return {{"dataset", dataset}, {"budget", budget}, {"models", list}};
}

json run_data(const std::string& dataset, const std::string& data_dir, const std::string& output, std::size_t count,
              std::uint64_t seed) {
  if (count == 0 || count > 1024) throw std::invalid_argument("--count must be in [1, 1024]");
  check_output_file(output, "--out");
  require_utf8(data_dir, "--data");
  Experiment experiment = load_experiment(dataset, ExperimentOptions{.data_dir = data_dir});
  if (count > experiment.train.size())
    throw std::invalid_argument("--count " + std::to_string(count) + " is larger than the training set in " + data_dir +
                                " (" + std::to_string(experiment.train.size()) + " samples)");
  std::unique_ptr<TrainingStream> stream = experiment.stream(count, seed);
  Batch batch;
  stream->next(batch);
  const std::size_t c = batch.images.shape()[1], h = batch.images.shape()[2], w = batch.images.shape()[3];
  const int columns = 8, rows = static_cast<int>((count + 7) / 8);
  const int scale = std::max(1, 84 / static_cast<int>(h));
  const int cell_w = static_cast<int>(w * c) * scale + 4, cell_h = static_cast<int>(h) * scale + 4;
  Canvas canvas(columns * cell_w + 4, rows * cell_h + 4, Rgb{60, 60, 60});
  for (std::size_t n = 0; n < count; ++n) {
    const int x0 = 4 + static_cast<int>(n % 8) * cell_w, y0 = 4 + static_cast<int>(n / 8) * cell_h;
    for (std::size_t k = 0; k < c; ++k)
      canvas.paste_gray(batch.images.data() + (n * c + k) * h * w, static_cast<int>(h), static_cast<int>(w),
                        x0 + static_cast<int>(k * w) * scale, y0, scale, 0.0f, 1.0f);
  }
  canvas.save_png(output);
  fmt::print("{} samples of {} ({}x{}, {} channel{}) -> {}\n", count, dataset, h, w, c, c > 1 ? "s" : "", output);
  return {{"dataset", dataset}, {"out", output}, {"count", count}, {"labels", batch.labels}};
}

json run_table(const std::string& runs_dir, bool markdown) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(runs_dir)) throw std::invalid_argument("--runs: '" + runs_dir + "' is not a directory");
  // model -> dataset -> errors (one per finished run)
  std::map<std::string, std::map<std::string, std::vector<double>>> errors;
  std::vector<std::string> skipped;  // "DIR (why)"
  std::vector<fs::path> directories;
  for (const auto& entry : fs::directory_iterator(runs_dir))
    if (entry.is_directory() && fs::exists(entry.path() / "config.json")) directories.push_back(entry.path());
  std::sort(directories.begin(), directories.end());
  for (const fs::path& dir : directories) {
    if (!fs::exists(dir / "result.json")) {
      skipped.push_back(dir.string() + " (unfinished: no result.json)");
      continue;
    }
    json result = json::parse(read_file((dir / "result.json").string()), nullptr, false);
    if (!result.is_discarded() && result.contains("validation_error") && !result.contains("test_error")) {
      skipped.push_back(dir.string() + " (a --validation run: it has a validation error, no test error)");
      continue;
    }
    if (result.is_discarded() || !result.contains("test_error") || !result["test_error"].is_number()) {
      skipped.push_back(dir.string() + " (unreadable result.json)");
      continue;
    }
    errors[result.value("model", "?")][result.value("dataset", "?")].push_back(result["test_error"].get<double>());
  }
  // The paper's three tables (Table 1, the TC experiment, MNIST addition), each with its rows
  // and columns in the paper's order, then whatever else was run; models a table does not
  // have come after its own rows. A table (or column) without a finished run is left out.
  struct Layout {
    std::string title;
    std::vector<std::pair<std::string, std::string>> columns;  // dataset, heading
    std::vector<std::string> rows;
  };
  const std::vector<Layout> layouts = {
      {"Table 1: distorted MNIST",
       {{"r", "R"}, {"rts", "RTS"}, {"p", "P"}, {"e", "E"}},
       {"fcn", "cnn", "st-fcn-aff", "st-fcn-proj", "st-fcn-tps", "st-cnn-aff", "st-cnn-proj", "st-cnn-tps"}},
      {"Translated and cluttered MNIST (60x60)", {{"tc", "TC"}}, {"fcn", "cnn", "st-fcn-aff", "st-cnn-aff"}},
      {"MNIST addition (Table 4)", {{"add", "addition"}}, {"fcn", "cnn", "st-fcn-tps", "2xst-fcn"}},
      {"Other datasets", {{"mnist", "MNIST"}, {"fashion", "Fashion"}}, {}},
  };

  // "ours / paper", and "(worse)" where our mean error is above the paper's.
  auto cell = [&](const std::string& model, const std::string& dataset) -> std::string {
    auto m = errors.find(model);
    if (m == errors.end() || !m->second.count(dataset)) return "-";
    const std::vector<double>& v = m->second.at(dataset);
    double mean = 0.0, variance = 0.0;
    for (double x : v) mean += x;
    mean /= static_cast<double>(v.size());
    for (double x : v) variance += (x - mean) * (x - mean);
    std::string text = v.size() > 1 ? fmt::format("{:.2f} ± {:.2f} (n={})", mean, std::sqrt(variance / static_cast<double>(v.size() - 1)), v.size())
                                    : fmt::format("{:.2f}", mean);
    auto p = paper_results().find(model);
    if (p == paper_results().end() || !p->second.count(dataset)) return text + " / -";
    const double paper = p->second.at(dataset);
    return text + fmt::format(" / {:.1f}", paper) + (mean > paper ? " (worse)" : "");
  };
  json table = json::object();
  bool first_table = true;
  for (const Layout& layout : layouts) {
    std::vector<std::pair<std::string, std::string>> shown;
    for (const auto& column : layout.columns) {
      bool used = false;
      for (const auto& [model, by_dataset] : errors) used |= by_dataset.count(column.first) > 0;
      if (used) shown.push_back(column);
    }
    if (shown.empty()) continue;
    auto has_runs = [&](const std::string& model) {
      auto m = errors.find(model);
      if (m == errors.end()) return false;
      for (const auto& column : shown)
        if (m->second.count(column.first)) return true;
      return false;
    };
    std::vector<std::string> rows;
    for (const std::string& model : layout.rows)
      if (has_runs(model)) rows.push_back(model);
    for (const auto& [model, by_dataset] : errors)
      if (has_runs(model) && std::find(layout.rows.begin(), layout.rows.end(), model) == layout.rows.end())
        rows.push_back(model);
    if (!first_table) fmt::print("\n");
    first_table = false;
    fmt::print("{}{}\n\n", markdown ? "**" : "", layout.title + (markdown ? "**" : ""));
    // Lines of cells, the heading first; the plain layout pads every column to its widest cell.
    std::vector<std::vector<std::string>> lines{{markdown ? "model (ours / paper, % test error)" : "model"}};
    for (const auto& column : shown) lines[0].push_back(column.second);
    for (const std::string& model : rows) {
      const auto& by_dataset = errors.at(model);
      lines.push_back({model});
      for (const auto& column : shown) {
        lines.back().push_back(cell(model, column.first));
        if (by_dataset.count(column.first)) table[model][column.first] = by_dataset.at(column.first);
      }
    }
    if (markdown) {
      lines.insert(lines.begin() + 1, std::vector<std::string>(shown.size() + 1, "---"));
      for (const auto& line : lines) fmt::print("| {} |\n", fmt::join(line, " | "));
      continue;
    }
    std::vector<std::size_t> widths(shown.size() + 1, 0);
    for (const auto& line : lines)
      for (std::size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], display_width(line[i]));
    for (const auto& line : lines) {
      std::string text = line[0] + std::string(widths[0] - display_width(line[0]), ' ');
      for (std::size_t i = 1; i < line.size(); ++i) text += std::string(widths[i] - display_width(line[i]) + 3, ' ') + line[i];
      fmt::print("{}\n", text);
    }
  }
  for (const std::string& s : skipped) fmt::print("note: skipped {}\n", s);
  if (errors.empty())
    fmt::print("note: no finished run in {} ({} run director{}: a run directory holds config.json from its start "
               "and result.json once it has finished)\n",
               runs_dir, directories.size(), directories.size() == 1 ? "y" : "ies");
  return {{"errors", table}, {"skipped", skipped}};
}

}  // namespace stn::cli
