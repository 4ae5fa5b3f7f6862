// The process group over c10d: a TCPStore rendezvous, Gloo collectives and NCCL ones for CUDA
// tensors, their failures turned into errors that name the rank and the operation.
#include "dist/process_group.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
// LibTorch's CUDA builds define USE_C10D_NCCL for the programs that link them (Torch's targets).
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>

#include "core/error.h"
#ifdef USE_C10D_NCCL
#include "core/log.h"
#include "core/torch_compat.h"
#endif

namespace shrink::dist {

using core::cat;

namespace {

// A torchrun variable as an integer in [lo, hi]; false when unset.
bool int_variable(const char* name, int64_t lo, int64_t hi, int64_t& value) {
  const char* text = std::getenv(name);
  if (!text || !*text) return false;
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (*end != '\0' || v < lo || v > hi) {
    throw core::UsageError(cat(name, " must be an integer in [", lo, ", ", hi, "], got '", text, "'"));
  }
  value = v;
  return true;
}

bool is_loopback(const std::string& addr) { return addr == "127.0.0.1" || addr == "localhost" || addr == "::1"; }

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

}  // namespace

bool options_from_environment(GroupOptions& o) {
  int64_t world = 0;
  if (!int_variable("WORLD_SIZE", 1, 65536, world)) return false;
  int64_t rank = 0;
  if (!int_variable("RANK", 0, world - 1, rank)) throw core::UsageError("WORLD_SIZE is set but RANK is not");
  o.world_size(world).rank(rank);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) o.master_addr(addr);
  int64_t local = 0;
  if (int_variable("LOCAL_WORLD_SIZE", 1, world, local)) o.local_world_size(local);
  int64_t local_rank = 0;
  if (int_variable("LOCAL_RANK", 0, (local > 0 ? local : world) - 1, local_rank)) o.local_rank(local_rank);
  int64_t port = 0;
  if (int_variable("MASTER_PORT", 1, 65535, port)) o.master_port(port);
  if (const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE"); agent && std::string(agent) == "True")
    o.agent_store(true);
  return true;
}

c10::Device rank_device(const std::string& name, int64_t local_rank, int64_t local_world_size, int64_t gpus) {
  SHRINK_CHECK(local_world_size >= 1 && local_rank >= 0 && local_rank < local_world_size,
               "local_rank must be in [0, local_world_size ", local_world_size, "), got ", local_rank);
  // `auto` takes GPUs only when every rank of the machine gets one: all ranks on one kind of device.
  if (name == "cpu" || (name == "auto" && gpus < local_world_size)) return c10::Device(c10::kCPU);
  if (name.rfind("cuda:", 0) == 0) {
    if (local_world_size > 1) {
      throw core::UsageError(cat("device '", name, "' would put the ", local_world_size,
                                 " ranks of this machine on one GPU; write device: cuda and each rank takes ",
                                 "cuda:LOCAL_RANK"));
    }
    return c10::Device(name);
  }
  if (name != "cuda" && name != "auto") {
    throw core::UsageError(cat("expected one of cpu, cuda, cuda:N, auto; got '", name, "'"));
  }
  if (local_rank >= gpus) {
    throw core::UsageError(cat("rank with LOCAL_RANK ", local_rank, " has no GPU of its own: ", gpus,
                               " CUDA device(s) visible for ", local_world_size,
                               " ranks on this machine; start at most one rank per GPU, or use device: cpu"));
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
}

#ifdef USE_C10D_NCCL
bool nccl_built() { return true; }
#else
bool nccl_built() { return false; }
#endif

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef USE_C10D_NCCL
  // Made at the first CUDA tensor's collective, which every rank reaches in the same order.
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
  c10::Device nccl_device{c10::kCUDA};

  ~Impl() {
    if (!nccl) return;
    try {
      compat::shutdown_backend(*nccl);
    } catch (const std::exception& e) {
      core::log_warn(cat("rank ", nccl->getRank(), ": shutting NCCL down: ", e.what()));
    }
  }
#endif

  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors, [[maybe_unused]] const GroupOptions& o) {
#ifdef USE_C10D_NCCL
    if (tensors.front().is_cuda()) return nccl_for(tensors.front(), o).allreduce(tensors);
#endif
    return gloo->allreduce(tensors);
  }

  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors, int64_t root,
                                           [[maybe_unused]] const GroupOptions& o) {
    c10d::BroadcastOptions options;
    options.rootRank = root;
#ifdef USE_C10D_NCCL
    if (tensors.front().is_cuda()) return nccl_for(tensors.front(), o).broadcast(tensors, options);
#endif
    return gloo->broadcast(tensors, options);
  }

