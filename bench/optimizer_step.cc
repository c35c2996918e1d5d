// optimizer_step OUT_DIR [--optimizer sgd|adam] [options]: one training step of the consumer
// model (hubimg/classifier.h: a trainable hub layer over a zoo network, Dropout, Dense, sparse
// softmax cross-entropy with label smoothing, L2 on the head kernel and the base's
// regularization losses), with every tensor the step reads and writes dumped as .npy so that
// another implementation can redo the step (bench/peers/check_optimizer_step.py, PyTorch).
//
// OUT_DIR gets
//   base/                    the zoo network (SavedModel, weights_manifest.json, npy/)
//   images.npy, labels.npy   the batch: float32 [N, S, S, 3] in [0, 1), int64 [N]
//   initial/<var>.npy        every variable before the step (head, then the base's variables)
//   gradients/<var>.npy      dL/dv of each trainable variable (ImageClassifier::compute_gradients)
//   after/<var>.npy          every variable after ImageClassifier::train_step
//   slots/<var>.<slot>.npy   the optimizer's slots after the step
//   step.json                the settings, the variable list and the step's loss
// (<var> is the variable name with '/' replaced by '.'.)
//
// Only the public API is used for the step (Model::load, ImageClassifier, Optimizer); the base
// network is written by the model zoo as bench/make_bench_models writes it. Before the step
// every batch-norm variable and the head bias are moved away from their initial values
// (seeded): gamma 1 + U(-0.25, 0.25), beta U(-0.2, 0.2), moving mean U(-0.2, 0.2), moving
// variance U(0.5, 1.5), bias U(-0.1, 0.1) — a mid-training state, so that no tensor starts at
// zero and the moving-statistics update is checked on values other than 0 and 1.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "hubimg/classifier.h"
#include "hubimg/model.h"
#include "hubimg/npy.h"
#include "hubimg/train.h"
#include "zoo/zoo.h"

namespace {

namespace fs = std::filesystem;
using hubimg::Status;
using hubimg::Tensor;
using hubimg::Variable;

struct Args {
  fs::path out;
  std::string optimizer = "sgd";
  std::string arch = "mobilenet_v2";
  double alpha = 0.35;
  double learning_rate = -1;  // -1: 0.01 for SGD, 0.001 for Adam
  double momentum = 0.9;
  double epsilon = 1e-7;
  int64_t batch = 16;
  int64_t size = 32;
  int64_t classes = 5;
  uint64_t seed = 1;
  double l2 = 1e-4;       // head kernel
  double base_l2 = 4e-5;  // the base's kernel regularization losses (as `hubimg export`)
  double label_smoothing = 0.1;
  float bn_momentum = 0.99f;
  bool perturb = true;
  int threads = 0;
};

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s OUT_DIR [--optimizer sgd|adam] [--lr X] [--momentum M] [--epsilon E]\n"
               "       [--arch mobilenet_v2] [--alpha A] [--batch N] [--size S] [--classes C]\n"
               "       [--seed N] [--l2 F] [--base-l2 F] [--label-smoothing S]\n"
               "       [--bn-momentum M] [--no-perturb] [--threads T]\n",
               argv0);
  return 2;
}

std::string file_name(const std::string& variable) {
  std::string f = variable;
  std::replace(f.begin(), f.end(), '/', '.');
  return f + ".npy";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status dump(const fs::path& dir, const std::vector<Variable*>& vars,
            const std::vector<Tensor>* values = nullptr) {
  fs::create_directories(dir);
  for (size_t i = 0; i < vars.size(); ++i) {
    const Tensor& t = values ? (*values)[i] : vars[i]->value();
    if (auto s = hubimg::write_npy(dir / file_name(vars[i]->name()), t); !s.ok()) {
      return s.with_context(vars[i]->name());
    }
  }
  return {};
}

// Moves a float32 variable to `lo + (hi - lo) * u` (u uniform [0, 1)), or `1 + ...` for gamma.
void perturb(Variable& v, double lo, double hi, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(lo, hi);
  Tensor t = v.value().clone();
  float* p = t.mutable_data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) p[i] = static_cast<float>(u(rng));
  v.assign(std::move(t));
}

