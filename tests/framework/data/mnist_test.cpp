#include "stn/framework/data/mnist.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "stn/framework/data/idx.h"
#include "stn/framework/error.h"

namespace stn {
namespace {

class MnistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "stn_mnist_test_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }

  std::string file(const std::string& name) const { return (directory_ / name).string(); }

  // Writes `count` 28x28 images (image k's pixel i is (k + i) % 256) and labels k % 10.
  void write_split(const std::string& prefix, std::size_t count, const std::string& suffix) const {
    IdxArray images{{count, 28, 28}, std::vector<std::uint8_t>(count * 28 * 28)};
    for (std::size_t k = 0; k < count; ++k) {
      for (std::size_t i = 0; i < 28 * 28; ++i) images.data[k * 28 * 28 + i] = static_cast<std::uint8_t>(k + i);
    }
    IdxArray labels{{count}, std::vector<std::uint8_t>(count)};
    for (std::size_t k = 0; k < count; ++k) labels.data[k] = static_cast<std::uint8_t>(k % 10);
    write_idx(file(prefix + "-images-idx3-ubyte" + suffix), images);
    write_idx(file(prefix + "-labels-idx1-ubyte" + suffix), labels);
  }

  void expect_error(Split split, const std::vector<std::string>& fragments) const {
    try {
      load_mnist(directory_.string(), split);
      ADD_FAILURE() << "load_mnist did not throw";
    } catch (const DataError& error) {
      const std::string message = error.what();
      for (const std::string& fragment : fragments) {
        EXPECT_NE(message.find(fragment), std::string::npos) << "'" << fragment << "' not in: " << message;
      }
    }
  }

  std::filesystem::path directory_;
};

void expect_synthetic_contents(const Dataset& dataset, std::size_t count) {
  ASSERT_EQ(dataset.size(), count);
  EXPECT_EQ(dataset.num_classes, 10);
  EXPECT_EQ(shape_of(dataset.images), (Shape{count, 1, 28, 28}));
  for (std::size_t k = 0; k < count; ++k) {
    EXPECT_EQ(dataset.labels[k], static_cast<std::int32_t>(k % 10));
    for (std::size_t i : {std::size_t{0}, std::size_t{300}, std::size_t{783}}) {
      EXPECT_FLOAT_EQ(dataset.images.data()[k * 784 + i], static_cast<float>((k + i) % 256) / 255.0f);
    }
  }
}

TEST_F(MnistTest, LoadsTrainSplitFromPlainFiles) {
  write_split("train", 5, "");
  const Dataset dataset = load_mnist(directory_.string(), Split::Train);
  EXPECT_EQ(dataset.name, "mnist/train");
  expect_synthetic_contents(dataset, 5);
}

TEST_F(MnistTest, LoadsTestSplitFromGzipFiles) {
  write_split("t10k", 3, ".gz");
  const Dataset dataset = load_mnist(directory_.string(), Split::Test);
  EXPECT_EQ(dataset.name, "mnist/test");
  expect_synthetic_contents(dataset, 3);
}

TEST_F(MnistTest, PixelsSpanZeroToOne) {
  IdxArray images{{1, 28, 28}, std::vector<std::uint8_t>(784, 0)};
  images.data[1] = 255;
  images.data[2] = 51;
  write_idx(file("train-images-idx3-ubyte"), images);
  write_idx(file("train-labels-idx1-ubyte"), IdxArray{{1}, {9}});
  const Dataset dataset = load_mnist(directory_.string(), Split::Train);
  EXPECT_EQ(dataset.images.data()[0], 0.0f);
  EXPECT_EQ(dataset.images.data()[1], 1.0f);
  EXPECT_FLOAT_EQ(dataset.images.data()[2], 0.2f);
  EXPECT_EQ(dataset.labels[0], 9);
}

TEST_F(MnistTest, FashionMnistUsesTheSameFiles) {
  write_split("train", 4, ".gz");
  const Dataset dataset = load_fashion_mnist(directory_.string(), Split::Train);
  EXPECT_EQ(dataset.name, "fashion-mnist/train");
  expect_synthetic_contents(dataset, 4);
}

TEST_F(MnistTest, MissingDirectoryIsNamed) {
  const std::string missing = file("nowhere");
  try {
    load_mnist(missing, Split::Train);
    ADD_FAILURE() << "load_mnist did not throw";
  } catch (const DataError& error) {
    EXPECT_EQ(std::string(error.what()),
              "MNIST data directory '" + missing + "' does not exist");
  }
}

TEST_F(MnistTest, MissingFileIsNamed) {
  write_split("train", 2, "");
  std::filesystem::remove(file("train-labels-idx1-ubyte"));
  expect_error(Split::Train, {"train-labels-idx1-ubyte", "not found"});
  expect_error(Split::Test, {"t10k-images-idx3-ubyte", "not found"});
}

TEST_F(MnistTest, ImagesMustBeThreeDimensional) {
  write_split("train", 2, "");
  write_idx(file("train-images-idx3-ubyte"), IdxArray{{2, 784}, std::vector<std::uint8_t>(2 * 784)});
  expect_error(Split::Train, {"train-images-idx3-ubyte", "3-D", "[2, 784]"});
}

TEST_F(MnistTest, LabelsMustBeOneDimensional) {
  write_split("train", 2, "");
  write_idx(file("train-labels-idx1-ubyte"), IdxArray{{2, 1}, {0, 1}});
  expect_error(Split::Train, {"train-labels-idx1-ubyte", "1-D", "[2, 1]"});
}

TEST_F(MnistTest, ImageAndLabelCountsMustMatch) {
  write_split("train", 3, "");
  write_idx(file("train-labels-idx1-ubyte"), IdxArray{{2}, {0, 1}});
  expect_error(Split::Train, {"3 images", "2 labels"});
}

TEST_F(MnistTest, LabelsMustBeBelowTen) {
  write_split("train", 3, "");
  write_idx(file("train-labels-idx1-ubyte"), IdxArray{{3}, {0, 10, 1}});
  expect_error(Split::Train, {"train-labels-idx1-ubyte", "label 10 at index 1"});
}

TEST_F(MnistTest, CorruptFileErrorStartsWithItsPath) {
  write_split("t10k", 2, ".gz");
  std::filesystem::resize_file(file("t10k-images-idx3-ubyte.gz"), 20);
  try {
    load_mnist(directory_.string(), Split::Test);
    ADD_FAILURE() << "load_mnist did not throw";
  } catch (const DataError& error) {
    EXPECT_EQ(std::string(error.what()).rfind(file("t10k-images-idx3-ubyte.gz"), 0), 0u) << error.what();
  }
}

// The real files, when STN_MNIST_DIR points at them.
TEST(MnistRealData, SizesAndFirstLabels) {
  const char* directory = std::getenv("STN_MNIST_DIR");
  if (!directory || !*directory) GTEST_SKIP() << "set STN_MNIST_DIR to a directory holding MNIST";
  const Dataset train = load_mnist(directory, Split::Train);
  EXPECT_EQ(train.size(), 60000u);
  EXPECT_EQ(shape_of(train.images), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ(train.labels[0], 5);
  const Dataset test = load_mnist(directory, Split::Test);
  EXPECT_EQ(test.size(), 10000u);
  EXPECT_EQ(test.labels[0], 7);
}

}  // namespace
}  // namespace stn
