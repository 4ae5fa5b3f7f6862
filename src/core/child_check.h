// Trial runs of third-party parsers in a forked child, so their crashes become errors.
#pragma once

#include <functional>
#include <string>

namespace shrink::core {

// Runs `read` in a forked child process first. When the child crashes (a signal, or a sanitizer's
// report), throws an Error "<what>: <library> crashed reading it (…); the file is corrupt or
// crafted". Otherwise returns, and the caller reads in-process: the child's outcome (a result or
// a shrink Error) is what the parent's read will give. libhdf5 1.10 overflows its buffers on some
// crafted files (found by `make fuzz`); this keeps such a file from taking the process down.
void check_in_child(const std::function<void()>& read, const std::string& what, const std::string& library);

}  // namespace shrink::core
