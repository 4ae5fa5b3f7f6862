// Walks a model's LayerStacks and writes each layer as the ONNX operators that compute the same.
#include "deploy/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include <cmath>
#include <limits>
#include <optional>

#include "compress/quantize/int8_layer.h"
#include "compress/quantize/quantized_conv2d.h"
#include "compress/quantize/quantized_linear.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/format.h"
#include "io/state_dict.h"
#include "models/batch_norm_affine.h"
#include "models/bert.h"
#include "models/classifier.h"
#include "models/layer_stack.h"
#include "models/residual_block.h"
#include "models/torchscript.h"
#include "runtime/conv2d_geometry.h"

namespace shrink::deploy {

using core::cat;
namespace nn = torch::nn;
namespace q = compress::quantize;

std::string onnx_refusal(const std::string& arch) {
  if (arch == models::kTorchScriptArch) return "a TorchScript model, which shrink does not export to ONNX yet";
  return "";
}

void validate(const OnnxExportOptions& o) {
  if (o.opset() < kMinOnnxOpset || o.opset() > kMaxOnnxOpset) {
    throw core::UsageError(cat("opset must be in [", kMinOnnxOpset, ", ", kMaxOnnxOpset, "] (libonnx ", kMaxOnnxOpset,
                               "), got ", o.opset()));
  }
}

namespace {

// A parameter as the model computes with it: a pruned layer's `<name>_mask` buffer applied (the
// weight already holds zeros there while masks are kept; applying it again costs nothing).
at::Tensor effective(const nn::Module& m, const std::string& name) {
  auto t = m.named_parameters(false)[name].detach();
  // The dict outlives the lookup: find() points into it.
  const auto buffers = m.named_buffers(false);
  if (const auto* mask = buffers.find(name + io::kMaskSuffix)) t = t * *mask;
  return t.to(at::kCPU, at::kFloat).contiguous();
}

// A BatchNorm's running statistics, which ONNX's BatchNormalization (and folding) need.
template <class BatchNormImpl>
void require_statistics(const BatchNormImpl& bn, const std::string& name) {
  if (!bn.running_mean.defined() || !bn.running_var.defined()) {
    throw core::UsageError(cat("layer ", name, " (BatchNorm) keeps no running statistics; ONNX needs them"));
  }
}

class GraphWriter {
 public:
  GraphWriter(onnx::GraphProto& graph, const OnnxExportOptions& options) : g_(graph), options_(options) {}

  std::string stack(const models::LayerStack& s, const std::string& prefix, std::string x) {
    if (!s->plain()) {
      throw core::UsageError(cat("layers under ", prefix.empty() ? "the model" : prefix,
                                 " have observers or fake quantization attached; export the converted model"));
    }
    for (size_t i = 0; i < s->size();) i += layer(s, i, prefix, x);
    return x;
  }

  // A tensor stored in the file under `name` (the state_dict's name where there is one), in its
  // own dtype: float weights, int8 weights, uint8 zero points.
  std::string initializer(const std::string& name, const at::Tensor& t) {
    auto* init = g_.add_initializer();
    init->set_name(unique(name));
    init->set_data_type(onnx_type(t.scalar_type(), name));
    for (const auto d : t.sizes()) init->add_dims(d);
    const auto c = t.detach().to(at::kCPU).contiguous();
    init->set_raw_data(std::string(static_cast<const char*>(c.data_ptr()), c.nbytes()));
    return init->name();
  }

  static int32_t onnx_type(at::ScalarType t, const std::string& name) {
    switch (t) {
      case at::kFloat:
        return onnx::TensorProto::FLOAT;
      case at::kChar:
        return onnx::TensorProto::INT8;
      case at::kByte:
        return onnx::TensorProto::UINT8;
      case at::kInt:
        return onnx::TensorProto::INT32;
      case at::kLong:
        return onnx::TensorProto::INT64;
      default:
        throw core::Error(cat("onnx export: tensor ", name, " has dtype ", t, ", which shrink does not write"));
    }
  }

  // Flatten from dim 1, as the zoo's Classifier does between its two stacks.
  std::string flatten(std::string x, const std::string& name) {
    integer(node("Flatten", {x}, name, x), "axis", 1);
    regrid(name, x);
    return x;
  }

