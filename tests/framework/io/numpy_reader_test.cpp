// Checkpoint files open in an independent reader: a NumPy re-implementation of the
// safetensors format (tests/framework/io/check_safetensors.py) must see the same names,
// shapes and values (a plain and a position-weighted sum of every tensor).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "stn/framework/io/safetensors.h"
#include "stn/framework/random.h"
#include "test_util.h"

namespace stn {
namespace {

std::string run(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return output;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  if (pclose(pipe) != 0) output = "FAILED: " + output;
  return output;
}

TEST(SafetensorsNumpyReader, SeesTheSameNamesShapesAndValues) {
  if (!std::filesystem::exists("/usr/bin/python3") || run("/usr/bin/python3 -c 'import numpy' 2>&1").rfind("FAILED", 0) == 0)
    GTEST_SKIP() << "python3 with numpy is not installed (scripts/setup.sh installs python3-numpy)";
  Generator g(4);
  Tensor weight = test::random_tensor({4, 3, 5, 5}, g), bias = test::random_tensor({4}, g), scalar = full({}, 2.5f);
  const std::string path = std::filesystem::temp_directory_path() / ("stn_numpy_reader_" + std::to_string(::getpid()) + ".safetensors");
  save_safetensors(path, {{"conv.weight", &weight}, {"conv.bias", &bias}, {"scale", &scalar}}, {{"model", "test"}});
  const std::string output = run("/usr/bin/python3 " + std::string(STN_SOURCE_DIR) + "/tests/framework/io/check_safetensors.py " + path);
  std::filesystem::remove(path);
  ASSERT_EQ(output.rfind("FAILED", 0), std::string::npos) << output;
  EXPECT_NE(output.find("metadata model = test"), std::string::npos) << output;
  const std::map<std::string, const Tensor*> expected = {{"conv.weight", &weight}, {"conv.bias", &bias}, {"scale", &scalar}};
  std::istringstream lines(output);
  std::string line;
  std::size_t seen = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("metadata", 0) == 0) continue;
    const std::string name = line.substr(0, line.find(' '));
    ASSERT_TRUE(expected.count(name)) << line;
    const Tensor& t = *expected.at(name);
    EXPECT_NE(line.find("shape=" + std::string(shape_string(t) == "[]" ? "[]" : shape_string(t))), std::string::npos) << line;
    double sum = 0.0, weighted = 0.0;
    for (std::size_t i = 0; i < t.size(); ++i) {
      sum += t.data()[i];
      weighted += t.data()[i] * static_cast<double>(i + 1);
    }
    const double their_sum = std::stod(line.substr(line.find("sum=") + 4));
    const double their_weighted = std::stod(line.substr(line.find("weighted=") + 9));
    EXPECT_NEAR(their_sum, sum, 1e-6 * (1 + std::abs(sum))) << name;
    EXPECT_NEAR(their_weighted, weighted, 1e-6 * (1 + std::abs(weighted))) << name;
    ++seen;
  }
  EXPECT_EQ(seen, 3u) << output;
}

}  // namespace
}  // namespace stn
