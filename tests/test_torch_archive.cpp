// shrink's own reader of LibTorch module archives (.pt): pickles written by hand into zips, to
// pin what it accepts (module objects, tensors, strings) and what it refuses (other classes,
// cycles, shared modules) without ever compiling the archive's TorchScript code.
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>

#include "core/error.h"
#include "helpers.h"
#include "io/state_dict.h"

namespace fs = std::filesystem;
using namespace shrink;
using namespace shrink::testing;

using namespace std::string_literals;  // pickles hold NUL bytes

namespace {

// Pickle opcodes, spelled as the bytes a pickler writes.
std::string str(const std::string& s) {
  const auto n = static_cast<uint32_t>(s.size());
  std::string out = "X";
  for (int i = 0; i < 4; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  return out + s;
}
std::string global(const std::string& module, const std::string& name) { return "c" + module + "\n" + name + "\n"; }
const std::string kProto = "\x80\x02";
const std::string kNewModule = global("__torch__", "Module") + ")\x81";  // GLOBAL, EMPTY_TUPLE, NEWOBJ
const std::string kStop = ".";

// A float tensor of `n` elements over storage record `key`, as LibTorch's pickler writes one.
std::string float_tensor(const std::string& key, uint8_t n) {
  const std::string count = "K"s + static_cast<char>(n);
  // ((storage, type, key, location, numel) persistent id, offset 0, size (n,), stride (1,), False, hooks)
  return global("torch._utils", "_rebuild_tensor_v2") + "((" + str("storage") + global("torch", "FloatStorage") +
         str(key) + str("cpu") + count + "tQ" + "K\x00"s + "(" + count + "t" + "(K\x01t\x89" +
         global("collections", "OrderedDict") + ")RtR";
}

// Writes a zip holding `pickle` as data.pkl and each (key, bytes) as a storage record, and no
// code records at all: what the reader needs, and nothing LibTorch's own reader would need.
fs::path write_archive(const std::string& test, const std::string& pickle,
                       const std::vector<std::pair<std::string, std::string>>& storages = {}) {
  std::string bytes;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
    bytes.append(static_cast<const char*>(data), n);
    return n;
  });
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  for (const auto& [key, data] : storages) writer.writeRecord("data/" + key, data.data(), data.size());
  writer.writeEndOfFile();
  const fs::path path = scratch_dir(test) / "model.pt";
  write_file(path, bytes);
  return path;
}

std::string error_of(const fs::path& path) {
  try {
    io::load_state_dict_file(path);
  } catch (const core::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(TorchArchive, AModuleWithATensorReadsFromItsPickleAloneWithNoCodeRecords) {
  const float values[2] = {1.5f, -2.0f};
  const std::string pickle = kProto + kNewModule + "}(" + str("w") + float_tensor("0", 2) + "ub" + kStop;
  const auto path =
      write_archive("torch_archive_plain", pickle, {{"0", std::string(reinterpret_cast<const char*>(values), 8)}});
  const auto sd = io::load_state_dict_file(path);
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd[0].name, "w");
  EXPECT_TRUE(torch::equal(sd[0].tensor, torch::tensor({1.5f, -2.0f})));
}

TEST(TorchArchive, NestedModulesNameTheirTensorsByDottedPath) {
  const float values[1] = {3.0f};
  const std::string child = kNewModule + "}(" + str("bias") + float_tensor("0", 1) + "ub";
  const std::string pickle = kProto + kNewModule + "}(" + str("fc") + child + "ub" + kStop;
  const auto sd = io::load_state_dict_file(
      write_archive("torch_archive_nested", pickle, {{"0", std::string(reinterpret_cast<const char*>(values), 4)}}));
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd[0].name, "fc.bias");
}

TEST(TorchArchive, AnObjectOfAnyOtherClassIsRefusedNamingTheClassAndFile) {
  const std::string pickle = kProto + global("os", "system") + ")\x81" + kStop;
  const auto path = write_archive("torch_archive_foreign_class", pickle);
  const auto error = error_of(path);
  EXPECT_TRUE(contains(error, path.string())) << error;
  EXPECT_TRUE(contains(error, "creates a os.system")) << error;
}

TEST(TorchArchive, AModuleContainingItselfIsRefusedNotWalkedForever) {
  // The root is memoised, then given itself as an attribute.
  const std::string pickle = kProto + kNewModule + "q\x00}("s + str("self") + "h\x00ub"s + kStop;
  const auto path = write_archive("torch_archive_cycle", pickle);
  const auto error = error_of(path);
  EXPECT_TRUE(contains(error, path.string())) << error;
  EXPECT_TRUE(contains(error, "'self.': the same module is reached twice")) << error;
}

TEST(TorchArchive, OneModuleUnderTwoNamesIsRefusedSinceSharingCouldMultiplyPathsExponentially) {
  const std::string child = kNewModule + "q\x01}b";
  const std::string pickle = kProto + kNewModule + "}(" + str("a") + child + str("b") + "h\x01ub" + kStop;
  const auto error = error_of(write_archive("torch_archive_shared", pickle));
  EXPECT_TRUE(contains(error, "'b.': the same module is reached twice")) << error;
}

TEST(TorchArchive, AnAttributeThatIsNeitherTensorStringNorModuleIsRefusedNamingIt) {
  const std::string pickle =
      kProto + kNewModule + "}(" + str("fc") + kNewModule + "}(" + str("n") + "K\x07ubub" + kStop;
  const auto path = write_archive("torch_archive_int_attribute", pickle);
  const auto error = error_of(path);
  EXPECT_TRUE(contains(error, path.string())) << error;
  EXPECT_TRUE(contains(error, "'fc.n' is a int; expected a tensor, a string or a module")) << error;
}

TEST(TorchArchive, AStringWhereATensorBelongsIsRefusedNamingIt) {
  const std::string pickle = kProto + kNewModule + "}(" + str("weight") + str("not a tensor") + "ub" + kStop;
  const auto error = error_of(write_archive("torch_archive_string_tensor", pickle));
  EXPECT_TRUE(contains(error, "'weight' is a string, not a tensor")) << error;
}

TEST(TorchArchive, ATopLevelDictIsNotAModuleArchive) {
  const std::string pickle = kProto + "}" + kStop;
  const auto error = error_of(write_archive("torch_archive_dict", pickle));
  EXPECT_TRUE(contains(error, "expected a LibTorch module archive, found a dict")) << error;
}
