// .pth files open in Python's PyTorch with no shrink code, with equal values and equal outputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "helpers.h"
#include "io/pth_format.h"
#include "io/state_dict.h"
#include "models/registry.h"

namespace fs = std::filesystem;
using namespace shrink;
using namespace shrink::testing;

namespace {

void check_in_python(const std::string& arch, models::Classifier model, const std::vector<int64_t>& input_shape) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  const auto dir = scratch_dir("python_" + arch);
  model->eval();
  const auto x = torch::randn(input_shape);
  const auto y = model->forward(x).detach();
  const auto sd = io::state_dict(*model);
  io::save_state_dict(dir / "m.pth", sd);
  io::write_pth(dir / "probe.pth", {{"input", x, false}, {"output", y, false}});
  const auto r = run_command("/usr/bin/python3 " + tests_dir() + "/python/check_pth.py " + (dir / "m.pth").string() +
                             " " + (dir / "probe.pth").string() + " " + arch + " " + (dir / "back.pth").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto back = io::read_pth(dir / "back.pth");
  ASSERT_EQ(back.size(), sd.size());
  for (size_t i = 0; i < sd.size(); ++i) {
    EXPECT_EQ(back[i].name, sd[i].name);
    EXPECT_TRUE(torch::equal(back[i].tensor, sd[i].tensor)) << sd[i].name;
  }
}

}  // namespace

TEST(PythonInterop, MlpPthLoadsStrictlyWithEqualValuesAndOutputs) {
  torch::manual_seed(21);
  check_in_python("mlp", models::build_model(models::MlpOptions().hidden({32, 16}), {{1, 8, 8}, 4}), {5, 1, 8, 8});
}

TEST(PythonInterop, ConvNetPthWithBatchNormBuffersLoadsStrictly) {
  torch::manual_seed(22);
  auto m = models::build_model(models::ConvNetOptions().channels({4, 8}).fc({16}), {{1, 8, 8}, 4});
  m->train();
  m->forward(torch::randn({8, 1, 8, 8}));  // non-trivial running statistics
  check_in_python("convnet", m, {5, 1, 8, 8});
}