  // `stack`, its output then float as the next operator takes it: bert's attention, residual adds
  // and LayerNorm dequantize each int8 Linear's output (models/bert.cpp's as_float).
  std::string float_stack(const models::LayerStack& s, const std::string& prefix, const std::string& x) {
    const auto y = stack(s, prefix, x);
    quantized_.reset();
    return y;
  }

  // Linear layers as MatMul (weight stored transposed, [in, out]) and Add, which take inputs of any
  // rank (a bert's [batch, sequence, hidden]); Gemm, the default, takes matrices only.
  void linear_as_matmul() { matmul_linear_ = true; }

  const OnnxBatchNorms& batch_norms() const { return batch_norms_; }

  // Constants the graph computes with (shapes, axes, scalars), stored as initializers.
  std::string constant_ints(const std::string& name, const std::vector<int64_t>& values) {
    return initializer(name, at::tensor(values, at::kLong));
  }
  std::string scalar(const std::string& name, float value) {
    return initializer(name, at::scalar_tensor(value, at::kFloat));
  }
  std::string scalar(const std::string& name, int64_t value) {
    return initializer(name, at::scalar_tensor(value, at::kLong));
  }

  // A node `op` named after the layer `name`; its output's name goes to `out`.
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs, const std::string& name,
                        std::string& out) {
    auto& n = node_with_outputs(op, inputs, name, 1);
    out = n.output(0);
    return n;
  }

  onnx::NodeProto& node_with_outputs(const std::string& op, const std::vector<std::string>& inputs,
                                     const std::string& name, int outputs) {
    auto* n = g_.add_node();
    n->set_op_type(op);
    n->set_name(unique(name + "/" + op));
    for (const auto& in : inputs) n->add_input(in);
    for (int k = 0; k < outputs; ++k) n->add_output(unique(cat(name, "/", op, ":", k)));
    return *n;
  }

 private:
  size_t layer(const models::LayerStack& s, size_t i, const std::string& prefix, std::string& x) {
    const std::string name = prefix + std::to_string(i);
    const auto module = s->ptr(i);
    // The value is float already after its DequantizeLinear: the layer computes on it as it is.
    if (s->dequantizes_input(i)) quantized_.reset();
    if (auto conv = s->as<nn::Conv2dImpl>(i)) return conv2d(s, i, *conv, name, x);
    if (auto linear = s->as<nn::LinearImpl>(i)) return fc(s, i, *linear, name, x);
    if (auto bn = s->as<nn::BatchNorm2dImpl>(i)) return batch_norm(*bn, name, x);
    if (auto bn = s->as<nn::BatchNorm1dImpl>(i)) return batch_norm(*bn, name, x);
    if (auto int8 = s->as<q::Int8LayerImpl>(i)) return int8_layer(*int8, name, x);
    if (s->as<nn::ReLUImpl>(i)) {
      node("Relu", {x}, name, x);  // on a quantized stream: max(q, zero point), exact in float
      regrid(name, x);
      return 1;
    }
    if (auto gelu = s->as<nn::GELUImpl>(i)) {
      // Opset 17 has no Gelu: the erf form, x · (1 + erf(x / √2)) / 2, which runtimes fuse back
      // into one Gelu kernel. On a quantized stream (LibTorch's quantized GELU) the input's scale
      // and zero point are kept.
      if (gelu->options.approximate() != "none") {
        throw core::UsageError(cat("layer ", name, " (GELU) approximates with ", gelu->options.approximate(),
                                   "; shrink writes the exact (erf) GELU only"));
      }
      const std::string in = x;
      std::string e;
      node("Div", {in, scalar(name + ".sqrt2", static_cast<float>(std::sqrt(2.0)))}, name, e);
      node("Erf", {e}, name, e);
      node("Add", {e, scalar(name + ".one", 1.0F)}, name, e);
      node("Mul", {in, e}, name, e);
      node("Mul", {e, scalar(name + ".half", 0.5F)}, name, x);
      regrid(name, x);
      return 1;
    }
    if (auto pool = s->as<nn::MaxPool2dImpl>(i)) {
      const auto& o = pool->options;
      auto& n = node("MaxPool", {x}, name, x);
      const auto& k = *o.kernel_size();
      const auto& st = *o.stride();
      const auto& p = *o.padding();
      const auto& d = *o.dilation();
      ints(n, "kernel_shape", {k[0], k[1]});
      ints(n, "strides", {st[0], st[1]});
      ints(n, "pads", {p[0], p[1], p[0], p[1]});
      ints(n, "dilations", {d[0], d[1]});
      integer(n, "ceil_mode", o.ceil_mode() ? 1 : 0);
      regrid(name, x);
      return 1;
    }
    if (auto pool = s->as<nn::AdaptiveAvgPool2dImpl>(i)) {
      const auto size = pool->options.output_size();
      if (size->size() == 2 && (*size)[0] == 1 && (*size)[1] == 1) {
        node("GlobalAveragePool", {x}, name, x);
        // LibTorch averages a quantized tensor into the same scale and zero point, rounding.
        if (quantized_) x = quantize_dequantize(x, *quantized_, name);
        return 1;
      }
      throw core::UsageError(cat("layer ", name,
                                 " (AdaptiveAvgPool2d) pools to another size than 1x1; ONNX has "
                                 "no adaptive pooling and shrink writes only the global one"));
    }
    if (s->as<nn::DropoutImpl>(i) || s->as<nn::IdentityImpl>(i)) return 1;  // identities in eval mode
    if (auto f = s->as<nn::FlattenImpl>(i)) {
      if (f->options.start_dim() != 1 || f->options.end_dim() != -1) {
        throw core::UsageError(cat("layer ", name, " (Flatten) flattens dims ", f->options.start_dim(), "..",
                                   f->options.end_dim(), "; shrink writes Flatten from dim 1 only"));
      }
      x = flatten(x, name);
      return 1;
    }
    if (auto block = s->as<models::ResidualBlockImpl>(i)) {
      const std::string in = x;
      const auto in_quantized = quantized_;
      const auto a = stack(block->body, name + ".body.", in);
      quantized_ = in_quantized;
      const auto b = block->shortcut->size() > 0 ? stack(block->shortcut, name + ".shortcut.", in) : in;
      node("Add", {a, b}, name + ".add", x);
      if (block->add->relu()) node("Relu", {x}, name + ".add", x);
      quantized_.reset();
      if (block->add->is_int8()) {
        // quantized::add(_relu): the float sum, requantized to the add's own scale and zero point.
        const auto buffers = block->add->named_buffers(false);
        x = quantize_dequantize(x, {buffers["scale"], buffers["zero_point"], runtime::QDtype::kQUInt8}, name + ".add");
        quantized_ = Activation{buffers["scale"], buffers["zero_point"], runtime::QDtype::kQUInt8};
      }
      return 1;
    }
    throw unsupported(name, module->name());
  }

