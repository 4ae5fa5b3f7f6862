// Shared test fixtures: scratch folders, running the shrink binary, small recipes.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "runtime/int8_gemv.h"
#include "zip_reseal.h"

namespace shrink::testing {

// This test process's folder of scratch folders: TMPDIR's shrink-test-<process id>.
std::filesystem::path scratch_root();
// A fresh, empty folder for one test, named after it, under scratch_root().
std::filesystem::path scratch_dir(const std::string& name);
// Ends a test process: removes scratch_root() after a run that passed, keeps it after one that
// failed or when SHRINK_KEEP_TEST_FILES is set, and then says where it is.
void finish_scratch(bool passed);
void write_file(const std::filesystem::path& path, const std::string& text);
std::string read_file(const std::filesystem::path& path);
// Writes `text` as recipe.yaml in a fresh scratch folder named `name` and returns its path.
std::filesystem::path write_recipe(const std::string& name, const std::string& text);
bool contains(const std::string& text, const std::string& part);
// Int8 GEMV weights of `rows` × `cols` seeded random int8 values with their row sums, scales in
// [0.001, 0.011) and biases from N(0, 1), drawn in that order.
runtime::Int8GemvWeights random_gemv_weights(int64_t rows, int64_t cols);
// The GEMV tests' requantization: input scale 0.01 and zero point 37, output scale 0.5 and zero
// point 60.
runtime::Int8GemvParams gemv_test_params(bool relu);
nlohmann::json read_json(const std::filesystem::path& path);
// The last line of a command's output, parsed (tests/python helpers print one JSON line).
nlohmann::json last_json_line(const std::string& output);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
CommandResult run_command(const std::string& command);
// Runs the built shrink executable with `args` (already shell-quoted where needed).
CommandResult run_shrink(const std::string& args);
// Starts it in the background (output discarded) and returns its process id.
int start_shrink(const std::string& args);

bool python_torch_available();

// ONNX Runtime's python (SHRINK_ORT_PYTHON, which `make test` sets from
// scripts/install-onnxruntime.sh); empty when it is not there.
std::string ort_python();
// `onnx_file` run in ONNX Runtime on `x` (float samples or int64 token ids) against `expected`,
// shrink's output for `x`: tests/python/onnx_parity.py's {max_abs_diff, top1_agreement,
// min_cosine}. Throws with the script's output when it fails.
nlohmann::json onnx_runtime_parity(const std::filesystem::path& onnx_file, const at::Tensor& x,
                                   const at::Tensor& expected);

// The built shrink executable and this tests/ folder.
std::string shrink_binary();
std::string tests_dir();

// The model in `file` restored with no recipe, run on 16 seeded samples of 1 × 8 × 8: input and
// logits in `probe` (a .pth the tests/python scripts read as {"input", "output"}).
void write_probe(const std::filesystem::path& file, const std::filesystem::path& probe);

// A small recipe over synthetic data that trains in about a second.
std::string synthetic_recipe(int epochs = 2, const std::string& extra_stage = "");

}  // namespace shrink::testing
