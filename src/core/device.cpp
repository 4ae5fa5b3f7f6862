// Device resolution: `auto` picks CUDA when the LibTorch build and a GPU allow it.
#include "core/device.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>

#include "core/error.h"

namespace shrink::core {

bool cuda_available() { return torch::cuda::is_available(); }

int64_t cuda_device_count() { return static_cast<int64_t>(torch::cuda::device_count()); }

std::string device_problem(const std::string& name) {
  if (name == "cpu" || name == "auto") return "";
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!cuda_available()) {
      return "device 'cuda' requested, but this LibTorch build has no CUDA support or no GPU is "
             "visible (torch::cuda::is_available() is false); use 'cpu' or 'auto', or build shrink "
             "against a CUDA LibTorch";
    }
    if (name.size() > 5) {
      const std::string index = name.substr(5);
      if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos) {
        return cat("expected cuda:N with N a device index, got '", name, "'");
      }
      const auto n = static_cast<size_t>(torch::cuda::device_count());
      if (std::stoul(index) >= n) return cat("device '", name, "' does not exist: ", n, " CUDA device(s) visible");
    }
    return "";
  }
  return cat("expected one of cpu, cuda, cuda:N, auto; got '", name, "'");
}

c10::Device resolve_device(const std::string& name) {
  const std::string problem = device_problem(name);
  if (!problem.empty()) throw UsageError(problem);
  if (name == "auto") return cuda_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  return c10::Device(name);
}

void make_current(c10::Device device) {
  // Through c10's device-guard interface, which the CPU-only LibTorch has too: no c10_cuda to link.
  if (device.is_cuda()) c10::impl::getDeviceGuardImpl(c10::kCUDA)->setDevice(device);
}

}  // namespace shrink::core
