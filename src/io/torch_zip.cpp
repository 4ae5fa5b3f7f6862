// A bounds-checked reader of zip central directories, for the stored records PyTorch writes.
#include "io/torch_zip.h"

#include <zlib.h>

#include <algorithm>

#include "core/error.h"

namespace shrink::io {

using core::cat;

namespace {

constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64EndLocator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr size_t kEndOfDirectoryBytes = 22;
constexpr size_t kMaxCommentBytes = 0xffff;
// TorchScript code records are a few KB; a larger claim is forged (and would be allocated).
constexpr uint64_t kMaxDeflatedRecordBytes = 64 << 20;

class Bytes {
 public:
  Bytes(std::string_view data, const std::string& what) : data_(data), what_(what) {}

  uint64_t le(uint64_t at, int width) const {
    if (at > data_.size() || static_cast<uint64_t>(width) > data_.size() - at) {
      throw core::Error(cat(what_, ": zip structure points past the end of the file (truncated or corrupt)"));
    }
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i)
      v = (v << 8) | static_cast<unsigned char>(data_[at + static_cast<uint64_t>(i)]);
    return v;
  }
  uint64_t size() const { return data_.size(); }

 private:
  std::string_view data_;
  const std::string& what_;
};

std::string inflate_record(std::string_view in, uint64_t size, const std::string& name, const std::string& what) {
  std::string out(size, '\0');
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) throw core::Error(cat(what, ": cannot start inflating '", name, "'"));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_FINISH);
  const uint64_t produced = z.total_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END || produced != size) {
    throw core::Error(cat(what, ": corrupt zip archive: record '", name, "' does not inflate to its ", size, " bytes"));
  }
  return out;
}

}  // namespace

std::map<std::string, ZipRecord> read_zip_index(std::string_view archive, const std::string& what) {
  const Bytes b(archive, what);
  const auto corrupt = [&](const std::string& why) { return core::Error(cat(what, ": corrupt zip archive: ", why)); };
  if (b.size() < kEndOfDirectoryBytes) throw corrupt("shorter than a zip trailer");
  uint64_t end = b.size() - kEndOfDirectoryBytes;
  const uint64_t lowest =
      b.size() > kEndOfDirectoryBytes + kMaxCommentBytes ? b.size() - kEndOfDirectoryBytes - kMaxCommentBytes : 0;
  while (b.le(end, 4) != kEndOfDirectory) {
    if (end == lowest) throw corrupt("no end-of-directory record (truncated?)");
    --end;
  }
  uint64_t entries = b.le(end + 10, 2);
  uint64_t dir_size = b.le(end + 12, 4);
  uint64_t dir_offset = b.le(end + 16, 4);
  if (entries == 0xffff || dir_size == 0xffffffff || dir_offset == 0xffffffff) {
    if (end < 20 || b.le(end - 20, 4) != kZip64EndLocator) throw corrupt("zip64 locator missing");
    const uint64_t end64 = b.le(end - 20 + 8, 8);
    if (b.le(end64, 4) != kZip64End) throw corrupt("zip64 end-of-directory record missing");
    entries = b.le(end64 + 32, 8);
    dir_size = b.le(end64 + 40, 8);
    dir_offset = b.le(end64 + 48, 8);
  }
  if (dir_offset > b.size() || dir_size > b.size() - dir_offset) throw corrupt("directory lies outside the file");
  // Each directory entry takes at least 46 bytes, which bounds a forged entry count.
  if (entries > dir_size / 46) throw corrupt(cat(entries, " entries cannot fit a ", dir_size, "-byte directory"));

  std::map<std::string, ZipRecord> records;
  uint64_t at = dir_offset;
  for (uint64_t i = 0; i < entries; ++i) {
    if (b.le(at, 4) != kDirectoryEntry) throw corrupt(cat("directory entry ", i, " has a bad signature"));
    const uint64_t method = b.le(at + 10, 2);
    uint64_t compressed = b.le(at + 20, 4);
    uint64_t size = b.le(at + 24, 4);
    const uint64_t name_len = b.le(at + 28, 2), extra_len = b.le(at + 30, 2), comment_len = b.le(at + 32, 2);
    uint64_t local = b.le(at + 42, 4);
    if (at + 46 + name_len > b.size()) throw corrupt("entry name past the end of the file");
    const std::string name(archive.substr(at + 46, name_len));
    // Zip64 extra field: the 64-bit values of whichever fields hold 0xffffffff, in this order.
    uint64_t extra = at + 46 + name_len;
    const uint64_t extra_end = extra + extra_len;
    while (extra + 4 <= extra_end) {
      const uint64_t id = b.le(extra, 2), len = b.le(extra + 2, 2);
      uint64_t field = extra + 4;
      if (id == 1) {
        for (uint64_t* v : {&size, &compressed, &local}) {
          if (*v == 0xffffffff && field + 8 <= extra + 4 + len) {
            *v = b.le(field, 8);
            field += 8;
          }
        }
      }
      extra += 4 + len;
    }
    // Tensor data and pickles are stored; TorchScript code records (in .pt files) are deflated.
    if (!(method == 0 && compressed == size) && !(method == 8 && size <= kMaxDeflatedRecordBytes)) {
      throw corrupt(cat("record '", name, "' has compression method ", method, " and ", size,
                        " bytes; PyTorch stores data records and deflates only small code records"));
    }
    const uint64_t crc = b.le(at + 16, 4);
    if (b.le(local, 4) != kLocalHeader) throw corrupt(cat("record '", name, "' has no local header"));
    const uint64_t data = local + 30 + b.le(local + 26, 2) + b.le(local + 28, 2);
    if (data > b.size() || compressed > b.size() - data) {
      throw corrupt(cat("record '", name, "' of ", compressed, " bytes reaches past the end of the file (truncated?)"));
    }
    // LibTorch's reader skips the checksums; without them a flipped byte in a code record
    // reaches the TorchScript compiler, which can crash on it.
    const std::string inflated = method == 8 ? inflate_record(archive.substr(data, compressed), size, name, what) : "";
    const std::string_view content = method == 8 ? std::string_view(inflated) : archive.substr(data, size);
    uLong actual = crc32(0L, Z_NULL, 0);
    for (uint64_t done = 0; done < content.size();) {
      const auto n = static_cast<uInt>(std::min<uint64_t>(content.size() - done, 1u << 30));
      actual = crc32(actual, reinterpret_cast<const Bytef*>(content.data() + done), n);
      done += n;
    }
    if (actual != crc) throw corrupt(cat("record '", name, "' fails its checksum (damaged file)"));
    records[name] = {data, size, method == 8};
    at += 46 + name_len + extra_len + comment_len;
  }
  return records;
}

}  // namespace shrink::io
