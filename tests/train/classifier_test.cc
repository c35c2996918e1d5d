// The consumer model (hub layer + dropout + dense) against independent formulas: the loss with
// label smoothing and L2 recomputed in double from the features, and every gradient (head and
// fine-tuned base) against central finite differences of the loss.
#include "hubimg/classifier.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <optional>

#include "saved_model.pb.h"
#include "util/test_util.h"
#include "zoo/zoo.h"

namespace hubimg {
namespace {

// tiny_cnn at 16x16 as a feature-vector model ([batch, 32] pooled features), with training trace.
Model tiny_base(const testing::TempDir& dir, bool feature_vector = true) {
  zoo::ZooOptions o;
  o.seed = 3;
  // Batch norm's beta away from 0 keeps ReLU inputs off the kink, which finite differences of
  // the training-mode loss would otherwise straddle.
  o.initialization = zoo::Initialization::kVaried;
  o.input_size = 16;
  o.feature_vector = feature_vector;
  auto written = zoo::write_zoo_model("tiny_cnn", dir.path() / "base", o);
  EXPECT_TRUE(written.ok()) << written.status().to_string();
  auto model = Model::load(dir.path() / "base");
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  return std::move(model).value();
}

Tensor random_images(int64_t n, int64_t h, int64_t w, uint32_t seed) {
  Tensor t(DType::kFloat32, {n, h, w, 3});
  uint32_t s = seed;
  for (float& v :
       std::span<float>(t.mutable_data<float>(), static_cast<size_t>(t.num_elements()))) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<float>(s >> 8) / static_cast<float>(1 << 24);
  }
  return t;
}

Tensor labels_of(std::vector<int64_t> v) {
  return Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

constexpr float kHalf = 0.5f;

ClassifierOptions options(bool trainable, double dropout, double l2, double smoothing) {
  ClassifierOptions o;
  o.hub.trainable = trainable;
  o.num_classes = 4;
  o.image_height = o.image_width = 16;
  o.dropout_rate = dropout;
  o.l2 = l2;
  o.label_smoothing = smoothing;
  o.seed = 7;
  return o;
}

TEST(ImageClassifier, LossWithLabelSmoothingAndL2MatchesAnIndependentFormula) {
  testing::TempDir dir;
  auto c = ImageClassifier::create(tiny_base(dir), options(false, 0.0, 0.01, 0.1));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->num_features(), 32);
  // Glorot uniform: every kernel entry within sqrt(6 / (32 + 4)), not all zero.
  const double limit = std::sqrt(6.0 / 36.0);
  double abs_sum = 0;
  for (float k : c->kernel().value().values<float>()) {
    EXPECT_LE(std::abs(k), limit);
    abs_sum += std::abs(k);
  }
  EXPECT_GT(abs_sum / 128, limit / 4);  // mean |U(-l, l)| = l / 2
  // A non-zero bias so that it takes part.
  c->bias().assign(Tensor::from_vector<float>({4}, std::vector<float>{0.1f, -0.2f, 0.3f, 0.0f}));

  const Tensor images = random_images(5, 16, 16, 1);
  const Tensor labels = labels_of({0, 3, 1, 2, 3});
  auto features = c->features(images);
  ASSERT_TRUE(features.ok());
  const float* x = features->data<float>();
  const float* k = c->kernel().value().data<float>();
  const float* b = c->bias().value().data<float>();
  double expected = 0;
  for (int i = 0; i < 5; ++i) {
    double z[4];
    for (int j = 0; j < 4; ++j) {
      z[j] = b[j];
      for (int f = 0; f < 32; ++f) z[j] += static_cast<double>(x[i * 32 + f]) * k[f * 4 + j];
    }
    double norm = 0;
    for (double zj : z) norm += std::exp(zj);
    for (int j = 0; j < 4; ++j) {
      const double target = (j == labels.data<int64_t>()[i] ? 0.9 : 0.0) + 0.1 / 4;
      expected -= target * std::log(std::exp(z[j]) / norm) / 5;
    }
  }
  double l2 = 0;
  for (int f = 0; f < 128; ++f) l2 += static_cast<double>(k[f]) * k[f];
  expected += 0.01 * l2;

  auto eval = c->evaluate(images, labels);
  ASSERT_TRUE(eval.ok());
  EXPECT_NEAR(eval->loss, expected, 1e-5 * expected);
  // Without dropout the training-mode loss of a frozen base is the same number.
  auto g = c->compute_gradients(images, labels, 0);
  ASSERT_TRUE(g.ok());
  EXPECT_NEAR(g->metrics.loss, expected, 1e-5 * expected);
}

// Central differences of the loss in each of a few coordinates of `v`.
void expect_matches_finite_differences(ImageClassifier& c, Variable& v, const Tensor& gradient,
                                       const Tensor& images, const Tensor& labels, double step,
                                       double rel_tol, int max_checks) {
  ASSERT_EQ(gradient.shape(), v.value().shape()) << v.name();
  const int64_t n = v.value().num_elements();
  const int64_t stride = std::max<int64_t>(1, n / max_checks);
  int checked = 0;
  for (int64_t i = 0; i < n && checked < max_checks; i += stride, ++checked) {
    const Tensor original = v.value().clone();
    auto loss_at = [&](double delta) {
      Tensor t = original.clone();
      t.mutable_data<float>()[i] += static_cast<float>(delta);
      v.assign(t);
      auto r = c.compute_gradients(images, labels, 11);
      EXPECT_TRUE(r.ok());
      return r->metrics.loss;
    };
    const double numeric = (loss_at(step) - loss_at(-step)) / (2 * step);
    v.assign(original);
    const double analytic = gradient.data<float>()[i];
    EXPECT_NEAR(analytic, numeric, rel_tol * std::abs(numeric) + 2e-4)
        << v.name() << "[" << i << "]";
  }
}

TEST(ImageClassifier, HeadGradientsWithDropoutMatchFiniteDifferences) {
  testing::TempDir dir;
  auto c = ImageClassifier::create(tiny_base(dir), options(false, 0.5, 0.05, 0.2));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const Tensor images = random_images(6, 16, 16, 2);
  const Tensor labels = labels_of({0, 1, 2, 3, 1, 0});
  auto g = c->compute_gradients(images, labels, 11);
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->gradients.size(), 2u);
  // The loss is piecewise smooth in the head (a fixed dropout mask): a large step is exact up
  // to curvature.
  expect_matches_finite_differences(*c, c->kernel(), g->gradients[0], images, labels, 1e-2, 2e-2,
                                    24);
  expect_matches_finite_differences(*c, c->bias(), g->gradients[1], images, labels, 1e-2, 2e-2, 4);
  // Dropout really drops: a different step gives a different loss.
  auto other = c->compute_gradients(images, labels, 12);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->metrics.loss, g->metrics.loss);
}

