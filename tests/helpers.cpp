// Test fixture implementations.
#include "helpers.h"

#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "io/pth_format.h"
#include "models/restore.h"
#include "models/torchscript.h"
#include "test_paths.h"

namespace shrink::testing {

namespace fs = std::filesystem;

fs::path scratch_root() { return fs::temp_directory_path() / ("shrink-test-" + std::to_string(::getpid())); }

fs::path scratch_dir(const std::string& name) {
  const fs::path dir = scratch_root() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// ctest starts a process per test, and each used to leave its folder behind: 10,072 of them,
// 15 GB, were in /tmp on a machine that had run the suite often.
void finish_scratch(bool passed) {
  const fs::path root = scratch_root();
  std::error_code ec;
  if (!fs::exists(root, ec)) return;
  const char* keep = std::getenv("SHRINK_KEEP_TEST_FILES");
  if (passed && !(keep && *keep)) {
    fs::remove_all(root, ec);
    if (ec) std::cerr << "could not remove the tests' files in " << root << ": " << ec.message() << "\n";
    return;
  }
  std::cout << "the tests' files are kept in " << root.string() << "\n";
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path write_recipe(const std::string& name, const std::string& text) {
  const auto path = scratch_dir(name) / "recipe.yaml";
  write_file(path, text);
  return path;
}

runtime::Int8GemvWeights random_gemv_weights(int64_t rows, int64_t cols) {
  runtime::Int8GemvWeights w;
  w.rows = rows;
  w.cols = cols;
  const auto values = torch::randint(-128, 128, {rows, cols}).to(torch::kChar);
  w.values.assign(values.data_ptr<int8_t>(), values.data_ptr<int8_t>() + values.numel());
  const auto sums = values.to(torch::kInt).sum(1).to(torch::kInt).contiguous();
  w.row_sums.assign(sums.data_ptr<int32_t>(), sums.data_ptr<int32_t>() + rows);
  const auto scales = (torch::rand({rows}) * 0.01 + 0.001).contiguous();
  w.scales.assign(scales.data_ptr<float>(), scales.data_ptr<float>() + rows);
  const auto bias = torch::randn({rows}).contiguous();
  w.bias.assign(bias.data_ptr<float>(), bias.data_ptr<float>() + rows);
  return w;
}

runtime::Int8GemvParams gemv_test_params(bool relu) {
  runtime::Int8GemvParams p;
  p.in_scale = 0.01f;
  p.in_zero_point = 37;
  p.out_scale = 0.5f;
  p.out_zero_point = 60;
  p.relu = relu;
  return p;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string shrink_binary() { return SHRINK_BINARY; }
std::string tests_dir() { return SHRINK_TESTS_DIR; }

CommandResult run_shrink(const std::string& args) { return run_command(shrink_binary() + " " + args); }

int start_shrink(const std::string& args) {
  const std::string command = "exec " + shrink_binary() + " " + args + " >/dev/null 2>&1";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

bool python_torch_available() {
  return fs::exists("/usr/bin/python3") && run_command("/usr/bin/python3 -c 'import torch'").exit_code == 0;
}

std::string ort_python() {
  const char* p = std::getenv("SHRINK_ORT_PYTHON");
  if (!p || !*p || run_command(std::string(p) + " -c 'import onnxruntime'").exit_code != 0) return "";
  return p;
}

nlohmann::json onnx_runtime_parity(const fs::path& onnx_file, const at::Tensor& x, const at::Tensor& expected) {
  const auto raw = [](const fs::path& path, const at::Tensor& t) {
    const auto c = t.contiguous();
    write_file(path, std::string(static_cast<const char*>(c.data_ptr()), c.nbytes()));
  };
  const bool ids = x.scalar_type() == at::kLong;
  const auto input = onnx_file.parent_path() / (ids ? "x.i64" : "x.f32");
  raw(input, ids ? x : x.to(at::kFloat));
  raw(onnx_file.parent_path() / "y.f32", expected.detach().to(at::kFloat));
  std::string shape;
  for (const auto d : x.sizes()) shape += " " + std::to_string(d);
  const auto r = run_command(ort_python() + " " + tests_dir() + "/python/onnx_parity.py " + onnx_file.string() + " " +
                             input.string() + " " + (onnx_file.parent_path() / "y.f32").string() + shape);
  if (r.exit_code != 0) throw std::runtime_error("onnx_parity.py failed: " + r.output);
  return last_json_line(r.output);
}

nlohmann::json read_json(const std::filesystem::path& path) { return nlohmann::json::parse(read_file(path)); }

nlohmann::json last_json_line(const std::string& output) {
  const auto end = output.find_last_not_of('\n');
  const auto start = output.rfind('\n', end);
  return nlohmann::json::parse(output.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start + 1)));
}

void write_probe(const fs::path& file, const fs::path& probe) {
  models::allow_torchscript(true);
  const auto restored = models::restore_model(file);
  torch::manual_seed(8);
  const auto x = torch::rand({16, 1, 8, 8});
  at::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = restored.model.forward(x);
  }
  io::write_pth(probe, {{"input", x, false}, {"output", y, false}});
}

std::string synthetic_recipe(int epochs, const std::string& extra_stage) {
  return "name: synthetic-test\n"
         "seed: 7\n"
         "device: cpu\n"
         "threads: 1\n"
         "data:\n"
         "  format: synthetic\n"
         "  synthetic: {samples: 512, test_samples: 256, classes: 4, shape: [1, 8, 8], noise: 1.0}\n"
         "  val_split: 0.1\n"
         "models:\n"
         "  small:\n"
         "    arch: mlp\n"
         "    hidden: [32, 16]\n"
         "stages:\n"
         "  - train:\n"
         "      model: small\n"
         "      epochs: " +
         std::to_string(epochs) +
         "\n"
         "      batch_size: 32\n"
         "      optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n" +
         extra_stage +
         "report:\n"
         "  latency_batch_sizes: [1, 8]\n"
         "  warmup: 1\n"
         "  iterations: 3\n";
}

}  // namespace shrink::testing
