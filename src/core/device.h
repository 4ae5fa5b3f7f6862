// Device selection shared by recipes, the CLI and library users: cpu | cuda | auto.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace shrink::core {

bool cuda_available();
// Why `name` cannot be used here, or "" when it can. Accepts cpu, cuda, cuda:N and auto.
std::string device_problem(const std::string& name);
// Resolves a device name; throws UsageError naming the problem.
c10::Device resolve_device(const std::string& name);

}  // namespace shrink::core
