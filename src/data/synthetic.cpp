// Gaussian-blob classification data from a seeded generator.
#include "data/synthetic.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"

namespace shrink::data {

const config::OptionsSpec<SyntheticOptions>& synthetic_spec() {
  using O = SyntheticOptions;
  static const config::OptionsSpec<O> spec(
      {SHRINK_OPTION(O, samples, config::integer(1)), SHRINK_OPTION(O, test_samples, config::integer(1)),
       SHRINK_OPTION(O, classes, config::integer(2, 100000)),
       SHRINK_OPTION(O, shape, config::list_of(config::integer(1), 1)),
       SHRINK_OPTION(O, noise, config::number(0), "std of samples around their class prototype")});
  return spec;
}

Dataset make_synthetic(const SyntheticOptions& o, uint64_t stream) {
  SHRINK_CHECK(o.samples() > 0, "synthetic samples must be > 0, got ", o.samples());
  SHRINK_CHECK(o.classes() >= 2, "synthetic classes must be >= 2, got ", o.classes());
  SHRINK_CHECK(!o.shape().empty(), "synthetic shape must not be empty");
  SHRINK_CHECK(o.noise() >= 0, "synthetic noise must be >= 0, got ", o.noise());
  int64_t features = 1;
  for (int64_t d : o.shape()) {
    SHRINK_CHECK(d > 0, "synthetic shape dimensions must be > 0, got ", d);
    features *= d;
  }
  auto proto_gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(o.seed(), 1));
  const auto protos = at::normal(0.0, 1.0, {o.classes(), features}, proto_gen);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(o.seed(), 100 + stream));
  const auto targets = at::randint(0, o.classes(), {o.samples()}, gen, at::TensorOptions().dtype(at::kLong));
  const auto noise = at::normal(0.0, o.noise(), {o.samples(), features}, gen);
  std::vector<int64_t> shape = {o.samples()};
  shape.insert(shape.end(), o.shape().begin(), o.shape().end());
  Dataset d;
  d.inputs = (protos.index_select(0, targets) + noise).reshape(shape).contiguous();
  d.targets = targets;
  for (int64_t c = 0; c < o.classes(); ++c) d.class_names.push_back("class" + std::to_string(c));
  return d;
}

}  // namespace shrink::data
