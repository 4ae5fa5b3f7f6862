// Device selection shared by recipes, the CLI and library users: cpu | cuda | auto.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace shrink::core {

bool cuda_available();
// GPUs visible to this process; 0 for a LibTorch without CUDA.
int64_t cuda_device_count();
// Why `name` cannot be used here, or "" when it can. Accepts cpu, cuda, cuda:N and auto.
std::string device_problem(const std::string& name);
// Resolves a device name; throws UsageError naming the problem.
c10::Device resolve_device(const std::string& name);
// A CUDA device becomes the process's current one (torch.cuda.set_device): what names no device
// index (streams, NCCL's communicator, new allocations) goes there. Nothing for the CPU.
void make_current(c10::Device device);

}  // namespace shrink::core
