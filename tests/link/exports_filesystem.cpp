// Stands in for a pip wheel's libtorch.so, which exports its own copy of std::filesystem: this
// library's remove_all aborts, so a call that binds to it instead of libstdc++'s is seen.
#include <cstdlib>
#include <filesystem>

// Something of its own the probe uses, as shrink uses libtorch's: keeps the library loaded.
extern "C" int shrink_probe_library_loaded() { return 1; }

namespace std::filesystem {
std::uintmax_t remove_all(const path&) { std::abort(); }
}  // namespace std::filesystem