  // The quantization of the value flowing between layers: set after a static int8 layer (its
  // output) or an int8 residual add, kept by layers that work on the integers (ReLU, pooling,
  // Flatten), dropped by float layers.
  struct Activation {
    at::Tensor scale, zero_point;
    runtime::QDtype dtype = runtime::QDtype::kQUInt8;
  };

  // After a layer that moves or clamps quantized values without changing them (ReLU, pooling,
  // Flatten): the same Q/DQ again, exact, so that every int8 operator's input comes straight from
  // a DequantizeLinear — the pattern runtimes need to run it on int8 kernels.
  void regrid(const std::string& name, std::string& x) {
    if (quantized_) x = quantize_dequantize(x, *quantized_, name);
  }

  // QuantizeLinear → DequantizeLinear: the value rounded to the int8 grid LibTorch computes on.
  std::string quantize_dequantize(const std::string& x, const Activation& a, const std::string& name) {
    const auto scale = initializer(name + ".q_scale", a.scale.detach().to(at::kFloat).reshape({}));
    const auto zp =
        initializer(name + ".q_zero_point",
                    a.zero_point.detach().reshape({}).to(a.dtype == runtime::QDtype::kQUInt8 ? at::kByte : at::kChar));
    std::string y;
    node("QuantizeLinear", {x, scale, zp}, name, y);
    node("DequantizeLinear", {y, scale, zp}, name, y);
    return y;
  }

