// Fuzz target: stn::cli::parse_run_config (experiments/run_config.h), the reader of a run's
// config.json behind `stn train --resume` and `stn eval`. The input is the file's text.
//
// Checks: it either throws stn::DataError whose message starts with the path, or returns a
// config that passes TrainConfig::validate and survives to_json -> parse_run_config
// unchanged.
#include <cstdint>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "stn/experiments/run_config.h"
#include "stn/framework/error.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = "run/config.json";
  const std::string text(reinterpret_cast<const char*>(data), size);
  stn::cli::RunConfig run;
  try {
    run = stn::cli::parse_run_config(text, path);
  } catch (const stn::DataError& error) {
    FUZZ_CHECK(std::strncmp(error.what(), path.c_str(), path.size()) == 0,
               "message does not start with the path: %s", error.what());
    return 0;
  }
  run.config.validate();  // throws (and so crashes the target) if a bad value came through
  nlohmann::json again = run.config.to_json();
  if (run.iterations) again["iterations"] = run.iterations;
  const stn::cli::RunConfig reread = stn::cli::parse_run_config(again.dump(), path);
  FUZZ_CHECK(reread.config.to_json() == run.config.to_json(), "to_json -> parse_run_config changed the config: %s",
             again.dump().c_str());
  FUZZ_CHECK(reread.iterations == run.iterations, "iterations changed");
  return 0;
}
