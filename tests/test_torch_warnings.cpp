// LibTorch's warnings reach shrink's log (core/torch_warnings.h).
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "core/log.h"
#include "core/torch_warnings.h"

using namespace shrink;

namespace {

// LibTorch keeps the handler per thread: each case runs on a thread of its own, so the process's
// other tests keep LibTorch's default handler.
std::string stderr_of_warning_on_own_thread(const std::string& message, core::LogLevel level) {
  const auto before = core::log_level();
  core::set_log_level(level);
  ::testing::internal::CaptureStderr();
  std::thread([&] {
    core::send_torch_warnings_to_log();
    TORCH_WARN(message);
  }).join();
  const auto err = ::testing::internal::GetCapturedStderr();
  core::set_log_level(before);
  return err;
}

}  // namespace

TEST(TorchWarnings, AreWarnLinesOfTheLogNamingLibTorch) {
  const auto err = stderr_of_warning_on_own_thread("a kernel fell back to its slow path", core::LogLevel::kInfo);
  EXPECT_EQ(err, "warning: LibTorch: a kernel fell back to its slow path\n");
}

TEST(TorchWarnings, FollowTheLogLevel) {
  EXPECT_EQ(stderr_of_warning_on_own_thread("a kernel fell back to its slow path", core::LogLevel::kError), "");
}

TEST(TorchWarnings, TheQuantizedDtypeDeprecationIsADebugLine) {
  const std::string deprecation =
      "torch.quantize_per_tensor, torch.quantize_per_channel and other quantized tensor creation functions that "
      "produce tensors with dtype torch.quint8, torch.qint8, and torch.qint32 are deprecated";
  EXPECT_EQ(stderr_of_warning_on_own_thread(deprecation, core::LogLevel::kInfo), "");
  EXPECT_EQ(stderr_of_warning_on_own_thread(deprecation, core::LogLevel::kDebug), "LibTorch: " + deprecation + "\n");
}
