// fork(), run, and classify how the child ended.
#include "core/child_check.h"

#include <ATen/Parallel.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "core/error.h"

// Present only in sanitizer builds: the hook libFuzzer sets to save a crashing input.
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

namespace shrink::core {

namespace {

constexpr int kChildOk = 0;
constexpr int kChildError = 3;  // an exception: the parent's own read throws it again

}  // namespace

void check_in_child(const std::function<void()>& read, const std::string& what, const std::string& library) {
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(cat(what, ": cannot fork to check the file: ", std::strerror(errno)));
  if (pid == 0) {
    // OpenMP's thread pool does not survive fork(); one thread keeps ATen off it.
    at::set_num_threads(1);
    // A crash here must end this child and be judged by the parent, not be handled by whatever
    // the parent installed (a sanitizer's or libFuzzer's handler would report the parent's input).
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) std::signal(sig, SIG_DFL);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(nullptr);
    int code = kChildOk;
    try {
      read();
    } catch (...) {
      code = kChildError;
    }
    ::_exit(code);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error(cat(what, ": lost the checking process: ", std::strerror(errno)));
  }
  if (WIFEXITED(status) && (WEXITSTATUS(status) == kChildOk || WEXITSTATUS(status) == kChildError)) return;
  const std::string how = WIFSIGNALED(status) ? cat("signal ", WTERMSIG(status), ", ", strsignal(WTERMSIG(status)))
                                              : cat("exit status ", WEXITSTATUS(status));
  throw Error(cat(what, ": ", library, " crashed reading it (", how, "); the file is corrupt or crafted"));
}

}  // namespace shrink::core
