// LibTorch's warnings through shrink's log.
#include "core/torch_warnings.h"

#include <string>

#include "core/log.h"
#include "core/torch_compat.h"

namespace shrink::core {

namespace {

bool is_quantized_dtype_deprecation(const std::string& message) {
  return message.find("quantized tensor creation functions") != std::string::npos &&
         message.find("deprecated") != std::string::npos;
}

class LogWarnings : public compat::WarningHandler {
 public:
  void handle(const std::string& message) override {
    if (is_quantized_dtype_deprecation(message)) {
      log_debug("LibTorch: ", message);
    } else {
      log_warn("LibTorch: ", message);
    }
  }
};

}  // namespace

void send_torch_warnings_to_log() {
  static LogWarnings handler;
  compat::set_warning_handler(&handler);
}

}  // namespace shrink::core
