// state_dict formats: exact round trips, LibTorch compatibility, fit checks and damaged files.
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "core/error.h"
#include "helpers.h"
#include "io/state_dict.h"
#include "models/registry.h"

namespace fs = std::filesystem;
using namespace shrink;
using namespace shrink::testing;

namespace {

models::Classifier convnet(uint64_t seed) {
  torch::manual_seed(seed);
  auto m = models::build_model(models::ConvNetOptions().channels({4, 8}).fc({16}), {{1, 8, 8}, 3});
  // One training-mode pass so BatchNorm's running statistics and counter are non-trivial.
  m->train();
  m->forward(torch::randn({4, 1, 8, 8}));
  return m;
}

void expect_equal(const io::StateDict& a, const io::StateDict& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].tensor.scalar_type(), b[i].tensor.scalar_type()) << a[i].name;
    EXPECT_TRUE(torch::equal(a[i].tensor, b[i].tensor)) << a[i].name;
  }
}

class StateDictFormat : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(StateDictFormat, RoundTripsExactlyInOrder) {
  const auto path = scratch_dir("sd_roundtrip_" + GetParam()) / ("m." + GetParam());
  const auto sd = io::state_dict(*convnet(1));
  io::save_state_dict(path, sd);
  expect_equal(io::load_state_dict_file(path), sd);
}

TEST_P(StateDictFormat, LoadsIntoAFreshModel) {
  const auto path = scratch_dir("sd_load_" + GetParam()) / ("m." + GetParam());
  auto source = convnet(1);
  io::save_state_dict(path, io::state_dict(*source));
  auto target = convnet(2);
  io::load_state_dict(*target, io::load_state_dict_file(path), path.string());
  expect_equal(io::state_dict(*target), io::state_dict(*source));
}

TEST_P(StateDictFormat, TruncatedFileIsDetected) {
  const auto dir = scratch_dir("sd_trunc_" + GetParam());
  io::save_state_dict(dir / ("m." + GetParam()), io::state_dict(*convnet(1)));
  const std::string bytes = read_file(dir / ("m." + GetParam()));
  write_file(dir / ("cut." + GetParam()), bytes.substr(0, bytes.size() * 2 / 3));
  try {
    io::load_state_dict_file(dir / ("cut." + GetParam()));
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut." + GetParam()), std::string::npos) << e.what();
  }
}

