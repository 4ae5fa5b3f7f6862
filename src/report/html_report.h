// report.html: a self-contained page (inline SVG, no script, no network) with the stage table,
// per-stage charts, training curves with modifier windows, per-layer sparsity, the confusion
// matrix, sensitivity curves, the environment and the effective recipe.
#pragma once

#include <string>

#include "report/report.h"

namespace shrink::report {

std::string to_html(const Report& report);

}  // namespace shrink::report
