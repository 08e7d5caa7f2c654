// The datasets the program trains on, by name: plain MNIST and Fashion-MNIST, and the
// paper's distorted MNIST variants (r, rts, p, e, tc, add), drawn fresh for every training
// batch, with a distorted test set cached per seed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "stn/experiments/distorted.h"
#include "stn/framework/data/loader.h"
#include "stn/framework/data/mnist.h"
#include "stn/models/models.h"

namespace stn::cli {

// An endless stream of training batches; batch b is the same whatever came before
// (seek(b) jumps there), so a resumed run continues exactly.
class TrainingStream {
 public:
  virtual ~TrainingStream() = default;
  virtual void next(Batch& batch) = 0;
  virtual void seek(std::uint64_t batch_index) = 0;
};

// With a validation split the last kValidationDigits training digits are held out: training
// draws from the first ones only, and the held-out digits, distorted once with the fixed seed
// and cached like the test set, are the validation set. Settings are chosen on it; the test
// set is for the figures of runs on the whole training set with settings fixed beforehand.
constexpr std::size_t kValidationDigits = 10000;

struct Experiment {
  std::string name;             // "mnist", "fashion", "r", "rts", ...
  DistortionKind kind = DistortionKind::none;
  Dataset train;                // the (undistorted) training digits
  Dataset test;                 // the test set (distorted and cached for distorted kinds)
  Dataset validation;           // with ExperimentOptions::validation: the held-out set, else empty
  InputSpec input;              // the models' input shape and classes

  // With a part: the part's samples of each batch (one rank's share in data-parallel training).
  std::unique_ptr<TrainingStream> stream(std::size_t batch_size, std::uint64_t seed, BatchPart part = {}) const;
};

// Rows [begin, end) of a dataset, as a dataset of its own (a copy) named `name`.
Dataset dataset_rows(const Dataset& data, std::size_t begin, std::size_t end, const std::string& name);

struct ExperimentOptions {
  std::string data_dir;                  // IDX files; empty: the dataset's default
  std::string cache_dir = "data/cache";  // distorted test sets
  std::uint64_t test_seed = 1;           // the distorted test and validation sets' seed
  bool validation = false;               // hold out the validation split (see kValidationDigits)
};

// Throws std::invalid_argument for an unknown name, stn::DataError for missing/bad files.
Experiment load_experiment(const std::string& name, const ExperimentOptions& options);
std::string default_data_dir(const std::string& name);

// Throws DataError "WHAT data directory 'DIR' does not exist; run scripts/setup.sh to fetch it".
void require_data_directory(const std::string& directory, const std::string& what);

// The models' input for a dataset, without loading it (std::invalid_argument for an unknown name).
InputSpec input_spec_for(const std::string& name);
std::vector<std::string> dataset_names();

}  // namespace stn::cli
