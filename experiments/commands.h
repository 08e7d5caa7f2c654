// The smaller subcommands of `stn`: models, data, table.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace stn::cli {

// Prints every model registered for a dataset with its layers and parameter count.
nlohmann::json run_models(const std::string& dataset);

// Writes a grid of `count` training samples of a dataset to a PNG.
nlohmann::json run_data(const std::string& dataset, const std::string& data_dir, const std::string& output,
                        std::size_t count, std::uint64_t seed);

// Collects finished runs under `runs_dir` into the paper's Table 1 layout.
nlohmann::json run_table(const std::string& runs_dir, bool markdown);

}  // namespace stn::cli
