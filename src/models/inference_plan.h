// Inference on the fastest correct path this build offers: a model is compiled once per batch
// size into a chain of fast ops (oneDNN-prepacked convolutions with BatchNorm folded in and ReLU
// fused, GEMV for one sample, shrink's packed kernel for dense Linear layers and its CSR kernel for
// pruned ones), checked against the module's own forward and timed against it; the faster of the
// two is used. A bert's float Linear layers run on the packed kernel through its own forward,
// the whole timed against the module's in the same way.
#pragma once

#include <c10/core/Device.h>
#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <typeindex>
#include <vector>

#include "models/model.h"

namespace shrink::models {

// The largest difference between the fast path's logits and the module's own, relative to the
// largest logit (at least 1): oneDNN's convolutions and folded BatchNorm sum in another order,
// which moves fp32 logits by ~1e-6 relative here; a fast path off by more is not used.
constexpr double kMaxFastPathError = 1e-4;
// The same for models with int8 layers run on the CSR kernel: it dequantizes the input and sums in
// fp32, so a few outputs round to the neighbouring int8 step.
constexpr double kMaxFastPathInt8Error = 0.05;

// Which kernel runs a dense Linear layer (and a pruned one the CSR kernel does not beat): LibTorch's
// (`addmv` for one sample, else `at::linear`), shrink's packed kernel (weights packed once when the
// plan is made, runtime/packed_linear.h), or whichever of the two is faster here, timed when the
// plan is made. In a bert, kFastest is the packed kernel wherever a vector path exists: the whole
// model is timed instead.
enum class DenseLinear { kFastest, kLibTorch, kPacked };

struct InferenceOptions {
  TORCH_ARG(bool, fast) = true;  // false: always the module's own forward ("plain")
  // Pruned Linear layers at least this sparse are timed on the CSR kernel as well as dense, and
  // the faster kept. Below it the dense kernels win on this machine (bench: BM_CsrLinear).
  TORCH_ARG(double, min_sparsity) = 0.5;
  // false: every Linear at least min_sparsity sparse runs on CSR without timing it (tests).
  TORCH_ARG(bool, measure_sparse) = true;
  TORCH_ARG(DenseLinear, dense_linear) = DenseLinear::kFastest;  // a fixed kernel: tests that name it
  // Timed calls of each candidate when choosing, at the least: short calls go on until each
  // candidate has run for 2 ms.
  TORCH_ARG(int64_t, trial_calls) = 7;
};

struct InferencePlan {
  ForwardFn forward;  // the chosen path
  std::string path;   // "plain", or the candidate's ops
  // The fast candidate (empty when none was built) and its ops in order of first use, e.g.
  // "onednn-conv, addmv" or "csr-linear, linear".
  ForwardFn candidate;
  std::string candidate_path;
  double max_error = 0.0;  // of the candidate against the plain path on the probe batch (relative)
  // Median trial calls on the planned batch (a bert's: at most 1,024 token rows of it); 0 when not
  // timed (no candidate, or off by more than the tolerance).
  double plain_ms = 0.0, fast_ms = 0.0;
};

// One step of a compiled chain: a batch in (dense, quantized or in oneDNN's layout), a batch out.
using PlanOp = std::function<at::Tensor(at::Tensor)>;

// What a layer planner may ask of the plan being compiled.
class PlanContext {
 public:
  virtual ~PlanContext() = default;
  virtual int64_t batch() const = 0;
  virtual const InferenceOptions& options() const = 0;
  // Whether `candidate` beats `incumbent` on a random [batch, features] input (alternated calls).
  virtual bool faster(const PlanOp& candidate, const PlanOp& incumbent, int64_t features) const = 0;
  // Records an op kind the chain uses ("csr-linear-int8"); `int8` ops make the plan checked with
  // kMaxFastPathInt8Error.
  virtual void uses(const std::string& kind, bool int8) = 0;
};

// A fast path for layers of one module type, registered by whoever owns the type (the int8 layers
// register theirs from compress/quantize): the op that runs the layer, or an empty function to
// leave the layer to its own forward.
using LayerPlanner = std::function<PlanOp(const std::shared_ptr<torch::nn::Module>& layer, PlanContext& ctx)>;
void register_layer_planner(std::type_index type, LayerPlanner planner);

// A planned op's input in the layout its kernels take: dense, float or quantized (oneDNN's
// layout is turned back into a strided tensor).
at::Tensor dense_input(const at::Tensor& x);

// The most bytes of weights a plan of `module` holds beside the module's own: each float Linear's
// packed copy (rounded up to 32 outputs, with a bias a panel column) and each float Conv2d's
// prepacked one with its folded bias. oneDNN's blocked layout may pad a convolution's channels
// further, which this does not count. Reads sizes only: works on a model built on the meta device
// (recipe validation counts it in evaluation's memory).
uint64_t plan_copy_bytes(const torch::nn::Module& module);

// Plans `model` for batches of `batch` samples of `sample_shape` on `device`, in eval mode with
// gradients off. The plan holds folded copies of the weights: plan again after they change.
// Models that are not shrink Classifiers or berts, or have nothing to speed up, run plain. A bert's
// sample shape is its sentence length: its Linear layers are planned for batch × length rows.
InferencePlan plan_inference(const Model& model, const std::vector<int64_t>& sample_shape, int64_t batch,
                             const c10::Device& device, const InferenceOptions& options = {});

}  // namespace shrink::models
