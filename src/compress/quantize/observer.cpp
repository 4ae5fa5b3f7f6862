// Observer algorithms, following torch.ao.quantization's observers step for step (float32 tensor
// arithmetic where PyTorch uses it, so the same inputs give the same parameters).
#include "compress/quantize/observer.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "core/error.h"

namespace shrink::compress::quantize {

using core::cat;

const config::OptionsSpec<ObserverOptions>& observer_spec() {
  using O = ObserverOptions;
  static const config::OptionsSpec<O> spec(
      {SHRINK_OPTION(O, kind, config::one_of<ObserverKind>(),
                     "default: the engine's (weights minmax; activations histogram on onednn, minmax on qnnpack)"),
       SHRINK_OPTION(O, dtype, config::one_of<QDtype>(), "default: weights qint8, activations quint8"),
       SHRINK_OPTION(O, symmetric, config::boolean(), "default: weights true, activations false"),
       SHRINK_OPTION(O, per_channel, config::boolean(), "default: weights true on onednn, false on qnnpack"),
       SHRINK_OPTION(O, reduce_range, config::boolean(), "7-bit range; default: activations on oneDNN without VNNI"),
       SHRINK_OPTION(O, averaging_constant, config::number(0, 1, /*min_exclusive=*/true),
                     "moving_average; default 0.01"),
       SHRINK_OPTION(O, bins, config::integer(16, 65536), "histogram, percentile; default 2048"),
       SHRINK_OPTION(O, percentile, config::number(50, 100, /*min_exclusive=*/true),
                     "percentile: central share of the mass kept; default 99.99")});
  return spec;
}

bool keeps_histogram(ObserverKind kind) {
  return kind == ObserverKind::kHistogram || kind == ObserverKind::kPercentile;
}

void validate(const ObserverOptions& o) {
  observer_spec().check(o, "observer");
  if (keeps_histogram(o.kind()) && o.per_channel()) {
    throw core::UsageError(cat("the ", core::name_of(o.kind()),
                               " observer is per-tensor only (as PyTorch's HistogramObserver); "
                               "use minmax or moving_average per channel"));
  }
  if (o.ch_axis() < 0) throw core::UsageError(cat("ch_axis must be >= 0, got ", o.ch_axis()));
}

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

}  // namespace

MinMaxObserverImpl::MinMaxObserverImpl(ObserverOptions options, int64_t channels) : ObserverImpl(std::move(options)) {
  validate(options_);
  const std::vector<int64_t> shape = options_.per_channel() ? std::vector<int64_t>{channels} : std::vector<int64_t>{};
  min_val_ = register_buffer("min_val", at::full(shape, kInf, at::kFloat));
  max_val_ = register_buffer("max_val", at::full(shape, -kInf, at::kFloat));
}

bool MinMaxObserverImpl::observed() const { return min_val_.numel() > 0 && (min_val_ <= max_val_).all().item<bool>(); }

at::Tensor MinMaxObserverImpl::forward(const at::Tensor& x_in) {
  if (x_in.numel() == 0) return x_in;
  at::NoGradGuard no_grad;
  const auto x = x_in.detach().to(min_val_.dtype());
  at::Tensor lo, hi;
  if (options_.per_channel()) {
    const int64_t axis = options_.ch_axis();
    SHRINK_CHECK(axis < x.dim(), "per-channel observer: ch_axis ", axis, " out of range for a tensor of rank ",
                 x.dim());
    const auto y = x.transpose(0, axis).flatten(1);
    std::tie(lo, hi) = at::aminmax(y, 1);
    if (min_val_.numel() != 0) {
      SHRINK_CHECK(min_val_.numel() == lo.numel(), "per-channel observer saw ", lo.numel(), " channels after ",
                   min_val_.numel());
    } else {
      min_val_.resize_(lo.sizes()).fill_(kInf);
      max_val_.resize_(hi.sizes()).fill_(-kInf);
    }
  } else {
    std::tie(lo, hi) = at::aminmax(x);
  }
  // Decided on the device, so that observing reads nothing back to the host: a range not yet
  // observed (+inf, -inf) takes the batch's; min/max against it already gives the batch's.
  if (options_.kind() == ObserverKind::kMovingAverage) {
    const auto c = options_.averaging_constant();
    const auto seen = min_val_ <= max_val_;
    lo = at::where(seen, min_val_ + c * (lo - min_val_), lo);
    hi = at::where(seen, max_val_ + c * (hi - max_val_), hi);
  } else {
    lo = at::minimum(lo, min_val_);
    hi = at::maximum(hi, max_val_);
  }
  min_val_.copy_(lo);
  max_val_.copy_(hi);
  return x_in;
}

QParams MinMaxObserverImpl::qparams() const {
  const bool sym = options_.symmetric();
  return calculate_qparams(min_val_, max_val_, options_.dtype(), sym, options_.reduce_range(),
                           options_.per_channel() ? options_.ch_axis() : -1);
}