  // An int8 Linear or Conv2d as Q/DQ around the float operator: the input quantized with the
  // layer's input parameters (unless it arrives quantized, as LibTorch takes it then), the int8
  // weight dequantized per output channel, the float bias, the fused ReLU, the output quantized
  // with the layer's output parameters. Dynamic layers quantize their input per batch
  // (DynamicQuantizeLinear, uint8 over the batch's range with 0 in it) and stay float out.
  size_t int8_layer(const q::Int8LayerImpl& layer, const std::string& name, std::string& x) {
    const bool dynamic = layer.activations() == q::Activations::kDynamic;
    if (dynamic) {
      // Outputs: the uint8 values, their scale and zero point.
      const auto& quantize = node_with_outputs("DynamicQuantizeLinear", {x}, name, 3);
      node("DequantizeLinear", {quantize.output(0), quantize.output(1), quantize.output(2)}, name + ".input", x);
    } else if (!quantized_) {
      const auto in = layer.input_qparams();
      quantized_ = Activation{in.scale, in.zero_point, in.dtype};
      x = quantize_dequantize(x, *quantized_, name + ".input");
    }
    const auto wq = layer.weight_qparams();
    const auto per_channel = wq.per_channel();
    const bool is_linear = dynamic_cast<const q::QuantizedLinearImpl*>(&layer) != nullptr;
    const bool matmul = is_linear && matmul_linear_;
    // MatMul's weight is [in, out]: output channels along axis 1.
    const auto weight = matmul ? layer.int8_weight().t().contiguous() : layer.int8_weight();
    std::string w;
    auto& dq = node("DequantizeLinear",
                    {initializer(name + ".weight", weight),
                     initializer(name + ".weight_scale",
                                 per_channel ? wq.scale.to(at::kFloat).flatten() : wq.scale.to(at::kFloat).reshape({})),
                     initializer(name + ".weight_zero_point", per_channel ? wq.zero_point.to(at::kChar).flatten()
                                                                          : wq.zero_point.to(at::kChar).reshape({}))},
                    name + ".weight", w);
    if (per_channel) integer(dq, "axis", matmul ? 1 : 0);
    const std::vector<std::string> inputs{x, w, bias(layer, wq, name)};
    if (const auto* conv = dynamic_cast<const q::QuantizedConv2dImpl*>(&layer)) {
      conv_attributes(node("Conv", inputs, name, x), conv->geometry());
    } else if (matmul) {
      node("MatMul", {x, w}, name, x);
      node("Add", {x, inputs[2]}, name, x);
    } else if (is_linear) {
      integer(node("Gemm", inputs, name, x), "transB", 1);
    } else {
      throw unsupported(name, layer.name());
    }
    // A fused ReLU before an output quantized from zero up (zero point at the type's minimum) is
    // that quantization's own clamp: left out, the Q/DQ pair sits right after the operator, the
    // pattern runtimes fuse into one int8 kernel.
    const auto out = dynamic ? runtime::QParams{} : layer.output_qparams();
    const bool clamp_is_relu = !dynamic && out.dtype == runtime::QDtype::kQUInt8 && out.zero_point.item<int64_t>() == 0;
    if (layer.relu() && !clamp_is_relu) node("Relu", {x}, name, x);
    quantized_.reset();
    if (!dynamic) {
      quantized_ = Activation{out.scale, out.zero_point, out.dtype};
      x = quantize_dequantize(x, *quantized_, name + ".output");
    }
    return 1;
  }

  // A static layer's bias as int32 on the accumulator's grid (input scale × weight scale, per
  // channel), dequantized: the form ONNX Runtime and TensorRT fuse into QLinearConv / QGemm. The
  // rounding moves each output by at most half a step of that grid. Dynamic layers keep it float.
  std::string bias(const q::Int8LayerImpl& layer, const runtime::QParams& wq, const std::string& name) {
    const auto b = layer.float_bias().detach().to(at::kFloat);
    if (layer.activations() == q::Activations::kDynamic || !quantized_) return initializer(name + ".bias", b);
    const auto grid = (quantized_->scale.detach().to(at::kFloat).reshape({}) * wq.scale.detach().to(at::kFloat))
                          .flatten()
                          .expand({b.numel()})
                          .contiguous();
    const auto limit = static_cast<double>(std::numeric_limits<int32_t>::max());
    const auto values = (b / grid).round().clamp(-limit, limit).to(at::kInt);
    std::string y;
    auto& dq =
        node("DequantizeLinear", {initializer(name + ".bias_int32", values), initializer(name + ".bias_scale", grid)},
             name + ".bias", y);
    integer(dq, "axis", 0);
    return y;
  }

  static core::UsageError unsupported(const std::string& name, const std::string& type) {
    return core::UsageError(cat("layer ", name, " (", type,
                                ") has no ONNX form in shrink yet; exportable layers: Linear, Conv2d, BatchNorm1d/2d, "
                                "ReLU, GELU, MaxPool2d, global AdaptiveAvgPool2d, Flatten, Dropout, Identity and "
                                "residual blocks, float or int8"));
  }