TEST(ImageClassifier, FineTunedBaseGradientsMatchFiniteDifferences) {
  testing::TempDir dir;
  auto c = ImageClassifier::create(tiny_base(dir), options(true, 0.2, 0.01, 0.1));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  const std::vector<Variable*> vars = c->trainable_variables();
  ASSERT_GT(vars.size(), 2u);  // the base's variables follow the head's
  const Tensor images = random_images(8, 16, 16, 3);
  const Tensor labels = labels_of({0, 1, 2, 3, 3, 2, 1, 0});
  auto g = c->compute_gradients(images, labels, 11);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_EQ(g->gradients.size(), vars.size());
  int checked_variables = 0;
  for (size_t k = 2; k < vars.size(); ++k) {
    // The first convolution's kernel and a batch-norm scale deep in the network.
    const std::string& name = vars[k]->name();
    if (name != "conv2d/kernel" && name != "batch_normalization_2/gamma") continue;
    // float32 forward in training mode (batch statistics): a step of 1e-2 keeps rounding noise
    // (~1e-7 / 1e-2) far below the gradients checked.
    expect_matches_finite_differences(*c, *vars[k], g->gradients[k], images, labels, 1e-3, 5e-2, 8);
    ++checked_variables;
  }
  EXPECT_EQ(checked_variables, 2);
}

TEST(ImageClassifier, TrainStepLowersTheLossOnABatch) {
  testing::TempDir dir;
  ClassifierOptions o = options(true, 0.0, 0.0, 0.0);
  o.optimizer = OptimizerOptions::keras_defaults(OptimizerKind::kAdam);
  o.optimizer.learning_rate = LearningRateSchedule::constant(0.01);
  auto c = ImageClassifier::create(tiny_base(dir), o);
  ASSERT_TRUE(c.ok());
  const Tensor images = random_images(8, 16, 16, 4);
  const Tensor labels = labels_of({0, 1, 2, 3, 3, 2, 1, 0});
  auto first = c->train_step(images, labels);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  StepMetrics last = *first;
  for (int i = 0; i < 30; ++i) last = *c->train_step(images, labels);
  EXPECT_LT(last.loss, 0.5 * first->loss);
  EXPECT_EQ(c->optimizer().iterations(), 31);
}

