// The README shows tests/examples/readme_example.cpp verbatim: this keeps them equal.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Readme, LibraryExampleMatchesTheTestedProgram) {
  const std::string readme = read(std::string(STN_SOURCE_DIR) + "/README.md");
  const std::string example = read(std::string(STN_SOURCE_DIR) + "/tests/examples/readme_example.cpp");
  ASSERT_FALSE(example.empty());
  const std::string begin = "<!-- example: tests/examples/readme_example.cpp -->\n```cpp\n";
  auto start = readme.find(begin);
  ASSERT_NE(start, std::string::npos) << "README.md lacks the example block marker";
  start += begin.size();
  auto end = readme.find("```", start);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(readme.substr(start, end - start), example)
      << "README.md's example differs from tests/examples/readme_example.cpp";
}

}  // namespace