  // The weight and bias of a Linear or Conv2d with the BatchNorm right after it folded in when the
  // options say so; returns how many layers that takes.
  template <class BatchNormImpl>
  size_t weights(const models::LayerStack& s, size_t i, const nn::Module& m, const std::string& name, at::Tensor& w,
                 at::Tensor& b) {
    w = effective(m, "weight");
    const auto params = m.named_parameters(false);
    b = params.contains("bias") && params["bias"].defined() ? effective(m, "bias") : at::Tensor();
    if (!options_.fold_batch_norm() || i + 1 >= s->size()) return 1;
    const auto bn = s->as<BatchNormImpl>(i + 1);
    if (!bn) return 1;
    require_statistics(*bn, prefix_of(name) + std::to_string(i + 1));
    const auto a = models::affine_of(*bn);
    ++batch_norms_.folded;
    std::vector<int64_t> shape(static_cast<size_t>(w.dim()), 1);
    shape[0] = -1;
    w = (w * a.scale.to(at::kFloat).view(shape)).contiguous();
    b = ((b.defined() ? b : at::zeros({w.size(0)})) * a.scale.to(at::kFloat) + a.shift.to(at::kFloat)).contiguous();
    return 2;
  }

  static std::string prefix_of(const std::string& name) { return name.substr(0, name.rfind('.') + 1); }

  size_t conv2d(const models::LayerStack& s, size_t i, nn::Conv2dImpl& conv, const std::string& name, std::string& x) {
    if (torch::enumtype::get_enum_name(conv.options.padding_mode()) != "kZeros") {
      throw core::UsageError(cat("layer ", name, " (Conv2d) pads with ",
                                 torch::enumtype::get_enum_name(conv.options.padding_mode()),
                                 "; ONNX's Conv pads with zeros only"));
    }
    runtime::Conv2dGeometry geometry;
    try {
      geometry = runtime::geometry_of(conv);
    } catch (const core::Error& e) {
      throw core::UsageError(cat("layer ", name, " (Conv2d): ", e.what()));
    }
    at::Tensor w, b;
    const size_t used = weights<nn::BatchNorm2dImpl>(s, i, conv, name, w, b);
    std::vector<std::string> inputs{x, initializer(name + ".weight", w)};
    if (b.defined()) inputs.push_back(initializer(name + ".bias", b));
    conv_attributes(node("Conv", inputs, name, x), geometry);
    quantized_.reset();
    return used;
  }

  size_t fc(const models::LayerStack& s, size_t i, nn::LinearImpl& linear, const std::string& name, std::string& x) {
    at::Tensor w, b;
    const size_t used = weights<nn::BatchNorm1dImpl>(s, i, linear, name, w, b);
    const auto weight = initializer(name + ".weight", matmul_linear_ ? w.t().contiguous() : w);
    if (matmul_linear_) {
      node("MatMul", {x, weight}, name, x);
      if (b.defined()) node("Add", {x, initializer(name + ".bias", b)}, name, x);
    } else {
      std::vector<std::string> inputs{x, weight};
      if (b.defined()) inputs.push_back(initializer(name + ".bias", b));
      integer(node("Gemm", inputs, name, x), "transB", 1);
    }
    quantized_.reset();
    return used;
  }

  template <class BatchNormImpl>
  size_t batch_norm(const BatchNormImpl& bn, const std::string& name, std::string& x) {
    require_statistics(bn, name);
    const auto c = bn.running_mean.size(0);
    const auto gamma = bn.weight.defined() ? bn.weight.detach() : at::ones({c});
    const auto beta = bn.bias.defined() ? bn.bias.detach() : at::zeros({c});
    auto& n =
        node("BatchNormalization",
             {x, initializer(name + ".weight", gamma), initializer(name + ".bias", beta),
              initializer(name + ".running_mean", bn.running_mean), initializer(name + ".running_var", bn.running_var)},
             name, x);
    floating(n, "epsilon", static_cast<float>(bn.options.eps()));
    ++batch_norms_.kept;
    quantized_.reset();
    return 1;
  }

 public:
  // Node attributes.
  static void floating(onnx::NodeProto& n, const std::string& name, float value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(value);
  }
  static void ints(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (const auto v : values) a->add_ints(v);
  }
  static void integer(onnx::NodeProto& n, const std::string& name, int64_t value) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }

