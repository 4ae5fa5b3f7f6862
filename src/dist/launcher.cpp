// fork + exec per rank, then waitpid: a failed rank is named and the group stopped, none left hanging.
#include "dist/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include "core/error.h"
#include "core/log.h"

namespace shrink::dist {

using core::cat;

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  SHRINK_CHECK(fd >= 0, "socket(): ", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  ::close(fd);
  SHRINK_CHECK(ok, "finding a free port on 127.0.0.1: ", std::strerror(err));
  return ntohs(addr.sin_port);
}

namespace {

struct Rank {
  pid_t pid = -1;
  bool running = false;
  int status = 0;
};

std::string describe(int status) {
  if (WIFEXITED(status)) return cat("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return cat("was killed by signal ", WTERMSIG(status), " (", ::strsignal(WTERMSIG(status)), ")");
  return "stopped";
}

bool failed(int status) { return !WIFEXITED(status) || WEXITSTATUS(status) != 0; }

[[noreturn]] void exec_rank(const LaunchOptions& o, int64_t rank, pid_t parent, int port) {
  // A rank outlives no launcher: killed with it, it cannot hang on as an orphan.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) ::_exit(1);
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(o.nproc()).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc()).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : o.argv()) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(o.executable().c_str(), args.data());
  std::fprintf(stderr, "error: rank %lld: cannot start %s: %s\n", static_cast<long long>(rank), o.executable().c_str(),
               std::strerror(errno));
  ::_exit(1);
}

// Reaps any rank that has exited; true when one did.
bool reap(std::vector<Rank>& ranks, bool block, size_t& which) {
  int status = 0;
  const pid_t pid = ::waitpid(-1, &status, block ? 0 : WNOHANG);
  if (pid <= 0) return false;
  for (size_t r = 0; r < ranks.size(); ++r) {
    if (ranks[r].pid == pid) {
      ranks[r].running = false;
      ranks[r].status = status;
      which = r;
      return true;
    }
  }
  return false;
}

}  // namespace

int launch_local(const LaunchOptions& o) {
  SHRINK_CHECK(o.nproc() >= 1 && o.nproc() <= 1024, "nproc must be in [1, 1024], got ", o.nproc());
  SHRINK_CHECK(!o.argv().empty(), "launch_local needs the program's arguments");
  const int port = free_local_port();
  const pid_t parent = ::getpid();
  std::vector<Rank> ranks(static_cast<size_t>(o.nproc()));
  std::fflush(nullptr);
  for (int64_t r = 0; r < o.nproc(); ++r) {
    const pid_t pid = ::fork();
    if (pid == 0) exec_rank(o, r, parent, port);
    if (pid < 0) {
      const int err = errno;
      for (const auto& started : ranks) {
        if (started.running) ::kill(started.pid, SIGTERM);
      }
      throw core::Error(cat("starting rank ", r, ": fork failed: ", std::strerror(err)));
    }
    ranks[static_cast<size_t>(r)] = {pid, true, 0};
  }
  std::string pids;
  for (size_t r = 0; r < ranks.size(); ++r) pids += cat(r ? ", " : "", ranks[r].pid);
  core::log_info("started ", o.nproc(), " ranks on 127.0.0.1:", port, " (pids ", pids, ")");

  size_t running = ranks.size();
  while (running > 0) {
    size_t r = 0;
    if (!reap(ranks, /*block=*/true, r)) {
      if (errno == ECHILD) break;  // no child left to wait for
      continue;
    }
    --running;
    if (!failed(ranks[r].status)) continue;
    // A rank killed from outside is the cause; the others fail on their next collective soon after,
    // and a short wait lets the launcher name the first rather than whoever noticed it.
    size_t cause = r;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    while (running > 0 && std::chrono::steady_clock::now() < until) {
      size_t other = 0;
      if (reap(ranks, /*block=*/false, other)) {
        --running;
        if (WIFSIGNALED(ranks[other].status) && !WIFSIGNALED(ranks[cause].status)) cause = other;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    core::log_line(core::LogLevel::kError,
                   cat("rank ", cause, " (pid ", ranks[cause].pid, ") ", describe(ranks[cause].status),
                       running ? "; stopping the other ranks" : ""));
    for (const auto& other : ranks) {
      if (other.running) ::kill(other.pid, SIGTERM);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.grace_s());
    while (running > 0) {
      size_t other = 0;
      if (reap(ranks, /*block=*/false, other)) {
        --running;
      } else if (std::chrono::steady_clock::now() > deadline) {
        for (const auto& left : ranks) {
          if (left.running) ::kill(left.pid, SIGKILL);
        }
        while (running > 0 && reap(ranks, /*block=*/true, other)) --running;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    const int status = ranks[cause].status;
    return WIFEXITED(status) && WEXITSTATUS(status) == 2 ? 2 : 1;
  }
  return 0;
}

}  // namespace shrink::dist
