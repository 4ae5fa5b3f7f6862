// Broadcast of a module's state, one flat tensor per dtype; per-tensor digests compared over ranks.
#include "dist/replicas.h"

#include <ATen/ATen.h>

#include <map>

#include "core/error.h"
#include "io/state_dict.h"

namespace shrink::dist {

using core::cat;

NamedTensors replica_tensors(const torch::nn::Module& module, ReplicaState what) {
  NamedTensors out;
  if (what.parameters) {
    for (const auto& p : module.named_parameters()) out.emplace_back(p.key(), p.value());
  }
  for (const auto& b : module.named_buffers()) {
    if (b.value().defined() && (what.masks || io::masked_parameter(b.key()).empty()))
      out.emplace_back(b.key(), b.value());
  }
  return out;
}

namespace {

// A tensor's bytes as a flat uint8 tensor (a copy when it is not contiguous).
at::Tensor bytes_of(const at::Tensor& t) { return t.detach().contiguous().reshape(-1).view(at::kByte); }

// FNV-1a over the tensor's bytes: the check needs equality, not secrecy.
int64_t digest(const at::Tensor& t) {
  const auto c = t.detach().to(at::kCPU).contiguous();
  const auto* bytes = static_cast<const unsigned char*>(c.data_ptr());
  const auto n = static_cast<size_t>(c.numel()) * c.element_size();
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; ++i) h = (h ^ bytes[i]) * 1099511628211ULL;
  h ^= static_cast<uint64_t>(c.numel());
  return static_cast<int64_t>(h);
}

}  // namespace

void broadcast_from_rank0(ProcessGroup& group, const NamedTensors& tensors_by_name, const std::string& when) {
  // One broadcast per device, every tensor's bytes back to back: each collective costs a round
  // trip (about a millisecond between two processes on two cores), whatever its size.
  std::map<std::string, std::vector<at::Tensor>> by_device;
  for (const auto& [name, t] : tensors_by_name) by_device[t.device().str()].push_back(t);
  at::NoGradGuard no_grad;
  for (auto& [device, tensors] : by_device) {
    std::vector<at::Tensor> parts;
    for (const auto& t : tensors) parts.push_back(bytes_of(t));
    auto flat = at::cat(parts);
    group.broadcast(flat, 0, cat("broadcast of rank 0's model ", when));
    int64_t offset = 0;
    for (auto& t : tensors) {
      const int64_t n = t.numel() * static_cast<int64_t>(t.element_size());
      // A copy first: a slice at an offset that is no multiple of the element size cannot be viewed.
      t.detach().copy_(flat.narrow(0, offset, n).clone().view(t.scalar_type()).view(t.sizes()));
      offset += n;
    }
  }
}

void check_replicas(ProcessGroup& group, const NamedTensors& tensors, const std::string& when) {
  const auto n = static_cast<int64_t>(tensors.size());
  if (n == 0) return;
  // Row r holds rank r's digests; the sum over ranks of rows that are zero elsewhere gathers them.
  auto table = at::zeros({group.world_size(), n}, at::kLong);
  auto* own = table[group.rank()].data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) own[i] = digest(tensors[static_cast<size_t>(i)].second);
  group.sum(table, cat("replica check ", when));
  const auto* all = table.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> differ;
    for (int64_t r = 1; r < group.world_size(); ++r) {
      if (all[r * n + i] != all[i]) differ.push_back(r);
    }
    if (differ.empty()) continue;
    std::string ranks;
    for (const auto r : differ) ranks += cat(ranks.empty() ? "" : ", ", r);
    throw core::Error(cat("data-parallel replicas diverged ", when, ": '", tensors[static_cast<size_t>(i)].first,
                          "' on rank(s) ", ranks, " differs from rank 0's (every rank must hold the same model)"));
  }
}

}  // namespace shrink::dist