 private:
  // ONNX's Conv attributes for a convolution shrink runs (symmetric zero padding).
  static void conv_attributes(onnx::NodeProto& n, const runtime::Conv2dGeometry& g) {
    ints(n, "kernel_shape", g.kernel);
    ints(n, "strides", g.stride);
    ints(n, "pads", {g.padding[0], g.padding[1], g.padding[0], g.padding[1]});
    ints(n, "dilations", g.dilation);
    integer(n, "group", g.groups);
  }

  // Value and node names are unique in an ONNX graph; a repeated hint gets a numbered suffix.
  std::string unique(const std::string& hint) {
    const auto n = used_[hint]++;
    return n == 0 ? hint : cat(hint, "_", n);
  }

  onnx::GraphProto& g_;
  const OnnxExportOptions& options_;
  std::map<std::string, int64_t> used_;
  std::optional<Activation> quantized_;
  bool matmul_linear_ = false;
  OnnxBatchNorms batch_norms_;
};

// A graph input's or output's type: `symbolic` dims by name ("batch"), then fixed `dims`.
void set_tensor_type(onnx::ValueInfoProto& v, const std::string& name, const std::vector<int64_t>& dims,
                     int32_t elem_type = onnx::TensorProto::FLOAT,
                     const std::vector<std::string>& symbolic = {"batch"}) {
  v.set_name(name);
  auto* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem_type);
  auto* shape = t->mutable_shape();
  for (const auto& d : symbolic) shape->add_dim()->set_dim_param(d);
  for (const auto d : dims) shape->add_dim()->set_dim_value(d);
}

std::string layer_norm(GraphWriter& w, const nn::LayerNormImpl& ln, const std::string& name, const std::string& x) {
  std::string y;
  auto& n =
      w.node("LayerNormalization",
             {x, w.initializer(name + ".weight", ln.weight.detach()), w.initializer(name + ".bias", ln.bias.detach())},
             name, y);
  GraphWriter::integer(n, "axis", -1);
  GraphWriter::floating(n, "epsilon", static_cast<float>(ln.options.eps()));
  return y;
}

