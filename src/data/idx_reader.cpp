// IDX parsing with every size checked against the file before the payload is allocated.
#include "data/idx_reader.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/memory_budget.h"

namespace shrink::data {

namespace fs = std::filesystem;
using core::cat;

namespace {

constexpr int kMaxDims = 4;
// Larger than any IDX dataset in use; stops a forged header from asking for terabytes.
constexpr uint64_t kMaxPayloadBytes = uint64_t{8} << 30;
// deflate expands at most ~1032:1 (258-byte matches coded in 2 bits); with headers, 1100 is safe.
constexpr uint64_t kMaxDeflateRatio = 1100;

struct GzCloser {
  void operator()(gzFile f) const {
    if (f) gzclose(f);
  }
};
using GzHandle = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

bool has_gzip_magic(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char m[2] = {0, 0};
  in.read(reinterpret_cast<char*>(m), 2);
  return in.gcount() == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

// gzip stores the uncompressed size mod 2^32 in its last four bytes (RFC 1952, ISIZE).
uint32_t gzip_isize(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(-4, std::ios::end);
  unsigned char b[4] = {0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(b), 4);
  return uint32_t(b[0]) | (uint32_t(b[1]) << 8) | (uint32_t(b[2]) << 16) | (uint32_t(b[3]) << 24);
}

uint32_t big_endian(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// Reads exactly n bytes or reports how many came.
int64_t read_fully(gzFile f, void* dst, uint64_t n, const fs::path& path) {
  auto* out = static_cast<unsigned char*>(dst);
  uint64_t done = 0;
  while (done < n) {
    const auto chunk = static_cast<unsigned>(std::min<uint64_t>(n - done, 1u << 30));
    const int got = gzread(f, out + done, chunk);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      throw core::Error(cat(path.string(), ": corrupt compressed data (", msg ? msg : "zlib error", ")"));
    }
    if (got == 0) break;
    done += static_cast<uint64_t>(got);
  }
  return static_cast<int64_t>(done);
}

// An open IDX file positioned at its payload, with the header's dimensions checked against the
// file: what read_idx allocates and what read_idx_shape reports.
struct OpenIdx {
  GzHandle file;
  std::vector<int64_t> dims;
  uint64_t payload = 0;
};

OpenIdx open_idx(const fs::path& path) {
  std::error_code ec;
  core::require_regular_file(path);
  const uint64_t file_size = fs::file_size(path, ec);
  const bool gz = has_gzip_magic(path);
  if (gz && file_size < 18) throw core::Error(cat(path.string(), ": truncated gzip file (", file_size, " bytes)"));

  GzHandle f(gzopen(path.c_str(), "rb"));
  if (!f) throw core::Error(cat(path.string(), ": cannot open"));

  unsigned char magic[4];
  if (read_fully(f.get(), magic, 4, path) != 4) {
    throw core::Error(cat(path.string(), ": truncated: shorter than the 4-byte IDX magic"));
  }
  if (magic[0] != 0 || magic[1] != 0) {
    throw core::Error(
        cat(path.string(), ": not an IDX file (magic bytes ", int(magic[0]), ",", int(magic[1]), " instead of 0,0)"));
  }
  if (magic[2] != 0x08) {
    throw core::Error(cat(path.string(), ": unsupported IDX element type 0x", std::hex, int(magic[2]),
                          " (only unsigned byte, 0x08, is supported)"));
  }
  const int ndims = magic[3];
  if (ndims < 1 || ndims > kMaxDims) {
    throw core::Error(cat(path.string(), ": IDX header declares ", ndims, " dimensions; expected 1 to ", kMaxDims));
  }
  std::array<unsigned char, 4 * kMaxDims> raw_dims{};
  if (read_fully(f.get(), raw_dims.data(), 4u * ndims, path) != 4 * ndims) {
    throw core::Error(cat(path.string(), ": truncated inside the IDX header"));
  }
  std::vector<int64_t> dims(ndims);
  uint64_t payload = 1;
  for (int i = 0; i < ndims; ++i) {
    const uint32_t d = big_endian(raw_dims.data() + 4 * i);
    if (d == 0) throw core::Error(cat(path.string(), ": dimension ", i, " is zero"));
    if (payload > kMaxPayloadBytes / d) {
      throw core::Error(cat(path.string(), ": IDX dimensions describe more than ", kMaxPayloadBytes,
                            " bytes; the header is corrupt"));
    }
    payload *= d;
    dims[i] = d;
  }
  const uint64_t expected_total = 4 + 4 * static_cast<uint64_t>(ndims) + payload;
  if (gz) {
    const uint32_t isize = gzip_isize(path);
    if (isize != static_cast<uint32_t>(expected_total & 0xffffffffu)) {
      throw core::Error(cat(path.string(), ": header promises ", expected_total, " bytes but the gzip trailer records ",
                            isize, " (truncated or corrupt file)"));
    }
  } else if (file_size != expected_total) {
    throw core::Error(cat(path.string(), ": ", file_size < expected_total ? "truncated" : "trailing data",
                          ": header promises ", expected_total, " bytes, file has ", file_size));
  }

  // A small .gz cannot honestly hold a large payload: checked before anything is allocated.
  if (gz && expected_total / kMaxDeflateRatio > file_size) {
    throw core::Error(cat(path.string(), ": header promises ", expected_total, " bytes, more than a ", file_size,
                          "-byte gzip file can hold (deflate expands at most ", kMaxDeflateRatio,
                          ":1); the file is corrupt"));
  }
  return {std::move(f), std::move(dims), payload};
}

}  // namespace

std::vector<int64_t> read_idx_shape(const fs::path& path) { return open_idx(path).dims; }

at::Tensor read_idx(const fs::path& path) {
  auto [f, dims, payload] = open_idx(path);
  core::check_fits_in_memory(payload, path.string());
  auto out = at::empty(dims, at::TensorOptions().dtype(at::kByte));
  const int64_t got = read_fully(f.get(), out.data_ptr<uint8_t>(), payload, path);
  if (static_cast<uint64_t>(got) != payload) {
    throw core::Error(cat(path.string(), ": truncated: expected ", payload, " payload bytes, got ", got));
  }
  unsigned char extra;
  if (read_fully(f.get(), &extra, 1, path) != 0) {
    throw core::Error(cat(path.string(), ": trailing data after the ", payload, " payload bytes"));
  }
  return out;
}

void write_idx(const fs::path& path, const at::Tensor& data) {
  SHRINK_CHECK(data.scalar_type() == at::kByte, "write_idx expects uint8, got ", data.scalar_type());
  SHRINK_CHECK(data.dim() >= 1 && data.dim() <= kMaxDims, "write_idx expects 1 to 4 dims, got ", data.dim());
  const auto t = data.contiguous();
  std::string bytes = {0, 0, 0x08, static_cast<char>(t.dim())};
  for (int64_t d : t.sizes()) {
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<char>((static_cast<uint64_t>(d) >> s) & 0xff));
  }
  bytes.append(reinterpret_cast<const char*>(t.data_ptr<uint8_t>()), static_cast<size_t>(t.numel()));
  const bool gz = path.extension() == ".gz";
  core::write_atomically(path, [&](const fs::path& temp) {
    if (!gz) return core::write_file_fully(temp, bytes.data(), bytes.size());
    GzHandle out(gzopen(temp.c_str(), "wb"));
    SHRINK_CHECK(out, "cannot open ", temp, " for writing: ", std::strerror(errno));
    const bool written =
        gzwrite(out.get(), bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size());
    // gzclose flushes the last block: a full disk often shows only here.
    const bool closed = gzclose(out.release()) == Z_OK;
    SHRINK_CHECK(written && closed, "failed writing ", temp, ": ", std::strerror(errno));
  });
}

}  // namespace shrink::data
