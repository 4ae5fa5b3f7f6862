// Several processes training one model: rank, world size and the collectives shrink needs, over
// c10d: Gloo for CPU tensors, NCCL for CUDA tensors where LibTorch has it (else Gloo, through the host).
#pragma once

#include <ATen/Tensor.h>
#include <c10/core/Device.h>
#include <torch/arg.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace shrink::dist {

// Tensors by name: what a rank replicates, checks or all-reduces, named for its messages.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct GroupOptions {
  TORCH_ARG(int64_t, rank) = 0;
  TORCH_ARG(int64_t, world_size) = 1;
  // The ranks on this machine, which share its cores; 0 = world_size (every rank here).
  TORCH_ARG(int64_t, local_world_size) = 0;
  // This rank's place among those of its machine, which picks its GPU; -1 = rank modulo
  // local_world_size (ranks numbered machine by machine, as torchrun numbers them).
  TORCH_ARG(int64_t, local_rank) = -1;
  TORCH_ARG(std::string, master_addr) = "127.0.0.1";
  TORCH_ARG(int64_t, master_port) = 29500;
  // torchrun's agent already serves the store at master_addr:master_port
  // (TORCHELASTIC_USE_AGENT_STORE=True): rank 0 connects to it instead of serving its own.
  TORCH_ARG(bool, agent_store) = false;
  // How long a collective (and the rendezvous) waits for the other ranks before it fails; a rank
  // that dies closes its connections, which fails the others at once.
  TORCH_ARG(double, timeout_s) = 1800;
  // Gradients are all-reduced in buckets of about this size as backward produces them; 0 = one
  // bucket after backward (no overlap), for measuring what the overlap buys.
  TORCH_ARG(double, bucket_mb) = 1.0;
};

// The torchrun variables: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// TORCHELASTIC_USE_AGENT_STORE. Returns false when WORLD_SIZE is unset; a
// malformed or inconsistent value is a UsageError naming the variable.
bool options_from_environment(GroupOptions& options);

// The device a rank works on, given the recipe's device name and the GPUs this machine shows: `cuda`
// (and `auto` where there are as many GPUs as ranks on the machine; else the CPU) becomes
// cuda:LOCAL_RANK, so each rank of a machine has a GPU of its own, as torchrun jobs do; `cuda:N` is kept for a
// machine's only rank. Ranks of one machine sharing a GPU (more ranks than GPUs, or `cuda:N` for several) is a
// UsageError saying what to write: NCCL refuses two ranks on one device.
c10::Device rank_device(const std::string& name, int64_t local_rank, int64_t local_world_size, int64_t gpus);

// Whether CUDA tensors' collectives go over NCCL in this build (a LibTorch built with it); without
// it they go over Gloo through the host.
bool nccl_built();

// One rank's handle on the group. Collectives block, and throw core::Error naming this rank and the
// operation when another rank has gone (its connection closed) or the timeout passed.
class ProcessGroup {
 public:
  // Meets the other ranks: rank 0 serves the rendezvous store at master_addr:master_port.
  explicit ProcessGroup(GroupOptions options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int64_t rank() const { return options_.rank(); }
  int64_t world_size() const { return options_.world_size(); }
  const GroupOptions& options() const { return options_; }
  int64_t local_world_size() const {
    return options_.local_world_size() > 0 ? options_.local_world_size() : options_.world_size();
  }
  int64_t local_rank() const {
    return options_.local_rank() >= 0 ? options_.local_rank() : options_.rank() % local_world_size();
  }

  // An all-reduce in flight; wait() returns when the tensor holds the sum over ranks.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;
  };
  // Sums `tensor` over ranks in place, returning at once. A CUDA tensor's collectives go over NCCL
  // where the build has it, the first one connecting the ranks' GPUs (every rank's tensors of one
  // device: its own GPU).
  std::unique_ptr<Pending> start_sum(at::Tensor tensor, const std::string& what);
  void sum(at::Tensor tensor, const std::string& what);
  // Every rank's `tensor` becomes root's.
  void broadcast(at::Tensor tensor, int64_t root, const std::string& what);
  void barrier(const std::string& what);

 private:
  struct Impl;
  GroupOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace shrink::dist
