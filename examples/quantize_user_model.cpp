// Library example: int8 quantization of your own module — post-training (static) and
// quantization-aware training in your own loop, no recipe. Build the parts you want quantized from
// shrink's LayerStack (it lets the quantizer fuse and swap layers in place); the rest of your
// forward stays yours. Built and run by the test suite (ctest: example.quantize_user_model);
// docs/quantization.md walks through it.
#include <torch/torch.h>

#include <iostream>

#include "compress/quantize/qat.h"
#include "compress/quantize/quantizer.h"
#include "core/format.h"
#include "data/synthetic.h"
#include "io/state_dict.h"
#include "models/layer_stack.h"

namespace nn = torch::nn;
namespace qz = shrink::compress::quantize;
using shrink::models::LayerStack;

struct NetImpl : nn::Module {
  NetImpl() {
    body = register_module("body", LayerStack());
    body->push_back(nn::Conv2d(nn::Conv2dOptions(1, 16, 3).padding(1).bias(false)));
    body->push_back(nn::BatchNorm2d(16));  // folded into the conv
    body->push_back(nn::ReLU());           // fused into the int8 conv
    body->push_back(nn::MaxPool2d(2));     // runs on int8 tensors as they are
    head = register_module("head", LayerStack());
    head->push_back(nn::Linear(16 * 6 * 6, 64));
    head->push_back(nn::ReLU());
    head->push_back(nn::Linear(64, 4));
  }
  torch::Tensor forward(torch::Tensor x) {
    auto y = head->forward(body->forward(x).flatten(1));
    return y.is_quantized() ? y.dequantize() : y;  // int8 layers hand back quantized tensors
  }
  LayerStack body{nullptr}, head{nullptr};
};
TORCH_MODULE(Net);

double accuracy(Net& net, const shrink::data::Dataset& d) {
  torch::NoGradGuard no_grad;
  net->eval();
  return net->forward(d.inputs).argmax(1).eq(d.targets).to(torch::kFloat).mean().item<double>();
}

void train(Net& net, const shrink::data::Dataset& d, int epochs, double lr, qz::QatModifier* qat = nullptr) {
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(lr).momentum(0.9));
  const int64_t batch = 64, steps = d.size() / batch;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    net->train();
    for (int64_t i = 0; i < steps; ++i) {
      if (qat) qat->update(epoch + static_cast<double>(i) / steps);  // observer/BN freezing schedule
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(d.inputs.narrow(0, i * batch, batch)),
                                                       d.targets.narrow(0, i * batch, batch));
      loss.backward();
      opt.step();
    }
  }
}

int main(int argc, char** argv) {
  const std::string out = argc > 1 ? argv[1] : "int8_net.h5";
  torch::manual_seed(0);
  const auto all = shrink::data::make_synthetic(
      shrink::data::SyntheticOptions().samples(4096).classes(4).shape({1, 12, 12}).noise(3.0).seed(0));
  const auto train_set = all.head(3072), test_set = all.select(torch::arange(3072, 4096));
  Net net;
  train(net, train_set, 4, 0.02);
  const double fp32 = accuracy(net, test_set);

  // Post-training static: observe, run some batches through the model yourself, convert.
  Net ptq;
  shrink::io::load_state_dict(*ptq, shrink::io::state_dict(*net), "the float net");
  qz::PostTrainingQuantizer quantizer(shrink::models::to_model(ptq), qz::QuantizeOptions());
  quantizer.prepare();
  {
    torch::NoGradGuard no_grad;
    ptq->eval();
    for (int64_t i = 0; i < 8; ++i) ptq->forward(train_set.inputs.narrow(0, i * 128, 128));
  }
  auto ptq_model = shrink::models::to_model(ptq);
  quantizer.convert(ptq_model);
  const double int8_ptq = accuracy(ptq, test_set);

  // Quantization-aware training: fake-quantized fine-tuning, then conversion with what it learned.
  Net qat_net;
  shrink::io::load_state_dict(*qat_net, shrink::io::state_dict(*net), "the float net");
  auto qat_model = shrink::models::to_model(qat_net);
  qz::QatModifier qat(qat_model, qz::QatOptions().freeze_observers_epoch(1).freeze_bn_epoch(1));
  qat.prepare(*qat_net);
  train(qat_net, train_set, 2, 0.002, &qat);
  qat.finish(qat_model);
  const double int8_qat = accuracy(qat_net, test_set);

  shrink::io::save_module(out, *qat_net);  // int8 weights, scales and zero points as plain tensors
  std::cout << "accuracy: fp32 " << fp32 << ", int8 PTQ " << int8_ptq << ", int8 QAT " << int8_qat << "\n"
            << "int8 layers: " << shrink::core::join(quantizer.summary().int8_layers) << "\n";
  return int8_ptq > fp32 - 0.02 && int8_qat > fp32 - 0.02 ? 0 : 1;
}