#ifdef USE_C10D_NCCL
  c10d::ProcessGroupNCCL& nccl_for(const at::Tensor& tensor, const GroupOptions& o) {
    if (!nccl) {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = millis(o.timeout_s());
      nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("nccl", store),
                                                         static_cast<int>(o.rank()), static_cast<int>(o.world_size()),
                                                         options);
      nccl_device = tensor.device();
    }
    SHRINK_CHECK(tensor.device() == nccl_device, "rank ", o.rank(), ": a collective of a tensor on ", tensor.device(),
                 " after ones on ", nccl_device, ": a rank's CUDA tensors must all be on its one GPU");
    return *nccl;
  }
#endif
};

namespace {

// A collective's failure as this rank sees it; Gloo says "connection closed by peer" or "timed out".
[[noreturn]] void fail(int64_t rank, const std::string& what, const std::exception& e) {
  std::string reason = e.what();
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) reason = c10->what_without_backtrace();
  throw core::Error(cat("rank ", rank, ": ", what, " failed (another rank stopped or timed out): ", reason));
}

class WorkPending : public ProcessGroup::Pending {
 public:
  WorkPending(c10::intrusive_ptr<c10d::Work> work, int64_t rank, std::string what)
      : work_(std::move(work)), rank_(rank), what_(std::move(what)) {}
  void wait() override {
    try {
      work_->wait();
    } catch (const std::exception& e) {
      fail(rank_, what_, e);
    }
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  int64_t rank_;
  std::string what_;
};

}  // namespace

ProcessGroup::ProcessGroup(GroupOptions options) : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  const auto& o = options_;
  SHRINK_CHECK(o.world_size() >= 1, "world_size must be >= 1, got ", o.world_size());
  SHRINK_CHECK(o.rank() >= 0 && o.rank() < o.world_size(), "rank must be in [0, ", o.world_size(), "), got ", o.rank());
  SHRINK_CHECK(o.master_port() > 0 && o.master_port() < 65536, "master_port must be in [1, 65535], got ",
               o.master_port());
  SHRINK_CHECK(o.local_world_size() >= 0 && o.local_world_size() <= o.world_size(),
               "local_world_size must be in [0, world_size ", o.world_size(), "], got ", o.local_world_size());
  SHRINK_CHECK(o.local_rank() >= -1 && o.local_rank() < local_world_size(), "local_rank must be in [-1, ",
               local_world_size(), "), got ", o.local_rank());
  SHRINK_CHECK(o.timeout_s() > 0, "timeout_s must be > 0, got ", o.timeout_s());
  SHRINK_CHECK(o.bucket_mb() >= 0, "bucket_mb must be >= 0, got ", o.bucket_mb());
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(o.master_port());
    so.isServer = o.rank() == 0 && !o.agent_store();
    so.numWorkers = static_cast<size_t>(o.world_size());
    so.waitWorkers = true;
    so.timeout = millis(o.timeout_s());
    // Under a prefix of its own: torchrun's agent keeps its keys in the same store.
    impl_->store =
        c10::make_intrusive<c10d::PrefixStore>("shrink", c10::make_intrusive<c10d::TCPStore>(o.master_addr(), so));
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(millis(o.timeout_s()));
    gloo_options->devices.push_back(is_loopback(o.master_addr())
                                        ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                        : c10d::ProcessGroupGloo::createDefaultDevice());
    impl_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, static_cast<int>(o.rank()),
                                                              static_cast<int>(o.world_size()), gloo_options);
  } catch (const std::exception& e) {
    fail(o.rank(), cat("meeting the other ", o.world_size() - 1, " rank(s) at ", o.master_addr(), ":", o.master_port()),
         e);
  }
}

ProcessGroup::~ProcessGroup() = default;

std::unique_ptr<ProcessGroup::Pending> ProcessGroup::start_sum(at::Tensor tensor, const std::string& what) {
  std::vector<at::Tensor> tensors{std::move(tensor)};
  try {
    return std::make_unique<WorkPending>(impl_->allreduce(tensors, options_), rank(), what);
  } catch (const std::exception& e) {
    fail(rank(), what, e);
  }
}

void ProcessGroup::sum(at::Tensor tensor, const std::string& what) { start_sum(std::move(tensor), what)->wait(); }

void ProcessGroup::broadcast(at::Tensor tensor, int64_t root, const std::string& what) {
  std::vector<at::Tensor> tensors{std::move(tensor)};
  try {
    impl_->broadcast(tensors, root, options_)->wait();
  } catch (const std::exception& e) {
    fail(rank(), what, e);
  }
}

void ProcessGroup::barrier(const std::string& what) {
  try {
    impl_->gloo->barrier(c10d::BarrierOptions())->wait();
  } catch (const std::exception& e) {
    fail(rank(), what, e);
  }
}

}  // namespace shrink::dist
