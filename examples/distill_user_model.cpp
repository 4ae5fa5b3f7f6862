// Library example: distillation inside your own training loop — your own teacher and student
// modules, Hinton KD plus a hint between hidden layers through a learnable adapter. No recipe, no
// shrink Trainer. Built and run by the test suite (ctest: example.distill_user_model).
#include <torch/torch.h>

#include <iostream>

#include "data/synthetic.h"
#include "distill/kd_loss.h"
#include "models/feature_capture.h"
#include "models/layer_stack.h"

namespace distill = shrink::distill;

// A user's model. Holding its layers in a LayerStack is what makes them capturable by name
// ("layers.1"); nothing else about it is shrink's.
struct NetImpl : torch::nn::Module {
  explicit NetImpl(int64_t hidden) {
    layers = register_module("layers", shrink::models::LayerStack());
    layers->push_back(torch::nn::Linear(64, hidden));
    layers->push_back(torch::nn::ReLU());
    layers->push_back(torch::nn::Linear(hidden, 10));
  }
  at::Tensor forward(const at::Tensor& x) { return layers->forward(x); }
  shrink::models::LayerStack layers{nullptr};
};
TORCH_MODULE(Net);

double accuracy(Net& net, const shrink::data::Dataset& d) {
  torch::NoGradGuard no_grad;
  return net->forward(d.inputs).argmax(1).eq(d.targets).to(torch::kFloat).mean().item<double>();
}

int main() {
  torch::manual_seed(0);
  const auto data = shrink::data::make_synthetic(
      shrink::data::SyntheticOptions().samples(4096).classes(10).shape({64}).noise(2.0).seed(0));
  const int64_t batch = 64, steps = data.size() / batch;

  Net teacher(256);
  torch::optim::SGD teacher_opt(teacher->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  for (int epoch = 0; epoch < 5; ++epoch) {
    for (int64_t i = 0; i < steps; ++i) {
      auto x = data.inputs.narrow(0, i * batch, batch), y = data.targets.narrow(0, i * batch, batch);
      teacher_opt.zero_grad();
      torch::nn::functional::cross_entropy(teacher->forward(x), y).backward();
      teacher_opt.step();
    }
  }
  teacher->eval();

  // 1. The hint: student hidden (32) → adapter → teacher hidden (256). The adapter trains with the
  //    student (its parameters go to the optimizer) but is not part of the student.
  Net student(32);
  distill::FeatureLoss hint(distill::FeatureLossOptions().student_channels(32).teacher_channels(256));
  auto params = student->parameters();
  for (auto& p : hint->parameters()) params.push_back(p);
  torch::optim::SGD opt(params, torch::optim::SGDOptions(0.05).momentum(0.9));

  // 2. Record the hidden layers' outputs during each model's ordinary forward pass.
  shrink::models::FeatureCapture student_hidden(student.ptr(), {"layers.1"});
  shrink::models::FeatureCapture teacher_hidden(teacher.ptr(), {"layers.1"});

  const auto kd = distill::KdLossOptions().temperature(4).alpha(0.5);
  for (int epoch = 0; epoch < 5; ++epoch) {
    for (int64_t i = 0; i < steps; ++i) {
      auto x = data.inputs.narrow(0, i * batch, batch), y = data.targets.narrow(0, i * batch, batch);
      at::Tensor teacher_logits;
      {
        torch::NoGradGuard no_grad;  // 3. the teacher is only read
        teacher_logits = teacher->forward(x);
      }
      const auto logits = student->forward(x);
      // 4. Soft targets mixed with the labels, plus the weighted hint.
      auto loss = distill::kd_loss(logits, teacher_logits, y, kd) +
                  0.1 * hint->forward(student_hidden.at("layers.1"), teacher_hidden.at("layers.1"));
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  }
  const double t = accuracy(teacher, data), s = accuracy(student, data);
  std::cout << "teacher train accuracy " << t << ", distilled student " << s << "\n";
  return t > 0.9 && s > 0.9 ? 0 : 1;
}