// A bert (models/bert.h) as its forward computes it, from token ids [batch, sequence]: padding (the
// pad id) masked out of attention by the dtype's lowest score and out of the mean; the pooled
// embedding normalised and the head applied as the options say. Trailing padding, which shrink
// skips, changes no output here either.
std::string write_bert(GraphWriter& w, models::BertModelImpl& m, const std::string& ids) {
  const auto& o = m.options();
  const int64_t hidden = o.hidden(), heads = o.heads(), d = hidden / heads;
  w.linear_as_matmul();
  std::string is_pad, x, pos, len, bias, keep;
  w.node("Equal", {ids, w.scalar("pad_token_id", o.pad_token_id())}, "mask", is_pad);

  const auto& e = *m.embeddings;
  w.node("Gather", {w.initializer("embeddings.word_embeddings.weight", e.word_embeddings->weight.detach()), ids},
         "embeddings.word_embeddings", x);
  GraphWriter::integer(w.node("Shape", {ids}, "embeddings.positions", len), "start", 1);
  w.node("Squeeze", {len, w.constant_ints("embeddings.positions.axes", {0})}, "embeddings.positions", len);
  w.node("Range",
         {w.scalar("embeddings.positions.start", int64_t{0}), len, w.scalar("embeddings.positions.step", int64_t{1})},
         "embeddings.positions", pos);
  w.node("Gather",
         {w.initializer("embeddings.position_embeddings.weight", e.position_embeddings->weight.detach()), pos},
         "embeddings.position_embeddings", pos);
  w.node("Add", {x, pos}, "embeddings", x);
  // Token type 0 everywhere: its row alone is stored.
  w.node("Add",
         {x, w.initializer("embeddings.token_type_embeddings.weight.0", e.token_type_embeddings->weight[0].detach())},
         "embeddings", x);
  x = layer_norm(w, *e.LayerNorm, "embeddings.LayerNorm", x);

  w.node("Where", {is_pad, w.scalar("mask.lowest", std::numeric_limits<float>::lowest()), w.scalar("mask.zero", 0.0F)},
         "mask", bias);
  w.node("Unsqueeze", {bias, w.constant_ints("mask.axes", {1, 2})}, "mask", bias);  // [batch, 1, 1, keys]

  const auto split_shape = w.constant_ints("attention.split", {0, 0, heads, d});
  const auto merge_shape = w.constant_ints("attention.merge", {0, 0, hidden});
  const auto sqrt_d = w.scalar("attention.sqrt_d", static_cast<float>(std::sqrt(static_cast<double>(d))));
  for (size_t l = 0; l < m.encoder->layer->size(); ++l) {
    auto& layer = *m.encoder->layer->ptr<models::BertLayerImpl>(l);
    const std::string p = cat("encoder.layer.", l, ".");
    const std::string a = p + "attention.self.";
    auto& self = *layer.attention->self;
    // [batch, sequence, hidden] → [batch, heads, sequence, d]; the keys transposed to [.., d, sequence].
    const auto heads_of = [&](const models::LayerStack& s, const std::string& name, std::vector<int64_t> perm) {
      std::string y = w.float_stack(s, a + name + ".", x);
      w.node("Reshape", {y, split_shape}, a + name, y);
      GraphWriter::ints(w.node("Transpose", {y}, a + name, y), "perm", perm);
      return y;
    };
    const auto q = heads_of(self.query, "query", {0, 2, 1, 3});
    const auto k = heads_of(self.key, "key", {0, 2, 3, 1});
    const auto v = heads_of(self.value, "value", {0, 2, 1, 3});
    std::string c;
    w.node("MatMul", {q, k}, a + "scores", c);
    w.node("Div", {c, sqrt_d}, a + "scores", c);
    w.node("Add", {c, bias}, a + "scores", c);
    GraphWriter::integer(w.node("Softmax", {c}, a + "probs", c), "axis", -1);
    w.node("MatMul", {c, v}, a + "context", c);
    GraphWriter::ints(w.node("Transpose", {c}, a + "context", c), "perm", {0, 2, 1, 3});
    w.node("Reshape", {c, merge_shape}, a + "context", c);

    const auto residual = [&](models::BertResidualOutputImpl& out, const std::string& name, const std::string& in,
                              const std::string& skip) {
      std::string y = w.float_stack(out.dense, name + ".dense.", in);
      w.node("Add", {y, skip}, name, y);
      return layer_norm(w, *out.LayerNorm, name + ".LayerNorm", y);
    };
    const auto attended = residual(*layer.attention->output, p + "attention.output", c, x);
    const auto inner = w.float_stack(layer.intermediate->dense, p + "intermediate.dense.", attended);
    x = residual(*layer.output, p + "output", inner, attended);
    x = w.float_stack(layer.hidden, p + "hidden.", x);
  }

  // The mean over the tokens that are not padding.
  std::string sum, count;
  w.node("Not", {is_pad}, "pool", keep);
  GraphWriter::integer(w.node("Cast", {keep}, "pool", keep), "to", onnx::TensorProto::FLOAT);
  w.node("Unsqueeze", {keep, w.constant_ints("pool.axes", {-1})}, "pool", keep);  // [batch, sequence, 1]
  w.node("Mul", {x, keep}, "pool", sum);
  // Axis 1: the tokens of [batch, sequence, ...], the features of [batch, hidden].
  const auto axis1 = w.constant_ints("pool.axis1", {1});
  GraphWriter::integer(w.node("ReduceSum", {sum, axis1}, "pool", sum), "keepdims", 0);
  GraphWriter::integer(w.node("ReduceSum", {keep, axis1}, "pool", count), "keepdims", 0);
  w.node("Max", {count, w.scalar("pool.min_count", 1e-9F)}, "pool", count);
  w.node("Div", {sum, count}, "pool", x);
  if (o.normalize()) {
    // x / max(‖x‖₂, 1e-12), torch's normalize.
    std::string norm;
    w.node("Mul", {x, x}, "normalize", norm);
    GraphWriter::integer(w.node("ReduceSum", {norm, axis1}, "normalize", norm), "keepdims", 1);
    w.node("Sqrt", {norm}, "normalize", norm);
    w.node("Max", {norm, w.scalar("normalize.eps", 1e-12F)}, "normalize", norm);
    w.node("Div", {x, norm}, "normalize", x);
  }
  if (m.classifier) x = w.float_stack(m.classifier, "classifier.", x);
  return x;
}

void add_metadata(onnx::ModelProto& m, const std::string& key, const std::string& value) {
  auto* p = m.add_metadata_props();
  p->set_key(key);
  p->set_value(value);
}

