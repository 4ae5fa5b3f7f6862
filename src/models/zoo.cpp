// Builders for the zoo architectures, and their recipe options.
#include "models/zoo.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/utils.h>

#include <algorithm>

#include "core/error.h"
#include "models/bert.h"
#include "models/registry.h"
#include "models/residual_block.h"

namespace shrink::models {

namespace nn = torch::nn;
using core::cat;

namespace {

int64_t product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t d : v) p *= d;
  return p;
}

void check_input(const ModelInput& in) {
  SHRINK_CHECK(!in.shape.empty(), "model input shape must not be empty");
  for (int64_t d : in.shape) SHRINK_CHECK(d > 0, "model input dimensions must be > 0, got ", d);
  SHRINK_CHECK(in.num_classes >= 2, "num_classes must be >= 2, got ", in.num_classes);
}

// Flattened size after `features`, found by running one zero sample through it.
int64_t features_out(Classifier& m, const ModelInput& in) {
  torch::NoGradGuard no_grad;
  auto x = torch::zeros(batch_shape(1, in.shape));
  const bool was_training = m->is_training();
  m->eval();
  if (m->features->size() > 0) x = m->features->forward(x);
  m->train(was_training);
  return x.numel();
}

void add_fc(Classifier& m, int64_t in, const std::vector<int64_t>& hidden, int64_t classes, bool bn, double dropout) {
  for (int64_t h : hidden) {
    SHRINK_CHECK(h > 0, "hidden layer sizes must be > 0, got ", h);
    m->classifier->push_back(nn::Linear(in, h));
    if (bn) m->classifier->push_back(nn::BatchNorm1d(h));
    m->classifier->push_back(nn::ReLU());
    if (dropout > 0) m->classifier->push_back(nn::Dropout(dropout));
    in = h;
  }
  m->classifier->push_back(nn::Linear(in, classes));
}

Classifier build(const MlpOptions& o, const ModelInput& in) {
  check_input(in);
  SHRINK_CHECK(o.dropout() >= 0 && o.dropout() < 1, "dropout must be in [0, 1), got ", o.dropout());
  Classifier m("mlp");
  add_fc(m, product(in.shape), o.hidden(), in.num_classes, o.batch_norm(), o.dropout());
  return m;
}

Classifier build(const LeNet5Options&, const ModelInput& in) {
  check_input(in);
  SHRINK_CHECK(in.shape.size() == 3, "lenet5 needs image input [C, H, W], got a sample of rank ", in.shape.size());
  SHRINK_CHECK(in.shape[1] >= 12 && in.shape[2] >= 12, "lenet5 needs images of at least 12x12, got ", in.shape[1], "x",
               in.shape[2]);
  Classifier m("lenet5");
  m->features->push_back(nn::Conv2d(nn::Conv2dOptions(in.shape[0], 6, 5).padding(2)));
  m->features->push_back(nn::ReLU());
  m->features->push_back(nn::MaxPool2d(2));
  m->features->push_back(nn::Conv2d(nn::Conv2dOptions(6, 16, 5)));
  m->features->push_back(nn::ReLU());
  m->features->push_back(nn::MaxPool2d(2));
  add_fc(m, features_out(m, in), {120, 84}, in.num_classes, false, 0.0);
  return m;
}

