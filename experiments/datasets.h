// The datasets the program trains on, by name.
#pragma once

#include <string>
#include <vector>

#include "framework/data/mnist.h"
#include "models/models.h"

namespace stn::cli {

struct DatasetPair {
  Dataset train;
  Dataset test;
  InputSpec input;  // the models' input shape and classes
};

// "mnist" (IDX files under data_dir, default data/mnist) or "fashion" (default the Debian
// dataset-fashion-mnist directory). Throws std::invalid_argument for an unknown name and
// stn::DataError for missing or bad files.
DatasetPair load_dataset(const std::string& name, const std::string& data_dir);
std::string default_data_dir(const std::string& name);
std::vector<std::string> dataset_names();

}  // namespace stn::cli