HistogramObserverImpl::HistogramObserverImpl(ObserverOptions options) : ObserverImpl(std::move(options)) {
  validate(options_);
  histogram_ = register_buffer("histogram", at::zeros({options_.bins()}, at::kFloat));
  min_val_ = register_buffer("min_val", at::full({}, kInf, at::kFloat));
  max_val_ = register_buffer("max_val", at::full({}, -kInf, at::kFloat));
}

bool HistogramObserverImpl::observed() const { return min_val_.item<float>() <= max_val_.item<float>(); }

at::Tensor HistogramObserverImpl::forward(const at::Tensor& x_in) {
  if (x_in.numel() == 0) return x_in;
  at::NoGradGuard no_grad;
  const auto x = x_in.detach().to(at::kFloat);
  const int64_t bins = options_.bins();
  const float old_min = min_val_.item<float>(), old_max = max_val_.item<float>();
  auto [lo_t, hi_t] = at::aminmax(x);
  const float lo = lo_t.item<float>(), hi = hi_t.item<float>();
  SHRINK_CHECK(std::isfinite(lo) && std::isfinite(hi), "histogram observer: the observed tensor holds inf or NaN");
  if (!(old_min <= old_max) || old_min == old_max) {
    // PyTorch 1.13 truncates these bounds to integers (a bug fixed later); the float range is kept here.
    min_val_.fill_(lo);
    max_val_.fill_(hi);
    histogram_.copy_(at::histc(x, bins, lo, hi));
    return x_in;
  }
  const auto combined_min_t = at::minimum(lo_t, min_val_);
  auto combined_max_t = at::maximum(hi_t, max_val_);
  // Re-lay the old histogram into the wider range: each old bin is split into upsample_rate
  // pieces, then every downsample_rate pieces make one new bin (PyTorch's _combine_histograms).
  const auto hist_bin_width = (max_val_ - min_val_) / static_cast<double>(bins * upsample_rate_);
  const auto downsample_rate = static_cast<int64_t>(
      at::ceil((combined_max_t - combined_min_t) / (hist_bin_width * static_cast<double>(bins))).item<float>());
  const auto e = (hist_bin_width * static_cast<double>(bins)) * static_cast<double>(downsample_rate) -
                 (combined_max_t - combined_min_t);
  combined_max_t = combined_max_t + e;
  const auto start_idx = static_cast<int64_t>(at::round((min_val_ - combined_min_t) / hist_bin_width).item<float>());
  const float cmin = combined_min_t.item<float>(), cmax = combined_max_t.item<float>();
  auto combined = at::histc(x, bins, cmin, cmax);
  if (cmin == old_min && cmax == old_max) {
    combined += histogram_;
  } else {
    const auto upsampled = histogram_.repeat_interleave(upsample_rate_);
    auto laid = at::zeros({bins * downsample_rate}, at::kFloat);
    const int64_t end = std::min(start_idx + bins * upsample_rate_, bins * downsample_rate);
    SHRINK_CHECK(start_idx >= 0 && start_idx <= end, "histogram observer: inconsistent range re-layout");
    laid.slice(0, start_idx, end).copy_(upsampled.slice(0, 0, end - start_idx));
    const auto integral = at::cumsum(laid, 0, at::kDouble).slice(0, downsample_rate - 1, c10::nullopt, downsample_rate);
    auto shifted = at::zeros({bins}, at::kFloat);
    shifted.slice(0, 1, bins).copy_(integral.slice(0, 0, bins - 1));
    const auto interpolated = (integral - shifted) / static_cast<double>(upsample_rate_);
    combined = combined + interpolated.to(at::kFloat);
  }
  histogram_.copy_(combined);
  min_val_.fill_(cmin);
  max_val_.fill_(cmax);
  return x_in;
}

