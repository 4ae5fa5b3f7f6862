// Engine selection through ATen's global context.
#include "compress/quantize/backend.h"

#include <ATen/Context.h>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/format.h"

namespace shrink::compress::quantize {

using core::cat;

namespace {

bool has(at::QEngine e) {
  for (const auto q : at::globalContext().supportedQEngines()) {
    if (q == e) return true;
  }
  return false;
}

// The engine a backend's kernels run on. onednn's scheme (symmetric per-channel qint8 weights,
// quint8 activations) runs on LibTorch's x86 engine where the build has it (PyPI's 2.x): the same
// scheme, with FBGEMM's int8 Linear, where LibTorch 2.15's oneDNN int8 matmul is its reference
// kernel (64 x 784 -> 300: 2,021 ms on oneDNN, 0.17 ms on x86; convolutions 0.99 and 0.93 ms).
// Debian's 1.13 has oneDNN's engine only, whose int8 Linear is fast there.
at::QEngine engine_of(Backend b) {
  if (b == Backend::kQnnpack) return at::QEngine::QNNPACK;
  return has(at::QEngine::X86) ? at::QEngine::X86 : at::QEngine::ONEDNN;
}

}  // namespace

std::vector<std::string> available_backends() {
  std::vector<std::string> out;
  if (has(engine_of(Backend::kOneDnn))) out.push_back("onednn");
  if (has(at::QEngine::QNNPACK)) out.push_back("qnnpack");
  return out;
}

Backend resolve_backend(BackendChoice choice) {
  if (choice == BackendChoice::kAuto) {
    if (has(engine_of(Backend::kOneDnn))) return Backend::kOneDnn;
    if (has(at::QEngine::QNNPACK)) return Backend::kQnnpack;
    throw core::UsageError("this LibTorch build has no int8 engine (neither onednn nor qnnpack)");
  }
  const Backend b = choice == BackendChoice::kOneDnn ? Backend::kOneDnn : Backend::kQnnpack;
  if (!has(engine_of(b))) {
    throw core::UsageError(cat("this LibTorch build has no ", core::name_of(b),
                               " engine (it has: ", core::join(available_backends()), ")"));
  }
  return b;
}

Backend backend_from_name(const std::string& name) {
  return resolve_backend(core::enum_from_name<BackendChoice>(name, "int8 backend"));
}

std::string engine_name(Backend b) {
  switch (engine_of(b)) {
    case at::QEngine::X86:
      return "x86";
    case at::QEngine::QNNPACK:
      return "qnnpack";
    default:
      return "onednn";
  }
}

void use_backend(Backend b) {
  const auto e = engine_of(b);
  if (!has(e)) throw core::UsageError(cat("this LibTorch build has no ", core::name_of(b), " engine"));
  if (at::globalContext().qEngine() != e) at::globalContext().setQEngine(e);
}

ObserverOptions default_weight_observer(Backend b) {
  auto o = ObserverOptions().kind(ObserverKind::kMinMax).dtype(QDtype::kQInt8).symmetric(true);
  return b == Backend::kOneDnn ? o.per_channel(true) : o;
}

bool int8_sums_may_saturate(Backend b) { return b == Backend::kOneDnn && !core::cpu_has_int8_vnni(); }

ObserverOptions default_dynamic_weight_observer(Backend b) {
  return default_weight_observer(b).reduce_range(int8_sums_may_saturate(b));
}

ObserverOptions default_activation_observer(Backend b) {
  return ObserverOptions()
      .kind(b == Backend::kOneDnn ? ObserverKind::kHistogram : ObserverKind::kMinMax)
      .dtype(QDtype::kQUInt8)
      .reduce_range(int8_sums_may_saturate(b));
}

void check_compatible(Backend b, const ObserverOptions& w, const ObserverOptions& a) {
  if (w.dtype() != QDtype::kQInt8) {
    throw core::UsageError(cat("weights must be qint8 (no engine takes ", core::name_of(w.dtype()), " weights)"));
  }
  if (b == Backend::kOneDnn) {
    if (!w.symmetric())
      throw core::UsageError("the onednn engine takes symmetric weights only (weights.symmetric: true)");
    if (a.dtype() != QDtype::kQUInt8) {
      throw core::UsageError(cat("the onednn engine takes quint8 activations only, got ", core::name_of(a.dtype())));
    }
  }
  if (a.per_channel()) throw core::UsageError("activations are quantized per tensor (per_channel: false)");
}

}  // namespace shrink::compress::quantize
