// IDX reader: round trips, and every kind of damaged file is reported with its name and problem.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include <fstream>

#include "core/error.h"
#include "data/idx_reader.h"
#include "helpers.h"

namespace fs = std::filesystem;
using shrink::core::Error;
using shrink::data::read_idx;
using shrink::data::write_idx;
using namespace shrink::testing;

namespace {

torch::Tensor sample_images() {
  torch::manual_seed(3);
  return torch::randint(0, 256, {5, 4, 3}, torch::kByte);
}

std::string raw_idx(const std::vector<unsigned char>& header, size_t payload) {
  std::string s(header.begin(), header.end());
  s.append(payload, '\x07');
  return s;
}

void expect_idx_error(const fs::path& path, const std::string& fragment) {
  try {
    read_idx(path);
    FAIL() << "expected an error for " << path;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
}

}  // namespace

TEST(IdxReader, RoundTripsPlainFiles) {
  const auto dir = scratch_dir("idx_plain");
  const auto images = sample_images();
  write_idx(dir / "x.idx", images);
  EXPECT_TRUE(torch::equal(read_idx(dir / "x.idx"), images));
}

TEST(IdxReader, RoundTripsGzipFiles) {
  const auto dir = scratch_dir("idx_gz");
  const auto images = sample_images();
  write_idx(dir / "x.idx.gz", images);
  EXPECT_TRUE(torch::equal(read_idx(dir / "x.idx.gz"), images));
}

TEST(IdxReader, ReadsOneDimensionalLabels) {
  const auto dir = scratch_dir("idx_labels");
  const auto labels = torch::arange(10, torch::kByte);
  write_idx(dir / "l.idx", labels);
  EXPECT_TRUE(torch::equal(read_idx(dir / "l.idx"), labels));
}

TEST(IdxReader, TruncatedPlainFileIsReported) {
  const auto dir = scratch_dir("idx_trunc");
  write_file(dir / "t.idx", raw_idx({0, 0, 8, 2, 0, 0, 0, 4, 0, 0, 0, 4}, 10));
  expect_idx_error(dir / "t.idx", "truncated");
}

TEST(IdxReader, TruncatedGzipFileIsReported) {
  const auto dir = scratch_dir("idx_trunc_gz");
  write_idx(dir / "x.idx.gz", torch::randint(0, 256, {64, 28, 28}, torch::kByte));
  const std::string bytes = read_file(dir / "x.idx.gz");
  write_file(dir / "cut.idx.gz", bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(read_idx(dir / "cut.idx.gz"), Error);
  expect_idx_error(dir / "cut.idx.gz", "cut.idx.gz");
}

TEST(IdxReader, TrailingBytesAreReported) {
  const auto dir = scratch_dir("idx_trailing");
  write_file(dir / "t.idx", raw_idx({0, 0, 8, 1, 0, 0, 0, 4}, 6));
  expect_idx_error(dir / "t.idx", "trailing data");
}

TEST(IdxReader, ForeignFileIsRejectedByMagic) {
  const auto dir = scratch_dir("idx_foreign");
  write_file(dir / "f.idx", "PK\x03\x04 this is a zip, not IDX");
  expect_idx_error(dir / "f.idx", "not an IDX file");
}

TEST(IdxReader, NonByteElementTypeIsRejected) {
  const auto dir = scratch_dir("idx_float");
  write_file(dir / "f.idx", raw_idx({0, 0, 0x0D, 1, 0, 0, 0, 2}, 8));
  expect_idx_error(dir / "f.idx", "unsupported IDX element type");
}

TEST(IdxReader, OversizedHeaderIsRejectedBeforeAllocating) {
  const auto dir = scratch_dir("idx_huge");
  // 4 × 0xFFFFFFFF elements: far beyond any real dataset; must fail without trying to allocate.
  write_file(dir / "h.idx", raw_idx({0,    0,    8,    4,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
                                    16));
  expect_idx_error(dir / "h.idx", "header is corrupt");
}

TEST(IdxReader, AGzipFileTooSmallForItsHeaderIsRejectedBeforeAllocating) {
  const auto dir = scratch_dir("idx_gz_bomb");
  // A header declaring 60000 x 100 x 100 bytes (600 MB) and the first megabyte of them,
  // compressed, with the gzip trailer's size field forged to match: the header reads cleanly and
  // only deflate's ratio gives the file away.
  std::vector<unsigned char> header = {0, 0, 8, 3, 0, 0, 0xea, 0x60, 0, 0, 0, 100, 0, 0, 0, 100};
  header.resize(header.size() + (1 << 20), 7);
  const auto path = dir / "bomb.idx.gz";
  gzFile out = gzopen(path.c_str(), "wb");
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(gzwrite(out, header.data(), static_cast<unsigned>(header.size())), static_cast<int>(header.size()));
  ASSERT_EQ(gzclose(out), Z_OK);
  const uint32_t promised = 16 + 60000u * 100u * 100u;
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(-4, std::ios::end);
  for (int i = 0; i < 4; ++i) f.put(static_cast<char>((promised >> (8 * i)) & 0xff));
  f.close();
  expect_idx_error(path, "-byte gzip file can hold (deflate expands at most");
}

TEST(IdxReader, TheShapeComesFromTheHeaderAlone) {
  const auto dir = scratch_dir("idx_shape");
  write_idx(dir / "x.idx.gz", sample_images());
  EXPECT_EQ(shrink::data::read_idx_shape(dir / "x.idx.gz"), (std::vector<int64_t>{5, 4, 3}));
}

TEST(IdxReader, ZeroDimensionIsRejected) {
  const auto dir = scratch_dir("idx_zero");
  write_file(dir / "z.idx", raw_idx({0, 0, 8, 1, 0, 0, 0, 0}, 0));
  expect_idx_error(dir / "z.idx", "dimension 0 is zero");
}

TEST(IdxReader, MissingFileIsReported) { expect_idx_error("/nonexistent/shrink/file.idx", "no such file"); }