Classifier build(const ConvNetOptions& o, const ModelInput& in) {
  check_input(in);
  SHRINK_CHECK(in.shape.size() == 3, "convnet needs image input [C, H, W], got a sample of rank ", in.shape.size());
  SHRINK_CHECK(!o.channels().empty(), "convnet needs at least one conv block");
  SHRINK_CHECK(o.kernel_size() > 0 && o.kernel_size() % 2 == 1, "kernel_size must be odd and > 0, got ",
               o.kernel_size());
  SHRINK_CHECK(o.dropout() >= 0 && o.dropout() < 1, "dropout must be in [0, 1), got ", o.dropout());
  const int64_t min_side = int64_t{1} << o.channels().size();
  SHRINK_CHECK(in.shape[1] >= min_side && in.shape[2] >= min_side, o.channels().size(),
               " pooling blocks need images of at least ", min_side, "x", min_side, ", got ", in.shape[1], "x",
               in.shape[2]);
  Classifier m("convnet");
  int64_t c_in = in.shape[0];
  for (int64_t c : o.channels()) {
    SHRINK_CHECK(c > 0, "conv channels must be > 0, got ", c);
    m->features->push_back(
        nn::Conv2d(nn::Conv2dOptions(c_in, c, o.kernel_size()).padding(o.kernel_size() / 2).bias(!o.batch_norm())));
    if (o.batch_norm()) m->features->push_back(nn::BatchNorm2d(c));
    m->features->push_back(nn::ReLU());
    m->features->push_back(nn::MaxPool2d(2));
    c_in = c;
  }
  add_fc(m, features_out(m, in), o.fc(), in.num_classes, false, o.dropout());
  return m;
}

Classifier build(const ResNetOptions& o, const ModelInput& in) {
  check_input(in);
  SHRINK_CHECK(in.shape.size() == 3, "resnet needs image input [C, H, W], got a sample of rank ", in.shape.size());
  SHRINK_CHECK(!o.widths().empty(), "resnet needs at least one stage width");
  SHRINK_CHECK(o.blocks() >= 1, "resnet needs at least one block a stage, got ", o.blocks());
  Classifier m("resnet");
  int64_t c = o.widths()[0];
  SHRINK_CHECK(c > 0, "resnet widths must be > 0, got ", c);
  m->features->push_back(nn::Conv2d(nn::Conv2dOptions(in.shape[0], c, 3).padding(1).bias(false)));
  m->features->push_back(nn::BatchNorm2d(c));
  m->features->push_back(nn::ReLU());
  for (size_t stage = 0; stage < o.widths().size(); ++stage) {
    const int64_t w = o.widths()[stage];
    SHRINK_CHECK(w > 0, "resnet widths must be > 0, got ", w);
    for (int64_t b = 0; b < o.blocks(); ++b) {
      m->features->push_back(ResidualBlock(c, w, stage > 0 && b == 0 ? 2 : 1));
      c = w;
    }
  }
  m->features->push_back(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)));
  m->classifier->push_back(nn::Linear(c, in.num_classes));
  return m;
}

}  // namespace

Classifier build_model(const MlpOptions& options, const ModelInput& input) { return build(options, input); }
Classifier build_model(const LeNet5Options& options, const ModelInput& input) { return build(options, input); }
Classifier build_model(const ConvNetOptions& options, const ModelInput& input) { return build(options, input); }
Classifier build_model(const ResNetOptions& options, const ModelInput& input) { return build(options, input); }

