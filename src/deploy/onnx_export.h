// ONNX export: a shrink model written as an ONNX graph (Debian's libonnx: protobuf types, checker,
// shape inference) that ONNX Runtime, TensorRT or OpenVINO run without shrink.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "models/blueprint.h"
#include "models/model.h"

namespace shrink::deploy {

// The lowest opset whose operators the exporter writes as it does (BatchNormalization-15 without
// training outputs, Flatten, Gemm-13) and the highest Debian's libonnx 1.12 checks.
constexpr int64_t kMinOnnxOpset = 15;
constexpr int64_t kMaxOnnxOpset = 17;

struct OnnxExportOptions {
  TORCH_ARG(int64_t, opset) = 17;
  // Folds each BatchNorm into the Conv or Linear before it (what shrink's inference plan runs);
  // false keeps BatchNormalization nodes with the file's running statistics. The file's metadata
  // says which.
  TORCH_ARG(bool, fold_batch_norm) = true;
  // Extra metadata_props (recipe sha, stage), beside shrink's version and the blueprint.
  using Metadata = std::map<std::string, std::string>;
  TORCH_ARG(Metadata, metadata) = {};
};

// Throws a UsageError when an option is out of range, naming it and the bad value.
void validate(const OnnxExportOptions& options);

// Why models of architecture `arch` (a blueprint's) cannot be exported, checked before any work
// (a recipe that exports them is refused at validation); empty when the exporter takes them —
// whether every layer has an ONNX form is still checked at export.
std::string onnx_refusal(const std::string& arch);

// The serialized ONNX model of `model` (built from `blueprint`, eval mode, on the CPU): input
// "input" of shape [batch, sample shape...] with a symbolic batch, output "logits" [batch, classes].
// A bert takes "input_ids" (int64 [batch, sequence], both symbolic; padding is its pad id) and
// gives "logits" with a head, else "embeddings" [batch, hidden]; its graph needs opset 17.
// The graph passes onnx::checker and shape inference before it is returned. A layer with no ONNX
// form yet (int8 layers, user layers) is a UsageError naming the layer and its type.
std::string onnx_model_bytes(const models::Model& model, const models::Blueprint& blueprint,
                             const OnnxExportOptions& options = {});

// How an export wrote the model's BatchNorm layers: folded into the Conv or Linear before them, or
// kept as BatchNormalization nodes (options off, or no Conv or Linear before them).
struct OnnxBatchNorms {
  int64_t folded = 0;
  int64_t kept = 0;
};

// onnx_model_bytes, written atomically to `path` (a path that exists and is not a regular file is
// refused).
OnnxBatchNorms export_onnx(const std::filesystem::path& path, const models::Model& model,
                           const models::Blueprint& blueprint, const OnnxExportOptions& options = {});

}  // namespace shrink::deploy
