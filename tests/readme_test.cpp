// The README shows the library examples (tests/examples/) verbatim: every block after a
// `<!-- example: FILE -->` marker must equal FILE, and every example must have a block.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string kMarker = "<!-- example: ";

// The files the README's example blocks name, after checking each block against its file.
std::set<std::string> check_example_blocks(const std::string& readme) {
  std::set<std::string> files;
  for (auto at = readme.find(kMarker); at != std::string::npos; at = readme.find(kMarker, at + 1)) {
    const auto name_end = readme.find(" -->\n", at);
    if (name_end == std::string::npos) {
      ADD_FAILURE() << "README.md: an example marker without ' -->' at offset " << at;
      break;
    }
    const std::string file = readme.substr(at + kMarker.size(), name_end - at - kMarker.size());
    const auto fence = name_end + 5;
    const auto code = readme.find('\n', fence);
    if (readme.compare(fence, 3, "```") != 0 || code == std::string::npos) {
      ADD_FAILURE() << "README.md: the marker of " << file << " is not followed by a ``` block";
      continue;
    }
    const auto end = readme.find("\n```", code);
    if (end == std::string::npos) {
      ADD_FAILURE() << "README.md: the block of " << file << " is not closed";
      break;
    }
    const std::string example = read(std::string(STN_SOURCE_DIR) + "/" + file);
    EXPECT_FALSE(example.empty()) << file << " is missing or empty";
    EXPECT_EQ(readme.substr(code + 1, end + 1 - (code + 1)), example)
        << "README.md's block differs from " << file;
    files.insert(file);
  }
  return files;
}

TEST(Readme, LibraryExamplesMatchTheTestedPrograms) {
  const std::string readme = read(std::string(STN_SOURCE_DIR) + "/README.md");
  ASSERT_FALSE(readme.empty());
  const std::set<std::string> shown = check_example_blocks(readme);
  for (const char* file : {"tests/examples/own_model.cpp", "tests/examples/data_api.cpp",
                           "tests/examples/weights.cpp", "tests/examples/load_in_pytorch.py",
                           "tests/examples/custom_op.cpp", "tests/examples/transformer.cpp",
                           "tests/examples/data_parallel.cpp"}) {
    EXPECT_EQ(shown.count(file), 1u) << "README.md shows no block of " << file;
  }
}

}  // namespace
