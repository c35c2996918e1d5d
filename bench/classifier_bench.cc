// classifier_bench MODEL_DIR --mode finetune|head [options] [--json]: the consumer model's
// training speed (hubimg/classifier.h), for bench/run_train_peers.sh against PyTorch
// (bench/peers/torch_classifier_bench.py does the same work).
//
//   finetune  hub layer trainable + Dropout + Dense(classes): ImageClassifier::train_step on one
//             seeded batch (training-mode batch norm, backward through the base, optimizer step
//             on every trainable variable); W untimed steps after the first, then K timed.
//   head      frozen base, as `hubimg retrain` without --fine-tune: an epoch over `images`
//             seeded images in batches; epoch 1 computes each image's features once
//             (ImageClassifier::features, the feature cache) and trains the head on them,
//             later epochs train the head on the cached features only
//             (train_step_on_features, rows shuffled per epoch).
// Images are float32 [batch, S, S, 3] in [0, 1): a pool of 4 seeded batches used in turn (the
// content does not change the work). Prints one JSON object (or a line of text).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "hubimg/classifier.h"
#include "hubimg/model.h"
#include "hubimg/train.h"

namespace {

using Clock = std::chrono::steady_clock;
using hubimg::Tensor;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s MODEL_DIR --mode finetune|head [--batch 32] [--size 224]\n"
               "       [--classes 5] [--optimizer adam|sgd] [--lr X] [--dropout 0.2]\n"
               "       [--iterations 5] [--warmup 2] [--images 2000] [--epochs 3]\n"
               "       [--threads 2] [--seed 1] [--json]\n",
               argv0);
  return 2;
}

