#include "stn/framework/data/loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "stn/framework/error.h"

namespace stn {
namespace {

constexpr std::size_t kPixels = 4;  // samples are [1, 2, 2]

// Sample k's pixel i is k + i / 4, so a batch row tells which sample it came from.
Dataset numbered_dataset(std::size_t count) {
  Dataset dataset;
  dataset.name = "numbered";
  dataset.images = empty({count, 1, 2, 2});
  dataset.labels.resize(count);
  for (std::size_t k = 0; k < count; ++k) {
    for (std::size_t i = 0; i < kPixels; ++i) dataset.images.data()[k * kPixels + i] = k + i / 4.0f;
    dataset.labels[k] = static_cast<std::int32_t>(k % 10);
  }
  return dataset;
}

LoaderOptions options_with(std::size_t batch_size, bool shuffle, std::uint64_t seed = 0) {
  LoaderOptions options;
  options.batch_size = batch_size;
  options.shuffle = shuffle;
  options.seed = seed;
  return options;
}

// The sample indices of one epoch, in delivery order (checking each row against its label).
std::vector<std::size_t> epoch_order(DataLoader& loader, std::size_t epoch) {
  loader.start_epoch(epoch);
  std::vector<std::size_t> order;
  Batch batch;
  while (loader.next(batch)) {
    for (std::size_t row = 0; row < batch.labels.size(); ++row) {
      const std::size_t sample = static_cast<std::size_t>(batch.images.data()[row * kPixels]);
      EXPECT_EQ(batch.labels[row], static_cast<std::int32_t>(sample % 10));
      order.push_back(sample);
    }
  }
  return order;
}

TEST(DataLoaderTest, BatchesPerEpoch) {
  const Dataset dataset = numbered_dataset(103);
  EXPECT_EQ(DataLoader(dataset, options_with(10, true)).batches_per_epoch(), 11u);
  LoaderOptions drop = options_with(10, true);
  drop.drop_last = true;
  EXPECT_EQ(DataLoader(dataset, drop).batches_per_epoch(), 10u);
  EXPECT_EQ(DataLoader(dataset, options_with(103, true)).batches_per_epoch(), 1u);
  EXPECT_EQ(DataLoader(dataset, options_with(500, true)).batches_per_epoch(), 1u);
  drop.batch_size = 500;
  EXPECT_EQ(DataLoader(dataset, drop).batches_per_epoch(), 0u);
}

TEST(DataLoaderTest, EverySampleOncePerEpoch) {
  const Dataset dataset = numbered_dataset(103);
  DataLoader loader(dataset, options_with(10, true, 7));
  for (std::size_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<std::size_t> order = epoch_order(loader, epoch);
    std::sort(order.begin(), order.end());
    std::vector<std::size_t> expected(103);
    std::iota(expected.begin(), expected.end(), std::size_t{0});
    EXPECT_EQ(order, expected) << "epoch " << epoch;
  }
}

TEST(DataLoaderTest, LastPartialBatch) {
  const Dataset dataset = numbered_dataset(23);
  DataLoader loader(dataset, options_with(10, false));
  Batch batch;
  std::vector<std::size_t> sizes;
  while (loader.next(batch)) {
    sizes.push_back(batch.labels.size());
    EXPECT_EQ(shape_of(batch.images), (Shape{batch.labels.size(), 1, 2, 2}));
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{10, 10, 3}));
  EXPECT_EQ(batch.images.data()[0], 20.0f);
  EXPECT_EQ(loader.position(), 23u);
}

TEST(DataLoaderTest, DropLastSkipsPartialBatch) {
  const Dataset dataset = numbered_dataset(23);
  LoaderOptions options = options_with(10, true, 3);
  options.drop_last = true;
  DataLoader loader(dataset, options);
  Batch batch;
  std::size_t batches = 0;
  while (loader.next(batch)) {
    EXPECT_EQ(batch.labels.size(), 10u);
    ++batches;
  }
  EXPECT_EQ(batches, 2u);
  EXPECT_EQ(loader.position(), 20u);
}

TEST(DataLoaderTest, WithoutShuffleKeepsDatasetOrder) {
  const Dataset dataset = numbered_dataset(17);
  DataLoader loader(dataset, options_with(4, false, 99));
  std::vector<std::size_t> expected(17);
  std::iota(expected.begin(), expected.end(), std::size_t{0});
  EXPECT_EQ(epoch_order(loader, 0), expected);
  EXPECT_EQ(epoch_order(loader, 5), expected);
}

TEST(DataLoaderTest, SameSeedSameOrder) {
  const Dataset dataset = numbered_dataset(50);
  DataLoader first(dataset, options_with(8, true, 42));
  DataLoader second(dataset, options_with(8, true, 42));
  for (std::size_t epoch = 0; epoch < 3; ++epoch) EXPECT_EQ(epoch_order(first, epoch), epoch_order(second, epoch));
}

TEST(DataLoaderTest, DifferentSeedsOrEpochsGiveDifferentOrders) {
  const Dataset dataset = numbered_dataset(50);
  DataLoader first(dataset, options_with(8, true, 0));
  DataLoader second(dataset, options_with(8, true, 1));
  const std::vector<std::size_t> seed0_epoch0 = epoch_order(first, 0);
  EXPECT_NE(seed0_epoch0, epoch_order(second, 0));
  EXPECT_NE(seed0_epoch0, epoch_order(first, 1));
  std::vector<std::size_t> identity(50);
  std::iota(identity.begin(), identity.end(), std::size_t{0});
  EXPECT_NE(seed0_epoch0, identity);
}

TEST(DataLoaderTest, EpochOrderDependsOnlyOnSeedAndEpoch) {
  const Dataset dataset = numbered_dataset(40);
  DataLoader walked(dataset, options_with(6, true, 5));
  for (std::size_t epoch = 0; epoch < 4; ++epoch) epoch_order(walked, epoch);
  Batch batch;
  walked.start_epoch(9);
  walked.next(batch);  // an epoch abandoned halfway must not matter either
  const std::vector<std::size_t> after_history = epoch_order(walked, 4);

  DataLoader fresh(dataset, options_with(6, true, 5));
  EXPECT_EQ(epoch_order(fresh, 4), after_history);
}

TEST(DataLoaderTest, NextStaysFalseUntilNewEpoch) {
  const Dataset dataset = numbered_dataset(5);
  DataLoader loader(dataset, options_with(5, true));
  EXPECT_EQ(loader.epoch(), 0u);
  EXPECT_EQ(loader.position(), 0u);
  Batch batch;
  EXPECT_TRUE(loader.next(batch));
  EXPECT_EQ(loader.position(), 5u);
  EXPECT_FALSE(loader.next(batch));
  EXPECT_FALSE(loader.next(batch));
  loader.start_epoch(1);
  EXPECT_EQ(loader.epoch(), 1u);
  EXPECT_EQ(loader.position(), 0u);
  EXPECT_TRUE(loader.next(batch));
}

TEST(DataLoaderTest, NormalisesWithMeanAndStddev) {
  const Dataset dataset = numbered_dataset(6);
  LoaderOptions options = options_with(6, false);
  options.mean = 0.1307f;
  options.stddev = 0.3081f;
  DataLoader loader(dataset, options);
  Batch batch;
  ASSERT_TRUE(loader.next(batch));
  for (std::size_t i = 0; i < 6 * kPixels; ++i) {
    EXPECT_FLOAT_EQ(batch.images.data()[i], (dataset.images.data()[i] - 0.1307f) / 0.3081f) << i;
  }
}

TEST(DataLoaderTest, ReusesBatchStorageForSameShape) {
  const Dataset dataset = numbered_dataset(30);
  DataLoader loader(dataset, options_with(10, true));
  Batch batch;
  ASSERT_TRUE(loader.next(batch));
  const float* storage = batch.images.data();
  ASSERT_TRUE(loader.next(batch));
  EXPECT_EQ(batch.images.data(), storage);
}

TEST(DataLoaderTest, RejectsBadOptions) {
  const Dataset dataset = numbered_dataset(4);
  try {
    DataLoader loader(dataset, options_with(0, true));
    ADD_FAILURE() << "batch_size 0 accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("batch_size"), std::string::npos) << error.what();
  }
  LoaderOptions options = options_with(2, true);
  options.stddev = 0.0f;
  EXPECT_THROW(DataLoader(dataset, options), std::invalid_argument);
  options.stddev = 1.0f;
  options.mean = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(DataLoader(dataset, options), std::invalid_argument);
}

TEST(DataLoaderTest, RejectsImageLabelCountMismatch) {
  Dataset dataset = numbered_dataset(4);
  dataset.labels.pop_back();
  EXPECT_THROW(DataLoader(dataset, options_with(2, true)), ShapeError);
}

TEST(DataLoaderTest, EmptyDatasetHasNoBatches) {
  Dataset dataset;
  dataset.images = empty({0, 1, 2, 2});
  DataLoader loader(dataset, options_with(4, true));
  Batch batch;
  EXPECT_EQ(loader.batches_per_epoch(), 0u);
  EXPECT_FALSE(loader.next(batch));
}

// The sample indices of each batch, in delivery order.
std::vector<std::vector<std::size_t>> batches_of(DataLoader& loader, std::size_t count) {
  std::vector<std::vector<std::size_t>> batches;
  Batch batch;
  for (std::size_t b = 0; b < count && loader.next(batch); ++b) {
    std::vector<std::size_t> samples;
    for (std::size_t row = 0; row < batch.labels.size(); ++row) {
      samples.push_back(static_cast<std::size_t>(batch.images.data()[row * kPixels]));
    }
    batches.push_back(samples);
  }
  return batches;
}

TEST(DataLoaderTest, EndlessRollsOverIntoTheEpochsStartEpochGives) {
  const Dataset dataset = numbered_dataset(10);
  LoaderOptions options = options_with(4, true, 11);
  DataLoader per_epoch(dataset, options);
  std::vector<std::vector<std::size_t>> expected;
  for (std::size_t epoch = 0; epoch < 3; ++epoch) {
    per_epoch.start_epoch(epoch);
    for (const auto& batch : batches_of(per_epoch, 100)) expected.push_back(batch);
  }
  ASSERT_EQ(expected.size(), 9u);  // 4, 4, 2 per epoch

  options.endless = true;
  DataLoader endless(dataset, options);
  Batch batch;
  std::vector<std::vector<std::size_t>> got;
  std::vector<std::size_t> epochs;
  for (std::size_t b = 0; b < 9; ++b) {
    ASSERT_TRUE(endless.next(batch)) << "batch " << b;
    std::vector<std::size_t> samples;
    for (std::size_t row = 0; row < batch.labels.size(); ++row) {
      samples.push_back(static_cast<std::size_t>(batch.images.data()[row * kPixels]));
    }
    got.push_back(samples);
    epochs.push_back(endless.epoch());
  }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(epochs, (std::vector<std::size_t>{0, 0, 0, 1, 1, 1, 2, 2, 2}));
  EXPECT_EQ(endless.position(), 10u);
  EXPECT_NE(expected[0], expected[3]) << "epochs 0 and 1 begin alike: the test would not see a missing reshuffle";
}

TEST(DataLoaderTest, EndlessRespectsDropLastAndStartEpoch) {
  const Dataset dataset = numbered_dataset(10);
  LoaderOptions options = options_with(4, true, 2);
  options.drop_last = true;
  DataLoader per_epoch(dataset, options);
  per_epoch.start_epoch(5);
  std::vector<std::vector<std::size_t>> expected = batches_of(per_epoch, 100);
  per_epoch.start_epoch(6);
  for (const auto& batch : batches_of(per_epoch, 100)) expected.push_back(batch);
  ASSERT_EQ(expected.size(), 4u);

  options.endless = true;
  DataLoader endless(dataset, options);
  endless.start_epoch(5);  // a resumed run starts where it left off, then rolls over
  EXPECT_EQ(batches_of(endless, 4), expected);
  EXPECT_EQ(endless.epoch(), 6u);
  EXPECT_EQ(endless.position(), 8u);
}

TEST(DataLoaderTest, EndlessWithoutShuffleRepeatsTheDataset) {
  const Dataset dataset = numbered_dataset(3);
  LoaderOptions options = options_with(2, false);
  options.endless = true;
  DataLoader loader(dataset, options);
  EXPECT_EQ(batches_of(loader, 5), (std::vector<std::vector<std::size_t>>{{0, 1}, {2}, {0, 1}, {2}, {0, 1}}));
  EXPECT_EQ(loader.epoch(), 2u);
}

TEST(DataLoaderTest, EndlessRefusesAnEpochWithoutBatches) {
  const Dataset dataset = numbered_dataset(3);
  LoaderOptions options = options_with(4, true);
  options.endless = true;
  options.drop_last = true;
  try {
    DataLoader loader(dataset, options);
    ADD_FAILURE() << "an endless loader with no batch per epoch would loop forever";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(),
                 "DataLoader: endless mode needs at least one batch per epoch, but dataset 'numbered' has 3 samples "
                 "for batch_size 4 with drop_last");
  }
  options.drop_last = false;
  EXPECT_NO_THROW(DataLoader(dataset, options));
  Dataset empty_dataset;
  empty_dataset.name = "empty";
  empty_dataset.images = empty({0, 1, 2, 2});
  EXPECT_THROW(DataLoader(empty_dataset, options), std::invalid_argument);
}

}  // namespace
}  // namespace stn