// tiny_cnn at 16x16 as `hubimg export` writes it: __call__(inputs, training=False,
// batch_norm_momentum=0.99) returning [batch, 32] features.
void write_momentum_base(const std::filesystem::path& dir) {
  zoo::ZooOptions zo;
  zo.seed = 3;
  zo.input_size = 16;
  zo.feature_vector = true;
  zo.momentum_argument = true;
  auto written = zoo::write_zoo_model("tiny_cnn", dir, zo);
  ASSERT_TRUE(written.ok()) << written.status().to_string();
}

// A TF Hub-style base whose __call__ also takes the scalar hyperparameter batch_norm_momentum
// (`hubimg export`): the images are the one non-scalar input; the momentum comes from
// hub.arguments or the Python default 0.99, and it sets the moving-statistics update:
// moving -= (moving - batch_stat) * (1 - momentum), so the first batch norm's moving mean (its
// batch statistics do not depend on the momentum) moves 50x further with 0.5 than with 0.99.
TEST(ImageClassifier, TakesABaseWithAMomentumHyperparameter) {
  std::vector<double> moved;
  for (const float* momentum : {static_cast<const float*>(nullptr), &kHalf}) {
    testing::TempDir dir;
    write_momentum_base(dir.path() / "base");
    auto base = Model::load(dir.path() / "base");
    ASSERT_TRUE(base.ok()) << base.status().to_string();
    ASSERT_EQ(base->call_input_specs().size(), 2u);  // inputs, batch_norm_momentum
    ClassifierOptions o = options(true, 0.0, 0.0, 0.0);
    if (momentum) o.hub.arguments["batch_norm_momentum"] = Tensor::scalar(*momentum);
    auto c = ImageClassifier::create(*std::move(base), o);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    Variable* mean = nullptr;
    for (Variable* v : c->checkpoint_variables()) {
      if (v->name() == "batch_normalization/moving_mean") mean = v;
    }
    ASSERT_NE(mean, nullptr);
    const Tensor before = mean->value().clone();
    auto step = c->train_step(random_images(4, 16, 16, 9), labels_of({0, 1, 2, 3}));
    ASSERT_TRUE(step.ok()) << step.status().to_string();
    double d = 0;
    for (int64_t i = 0; i < before.num_elements(); ++i) {
      d = std::max(d, std::abs(static_cast<double>(mean->value().data<float>()[i]) -
                               before.data<float>()[i]));
    }
    ASSERT_GT(d, 0.0);
    moved.push_back(d);
  }
  EXPECT_NEAR(moved[1] / moved[0], 50.0, 0.05);
}

// PreciseBN: batch k runs with momentum k/(k+1), so the statistics after batches A, B are the
// mean of those after A alone and after B alone (training-mode batch norm normalizes with the
// batch's own statistics, so each batch's statistics do not depend on the moving ones). A base
// without the momentum argument averages with its own momentum instead. Weights do not change.
TEST(ImageClassifier, BatchNormStatisticsAreTheMeanOverBatches) {
  const Tensor a = random_images(4, 16, 16, 21), b = random_images(3, 16, 16, 22);
  auto statistics_after = [&](const std::vector<const Tensor*>& batches, bool momentum_argument,
                              std::vector<float>* kernel = nullptr) {
    testing::TempDir dir;
    std::optional<Model> base;
    if (momentum_argument) {
      write_momentum_base(dir.path() / "base");
      auto loaded = Model::load(dir.path() / "base");
      EXPECT_TRUE(loaded.ok()) << loaded.status().to_string();
      base = std::move(loaded).value();
    } else {
      base = tiny_base(dir);
    }
    auto c = ImageClassifier::create(*base, options(true, 0.0, 0.0, 0.0));
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    for (size_t k = 0; k < batches.size(); ++k) {
      Status s = c->update_batch_norm_statistics(*batches[k], static_cast<int64_t>(k));
      EXPECT_TRUE(s.ok()) << s.to_string();
    }
    std::vector<float> values;
    for (Variable* v : c->checkpoint_variables()) {
      if (v->name().find("moving_") != std::string::npos) {
        for (float x : v->value().values<float>()) values.push_back(x);
      }
      if (kernel != nullptr && v->name() == "conv2d/kernel") {
        for (float x : v->value().values<float>()) kernel->push_back(x);
      }
    }
    return values;
  };
  const auto only_a = statistics_after({&a}, true);
  const auto only_b = statistics_after({&b}, true);
  std::vector<float> kernel_before, kernel_after;
  const auto initial = statistics_after({}, true, &kernel_before);
  const auto a_then_b = statistics_after({&a, &b}, true, &kernel_after);
  ASSERT_EQ(a_then_b.size(), only_a.size());
  ASSERT_GT(a_then_b.size(), 4u);
  double moved = 0;
  for (size_t i = 0; i < a_then_b.size(); ++i) {
    const double mean = (static_cast<double>(only_a[i]) + only_b[i]) / 2;
    EXPECT_NEAR(a_then_b[i], mean, 1e-5 * (1 + std::abs(mean))) << i;
    moved = std::max(moved, std::abs(static_cast<double>(only_a[i]) - only_b[i]));
  }
  EXPECT_GT(moved, 1e-3);  // the two batches' statistics differ
  EXPECT_NE(initial, a_then_b);
  EXPECT_EQ(kernel_before, kernel_after);

  // Without the argument every batch moves the statistics with the base's momentum 0.99:
  // s(A, B) = 0.99 s(A) + 0.01 stat(B), and s(B) = 0.99 s0 + 0.01 stat(B).
  const auto ema = statistics_after({&a, &b}, false);
  const auto ema_a = statistics_after({&a}, false);
  const auto ema_b = statistics_after({&b}, false);
  const auto ema_initial = statistics_after({}, false);
  ASSERT_EQ(ema.size(), ema_initial.size());
  for (size_t i = 0; i < ema.size(); ++i) {
    const double want = 0.99 * ema_a[i] + ema_b[i] - 0.99 * ema_initial[i];
    EXPECT_NEAR(ema[i], want, 1e-5 * (1 + std::abs(want))) << i;
  }

  testing::TempDir dir;
  auto frozen = ImageClassifier::create(tiny_base(dir), options(false, 0.0, 0.0, 0.0));
  ASSERT_TRUE(frozen.ok());
  EXPECT_FALSE(frozen->update_batch_norm_statistics(a, 0).ok());
}