int fail(const std::string& what, const Status& s) {
  std::fprintf(stderr, "optimizer_step: %s: %s\n", what.c_str(), s.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--no-perturb") {
      a.perturb = false;
      continue;
    }
    if (arg == "-h" || arg == "--help") return usage(argv[0]);
    if (!arg.starts_with("--")) {
      if (!a.out.empty()) return usage(argv[0]);
      a.out = arg;
      continue;
    }
    if ((v = next()) == nullptr) return usage(argv[0]);
    if (arg == "--optimizer")
      a.optimizer = v;
    else if (arg == "--arch")
      a.arch = v;
    else if (arg == "--alpha")
      a.alpha = std::atof(v);
    else if (arg == "--lr")
      a.learning_rate = std::atof(v);
    else if (arg == "--momentum")
      a.momentum = std::atof(v);
    else if (arg == "--epsilon")
      a.epsilon = std::atof(v);
    else if (arg == "--batch")
      a.batch = std::atoll(v);
    else if (arg == "--size")
      a.size = std::atoll(v);
    else if (arg == "--classes")
      a.classes = std::atoll(v);
    else if (arg == "--seed")
      a.seed = std::strtoull(v, nullptr, 10);
    else if (arg == "--l2")
      a.l2 = std::atof(v);
    else if (arg == "--base-l2")
      a.base_l2 = std::atof(v);
    else if (arg == "--label-smoothing")
      a.label_smoothing = std::atof(v);
    else if (arg == "--bn-momentum")
      a.bn_momentum = static_cast<float>(std::atof(v));
    else if (arg == "--threads")
      a.threads = std::atoi(v);
    else
      return usage(argv[0]);
  }
  if (a.out.empty() || a.batch < 1 || a.size < 1 || a.classes < 2) return usage(argv[0]);
  auto kind = hubimg::optimizer_kind_from_name(a.optimizer);
  if (!kind.ok()) return fail("--optimizer", kind.status());
  if (*kind != hubimg::OptimizerKind::kSgd && *kind != hubimg::OptimizerKind::kAdam) {
    std::fprintf(stderr, "optimizer_step: --optimizer sgd or adam\n");
    return 2;
  }
  if (a.threads > 0) hubimg::set_num_threads(a.threads);

  // The base network, with the manifest and .npy dump a peer rebuilds it from.
  fs::create_directories(a.out);
  const fs::path base_dir = a.out / "base";
  fs::remove_all(base_dir);
  hubimg::zoo::ZooOptions zo;
  zo.seed = a.seed;
  zo.alpha = a.alpha;
  zo.feature_vector = true;
  zo.input_size = a.size;
  zo.momentum_argument = true;
  zo.l2 = a.base_l2;
  zo.training_trace = true;
  zo.write_manifest = true;
  zo.dump_npy = true;
  if (auto s = hubimg::zoo::write_zoo_model(a.arch, base_dir, zo); !s.ok()) {
    return fail("writing " + base_dir.string(), s.status());
  }
  auto base = hubimg::Model::load(base_dir);
  if (!base.ok()) return fail("loading " + base_dir.string(), base.status());

  std::mt19937_64 rng(a.seed * 7919 + 17);
  if (a.perturb) {
    for (Variable* v : base->variables()) {
      const std::string& n = v->name();
      if (ends_with(n, "/gamma"))
        perturb(*v, 0.75, 1.25, rng);
      else if (ends_with(n, "/beta") || ends_with(n, "/moving_mean"))
        perturb(*v, -0.2, 0.2, rng);
      else if (ends_with(n, "/moving_variance"))
        perturb(*v, 0.5, 1.5, rng);
    }
  }

  hubimg::ClassifierOptions co;
  co.hub.trainable = true;
  co.hub.arguments["batch_norm_momentum"] = Tensor::scalar(a.bn_momentum);
  co.num_classes = a.classes;
  co.image_height = co.image_width = a.size;
  co.dropout_rate = 0.0;
  co.l2 = a.l2;
  co.label_smoothing = a.label_smoothing;
  co.seed = a.seed;
  co.optimizer = hubimg::OptimizerOptions::keras_defaults(*kind);
  if (a.learning_rate > 0) {
    co.optimizer.learning_rate = hubimg::LearningRateSchedule::constant(a.learning_rate);
  }
  if (*kind == hubimg::OptimizerKind::kSgd) co.optimizer.momentum = a.momentum;
  co.optimizer.epsilon = a.epsilon;
  const double lr = co.optimizer.learning_rate.at(0);
  auto clf = hubimg::ImageClassifier::create(*std::move(base), co);
  if (!clf.ok()) return fail("creating the classifier", clf.status());
  if (a.perturb) perturb(clf->bias(), -0.1, 0.1, rng);

  // The batch: images uniform [0, 1), labels uniform over the classes.
  Tensor images(hubimg::DType::kFloat32, {a.batch, a.size, a.size, 3});
  Tensor labels(hubimg::DType::kInt64, {a.batch});
  {
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    float* p = images.mutable_data<float>();
    for (int64_t i = 0; i < images.num_elements(); ++i) p[i] = u(rng);
    std::uniform_int_distribution<int64_t> c(0, a.classes - 1);
    int64_t* y = labels.mutable_data<int64_t>();
    for (int64_t i = 0; i < a.batch; ++i) y[i] = c(rng);
  }
  if (auto s = hubimg::write_npy(a.out / "images.npy", images); !s.ok()) return fail("images", s);
  if (auto s = hubimg::write_npy(a.out / "labels.npy", labels); !s.ok()) return fail("labels", s);

  const std::vector<Variable*> all = clf->checkpoint_variables();
  const std::vector<Variable*> trainable = clf->trainable_variables();
  std::vector<Tensor> initial;
  for (Variable* v : all) initial.push_back(v->value().clone());
  if (auto s = dump(a.out / "initial", all, &initial); !s.ok()) return fail("initial", s);

  // The gradients alone (this call also updates the moving statistics: put them back after).
  auto grads = clf->compute_gradients(images, labels, 0);
  if (!grads.ok()) return fail("compute_gradients", grads.status());
  if (auto s = dump(a.out / "gradients", trainable, &grads->gradients); !s.ok()) {
    return fail("gradients", s);
  }
  for (size_t i = 0; i < all.size(); ++i) all[i]->assign(initial[i].clone());

  // The step under test.
  auto metrics = clf->train_step(images, labels);
  if (!metrics.ok()) return fail("train_step", metrics.status());
  if (auto s = dump(a.out / "after", all); !s.ok()) return fail("after", s);
  nlohmann::ordered_json slots = nlohmann::ordered_json::array();
  fs::create_directories(a.out / "slots");
  for (Variable* v : trainable) {
    for (const std::string& slot : clf->optimizer().slot_names()) {
      Tensor t = clf->optimizer().slot(*v, slot);
      if (!t.valid()) continue;
      std::string f = file_name(v->name());
      f = f.substr(0, f.size() - 4) + "." + slot + ".npy";
      if (auto s = hubimg::write_npy(a.out / "slots" / f, t); !s.ok()) return fail(f, s);
      slots.push_back({{"variable", v->name()}, {"slot", slot}, {"file", "slots/" + f}});
    }
  }

  nlohmann::ordered_json j;
  j["arch"] = a.arch;
  j["alpha"] = a.alpha;
  j["batch"] = a.batch;
  j["image_size"] = a.size;
  j["num_classes"] = a.classes;
  j["num_features"] = clf->num_features();
  j["seed"] = a.seed;
  j["perturbed"] = a.perturb;
  j["optimizer"] = {{"kind", a.optimizer},
                    {"learning_rate", lr},
                    {"momentum", co.optimizer.momentum},
                    {"nesterov", co.optimizer.nesterov},
                    {"beta_1", co.optimizer.beta_1},
                    {"beta_2", co.optimizer.beta_2},
                    {"epsilon", co.optimizer.epsilon}};
  j["dropout_rate"] = co.dropout_rate;
  j["l2"] = a.l2;
  j["base_l2"] = a.base_l2;
  j["base_l2_on"] = "every Conv2D and Dense kernel of the base (variables named */kernel)";
  j["label_smoothing"] = a.label_smoothing;
  j["batch_norm_momentum"] = a.bn_momentum;
  j["loss"] = metrics->loss;
  j["loss_compute_gradients"] = grads->metrics.loss;
  j["accuracy"] = metrics->accuracy;
  nlohmann::ordered_json vars = nlohmann::ordered_json::array();
  for (Variable* v : all) {
    const bool t = std::find(trainable.begin(), trainable.end(), v) != trainable.end();
    vars.push_back({{"name", v->name()}, {"trainable", t}, {"file", file_name(v->name())}});
  }
  j["variables"] = std::move(vars);
  j["slots"] = std::move(slots);
  std::ofstream(a.out / "step.json") << j.dump(1) << "\n";
  std::printf(
      "optimizer_step: %s %s alpha %g, batch %lld of %lldx%lld, %zu variables (%zu "
      "trainable), loss %.6f -> %s\n",
      a.optimizer.c_str(), a.arch.c_str(), a.alpha, static_cast<long long>(a.batch),
      static_cast<long long>(a.size), static_cast<long long>(a.size), all.size(), trainable.size(),
      metrics->loss, a.out.string().c_str());
  return 0;
}
