// Several processes training one model: rank, world size and the collectives shrink needs, over
// c10d's Gloo backend (CPU tensors; CUDA tensors go through the host).
#pragma once

#include <ATen/Tensor.h>
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

// The torchrun variables: RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
// TORCHELASTIC_USE_AGENT_STORE. Returns false when WORLD_SIZE is unset; a
// malformed or inconsistent value is a UsageError naming the variable.
bool options_from_environment(GroupOptions& options);

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

  // An all-reduce in flight; wait() returns when the tensor holds the sum over ranks.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;
  };
  // Sums `tensor` over ranks in place, returning at once.
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