// A __call__ hyperparameter without a Python default is not the image input, but it has to come
// from the hub layer's arguments: without them the base is refused with both input names.
TEST(ImageClassifier, AHyperparameterWithoutADefaultMustBeAnArgument) {
  testing::TempDir dir;
  write_momentum_base(dir.path() / "base");
  // Drop __call__'s FullArgSpec defaults (training=False, batch_norm_momentum=0.99).
  const auto pb = dir.path() / "base" / "saved_model.pb";
  tf::SavedModel proto;
  {
    std::ifstream in(pb, std::ios::binary);
    ASSERT_TRUE(proto.ParseFromIstream(&in));
  }
  int dropped = 0;
  for (auto& node : *proto.mutable_meta_graphs(0)->mutable_object_graph_def()->mutable_nodes()) {
    if (!node.has_function()) continue;
    auto* spec = node.mutable_function()->mutable_function_spec()->mutable_fullargspec();
    for (auto& pair : *spec->mutable_named_tuple_value()->mutable_values()) {
      if (pair.key() != "defaults" || !pair.value().has_list_value()) continue;
      pair.mutable_value()->mutable_none_value();
      ++dropped;
    }
  }
  ASSERT_GE(dropped, 1);
  {
    std::ofstream out(pb, std::ios::binary | std::ios::trunc);
    ASSERT_TRUE(proto.SerializeToOstream(&out));
  }
  auto load = [&] {
    auto base = Model::load(dir.path() / "base");
    EXPECT_TRUE(base.ok()) << base.status().to_string();
    return *std::move(base);
  };
  Model base = load();
  const auto specs = base.call_input_specs();
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_FALSE(specs[1].has_default) << specs[1].name;

  auto refused = ImageClassifier::create(load(), options(true, 0.0, 0.0, 0.0));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("batch_norm_momentum"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("arguments"), std::string::npos)
      << refused.status().message();

  ClassifierOptions o = options(true, 0.0, 0.0, 0.0);
  o.hub.arguments["batch_norm_momentum"] = Tensor::scalar(0.99f);
  auto c = ImageClassifier::create(load(), o);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  auto step = c->train_step(random_images(4, 16, 16, 9), labels_of({0, 1, 2, 3}));
  EXPECT_TRUE(step.ok()) << step.status().to_string();
}

TEST(ImageClassifier, ClearErrors) {
  testing::TempDir dir;
  Model base = tiny_base(dir);
  ClassifierOptions o = options(false, 0.2, 0, 0);
  o.num_classes = 1;
  EXPECT_FALSE(ImageClassifier::create(base, o).ok());
  o = options(false, 0.2, 0, 0);
  o.hub.output_key = "embedding";
  auto missing = ImageClassifier::create(base, o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("embedding"), std::string::npos);
  auto c = ImageClassifier::create(base, options(false, 0.2, 0, 0));
  ASSERT_TRUE(c.ok());
  auto bad = c->train_step(random_images(2, 16, 16, 5), labels_of({0, 4}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("label 4"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace hubimg
