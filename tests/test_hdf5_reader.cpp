// HDF5 dataset reader: accepted layouts and the checks on dtype, shape and damaged files.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <torch/torch.h>

#include "core/error.h"
#include "data/hdf5_reader.h"
#include "h5_fixtures.h"
#include "helpers.h"

namespace fs = std::filesystem;
using shrink::core::Error;
using shrink::data::read_hdf5_arrays;
using namespace shrink::testing;

namespace {

void expect_hdf5_error(const fs::path& path, const std::string& fragment) {
  try {
    read_hdf5_arrays(path, "images", "labels");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
}

// d.h5 in a scratch folder `name`: `images` of the given type and shape, and a label (0) for each.
fs::path write_with_labels(const std::string& name, hid_t type, const std::vector<hsize_t>& dims, const void* data) {
  const auto path = scratch_dir(name) / "d.h5";
  const std::vector<int64_t> labels(dims[0], 0);
  H5File f(path);
  put(f.id, "images", type, dims, data);
  put(f.id, "labels", H5T_NATIVE_INT64, {dims[0]}, labels.data());
  return path;
}

}  // namespace

TEST(Hdf5Reader, ReadsUint8ImagesAndInt32Labels) {
  const auto dir = scratch_dir("h5_uint8");
  std::vector<uint8_t> images(3 * 2 * 2);
  for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<uint8_t>(i * 10);
  const std::vector<int32_t> labels = {2, 0, 1};
  {
    H5File f(dir / "d.h5");
    put(f.id, "images", H5T_NATIVE_UINT8, {3, 2, 2}, images.data());
    put(f.id, "labels", H5T_NATIVE_INT32, {3}, labels.data());
  }
  const auto a = read_hdf5_arrays(dir / "d.h5", "images", "labels");
  EXPECT_EQ(a.samples.scalar_type(), torch::kByte);
  EXPECT_EQ(a.samples.sizes(), torch::IntArrayRef({3, 2, 2}));
  EXPECT_EQ(a.samples[1][0][1].item<int>(), 50);
  EXPECT_TRUE(torch::equal(a.labels, torch::tensor({2, 0, 1}, torch::kLong)));
}

TEST(Hdf5Reader, ReadsFloat32FeaturesWithConfiguredNames) {
  const auto dir = scratch_dir("h5_float");
  const std::vector<float> x = {0.5f, -1.f, 2.f, 3.f};
  const std::vector<int64_t> y = {1, 0};
  {
    H5File f(dir / "d.h5");
    put(f.id, "x", H5T_NATIVE_FLOAT, {2, 2}, x.data());
    put(f.id, "y", H5T_NATIVE_INT64, {2}, y.data());
  }
  const auto a = read_hdf5_arrays(dir / "d.h5", "x", "y");
  EXPECT_EQ(a.samples.scalar_type(), torch::kFloat);
  EXPECT_FLOAT_EQ(a.samples[0][1].item<float>(), -1.f);
  EXPECT_EQ(a.labels[0].item<int64_t>(), 1);
}

TEST(Hdf5Reader, RejectsFloat64Samples) {
  const std::vector<double> x(4, 1.0);
  expect_hdf5_error(write_with_labels("h5_double", H5T_NATIVE_DOUBLE, {2, 2}, x.data()),
                    "must be uint8, float32, or int32/int64 token ids");
}

TEST(Hdf5Reader, RejectsMismatchedSampleAndLabelCounts) {
  const auto dir = scratch_dir("h5_count");
  const std::vector<uint8_t> x(6, 1);
  const std::vector<int64_t> y = {1, 0, 1};
  {
    H5File f(dir / "d.h5");
    put(f.id, "images", H5T_NATIVE_UINT8, {2, 3}, x.data());
    put(f.id, "labels", H5T_NATIVE_INT64, {3}, y.data());
  }
  expect_hdf5_error(dir / "d.h5", "holds 2 samples but 'labels' holds 3 labels");
}

TEST(Hdf5Reader, RejectsLabelsOfWrongRank) {
  const auto dir = scratch_dir("h5_rank");
  const std::vector<uint8_t> x(4, 1);
  const std::vector<int64_t> y = {1, 0, 1, 0};
  {
    H5File f(dir / "d.h5");
    put(f.id, "images", H5T_NATIVE_UINT8, {2, 2}, x.data());
    put(f.id, "labels", H5T_NATIVE_INT64, {2, 2}, y.data());
  }
  expect_hdf5_error(dir / "d.h5", "expected [N]");
}

TEST(Hdf5Reader, NamesAMissingDataset) {
  const auto dir = scratch_dir("h5_missing");
  const std::vector<uint8_t> x(4, 1);
  {
    H5File f(dir / "d.h5");
    put(f.id, "images", H5T_NATIVE_UINT8, {2, 2}, x.data());
  }
  expect_hdf5_error(dir / "d.h5", "no dataset named 'labels'");
}

TEST(Hdf5Reader, RejectsAFileThatIsNotHdf5) {
  const auto dir = scratch_dir("h5_foreign");
  write_file(dir / "d.h5", "just some text, not HDF5 at all");
  expect_hdf5_error(dir / "d.h5", "not an HDF5 file");
}

TEST(Hdf5Reader, DetectsATruncatedFile) {
  const auto dir = scratch_dir("h5_trunc");
  std::vector<uint8_t> x(100 * 28 * 28, 3);
  std::vector<int64_t> y(100, 1);
  {
    H5File f(dir / "full.h5");
    put(f.id, "images", H5T_NATIVE_UINT8, {100, 28, 28}, x.data());
    put(f.id, "labels", H5T_NATIVE_INT64, {100}, y.data());
  }
  const std::string bytes = read_file(dir / "full.h5");
  write_file(dir / "cut.h5", bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(read_hdf5_arrays(dir / "cut.h5", "images", "labels"), Error);
}

TEST(Hdf5Reader, ReadsInt32TokenIdsAsInt64WithoutLabels) {
  const auto dir = scratch_dir("h5_tokens");
  const std::vector<int32_t> ids = {101, 7, 102, 0, 101, 9, 8, 102};
  {
    H5File f(dir / "t.h5");
    put(f.id, "input_ids", H5T_NATIVE_INT32, {2, 4}, ids.data());
  }
  const auto a = read_hdf5_arrays(dir / "t.h5", "input_ids", "");
  EXPECT_EQ(a.samples.scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::equal(a.samples, torch::tensor({101, 7, 102, 0, 101, 9, 8, 102}, torch::kLong).view({2, 4})));
  EXPECT_FALSE(a.labels.defined());
}

TEST(Hdf5Reader, RejectsNegativeTokenIds) {
  const std::vector<int64_t> ids = {1, 2, -3, 4};
  expect_hdf5_error(write_with_labels("h5_negative_tokens", H5T_NATIVE_INT64, {2, 2}, ids.data()),
                    "negative token ids");
}

TEST(Hdf5Reader, RejectsTokenIdsThatAreNotOneSequenceASample) {
  const std::vector<int64_t> ids(8, 1);
  expect_hdf5_error(write_with_labels("h5_token_rank", H5T_NATIVE_INT64, {2, 2, 2}, ids.data()), "expected [N, L]");
}
