// Loading a train/val/test split from a described source: IDX files, an HDF5 file or synthetic data.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/enum_names.h"
#include "data/dataset.h"
#include "data/synthetic.h"

namespace shrink::data {

struct IdxFiles {
  std::filesystem::path images;
  std::filesystem::path labels;
};

struct Hdf5File {
  std::filesystem::path path;
  std::string samples = "images";
  std::string labels = "labels";  // empty: the samples have no labels
};

// Where samples come from: IDX files (MNIST's), an HDF5 file, or seeded synthetic data.
enum class DataFormat { kIdx, kHdf5, kSynthetic };
inline const core::EnumNames<DataFormat>& enum_names(DataFormat) {
  static const core::EnumNames<DataFormat> names{
      {DataFormat::kIdx, "idx"}, {DataFormat::kHdf5, "hdf5"}, {DataFormat::kSynthetic, "synthetic"}};
  return names;
}

struct SourceOptions {
  std::string name;  // for messages: "fashion-mnist", a file name, "synthetic"
  DataFormat format = DataFormat::kSynthetic;
  IdxFiles idx_train, idx_test;
  Hdf5File h5_train, h5_test;
  SyntheticOptions synthetic;
  std::vector<std::string> class_names;
  // Sample shape when known before loading (from a manifest or synthetic options); empty otherwise.
  std::vector<int64_t> sample_shape;
  Normalization normalization;
  // Printed when a named dataset's files are missing, e.g. which Debian package provides them.
  std::string install_hint;
  double val_split = 0.1;
  int64_t train_limit = 0;  // 0 = all
  int64_t test_limit = 0;   // 0 = all
  uint64_t seed = 0;
};

struct Splits {
  Dataset train;
  Dataset val;  // empty when val_split is 0
  Dataset test;
};

Splits load_splits(const SourceOptions& options);
// The test split alone, limited to test_limit, without reading the train split: what evaluating or
// timing a trained model needs, whatever the size of the data it was trained on.
Dataset load_test_split(const SourceOptions& options);

}  // namespace shrink::data