double HistogramObserverImpl::quantization_error(int64_t start_bin, int64_t end_bin) const {
  const int64_t bins = options_.bins();
  const int64_t dst_nbins = 256;  // 2^bits of the 8-bit dtype, as PyTorch
  const double bin_width = (static_cast<double>(max_val_.item<float>()) - static_cast<double>(min_val_.item<float>())) /
                           static_cast<double>(bins);
  const double dst_bin_width =
      bin_width * static_cast<double>(end_bin - start_bin + 1) / static_cast<double>(dst_nbins);
  if (dst_bin_width == 0.0) return 0.0;
  const auto src_bin = at::arange(bins, at::kLong);
  const auto src_begin = (src_bin - start_bin).to(at::kFloat) * bin_width;
  const auto src_end = src_begin + bin_width;
  const auto dst_of_begin = at::clamp(at::div(src_begin, dst_bin_width, "floor"), 0, dst_nbins - 1);
  const auto dst_of_begin_center = (dst_of_begin + 0.5) * dst_bin_width;
  const auto dst_of_end = at::clamp(at::div(src_end, dst_bin_width, "floor"), 0, dst_nbins - 1);
  const auto density = histogram_ / bin_width;
  const auto l2 = [&](const at::Tensor& b, const at::Tensor& e) { return density * ((e * e * e - b * b * b) / 3); };
  auto norm = at::zeros({bins}, at::kFloat);
  norm += l2(src_begin - dst_of_begin_center, at::ones({bins}, at::kFloat) * (dst_bin_width / 2));
  const auto half = at::full({}, static_cast<float>(dst_bin_width / 2), at::kFloat);
  norm += (dst_of_end - dst_of_begin - 1) * l2(-half, half);
  const auto dst_of_end_center = dst_of_end * dst_bin_width + dst_bin_width / 2;
  norm += l2(at::full({}, static_cast<float>(-dst_bin_width / 2), at::kFloat), src_end - dst_of_end_center);
  return norm.sum().item<double>();
}

std::pair<float, float> HistogramObserverImpl::l2_search() const {
  const int64_t bins = options_.bins();
  const auto bin_width = (max_val_ - min_val_) / static_cast<double>(bins);
  const double total = histogram_.sum().item<double>();
  const auto csum_t = at::cumsum(histogram_, 0).contiguous();
  const float* csum = csum_t.data_ptr<float>();
  const double step = 1e-5;
  double alpha = 0.0, beta = 1.0;
  int64_t start_bin = 0, end_bin = bins - 1;
  double norm_min = std::numeric_limits<double>::infinity();
  // Greedy: move whichever end drops less mass, while the L2 error keeps falling.
  while (alpha < beta) {
    const double next_alpha = alpha + step, next_beta = beta - step;
    int64_t l = start_bin, r = end_bin;
    while (l < end_bin && csum[l] < static_cast<float>(next_alpha * total)) ++l;
    while (r > start_bin && csum[r] > static_cast<float>(next_beta * total)) --r;
    int64_t next_start = start_bin, next_end = end_bin;
    if (l - start_bin > end_bin - r) {
      next_start = l;
      alpha = next_alpha;
    } else {
      next_end = r;
      beta = next_beta;
    }
    if (next_start == start_bin && next_end == end_bin) continue;
    const double norm = quantization_error(next_start, next_end);
    if (norm > norm_min) break;
    norm_min = norm;
    start_bin = next_start;
    end_bin = next_end;
  }
  const auto new_min = min_val_ + bin_width * static_cast<double>(start_bin);
  const auto new_max = min_val_ + bin_width * static_cast<double>(end_bin + 1);
  return {new_min.item<float>(), new_max.item<float>()};
}

std::pair<float, float> HistogramObserverImpl::percentile_range() const {
  const int64_t bins = options_.bins();
  const double lo = min_val_.item<float>(), hi = max_val_.item<float>();
  const double width = (hi - lo) / static_cast<double>(bins);
  const auto hist = histogram_.to(at::kDouble).contiguous();
  const double* h = hist.data_ptr<double>();
  double total = 0;
  for (int64_t i = 0; i < bins; ++i) total += h[i];
  const double tail = (1.0 - options_.percentile() / 100.0) / 2.0 * total;
  // Position (in value units) where the cumulative mass reaches `mass`, linear inside a bin.
  const auto at_mass = [&](double mass) {
    double cum = 0;
    for (int64_t i = 0; i < bins; ++i) {
      if (h[i] > 0 && cum + h[i] >= mass) return lo + width * (static_cast<double>(i) + (mass - cum) / h[i]);
      cum += h[i];
    }
    return hi;
  };
  return {static_cast<float>(at_mass(tail)), static_cast<float>(at_mass(total - tail))};
}

std::pair<float, float> HistogramObserverImpl::clipping_range() const {
  SHRINK_CHECK(observed(), "the histogram observer has seen no values yet");
  return options_.kind() == ObserverKind::kPercentile ? percentile_range() : l2_search();
}

QParams HistogramObserverImpl::qparams() const {
  if (!observed())
    return calculate_qparams(min_val_, max_val_, options_.dtype(), options_.symmetric(), options_.reduce_range(), -1);
  const auto [lo, hi] = clipping_range();
  return calculate_qparams(at::full({}, lo, at::kFloat), at::full({}, hi, at::kFloat), options_.dtype(),
                           options_.symmetric(), options_.reduce_range(), -1);
}

std::shared_ptr<ObserverImpl> make_observer(const ObserverOptions& options, int64_t channels) {
  validate(options);
  if (keeps_histogram(options.kind())) {
    return std::make_shared<HistogramObserverImpl>(options);
  }
  return std::make_shared<MinMaxObserverImpl>(options, channels);
}

}  // namespace shrink::compress::quantize