TEST_P(StateDictFormat, ForeignFileIsRejectedBySignature) {
  const auto path = scratch_dir("sd_foreign_" + GetParam()) / ("m." + GetParam());
  write_file(path, "definitely not a tensor archive");
  try {
    io::load_state_dict_file(path);
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("wrong signature"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, StateDictFormat, ::testing::Values("pt", "pth", "h5"));

// The zip formats pickle each tensor's strides; one changed byte must not read past the storage.
class ZipStateDictFormat : public ::testing::TestWithParam<std::string> {};

TEST_P(ZipStateDictFormat, AStrideReachingPastTheStorageIsAnErrorNamingFileAndTensor) {
  const auto dir = scratch_dir("sd_stride_" + GetParam());
  const auto good = dir / ("good." + GetParam()), bad = dir / ("bad." + GetParam());
  io::save_state_dict(good, {{"w", torch::ones({2, 3}), false}});
  std::string bytes = read_file(good);
  const std::string strides("(K\x03K\x01t", 6);  // LibTorch's pickled tuple (3, 1): MARK, BININT1 3, BININT1 1, TUPLE
  const auto at = bytes.find(strides);
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(bytes.find(strides, at + 1), std::string::npos);
  bytes[at + 2] = 127;
  reseal_zip(bytes);
  write_file(bad, bytes);
  try {
    io::load_state_dict_file(bad);
    FAIL() << "accepted";
  } catch (const core::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(bad.string()), std::string::npos) << what;
    EXPECT_NE(
        what.find("'w': tensor of shape [2, 3], strides [127, 1] and offset 0 reaches past its storage of 6 elements"),
        std::string::npos)
        << what;
  }
}

TEST_P(ZipStateDictFormat, AnOffsetPastTheStorageIsAnErrorNamingTheTensor) {
  const auto dir = scratch_dir("sd_offset_" + GetParam());
  const auto good = dir / ("good." + GetParam()), bad = dir / ("bad." + GetParam());
  io::save_state_dict(good, {{"w", torch::ones({2, 3}), false}});
  std::string bytes = read_file(good);
  const std::string offset_and_shape("K\x00(K\x02K\x03t", 8);  // BININT1 0, then the pickled shape (2, 3)
  const auto at = bytes.find(offset_and_shape);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 1] = 4;  // 4 + 5 = 9 > 6 elements
  reseal_zip(bytes);
  write_file(bad, bytes);
  try {
    io::load_state_dict_file(bad);
    FAIL() << "accepted";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'w': tensor of shape [2, 3], strides [3, 1] and offset 4 reaches past"),
              std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(ZipFormats, ZipStateDictFormat, ::testing::Values("pt", "pth"));

TEST(StateDict, PtFileLoadsWithPlainLibTorch) {
  const auto path = scratch_dir("sd_plain_libtorch") / "m.pt";
  auto source = convnet(1);
  io::save_module(path, *source);
  auto target = convnet(2);
  torch::load(target, path.string());
  expect_equal(io::load_state_dict_file(path), io::state_dict(*source));
  expect_equal(io::state_dict(*target), io::state_dict(*source));
}

TEST(StateDict, H5KeepsEveryDtype) {
  const auto path = scratch_dir("sd_dtypes") / "d.h5";
  const io::StateDict sd = {{"f16", torch::randn({3}).to(torch::kHalf), false},
                            {"bf16", torch::randn({2, 2}).to(torch::kBFloat16), false},
                            {"f64", torch::randn({2}, torch::kDouble), false},
                            {"i8", torch::tensor({-3, 4}, torch::kChar), true},
                            {"flag", torch::tensor({true, false}), true},
                            {"count", torch::tensor(12, torch::kLong), true},
                            {"empty", torch::zeros({0, 4}), false}};
  io::save_state_dict(path, sd);
  expect_equal(io::load_state_dict_file(path), sd);
}

TEST(StateDict, MismatchesAreAllListed) {
  auto small = models::build_model(models::MlpOptions().hidden({4}), {{3}, 2});
  auto sd = io::state_dict(*models::build_model(models::MlpOptions().hidden({5}), {{3}, 2}));
  sd.push_back({"extra.weight", torch::zeros({1}), false});
  sd.erase(sd.begin() + 3);  // classifier.2.bias
  try {
    io::load_state_dict(*small, sd, "weights.pth");
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("weights.pth: state_dict does not fit the model (5 problems)"), std::string::npos) << what;
    EXPECT_NE(what.find("'classifier.0.weight' has shape [5, 3], the model expects [4, 3]"), std::string::npos) << what;
    EXPECT_NE(what.find("missing tensor 'classifier.2.bias'"), std::string::npos) << what;
    EXPECT_NE(what.find("unexpected tensor 'extra.weight'"), std::string::npos) << what;
  }
}

TEST(StateDict, AMismatchOfManyTensorsListsTheFirstTwentyAndACount) {
  auto small = models::build_model(models::MlpOptions().hidden({4}), {{3}, 2});
  auto sd = io::state_dict(*small);
  for (int i = 0; i < 100; ++i) sd.push_back({"extra" + std::to_string(i), torch::zeros({1}), false});
  try {
    io::load_state_dict(*small, sd, "weights.pth");
    FAIL() << "expected an error";
  } catch (const core::Error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(contains(what, "(100 problems)")) << what;
    EXPECT_TRUE(contains(what, "unexpected tensor 'extra19'")) << what;
    EXPECT_FALSE(contains(what, "'extra20'")) << what;
    EXPECT_TRUE(contains(what, "... and 80 more")) << what;
  }
}

TEST(StateDict, NonFiniteWeightsAreRefusedNamingEachTensor) {
  auto model = models::build_model(models::MlpOptions().hidden({4}), {{3}, 2});
  auto sd = io::state_dict(*model);
  sd[1].tensor = sd[1].tensor.clone();
  sd[1].tensor[0] = std::numeric_limits<float>::quiet_NaN();
  sd[1].tensor[1] = std::numeric_limits<float>::infinity();
  try {
    io::load_state_dict(*model, sd, "weights.pth");
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    const std::string what = e.what();
    EXPECT_TRUE(contains(what, "weights.pth: non-finite weights (1 problem):")) << what;
    EXPECT_TRUE(contains(what, "'" + sd[1].name + "' has 1 NaN and 1 infinite values (of 4)")) << what;
    EXPECT_TRUE(contains(what, "--allow-non-finite loads them anyway")) << what;
  }
}

TEST(StateDict, NonFiniteWeightsLoadWhenAllowed) {
  auto model = models::build_model(models::MlpOptions().hidden({4}), {{3}, 2});
  auto sd = io::state_dict(*model);
  sd[1].tensor = torch::full_like(sd[1].tensor, std::numeric_limits<float>::quiet_NaN());
  io::allow_non_finite_weights(true);
  EXPECT_NO_THROW(io::load_state_dict(*model, sd, "weights.pth"));
  io::allow_non_finite_weights(false);
  EXPECT_TRUE(io::state_dict(*model)[1].tensor.isnan().all().item<bool>());
}

TEST(StateDict, PyTorchsLegacyFormatIsNamedWithHowToResaveIt) {
  for (const std::string ext : {"pt", "pth"}) {
    const auto path = scratch_dir("sd_legacy_" + ext) / ("m." + ext);
    // What torch.save(..., _use_new_zipfile_serialization=False) begins with: pickle protocol 2
    // and its magic number.
    write_file(path, std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e", 15));
    try {
      io::load_state_dict_file(path);
      ADD_FAILURE() << "expected an error for " << ext;
    } catch (const core::UsageError& e) {
      EXPECT_TRUE(contains(e.what(), "legacy (pre-1.6, non-zip) torch.save format")) << e.what();
      EXPECT_TRUE(contains(e.what(), "torch.save(torch.load(path), path)")) << e.what();
    }
  }
}

// tests/data/torch2_state_dict.pth: torch.save of PyTorch 2.15 (tests/python/make_torch2_state_dict.py).
TEST(StateDict, AStateDictSavedByPyTorch2ReadsWithItsValuesAndViews) {
  const auto sd = io::load_state_dict_file(tests_dir() + "/data/torch2_state_dict.pth");
  ASSERT_EQ(sd.size(), 4u);
  EXPECT_EQ(sd[0].name, "fc.weight");
  EXPECT_TRUE(torch::equal(sd[0].tensor, torch::arange(6, torch::kFloat).reshape({2, 3}) / 4));
  EXPECT_EQ(sd[1].name, "fc.bias");
  EXPECT_TRUE(torch::equal(sd[1].tensor, torch::tensor({-1.5f, 2.25f})));
  EXPECT_EQ(sd[2].name, "bn.num_batches_tracked");
  EXPECT_EQ(sd[2].tensor.scalar_type(), torch::kLong);
  EXPECT_EQ(sd[2].tensor.item<int64_t>(), 7);
  EXPECT_EQ(sd[3].name, "fc.weight_t");
  EXPECT_TRUE(torch::equal(sd[3].tensor, sd[0].tensor.t()));
}

// torch.load's default since PyTorch 2.6 is weights_only=True, whose unpickler refuses any call it
// does not list: LibTorch's torch::pickle_save wraps a dict in torch.jit._pickle.restore_type_tag,
// one of those (tests/python/check_pth.py loads shrink's files that way in PyTorch).
TEST(StateDict, APthHoldsNoCallPyTorchsWeightsOnlyLoadRefuses) {
  const auto path = scratch_dir("sd_weights_only") / "m.pth";
  io::save_state_dict(path, {{"w", torch::ones({2, 2}), false}, {"steps", torch::tensor(3), true}});
  caffe2::serialize::PyTorchStreamReader reader(path.string());
  const auto [data, size] = reader.getRecord("data.pkl");
  const std::string pickle(static_cast<const char*>(data.get()), size);
  EXPECT_FALSE(contains(pickle, "torch.jit")) << pickle;
  EXPECT_TRUE(contains(pickle, "_rebuild_tensor_v2")) << pickle;
}

TEST(StateDict, AnUnknownExtensionIsAUsageErrorListingTheFormats) {
  try {
    io::format_for("model.bin");
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "model.bin: unknown state_dict format '.bin' (expected .pt, .pth or .h5)"))
        << e.what();
  }
}

TEST(StateDict, AnOnnxFileIsRefusedNamingWhereItRunsAndWhatShrinkReads) {
  try {
    io::format_for("model.onnx");
    FAIL() << "expected an error";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "model.onnx: an ONNX graph is for ONNX Runtime (docs/python/onnx_eval.py"))
        << e.what();
    EXPECT_TRUE(contains(e.what(), "the state_dict it was exported from (.pt, .pth or .h5)")) << e.what();
  }
}

TEST(StateDict, AWriteThatFailsMidwayLeavesThePreviousFileIntactAndNoTemporary) {
  const auto dir = scratch_dir("sd_atomic");
  io::save_state_dict(dir / "m.h5", io::state_dict(*convnet(1)));
  const std::string before = read_file(dir / "m.h5");
  // The last entry has a dtype .h5 cannot store: the writer fails after writing the others.
  auto sd = io::state_dict(*convnet(2));
  sd.push_back({"z", torch::zeros({2}, torch::kComplexFloat), false});
  try {
    io::save_state_dict(dir / "m.h5", sd);
    FAIL() << "expected an Error";
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot store dtype"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(dir / "m.h5"), before);
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().filename(), "m.h5");
}
