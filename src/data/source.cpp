// Dispatch from a SourceOptions to the reader for its format, then limits and the validation split.
#include "data/source.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "core/memory_budget.h"
#include "data/hdf5_reader.h"
#include "data/idx_reader.h"

namespace shrink::data {

namespace fs = std::filesystem;
using core::cat;

namespace {

void require_file(const fs::path& p, const SourceOptions& o) {
  std::error_code ec;
  if (fs::exists(p, ec)) return;
  std::string msg = cat("dataset '", o.name, "': file not found: ", p.string());
  if (!o.install_hint.empty()) msg += "\n  " + o.install_hint;
  throw core::Error(msg);
}

Dataset from_idx(const IdxFiles& f, const SourceOptions& o) {
  require_file(f.images, o);
  require_file(f.labels, o);
  // What the files become, sized from their headers before any payload is read: the uint8 images
  // and their float32 copy, the labels and their int64 copy.
  const auto elements = [](const std::vector<int64_t>& dims) {
    return core::tensor_bytes(dims, 1, "an IDX file's dimensions");
  };
  const uint64_t image_elements = elements(read_idx_shape(f.images));
  const uint64_t label_elements = elements(read_idx_shape(f.labels));
  core::check_fits_in_memory(image_elements * (1 + sizeof(float)) + label_elements * (1 + sizeof(int64_t)),
                             cat(f.images.string(), " and ", f.labels.string(), " (samples as float32)"));
  const auto images = read_idx(f.images);
  const auto labels = read_idx(f.labels);
  if (images.dim() < 2) throw core::Error(cat(f.images.string(), ": expected images of rank >= 2, got ", images.dim()));
  if (labels.dim() != 1) throw core::Error(cat(f.labels.string(), ": expected labels of rank 1, got ", labels.dim()));
  if (images.size(0) != labels.size(0)) {
    throw core::Error(cat(f.images.string(), " holds ", images.size(0), " images but ", f.labels.string(), " holds ",
                          labels.size(0), " labels"));
  }
  return Dataset{to_float_samples(images, o.normalization), labels.to(at::kLong), o.class_names};
}

Dataset from_hdf5(const Hdf5File& f, const SourceOptions& o) {
  require_file(f.path, o);
  const auto arrays = read_hdf5_arrays(f.path, f.samples, f.labels);
  // Token ids are taken as stored: normalising them would make them other tokens.
  if (arrays.samples.scalar_type() == at::kLong) return Dataset{arrays.samples, arrays.labels, o.class_names};
  return Dataset{to_float_samples(arrays.samples, o.normalization), arrays.labels, o.class_names};
}

void check_labels(const Dataset& d, const std::string& which, const SourceOptions& o) {
  if (o.class_names.empty() || d.size() == 0 || !d.labelled()) return;
  const int64_t max_label = d.targets.max().item<int64_t>();
  if (max_label >= static_cast<int64_t>(o.class_names.size())) {
    throw core::Error(cat("dataset '", o.name, "' ", which, " split has label ", max_label, " but only ",
                          o.class_names.size(), " class names"));
  }
}

void check_limits(const SourceOptions& o) {
  SHRINK_CHECK(o.train_limit >= 0, "train_limit must be >= 0, got ", o.train_limit);
  SHRINK_CHECK(o.test_limit >= 0, "test_limit must be >= 0, got ", o.test_limit);
}

Dataset load_split(const SourceOptions& o, bool test) {
  switch (o.format) {
    case DataFormat::kIdx:
      return from_idx(test ? o.idx_test : o.idx_train, o);
    case DataFormat::kHdf5:
      return from_hdf5(test ? o.h5_test : o.h5_train, o);
    case DataFormat::kSynthetic:
      return test ? make_synthetic(SyntheticOptions(o.synthetic).samples(o.synthetic.test_samples()), 1)
                  : make_synthetic(o.synthetic, 0);
  }
  throw core::Error(cat("dataset '", o.name, "': unknown data format"));
}

}  // namespace

Splits load_splits(const SourceOptions& o) {
  check_limits(o);
  Dataset train = load_split(o, false);
  Dataset test = load_split(o, true);
  if (train.sample_shape() != test.sample_shape()) {
    throw core::Error(cat("dataset '", o.name, "': train and test samples differ in shape"));
  }
  if (train.labelled() != test.labelled() || train.inputs.scalar_type() != test.inputs.scalar_type()) {
    throw core::Error(cat("dataset '", o.name, "': the train and test splits must both have labels or neither, ",
                          "and hold samples of one type"));
  }
  check_labels(train, "train", o);
  check_labels(test, "test", o);
  train = train.head(o.train_limit);
  test = test.head(o.test_limit);
  auto split = split_validation(train, o.val_split, o.seed);
  return Splits{split.train, split.val, test};
}

Dataset load_test_split(const SourceOptions& o) {
  check_limits(o);
  Dataset test = load_split(o, true);
  check_labels(test, "test", o);
  return test.head(o.test_limit);
}

}  // namespace shrink::data