namespace {

// The text encoder: token ids in, sentence embeddings out; `init:` takes a Hugging Face checkpoint.
void add_bert(ArchitectureRegistry& registry) {
  using config::integer;
  using B = BertOptions;
  const config::OptionsSpec<B> bert(
      {SHRINK_OPTION(B, vocab_size, integer(1)), SHRINK_OPTION(B, hidden, integer(1)),
       SHRINK_OPTION(B, layers, integer(1, 1024), "encoder layers"), SHRINK_OPTION(B, heads, integer(1)),
       SHRINK_OPTION(B, intermediate, integer(1), "the feed-forward's width"),
       SHRINK_OPTION(B, max_positions, integer(1)), SHRINK_OPTION(B, type_vocab_size, integer(1)),
       SHRINK_OPTION(B, layer_norm_eps, config::number(0, 1)),
       SHRINK_OPTION(B, pad_token_id, integer(0), "masked out of attention and of the mean"),
       SHRINK_OPTION(B, normalize, config::boolean(), "L2-normalise the pooled embedding"),
       SHRINK_OPTION(B, init_layers, config::list_of(integer(0)),
                     "the init file's encoder layers this model's start from; [] = the same")});
  Architecture a{"bert",
                 bert.schema(),
                 [bert](const YAML::Node& n, const ModelInput& in) {
                   const auto o = bert.parse(n);
                   validate(o);
                   if (in.shape.size() != 1) {
                     throw core::UsageError(cat("bert takes token ids [N, L]; the data's samples have shape ",
                                                c10::IntArrayRef(in.shape)));
                   }
                   if (in.shape[0] > o.max_positions()) {
                     throw core::UsageError(cat("bert: the data's sequences hold ", in.shape[0],
                                                " tokens, more than max_positions (", o.max_positions(), ")"));
                   }
                   // Labelled data (classes >= 2) gets a head; text without labels (0), embeddings.
                   Model m = to_model(BertModel(BertOptions(o).classes(in.num_classes)));
                   m.input_dtype = at::kLong;
                   m.pad_token_id = o.pad_token_id();
                   return m;
                 },
                 {},
                 [bert](const io::StateDict& sd, const YAML::Node& n, const ModelInput& in, const std::string& source) {
                   const auto o = bert.parse(n);
                   auto named = from_hf_bert(sd, source);
                   if (!o.init_layers().empty()) named = select_bert_layers(named, o.init_layers(), source);
                   const bool has_head = std::any_of(named.begin(), named.end(), [](const io::Entry& e) {
                     return e.name.rfind("classifier.", 0) == 0;
                   });
                   if (in.num_classes > 0 && !has_head) {
                     // An encoder's checkpoint fine-tuned on labels: the head starts as a new
                     // Linear's, drawn from the seeded generator as any built layer is.
                     torch::nn::Linear head(o.hidden(), in.num_classes);
                     named.push_back({"classifier.0.weight", head->weight.detach(), false});
                     named.push_back({"classifier.0.bias", head->bias.detach(), false});
                   }
                   return named;
                 }};
  registry.add(std::move(a));
}

}  // namespace

void add_zoo(ArchitectureRegistry& registry) {
  using config::integer;
  using config::list_of;
  using config::number;
  const auto sizes = list_of(integer(1), 1);
  auto kernel = std::make_shared<config::Schema>(*integer(1, 15));
  kernel->check = [](const YAML::Node& n) {
    return n.as<int64_t>() % 2 == 1 ? "" : "expected an odd kernel size (same padding needs one)";
  };
  using M = MlpOptions;
  const config::OptionsSpec<M> mlp({SHRINK_OPTION(M, hidden, sizes, "hidden layer widths"),
                                    SHRINK_OPTION(M, batch_norm, config::boolean()),
                                    SHRINK_OPTION(M, dropout, number(0, 0.99))});
  using C = ConvNetOptions;
  const config::OptionsSpec<C> convnet(
      {SHRINK_OPTION(C, channels, sizes, "one conv block per entry"), SHRINK_OPTION(C, kernel_size, kernel, "odd"),
       SHRINK_OPTION(C, fc, list_of(integer(1)), "hidden fully connected widths"),
       SHRINK_OPTION(C, batch_norm, config::boolean()), SHRINK_OPTION(C, dropout, number(0, 0.99))});
  using R = ResNetOptions;
  const config::OptionsSpec<R> resnet({SHRINK_OPTION(R, widths, list_of(integer(1, 4096), 1), "one stage per entry"),
                                       SHRINK_OPTION(R, blocks, integer(1, 64), "residual blocks a stage")});
  const auto typed = [](const auto& spec) {
    return [spec](const YAML::Node& n, const ModelInput& in) { return to_model(build(spec.parse(n), in)); };
  };
  registry.add({"mlp", mlp.schema(), typed(mlp), {}, {}});
  registry.add({"lenet5",
                config::map_of({}),
                [](const YAML::Node&, const ModelInput& in) { return to_model(build(LeNet5Options(), in)); },
                {},
                {}});
  registry.add({"convnet", convnet.schema(), typed(convnet), {}, {}});
  registry.add({"resnet", resnet.schema(), typed(resnet), {}, {}});
  add_bert(registry);
}

}  // namespace shrink::models
