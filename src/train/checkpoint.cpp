// Checkpoint archive layout: model/, optimizer/, and scalar entries for position and RNG states
// (the CPU generator, and the generator of each GPU the model trains on).
#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <mutex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/torch_zip.h"
#include "train/history.h"
#include "train/trainer.h"

namespace shrink::train {

namespace fs = std::filesystem;
using core::cat;

void save_checkpoint(const fs::path& path, const torch::nn::Module& module, const torch::optim::Optimizer& optimizer,
                     const std::vector<std::shared_ptr<Modifier>>& modifiers, const CheckpointState& state) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive, optim_archive;
  module.save(model_archive);
  optimizer.save(optim_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optim_archive);
  for (size_t i = 0; i < modifiers.size(); ++i) {
    torch::serialize::OutputArchive m;
    modifiers[i]->save(m);
    archive.write(cat("modifier_", i), m);
  }
  archive.write("epochs_done", c10::IValue(state.epochs_done));
  archive.write("global_step", c10::IValue(state.global_step));
  archive.write("fingerprint", c10::IValue(state.fingerprint));
  archive.write("loss_scale", c10::IValue(state.loss_scale));
  archive.write("loss_scale_finite_steps", c10::IValue(state.loss_scale_finite_steps));
  FitResult done;
  done.epochs = state.epochs;
  archive.write("history", c10::IValue(history_of(done).to_json().dump()));
  auto generator = at::detail::getDefaultCPUGenerator();
  archive.write("rng_state", generator.get_state());
  // Dropout on a GPU draws from that device's generator: a resumed run matches only with it too.
  std::vector<int64_t> gpus;
  for (const auto& p : module.parameters()) {
    if (p.is_cuda() && std::find(gpus.begin(), gpus.end(), p.device().index()) == gpus.end())
      gpus.push_back(p.device().index());
  }
  archive.write("cuda_generators", torch::tensor(gpus, torch::kLong));
  for (const int64_t i : gpus) {
    auto g = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i)));
    std::lock_guard<std::mutex> lock(g.mutex());
    archive.write(cat("cuda_rng_state_", i), g.get_state());
  }
  // In memory first: LibTorch's file writer throws from a destructor on a full disk (see write_pt).
  std::string bytes;
  archive.save_to([&](const void* data, size_t n) {
    bytes.append(static_cast<const char*>(data), n);
    return n;
  });
  core::write_bytes_atomically(path, bytes.data(), bytes.size());
}

CheckpointState load_checkpoint(const fs::path& path, torch::nn::Module& module, torch::optim::Optimizer& optimizer,
                                const std::vector<std::shared_ptr<Modifier>>& modifiers,
                                const std::string& expected_fingerprint) {
  CheckpointState state;
  try {
    const std::string bytes = core::read_text_file(path);
    io::read_zip_index(bytes, path.string());  // bounds and checksums before LibTorch parses anything
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    c10::IValue v;
    archive.read("fingerprint", v);
    state.fingerprint = v.toStringRef();
    if (state.fingerprint != expected_fingerprint) {
      throw core::UsageError(cat(path.string(), ": checkpoint was written by a different training configuration; ",
                                 "remove it or run without --resume"));
    }
    archive.read("epochs_done", v);
    state.epochs_done = v.toInt();
    archive.read("global_step", v);
    state.global_step = v.toInt();
    const auto keys = archive.keys();
    const auto has = [&](const char* key) { return std::find(keys.begin(), keys.end(), key) != keys.end(); };
    if (has("loss_scale")) {
      archive.read("loss_scale", v);
      state.loss_scale = v.toDouble();
      archive.read("loss_scale_finite_steps", v);
      state.loss_scale_finite_steps = v.toInt();
    }
    if (has("history")) {
      archive.read("history", v);
      try {
        state.epochs = summaries_of(TrainingHistory::from_json(nlohmann::json::parse(v.toStringRef())));
      } catch (const nlohmann::json::exception& e) {
        throw core::Error(cat(path.string(), ": checkpoint history is malformed: ", e.what()));
      }
    }
    torch::serialize::InputArchive model_archive, optim_archive;
    archive.read("model", model_archive);
    archive.read("optimizer", optim_archive);
    module.load(model_archive);
    optimizer.load(optim_archive);
    for (size_t i = 0; i < modifiers.size(); ++i) {
      torch::serialize::InputArchive m;
      archive.read(cat("modifier_", i), m);
      modifiers[i]->load(m);
    }
    at::Tensor rng;
    archive.read("rng_state", rng);
    auto generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng);
    // Checkpoints from before CUDA generators were kept have no list.
    if (has("cuda_generators")) {
      at::Tensor gpus;
      archive.read("cuda_generators", gpus);
      const int64_t visible = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
      for (int64_t k = 0; k < gpus.numel(); ++k) {
        const int64_t i = gpus[k].item<int64_t>();
        if (i < 0 || i >= visible) {
          throw core::Error(cat(path.string(), ": the checkpoint was written training on cuda:", i,
                                ", which is not visible here (", visible,
                                " CUDA device(s)); resume where it was written"));
        }
        archive.read(cat("cuda_rng_state_", i), rng);
        auto g = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i)));
        std::lock_guard<std::mutex> lock(g.mutex());
        g.set_state(rng);
      }
    }
  } catch (const core::Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    throw core::Error(cat(path.string(), ": cannot read checkpoint (corrupt or truncated?): ", what));
  }
  return state;
}

}  // namespace shrink::train
