#include "stn/experiments/distorted.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "stn/experiments/distort.h"
#include "stn/framework/error.h"
#include "stn/framework/io/atomic_file.h"
#include "stn/framework/io/safetensors.h"
#include "temp_dir.h"
#include "test_util.h"

namespace stn {
namespace {

constexpr DistortionKind kAllKinds[] = {DistortionKind::none, DistortionKind::r, DistortionKind::rts,
                                        DistortionKind::p,    DistortionKind::e, DistortionKind::tc,
                                        DistortionKind::add};
constexpr DistortionKind kCachedKinds[] = {DistortionKind::r, DistortionKind::rts, DistortionKind::p,
                                           DistortionKind::e, DistortionKind::tc, DistortionKind::add};

// Small synthetic digits: digit k is a bright bar of a random size, place and brightness on a
// faint noise background, so every image differs from every other and from its own warps.
Dataset synthetic_digits(std::size_t count, std::uint64_t seed) {
  Generator generator(seed);
  Dataset dataset;
  dataset.name = "synthetic/test";
  dataset.images = test::random_tensor({count, 1, 28, 28}, generator, 0.0f, 0.1f);
  dataset.labels.resize(count);
  for (std::size_t k = 0; k < count; ++k) {
    const std::size_t top = 4 + generator.below(8), left = 4 + generator.below(8);
    const std::size_t height = 6 + generator.below(12), width = 2 + generator.below(6);
    const float brightness = generator.uniform(0.5f, 1.0f);
    for (std::size_t y = top; y < top + height; ++y)
      for (std::size_t x = left; x < left + width; ++x) dataset.images.data()[k * 784 + y * 28 + x] = brightness;
    dataset.labels[k] = static_cast<std::int32_t>(generator.below(10));
  }
  return dataset;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return shape_of(a) == shape_of(b) && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool same_batch(const Batch& a, const Batch& b) {
  return bitwise_equal(a.images, b.images) && a.labels == b.labels;
}

TEST(DistortionKindTest, ParsesTheNamesAndListsThemOnError) {
  EXPECT_EQ(parse_distortion("mnist"), DistortionKind::none);
  for (DistortionKind kind : kAllKinds) EXPECT_EQ(parse_distortion(distortion_name(kind)), kind);
  EXPECT_EQ(distortion_name(DistortionKind::rts), "rts");
  try {
    parse_distortion("RTS");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("'RTS'"), std::string::npos) << message;
    for (const char* name : {"mnist", "none", "r", "rts", "p", "e", "tc", "add"})
      EXPECT_NE(message.find(name), std::string::npos) << message;
  }
}

TEST(DistortionKindTest, CanvasChannelsAndClasses) {
  const std::size_t sides[] = {28, 28, 42, 28, 28, 60, 42};
  for (std::size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(distortion_canvas_side(kAllKinds[i]), sides[i]);
    EXPECT_EQ(distortion_channels(kAllKinds[i]), kAllKinds[i] == DistortionKind::add ? 2u : 1u);
    EXPECT_EQ(distortion_classes(kAllKinds[i]), kAllKinds[i] == DistortionKind::add ? 19 : 10);
  }
}

TEST(DistortSamplesTest, ShapesLabelsAndRangesForEveryKind) {
  const Dataset source = synthetic_digits(20, 1);
  const std::vector<std::size_t> indices{3, 0, 19, 3, 7};
  for (DistortionKind kind : kAllKinds) {
    Generator generator(2);
    const DistortedSamples samples = distort_samples(source, kind, indices, generator);
    const std::size_t side = distortion_canvas_side(kind);
    EXPECT_EQ(shape_of(samples.images), (Shape{5, distortion_channels(kind), side, side})) << distortion_name(kind);
    EXPECT_EQ(shape_of(samples.parameters), (Shape{5, distortion_parameter_count(kind)}));
    for (float pixel : samples.images) ASSERT_TRUE(pixel >= 0.0f && pixel <= 1.0f) << distortion_name(kind);
    for (std::size_t k = 0; k < indices.size(); ++k) {
      if (kind == DistortionKind::add) continue;
      EXPECT_EQ(samples.labels[k], source.labels[indices[k]]) << distortion_name(kind);
    }
  }
}

TEST(DistortSamplesTest, TheParameterTableRecordsTheDraws) {
  const Dataset source = synthetic_digits(20, 3);
  const std::vector<std::size_t> indices{1, 2, 3};
  Generator generator(4), replay(4);
  const DistortedSamples samples = distort_samples(source, DistortionKind::rts, indices, generator);
  for (std::size_t k = 0; k < 3; ++k) {
    const RtsParameters p = draw_rts(replay);
    const float* row = samples.parameters.data() + 4 * k;
    EXPECT_EQ(row[0], p.angle_degrees);
    EXPECT_EQ(row[1], p.scale);
    EXPECT_EQ(row[2], p.offset_x);
    EXPECT_EQ(row[3], p.offset_y);
  }
}

TEST(DistortSamplesTest, AdditionLabelsAreSumsAndTheChannelsDiffer) {
  const Dataset source = synthetic_digits(50, 5);
  std::vector<std::size_t> indices(40);
  for (std::size_t k = 0; k < 40; ++k) indices[k] = k;
  Generator generator(6);
  const DistortedSamples samples = distort_samples(source, DistortionKind::add, indices, generator);
  constexpr std::size_t plane = 42 * 42;
  for (std::size_t k = 0; k < 40; ++k) {
    const std::size_t second = static_cast<std::size_t>(samples.parameters.data()[9 * k]);
    ASSERT_LT(second, 50u);
    EXPECT_EQ(samples.labels[k], source.labels[k] + source.labels[second]);
    const float* first_channel = samples.images.data() + 2 * k * plane;
    EXPECT_NE(std::memcmp(first_channel, first_channel + plane, plane * sizeof(float)), 0) << k;
  }
}

TEST(DistortSamplesTest, ClutterHoldsTheDigitAtTheDrawnPlace) {
  const Dataset source = synthetic_digits(30, 7);
  const std::vector<std::size_t> indices{4, 9, 0, 29};
  Generator generator(8);
  const DistortedSamples samples = distort_samples(source, DistortionKind::tc, indices, generator);
  for (std::size_t k = 0; k < indices.size(); ++k) {
    const float* row = samples.parameters.data() + 32 * k;
    const std::size_t digit_x = static_cast<std::size_t>(row[0]), digit_y = static_cast<std::size_t>(row[1]);
    const float* canvas = samples.images.data() + k * 3600;
    const float* digit = source.images.data() + indices[k] * 784;
    std::size_t equal = 0;
    for (std::size_t y = 0; y < 28; ++y)
      for (std::size_t x = 0; x < 28; ++x) {
        const float placed = canvas[(digit_y + y) * 60 + digit_x + x];
        ASSERT_GE(placed, digit[y * 28 + x]);  // clutter combines with max: never darker
        equal += placed == digit[y * 28 + x];
      }
    EXPECT_GE(equal, 784u - 6 * 36) << "more pixels changed than six patches cover";
  }
}

TEST(DistortSamplesTest, BadArgumentsAreRejected) {
  Dataset source = synthetic_digits(5, 9);
  Generator generator(0);
  const std::vector<std::size_t> too_far{5};
  EXPECT_THROW(distort_samples(source, DistortionKind::r, too_far, generator), std::invalid_argument);
  EXPECT_THROW(distort_samples(source, DistortionKind::r, std::vector<std::size_t>{}, generator),
               std::invalid_argument);
  source.labels[2] = 10;
  EXPECT_THROW(distort_samples(source, DistortionKind::r, std::vector<std::size_t>{0}, generator), DataError);
  source.images = zeros({5, 1, 32, 32});
  EXPECT_THROW(distort_samples(source, DistortionKind::r, std::vector<std::size_t>{0}, generator), ShapeError);
}

TEST(DistortedBatchTest, ABatchIsAFunctionOfSeedAndIndex) {
  const Dataset train = synthetic_digits(100, 10);
  for (DistortionKind kind : kAllKinds) {
    const Batch a = distorted_batch(train, kind, 16, 7, 3);
    EXPECT_TRUE(same_batch(a, distorted_batch(train, kind, 16, 7, 3))) << distortion_name(kind);
    EXPECT_FALSE(bitwise_equal(a.images, distorted_batch(train, kind, 16, 8, 3).images)) << distortion_name(kind);
    EXPECT_FALSE(bitwise_equal(a.images, distorted_batch(train, kind, 16, 7, 4).images)) << distortion_name(kind);
  }
}

// One rank's share of a batch (data-parallel training) is exactly those samples of the whole
// batch, and the stream of parts delivers them.
TEST(DistortedBatchTest, APartIsThoseSamplesOfTheWholeBatch) {
  const Dataset train = synthetic_digits(100, 10);
  for (DistortionKind kind : kAllKinds) {
    const Batch whole = distorted_batch(train, kind, 16, 7, 3);
    for (const BatchPart part : {BatchPart{0, 8}, BatchPart{8, 16}, BatchPart{5, 6}, BatchPart{11, 99}}) {
      Batch expected;
      copy_batch_rows(whole, part.begin, std::min<std::size_t>(part.end, 16), expected);
      EXPECT_TRUE(same_batch(distorted_batch(train, kind, 16, 7, 3, part), expected))
          << distortion_name(kind) << " [" << part.begin << ", " << part.end << ")";
    }
    DistortedBatches stream(train, kind, 16, 7, BatchPart{8, 16});
    stream.seek(3);
    Batch delivered, expected;
    stream.next(delivered);
    copy_batch_rows(whole, 8, 16, expected);
    EXPECT_TRUE(same_batch(delivered, expected)) << distortion_name(kind);
  }
  EXPECT_THROW(distorted_batch(train, DistortionKind::r, 16, 7, 3, BatchPart{16, 20}), std::invalid_argument);
  EXPECT_THROW(DistortedBatches(train, DistortionKind::r, 16, 7, BatchPart{4, 4}), std::invalid_argument);
}

TEST(DistortedBatchesTest, DeliversTheBatchesInOrder) {
  const Dataset train = synthetic_digits(100, 11);
  DistortedBatches batches(train, DistortionKind::rts, 8, 21);
  EXPECT_EQ(batches.batches_drawn(), 0u);
  Batch batch;
  for (std::uint64_t b = 0; b < 5; ++b) {
    batches.next(batch);
    EXPECT_TRUE(same_batch(batch, distorted_batch(train, DistortionKind::rts, 8, 21, b))) << b;
    EXPECT_EQ(batches.batches_drawn(), b + 1);
  }
}

TEST(DistortedBatchesTest, SeekingAndPrefetchTimingDoNotChangeTheBatches) {
  const Dataset train = synthetic_digits(100, 12);
  DistortedBatches eager(train, DistortionKind::add, 8, 5);
  DistortedBatches slow(train, DistortionKind::add, 8, 5);
  Batch from_eager, from_slow;
  for (std::uint64_t b = 0; b < 3; ++b) {
    eager.next(from_eager);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the prefetch has long finished
    slow.next(from_slow);
    EXPECT_TRUE(same_batch(from_eager, from_slow)) << b;
  }
  // Seek while batch 3 is (probably) being made, backwards and forwards.
  eager.seek(1);
  EXPECT_EQ(eager.batches_drawn(), 1u);
  eager.next(from_eager);
  EXPECT_TRUE(same_batch(from_eager, distorted_batch(train, DistortionKind::add, 8, 5, 1)));
  eager.seek(40);
  eager.seek(17);
  eager.next(from_eager);
  EXPECT_TRUE(same_batch(from_eager, distorted_batch(train, DistortionKind::add, 8, 5, 17)));
  eager.next(from_eager);
  EXPECT_TRUE(same_batch(from_eager, distorted_batch(train, DistortionKind::add, 8, 5, 18)));
  EXPECT_EQ(eager.batches_drawn(), 19u);

  // A resumed run: a fresh stream sought to 18 continues where the first one was.
  DistortedBatches resumed(train, DistortionKind::add, 8, 5);
  resumed.seek(18);
  resumed.next(from_slow);
  EXPECT_TRUE(same_batch(from_eager, from_slow));
}

TEST(DistortedBatchesTest, ShutsDownCleanlyAtAnyPoint) {
  const Dataset train = synthetic_digits(100, 13);
  { DistortedBatches unused(train, DistortionKind::e, 64, 1); }
  {
    DistortedBatches busy(train, DistortionKind::p, 64, 1);
    Batch batch;
    busy.next(batch);
    busy.seek(9);
  }
  EXPECT_THROW(DistortedBatches(train, DistortionKind::r, 0, 1), std::invalid_argument);
  Dataset wrong = train;
  wrong.images = zeros({100, 1, 28, 27});
  EXPECT_THROW(DistortedBatches(wrong, DistortionKind::r, 4, 1), ShapeError);
}

TEST(DistortedTestSetTest, IsDeterministicPerSeedAndKeepsLabels) {
  const Dataset test_digits = synthetic_digits(60, 14);
  test::TempDir first, second;
  for (DistortionKind kind : kCachedKinds) {
    const Dataset a = distorted_test_set(test_digits, kind, 3, first.path());
    const Dataset b = distorted_test_set(test_digits, kind, 3, second.path());
    const Dataset c = distorted_test_set(test_digits, kind, 4, second.path());
    EXPECT_TRUE(bitwise_equal(a.images, b.images)) << distortion_name(kind);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_FALSE(bitwise_equal(a.images, c.images)) << distortion_name(kind);
    EXPECT_EQ(a.name, "mnist-" + distortion_name(kind) + "/test");
    EXPECT_EQ(a.num_classes, distortion_classes(kind));
    if (kind != DistortionKind::add) EXPECT_EQ(a.labels, test_digits.labels) << distortion_name(kind);
  }
  const Dataset plain = distorted_test_set(test_digits, DistortionKind::none, 3, first.path());
  EXPECT_TRUE(bitwise_equal(plain.images, test_digits.images));
  EXPECT_FALSE(std::filesystem::exists(distorted_test_set_path(DistortionKind::none, 3, first.path())));
}

TEST(DistortedTestSetTest, TheSecondCallLoadsTheCache) {
  const Dataset test_digits = synthetic_digits(60, 15);
  test::TempDir directory;
  const std::string cache_dir = directory.file("cache/nested");  // created on demand
  const Dataset made = distorted_test_set(test_digits, DistortionKind::rts, 9, cache_dir);
  const std::string path = distorted_test_set_path(DistortionKind::rts, 9, cache_dir);
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(path, cache_dir + "/rts-test-seed9-v2.safetensors");

  SafetensorsFile file = load_safetensors(path);
  EXPECT_EQ(file.metadata.at("kind"), "rts");
  EXPECT_EQ(file.metadata.at("seed"), "9");
  EXPECT_EQ(file.metadata.at("format_version"), "2");
  EXPECT_EQ(file.metadata.at("set"), "test");
  EXPECT_NE(file.metadata.at("generator").find("mt19937_64"), std::string::npos);
  ASSERT_NE(file.find("parameters"), nullptr);
  EXPECT_EQ(shape_of(*file.find("parameters")), (Shape{60, 4}));

  testing::internal::CaptureStderr();
  const Dataset loaded = distorted_test_set(test_digits, DistortionKind::rts, 9, cache_dir);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_TRUE(bitwise_equal(made.images, loaded.images));
  EXPECT_EQ(made.labels, loaded.labels);
  EXPECT_EQ(made.name, loaded.name);

  // Proof that it reads the file rather than regenerating: a marked (still valid) file comes back.
  Tensor marked = *file.find("images");
  marked.data()[100] = 0.25f;
  save_safetensors(path, {{"images", &marked}, {"labels", file.find("labels")}, {"parameters", file.find("parameters")}},
                   file.metadata);
  EXPECT_EQ(distorted_test_set(test_digits, DistortionKind::rts, 9, cache_dir).images.data()[100], 0.25f);
}

TEST(DistortedTestSetTest, ACorruptOrStaleCacheIsReportedAndRegenerated) {
  const Dataset test_digits = synthetic_digits(60, 16);
  test::TempDir directory;
  const Dataset made = distorted_test_set(test_digits, DistortionKind::tc, 2, directory.path());
  const std::string path = distorted_test_set_path(DistortionKind::tc, 2, directory.path());
  const std::string bytes = read_file(path);

  const auto expect_regenerated = [&](const std::string& what) {
    testing::internal::CaptureStderr();
    const Dataset again = distorted_test_set(test_digits, DistortionKind::tc, 2, directory.path());
    const std::string report = testing::internal::GetCapturedStderr();
    EXPECT_NE(report.find(path), std::string::npos) << what << ": " << report;
    EXPECT_TRUE(bitwise_equal(again.images, made.images)) << what;
    EXPECT_EQ(read_file(path), bytes) << what << ": the cache was not rewritten";
  };
  write_file_atomically(path, bytes.substr(0, bytes.size() / 2));
  expect_regenerated("truncated");
  write_file_atomically(path, "not a safetensors file");
  expect_regenerated("garbage");

  SafetensorsFile file = load_safetensors(path);
  Tensor out_of_range = *file.find("labels");
  out_of_range.data()[0] = 10.0f;
  save_safetensors(path, {{"images", file.find("images")}, {"labels", &out_of_range}, {"parameters", file.find("parameters")}},
                   file.metadata);
  expect_regenerated("label out of range");
  std::map<std::string, std::string> old_version = file.metadata;
  old_version["format_version"] = "0";
  save_safetensors(path, {{"images", file.find("images")}, {"labels", file.find("labels")}, {"parameters", file.find("parameters")}},
                   old_version);
  expect_regenerated("old format version");

  // The same (kind, seed) made from other digits is not this test set.
  const Dataset other_digits = synthetic_digits(60, 17);
  testing::internal::CaptureStderr();
  const Dataset other = distorted_test_set(other_digits, DistortionKind::tc, 2, directory.path());
  EXPECT_NE(testing::internal::GetCapturedStderr().find("source_fingerprint"), std::string::npos);
  EXPECT_FALSE(bitwise_equal(other.images, made.images));
}

TEST(DistortedTestSetTest, AFileOfTheFormerVersionIsNeitherReadNorReplaced) {
  // Version 1 (P's landing corners moved) had no version in its name: a checkout of it
  // sharing the cache keeps its file, and this version never reads it.
  const Dataset test_digits = synthetic_digits(40, 18);
  test::TempDir directory;
  const std::string former = directory.file("p-test-seed1.safetensors");
  write_file_atomically(former, "a version-1 file");
  const Dataset made = distorted_test_set(test_digits, DistortionKind::p, 1, directory.path());
  EXPECT_EQ(read_file(former), "a version-1 file");
  EXPECT_EQ(distorted_test_set_path(DistortionKind::p, 1, directory.path()), directory.file("p-test-seed1-v2.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(directory.file("p-test-seed1-v2.safetensors")));
  EXPECT_EQ(made.size(), 40u);
}

TEST(DistortedTestSetTest, TheValidationSetIsCachedApartAndDrawnDifferently) {
  const Dataset digits = synthetic_digits(50, 19);
  test::TempDir directory;
  const Dataset test_set = distorted_fixed_set(digits, DistortionKind::r, 1, directory.path(), FixedSet::test);
  const Dataset validation = distorted_fixed_set(digits, DistortionKind::r, 1, directory.path(), FixedSet::validation);
  const std::string path = distorted_set_path(DistortionKind::r, 1, directory.path(), FixedSet::validation);
  EXPECT_EQ(path, directory.file("r-validation-seed1-v2.safetensors"));
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(load_safetensors(path).metadata.at("set"), "validation");
  EXPECT_EQ(validation.name, "mnist-r/validation");
  EXPECT_EQ(validation.labels, digits.labels);
  // Same digits, same seed, its own draws.
  EXPECT_FALSE(bitwise_equal(test_set.images, validation.images));
  const Dataset again = distorted_fixed_set(digits, DistortionKind::r, 1, directory.path(), FixedSet::validation);
  EXPECT_TRUE(bitwise_equal(again.images, validation.images));
}

// The real test set, when STN_MNIST_DIR points at MNIST: every kind within the time budget.
TEST(DistortedTestSetTest, RealMnistTestSetsAreQuickToMake) {
  const char* directory = std::getenv("STN_MNIST_DIR");
  if (!directory || !*directory) GTEST_SKIP() << "set STN_MNIST_DIR to a directory holding MNIST";
  const Dataset test_digits = load_mnist(directory, Split::Test);
  test::TempDir cache;
  for (DistortionKind kind : kCachedKinds) {
    const auto start = std::chrono::steady_clock::now();
    const Dataset distorted = distorted_test_set(test_digits, kind, 0, cache.path());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(distorted.size(), test_digits.size());
    EXPECT_LT(seconds, 20.0) << distortion_name(kind);
    std::printf("  %s test set: %.2f s\n", distortion_name(kind).c_str(), seconds);
  }
}

}  // namespace
}  // namespace stn
