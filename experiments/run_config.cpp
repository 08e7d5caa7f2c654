#include "stn/experiments/run_config.h"

#include <filesystem>
#include <regex>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "stn/framework/error.h"
#include "stn/framework/io/atomic_file.h"

namespace stn::cli {

using json = nlohmann::json;

namespace {

// What the key's value must be, from the JSON type TrainConfig::to_json gives its default.
enum class Kind { count, integer, number, text, boolean };

Kind kind_of(const json& value) {
  if (value.is_number_unsigned()) return Kind::count;
  if (value.is_number_integer()) return Kind::integer;
  if (value.is_number()) return Kind::number;
  if (value.is_boolean()) return Kind::boolean;
  return Kind::text;
}

bool matches(Kind kind, const json& value) {
  switch (kind) {
    case Kind::count: return value.is_number_unsigned();
    case Kind::integer: return value.is_number_integer();
    case Kind::number: return value.is_number();
    case Kind::boolean: return value.is_boolean();
    case Kind::text: return value.is_string();
  }
  return false;
}

const char* describe(Kind kind) {
  switch (kind) {
    case Kind::count: return "a non-negative whole number";
    case Kind::integer: return "a whole number";
    case Kind::number: return "a number";
    case Kind::boolean: return "true or false";
    case Kind::text: return "a string";
  }
  return "";
}

// Keys train_loop records beside the config (read back by `stn eval` and `stn table`).
const std::map<std::string, Kind>& recorded_keys() {
  static const std::map<std::string, Kind> keys = {
      {"iterations", Kind::count}, {"params", Kind::count}, {"schedule_description", Kind::text},
      {"training_digits", Kind::count}, {"commit", Kind::text}, {"ranks", Kind::count}};
  return keys;
}

// validate() names flags ("--batch must ..."); in a config.json the key is what to fix.
std::string flag_to_key(const std::string& message) {
  static const std::regex flag(R"(--([a-z][a-z-]*))");
  std::smatch match;
  if (!std::regex_search(message, match, flag)) return message;
  std::string key = match[1].str();
  for (char& c : key)
    if (c == '-') c = '_';
  if (key == "opt") key = "optimizer";
  return match.prefix().str() + "'" + key + "'" + match.suffix().str();
}

}  // namespace

RunConfig parse_run_config(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw DataError(path + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw DataError(path + ": not a run config (the top level is not a JSON object)");
  const json defaults = TrainConfig{}.to_json();
  for (const auto& [key, value] : j.items()) {
    Kind kind;
    if (defaults.contains(key)) kind = kind_of(defaults[key]);
    else if (recorded_keys().count(key)) kind = recorded_keys().at(key);
    else throw DataError(path + ": unknown key '" + key + "' (not one stn writes; a hand edit?)");
    if (!matches(kind, value))
      throw DataError(path + ": key '" + key + "' must be " + describe(kind) + ", got " + value.dump(-1, ' ', false, json::error_handler_t::replace));
  }
  RunConfig run;
  try {
    run.config = TrainConfig::from_json(j);
    run.config.validate();
  } catch (const json::exception& e) {
    throw DataError(path + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    throw DataError(path + ": " + flag_to_key(e.what()));
  }
  run.iterations = j.value("iterations", std::size_t{0});
  run.ranks = j.value("ranks", std::size_t{1});
  if (run.ranks == 0) throw DataError(path + ": key 'ranks' must be at least 1, got 0");
  if (j.contains("iterations") && (run.iterations == 0 || run.iterations > kMaxIterations))
    throw DataError(path + ": key 'iterations' must be in [1, " + std::to_string(kMaxIterations) + "], got " +
                    std::to_string(run.iterations));
  if (run.config.iters && j.contains("iterations") && run.iterations != run.config.iters)
    throw DataError(path + ": keys 'iters' (" + std::to_string(run.config.iters) + ") and 'iterations' (" +
                    std::to_string(run.iterations) + ") disagree");
  return run;
}

RunConfig read_run_config(const std::string& run_directory) {
  const std::string config_path = run_directory + "/config.json";
  if (!std::filesystem::exists(config_path)) throw DataError(run_directory + ": not a run directory (no config.json)");
  return parse_run_config(read_file(config_path), config_path);
}

}  // namespace stn::cli
