#include "stn/experiments/datasets.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "stn/framework/error.h"

namespace stn::cli {

namespace {

// Plain datasets: epochs of a shuffled loader; batch b is batch b % per_epoch of epoch
// b / per_epoch.
// With a part, the part's samples of each of those batches.
class EpochStream : public TrainingStream {
 public:
  EpochStream(const Dataset& data, std::size_t batch_size, std::uint64_t seed, BatchPart part)
      : loader_(data, LoaderOptions{.batch_size = batch_size, .shuffle = true, .drop_last = true, .seed = seed}),
        part_{part.begin, std::min(part.end, batch_size)} {
    if (loader_.batches_per_epoch() == 0)
      throw std::invalid_argument("--batch " + std::to_string(batch_size) + " is larger than the training set (" +
                                  std::to_string(data.size()) + " samples)");
    if (part_.begin >= part_.end)
      throw std::invalid_argument("samples [" + std::to_string(part_.begin) + ", " + std::to_string(part_.end) +
                                  ") of a batch of " + std::to_string(batch_size) + " are none");
    whole_ = part_.begin == 0 && part_.end == batch_size;
    loader_.start_epoch(0);
  }
  void next(Batch& batch) override {
    Batch& into = whole_ ? batch : whole_batch_;
    if (!loader_.next(into)) {
      loader_.start_epoch(loader_.epoch() + 1);
      loader_.next(into);
    }
    if (!whole_) copy_batch_rows(into, part_.begin, part_.end, batch);
  }
  void seek(std::uint64_t batch_index) override {
    const std::size_t per_epoch = loader_.batches_per_epoch();
    loader_.start_epoch(batch_index / per_epoch);
    Batch skipped;
    for (std::uint64_t i = 0; i < batch_index % per_epoch; ++i) loader_.next(skipped);
  }

 private:
  DataLoader loader_;
  BatchPart part_;
  bool whole_ = true;
  Batch whole_batch_;
};

class DistortedStream : public TrainingStream {
 public:
  DistortedStream(const Dataset& data, DistortionKind kind, std::size_t batch_size, std::uint64_t seed,
                  BatchPart part)
      : batches_(data, kind, batch_size, seed, part) {}
  void next(Batch& batch) override { batches_.next(batch); }
  void seek(std::uint64_t batch_index) override { batches_.seek(batch_index); }

 private:
  DistortedBatches batches_;
};

}  // namespace

Dataset dataset_rows(const Dataset& data, std::size_t begin, std::size_t end, const std::string& name) {
  const auto& shape = data.images.shape();
  const std::size_t row = shape[1] * shape[2] * shape[3];
  Dataset part;
  part.name = name;
  part.num_classes = data.num_classes;
  part.images = empty({end - begin, shape[1], shape[2], shape[3]});
  std::copy(data.images.data() + begin * row, data.images.data() + end * row, part.images.data());
  part.labels.assign(data.labels.begin() + static_cast<std::ptrdiff_t>(begin),
                     data.labels.begin() + static_cast<std::ptrdiff_t>(end));
  return part;
}

void require_data_directory(const std::string& directory, const std::string& what) {
  std::error_code error;
  if (!std::filesystem::is_directory(directory, error))
    throw DataError(what + " data directory '" + directory + "' does not exist; run scripts/setup.sh to fetch it");
}

std::vector<std::string> dataset_names() { return {"mnist", "fashion", "r", "rts", "p", "e", "tc", "add"}; }

std::string default_data_dir(const std::string& name) {
  // Where Debian's dataset-fashion-mnist package installs the gzip files.
  if (name == "fashion") return "/usr/share/datasets/fashion-mnist";
  return "data/mnist";
}

InputSpec input_spec_for(const std::string& name) {
  if (name == "mnist" || name == "fashion") return InputSpec{};
  const DistortionKind kind = parse_distortion(name);
  const int side = static_cast<int>(distortion_canvas_side(kind));
  return InputSpec{.channels = static_cast<int>(distortion_channels(kind)), .height = side, .width = side,
                   .classes = distortion_classes(kind)};
}

std::unique_ptr<TrainingStream> Experiment::stream(std::size_t batch_size, std::uint64_t seed, BatchPart part) const {
  if (kind == DistortionKind::none) return std::make_unique<EpochStream>(train, batch_size, seed, part);
  return std::make_unique<DistortedStream>(train, kind, batch_size, seed, part);
}

Experiment load_experiment(const std::string& name, const ExperimentOptions& options) {
  const std::string dir = options.data_dir.empty() ? default_data_dir(name) : options.data_dir;
  Experiment e;
  e.name = name;
  // The held-out digits, taken off the end of e.train.
  auto hold_out = [&]() -> Dataset {
    const std::size_t total = e.train.size();
    if (total <= kValidationDigits)
      throw std::invalid_argument("--validation holds out the last " + std::to_string(kValidationDigits) +
                                  " training digits, but " + dir + " has only " + std::to_string(total));
    Dataset held_out = dataset_rows(e.train, total - kValidationDigits, total, e.train.name + "[validation]");
    e.train = dataset_rows(e.train, 0, total - kValidationDigits, e.train.name + "[train]");
    return held_out;
  };
  // Train and test files swapped would otherwise train on 10,000 digits and test on 60,000.
  auto check_splits = [&](std::size_t train_count, std::size_t test_count) {
    if (train_count < test_count)
      throw DataError(dir + ": the training split (train-*) holds " + std::to_string(train_count) +
                      " images but the test split (t10k-*) " + std::to_string(test_count) +
                      "; are the files swapped? (MNIST and Fashion-MNIST have 60000 and 10000)");
  };
  require_data_directory(dir, name == "fashion" ? "Fashion-MNIST" : "MNIST");
  if (name == "fashion") {
    e.train = load_fashion_mnist(dir, Split::Train);
    e.test = load_fashion_mnist(dir, Split::Test);
    check_splits(e.train.size(), e.test.size());
    if (options.validation) e.validation = hold_out();
  } else {
    bool known = false;
    for (const std::string& n : dataset_names()) known |= n == name;
    if (!known) {
      std::string list;
      for (const std::string& n : dataset_names()) list += (list.empty() ? "" : ", ") + n;
      throw std::invalid_argument("unknown dataset '" + name + "' (known: " + list + ")");
    }
    e.kind = name == "mnist" ? DistortionKind::none : parse_distortion(name);
    e.train = load_mnist(dir, Split::Train);
    Dataset mnist_test = load_mnist(dir, Split::Test);
    check_splits(e.train.size(), mnist_test.size());
    if (options.validation)
      e.validation = distorted_fixed_set(hold_out(), e.kind, options.test_seed, options.cache_dir, FixedSet::validation);
    e.test = e.kind == DistortionKind::none
                 ? std::move(mnist_test)
                 : distorted_test_set(mnist_test, e.kind, options.test_seed, options.cache_dir);
  }
  const auto& shape = e.test.images.shape();
  e.input = InputSpec{.channels = static_cast<int>(shape[1]), .height = static_cast<int>(shape[2]),
                      .width = static_cast<int>(shape[3]), .classes = e.test.num_classes};
  return e;
}

}  // namespace stn::cli