int fail(const char* what, const hubimg::Status& s) {
  std::fprintf(stderr, "classifier_bench: %s: %s\n", what, s.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, mode, optimizer = "adam";
  int64_t batch = 32, size = 224, classes = 5, iterations = 5, warmup = 2, images = 2000,
          epochs = 3;
  double lr = -1, dropout = 0.2;
  int threads = 2;
  uint64_t seed = 1;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      json = true;
      continue;
    }
    if (!arg.starts_with("--")) {
      if (!model_dir.empty()) return usage(argv[0]);
      model_dir = arg;
      continue;
    }
    if (i + 1 >= argc) return usage(argv[0]);
    const char* v = argv[++i];
    if (arg == "--mode")
      mode = v;
    else if (arg == "--batch")
      batch = std::atoll(v);
    else if (arg == "--size")
      size = std::atoll(v);
    else if (arg == "--classes")
      classes = std::atoll(v);
    else if (arg == "--optimizer")
      optimizer = v;
    else if (arg == "--lr")
      lr = std::atof(v);
    else if (arg == "--dropout")
      dropout = std::atof(v);
    else if (arg == "--iterations")
      iterations = std::atoll(v);
    else if (arg == "--warmup")
      warmup = std::atoll(v);
    else if (arg == "--images")
      images = std::atoll(v);
    else if (arg == "--epochs")
      epochs = std::atoll(v);
    else if (arg == "--threads")
      threads = std::atoi(v);
    else if (arg == "--seed")
      seed = std::strtoull(v, nullptr, 10);
    else
      return usage(argv[0]);
  }
  if (model_dir.empty() || (mode != "finetune" && mode != "head") || batch < 1 || iterations < 1 ||
      images < batch || epochs < 2) {
    return usage(argv[0]);
  }
  auto kind = hubimg::optimizer_kind_from_name(optimizer);
  if (!kind.ok()) return fail("--optimizer", kind.status());
  hubimg::set_num_threads(threads);
  const bool finetune = mode == "finetune";

  const auto load_start = Clock::now();
  hubimg::LoadOptions lo;
  lo.prepare_training = finetune;
  auto base = hubimg::Model::load(model_dir, lo);
  if (!base.ok()) return fail("loading the model", base.status());
  hubimg::ClassifierOptions co;
  co.hub.trainable = finetune;
  co.num_classes = classes;
  co.image_height = co.image_width = size;
  co.dropout_rate = dropout;
  co.seed = seed;
  co.optimizer = hubimg::OptimizerOptions::keras_defaults(*kind);
  if (*kind == hubimg::OptimizerKind::kSgd) co.optimizer.momentum = 0.9;
  if (lr > 0) co.optimizer.learning_rate = hubimg::LearningRateSchedule::constant(lr);
  auto clf = hubimg::ImageClassifier::create(*std::move(base), co);
  if (!clf.ok()) return fail("creating the classifier", clf.status());
  const double load_ms = ms_since(load_start);

  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> c(0, classes - 1);
  std::vector<Tensor> pool;
  for (int k = 0; k < 4; ++k) {
    Tensor t(hubimg::DType::kFloat32, {batch, size, size, 3});
    float* p = t.mutable_data<float>();
    for (int64_t i = 0; i < t.num_elements(); ++i) p[i] = u(rng);
    pool.push_back(std::move(t));
  }
  auto labels_for = [&](int64_t n) {
    Tensor y(hubimg::DType::kInt64, {n});
    for (int64_t i = 0; i < n; ++i) y.mutable_data<int64_t>()[i] = c(rng);
    return y;
  };

  nlohmann::ordered_json out;
  out["engine"] = "hubimg";
  out["mode"] = finetune ? "finetune-step" : "head-epoch";
  out["optimizer"] = optimizer;
  out["batch"] = batch;
  out["image_size"] = size;
  out["classes"] = classes;
  out["threads"] = threads;
  out["load_ms"] = load_ms;
  if (finetune) {
    const Tensor labels = labels_for(batch);
    std::vector<double> times, apply_times;
    double first_ms = 0;
    for (int64_t s = 0; s < 1 + warmup + iterations; ++s) {
      // ImageClassifier::train_step's two calls, timed apart.
      const auto t0 = Clock::now();
      auto g = clf->compute_gradients(pool[static_cast<size_t>(s) % pool.size()], labels,
                                      clf->optimizer().iterations());
      if (!g.ok()) return fail("compute_gradients", g.status());
      const auto t1 = Clock::now();
      if (auto st = clf->optimizer().apply(clf->trainable_variables(), g->gradients); !st.ok()) {
        return fail("optimizer step", st);
      }
      const double ms = ms_since(t0);
      if (s == 0) first_ms = ms;
      if (s > warmup) {
        times.push_back(ms);
        apply_times.push_back(ms_since(t1));
      }
    }
    std::sort(apply_times.begin(), apply_times.end());
    out["optimizer_ms"] = apply_times[apply_times.size() / 2];
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    out["first_step_ms"] = first_ms;
    out["median_ms"] = median;
    out["step_ms"] = times;
    out["images_per_second"] = static_cast<double>(batch) * 1000.0 / median;
  } else {
    const int64_t steps = (images + batch - 1) / batch;
    // Epoch 1: features of every image computed once (the cache), the head trained on them.
    std::vector<float> cache;
    std::vector<int64_t> all_labels;
    std::vector<double> epoch_ms;
    const auto t0 = Clock::now();
    double feature_ms = 0;
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t n = std::min(batch, images - s * batch);
      Tensor x = pool[static_cast<size_t>(s) % pool.size()];
      if (n < batch) {
        x = Tensor::from_vector<float>(
            {n, size, size, 3},
            std::span<const float>(x.data<float>(), static_cast<size_t>(n * size * size * 3)));
      }
      const auto tf = Clock::now();
      auto f = clf->features(x);
      if (!f.ok()) return fail("features", f.status());
      feature_ms += ms_since(tf);
      const auto v = f->values<float>();
      cache.insert(cache.end(), v.begin(), v.end());
      Tensor y = labels_for(n);
      for (int64_t i = 0; i < n; ++i) all_labels.push_back(y.data<int64_t>()[i]);
      auto m = clf->train_step_on_features(*f, y);
      if (!m.ok()) return fail("train_step_on_features", m.status());
    }
    epoch_ms.push_back(ms_since(t0));
    const int64_t nf = clf->num_features();
    std::vector<int64_t> order(static_cast<size_t>(images));
    std::iota(order.begin(), order.end(), 0);
    for (int64_t e = 1; e < epochs; ++e) {
      const auto te = Clock::now();
      std::shuffle(order.begin(), order.end(), rng);
      for (int64_t s = 0; s < steps; ++s) {
        const int64_t begin = s * batch, n = std::min(batch, images - begin);
        Tensor f(hubimg::DType::kFloat32, {n, nf});
        Tensor y(hubimg::DType::kInt64, {n});
        for (int64_t i = 0; i < n; ++i) {
          const int64_t row = order[static_cast<size_t>(begin + i)];
          std::copy_n(&cache[static_cast<size_t>(row * nf)], nf, f.mutable_data<float>() + i * nf);
          y.mutable_data<int64_t>()[i] = all_labels[static_cast<size_t>(row)];
        }
        auto m = clf->train_step_on_features(f, y);
        if (!m.ok()) return fail("train_step_on_features", m.status());
      }
      epoch_ms.push_back(ms_since(te));
    }
    std::vector<double> cached(epoch_ms.begin() + 1, epoch_ms.end());
    std::sort(cached.begin(), cached.end());
    out["images"] = images;
    out["steps_per_epoch"] = steps;
    out["epoch_ms"] = epoch_ms;
    out["first_epoch_ms"] = epoch_ms[0];
    out["first_epoch_feature_ms"] = feature_ms;
    out["cached_epoch_ms"] = cached[cached.size() / 2];
    out["median_ms"] = cached[cached.size() / 2] / static_cast<double>(steps);
    out["five_epochs_ms"] = epoch_ms[0] + 4 * cached[cached.size() / 2];
    out["images_per_second_first_epoch"] = static_cast<double>(images) * 1000.0 / epoch_ms[0];
    out["images_per_second_cached"] =
        static_cast<double>(images) * 1000.0 / cached[cached.size() / 2];
  }
  out["peak_rss_mb"] = peak_rss_mb();
  if (json) {
    std::printf("%s\n", out.dump(1).c_str());
  } else {
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}
