// `shrink run --nproc N`: N copies of this program on this machine, joined as one data-parallel
// group through the torchrun variables; the first rank to fail stops the others.
#pragma once

#include <torch/arg.h>

#include <string>
#include <vector>

namespace shrink::dist {

struct LaunchOptions {
  TORCH_ARG(int64_t, nproc) = 2;
  // The program and its arguments, argv[0] first; each rank runs them with RANK, WORLD_SIZE,
  // LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR (127.0.0.1) and MASTER_PORT (a free port) set.
  TORCH_ARG(std::vector<std::string>, argv) = {};
  TORCH_ARG(std::string, executable) = "/proc/self/exe";
  // After the first rank fails, how long the others get to exit on SIGTERM before SIGKILL.
  TORCH_ARG(double, grace_s) = 5.0;
};

// Runs the ranks to the end. Returns 0 when every rank exits 0; otherwise logs which rank failed
// first (its pid and exit code or signal), stops the rest, and returns 2 when that rank exited 2
// (a usage error), else 1.
int launch_local(const LaunchOptions& options);

// A TCP port on 127.0.0.1 nothing listens on now (the kernel's pick).
int free_local_port();

}  // namespace shrink::dist
