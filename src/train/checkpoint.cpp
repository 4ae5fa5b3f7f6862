// Checkpoint archive layout: model/, optimizer/, and scalar entries for position and RNG state.
#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "io/torch_zip.h"

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
  auto generator = at::detail::getDefaultCPUGenerator();
  archive.write("rng_state", generator.get_state());
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
