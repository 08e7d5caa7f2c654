// A run's config.json, read back for --resume and `stn eval`: every key checked as strictly
// as the command line checks its flags, and named when it is wrong.
#pragma once

#include <string>

#include "stn/experiments/train.h"

namespace stn::cli {

struct RunConfig {
  TrainConfig config;
  std::size_t iterations = 0;  // the iteration count the run resolved to ("iterations")
  std::size_t ranks = 1;       // the MPI processes it ran on ("ranks"; older runs: 1)
};

// Parses the text of a config.json. Every key must be one stn writes, with the type it
// writes (a count a non-negative whole number, a rate a number, ...), and the values must
// pass TrainConfig::validate. Throws stn::DataError starting with `path` and naming the key.
RunConfig parse_run_config(const std::string& text, const std::string& path);

// RUN/config.json; stn::DataError when the directory is not a run or the file is bad.
RunConfig read_run_config(const std::string& run_directory);

}  // namespace stn::cli