// What the export did with the model's BatchNorms (not the option asked: a model without one says
// "none", and one that cannot be folded, with no layer before it, is kept either way).
std::string batch_norm_metadata(const OnnxBatchNorms& b) {
  if (b.folded == 0 && b.kept == 0) return "none";
  if (b.kept == 0) return "folded";
  if (b.folded == 0) return "kept";
  return cat(b.folded, " folded, ", b.kept, " kept");
}

// onnx_model_bytes, and how the BatchNorms were written into `batch_norms`.
std::string model_bytes(const models::Model& model, const models::Blueprint& blueprint,
                        const OnnxExportOptions& options, OnnxBatchNorms& batch_norms) {
  validate(options);
  SHRINK_CHECK(model.module, "onnx export: the model is empty");
  onnx::ModelProto m;
  m.set_ir_version(onnx::IR_VERSION);
  m.set_producer_name("shrink");
  m.set_producer_version(SHRINK_VERSION);
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset());
  auto& g = *m.mutable_graph();
  g.set_name(blueprint.arch.empty() ? "shrink" : blueprint.arch);
  torch::NoGradGuard no_grad;
  GraphWriter w(g, options);
  std::string x = "input";
  std::string output = "logits";
  std::vector<int64_t> output_dims = {blueprint.input.num_classes};
  if (auto bert = std::dynamic_pointer_cast<models::BertModelImpl>(model.module)) {
    if (options.opset() < 17) {
      throw core::UsageError(
          cat("a bert's ONNX graph needs opset 17 (LayerNormalization), got opset ", options.opset()));
    }
    // Token ids of any length up to max_positions, as the model takes them (and tokenizers give).
    x = "input_ids";
    set_tensor_type(*g.add_input(), x, {}, onnx::TensorProto::INT64, {"batch", "sequence"});
    x = write_bert(w, *bert, x);
    if (!bert->classifier) {
      output = "embeddings";
      output_dims = {bert->options().hidden()};
    }
  } else if (auto c = std::dynamic_pointer_cast<models::ClassifierImpl>(model.module)) {
    set_tensor_type(*g.add_input(), x, blueprint.input.shape);
    if (c->features->size() > 0) x = w.stack(c->features, "features.", x);
    x = w.flatten(x, "flatten");
    x = w.stack(c->classifier, "classifier.", x);
  } else if (auto s = std::dynamic_pointer_cast<models::LayerStackImpl>(model.module)) {
    set_tensor_type(*g.add_input(), x, blueprint.input.shape);
    x = w.stack(models::LayerStack(s), "", x);
  } else {
    throw core::UsageError(cat("the model (", model.module->name(),
                               ") is neither a zoo Classifier, a bert nor a LayerStack; shrink exports those to ONNX"));
  }
  // The last value is renamed to the graph's output by an Identity: names stay the layers' own.
  auto* out = g.add_node();
  out->set_op_type("Identity");
  out->set_name(output + "/Identity");
  out->add_input(x);
  out->add_output(output);
  set_tensor_type(*g.add_output(), output, output_dims);

  add_metadata(m, "shrink_version", SHRINK_VERSION);
  add_metadata(m, "batch_norm", batch_norm_metadata(w.batch_norms()));
  add_metadata(m, "blueprint", blueprint.to_json().dump());
  for (const auto& [k, v] : options.metadata()) add_metadata(m, k, v);
  try {
    onnx::checker::check_model(m);
    onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict=*/1));
  } catch (const std::exception& e) {
    throw core::Error(cat("the ONNX graph shrink built fails ONNX's checks (a shrink bug): ", e.what()));
  }
  std::string bytes;
  SHRINK_CHECK(m.SerializeToString(&bytes), "onnx export: protobuf could not serialize the model (over 2 GB?)");
  batch_norms = w.batch_norms();
  return bytes;
}

}  // namespace

std::string onnx_model_bytes(const models::Model& model, const models::Blueprint& blueprint,
                             const OnnxExportOptions& options) {
  OnnxBatchNorms unused;
  return model_bytes(model, blueprint, options, unused);
}

OnnxBatchNorms export_onnx(const std::filesystem::path& path, const models::Model& model,
                           const models::Blueprint& blueprint, const OnnxExportOptions& options) {
  OnnxBatchNorms batch_norms;
  const auto bytes = model_bytes(model, blueprint, options, batch_norms);
  core::write_bytes_atomically(path, bytes.data(), bytes.size());
  return batch_norms;
}

}  // namespace shrink::deploy
