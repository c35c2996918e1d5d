// Optimizers against the update rules written out independently in double precision (the
// textbook forms: Adam with bias-corrected moments, RMSprop as Hinton's slides with Keras's
// epsilon inside the square root), over several steps with changing gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "hubimg/train.h"

namespace hubimg {
namespace {

Tensor f64(std::vector<double> v) {
  return Tensor::from_vector<double>({static_cast<int64_t>(v.size())}, v);
}

// Gradients for step s (1-based) of element i: varied signs and magnitudes, one tiny.
double grad_at(int s, size_t i) {
  const double g[] = {0.5, -1.5, 3e-6, 2.0};
  return g[i] * (1.0 + 0.3 * s) * (s % 2 ? 1 : -0.7);
}

constexpr int kSteps = 5;
const std::vector<double> kStart = {0.3, -1.2, 0.8, 2.5};

std::vector<double> run(Optimizer& opt) {
  Variable w("layer/kernel", f64(kStart), true);
  for (int s = 1; s <= kSteps; ++s) {
    std::vector<double> g(kStart.size());
    for (size_t i = 0; i < g.size(); ++i) g[i] = grad_at(s, i);
    EXPECT_TRUE(opt.apply({&w}, {f64(g)}).ok());
  }
  auto v = w.value().values<double>();
  return {v.begin(), v.end()};
}

TEST(Optimizer, AdamIsTheBiasCorrectedTextbookRuleWithKerasEpsilon) {
  OptimizerOptions o = OptimizerOptions::keras_defaults(OptimizerKind::kAdam);
  EXPECT_EQ(o.learning_rate.initial, 0.001);
  EXPECT_EQ(o.epsilon, 1e-7);
  o.learning_rate = LearningRateSchedule::constant(0.05);
  Optimizer opt(o);
  const std::vector<double> got = run(opt);
  for (size_t i = 0; i < kStart.size(); ++i) {
    double w = kStart[i], m = 0, v = 0;
    for (int t = 1; t <= kSteps; ++t) {
      const double g = grad_at(t, i);
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g * g;
      const double m_hat = m / (1 - std::pow(0.9, t)), v_hat = v / (1 - std::pow(0.999, t));
      // Keras adds epsilon to sqrt(v), before the bias correction: eps / sqrt(1 - beta_2^t)
      // relative to sqrt(v_hat).
      w -= 0.05 * m_hat / (std::sqrt(v_hat) + 1e-7 / std::sqrt(1 - std::pow(0.999, t)));
    }
    EXPECT_NEAR(got[i], w, 1e-12) << i;
  }
  EXPECT_EQ(opt.iterations(), kSteps);
  EXPECT_EQ(opt.slot_names(), (std::vector<std::string>{"m", "v"}));
}

TEST(Optimizer, AdamWDecaysTheWeightsBeforeTheAdamStep) {
  OptimizerOptions o = OptimizerOptions::keras_defaults(OptimizerKind::kAdamW);
  EXPECT_EQ(o.weight_decay, 0.004);
  o.learning_rate = LearningRateSchedule::constant(0.02);
  o.weight_decay = 0.1;
  Optimizer opt(o);
  const std::vector<double> got = run(opt);
  for (size_t i = 0; i < kStart.size(); ++i) {
    double w = kStart[i], m = 0, v = 0;
    for (int t = 1; t <= kSteps; ++t) {
      const double g = grad_at(t, i);
      w -= 0.02 * 0.1 * w;
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g * g;
      const double alpha = 0.02 * std::sqrt(1 - std::pow(0.999, t)) / (1 - std::pow(0.9, t));
      w -= alpha * m / (std::sqrt(v) + 1e-7);
    }
    EXPECT_NEAR(got[i], w, 1e-12) << i;
  }
}

TEST(Optimizer, RmspropPlainCenteredAndWithMomentum) {
  for (bool centered : {false, true}) {
    for (double momentum : {0.0, 0.8}) {
      OptimizerOptions o = OptimizerOptions::keras_defaults(OptimizerKind::kRmsprop);
      EXPECT_EQ(o.rho, 0.9);
      EXPECT_EQ(o.momentum, 0.0);
      EXPECT_FALSE(o.centered);
      o.learning_rate = LearningRateSchedule::constant(0.01);
      o.centered = centered;
      o.momentum = momentum;
      Optimizer opt(o);
      const std::vector<double> got = run(opt);
      for (size_t i = 0; i < kStart.size(); ++i) {
        double w = kStart[i], ms = 0, mg = 0, mom = 0;
        for (int t = 1; t <= kSteps; ++t) {
          const double g = grad_at(t, i);
          ms = 0.9 * ms + 0.1 * g * g;
          mg = 0.9 * mg + 0.1 * g;
          const double denom = centered ? ms - mg * mg : ms;
          const double step = 0.01 * g / std::sqrt(denom + 1e-7);
          mom = momentum * mom + step;
          w -= momentum > 0 ? mom : step;
        }
        EXPECT_NEAR(got[i], w, 1e-12) << i << " centered " << centered << " momentum " << momentum;
      }
    }
  }
}

TEST(Optimizer, SgdNesterovOverSeveralSteps) {
  OptimizerOptions o = OptimizerOptions::keras_defaults(OptimizerKind::kSgd);
  EXPECT_EQ(o.learning_rate.initial, 0.01);
  o.momentum = 0.9;
  o.nesterov = true;
  Optimizer opt(o);
  const std::vector<double> got = run(opt);
  for (size_t i = 0; i < kStart.size(); ++i) {
    // Sutskever's form: look ahead by momentum * velocity.
    double w = kStart[i], v = 0;
    for (int t = 1; t <= kSteps; ++t) {
      const double g = grad_at(t, i);
      v = 0.9 * v - 0.01 * g;
      w = w + 0.9 * v - 0.01 * g;
    }
    EXPECT_NEAR(got[i], w, 1e-12) << i;
  }
}

TEST(Optimizer, FloatVariablesFollowTheDoubleRule) {
  OptimizerOptions o = OptimizerOptions::keras_defaults(OptimizerKind::kAdam);
  Optimizer opt(o);
  Variable w("w", Tensor::from_vector<float>({2}, std::vector<float>{1.0f, -1.0f}), true);
  ASSERT_TRUE(
      opt.apply({&w}, {Tensor::from_vector<float>({2}, std::vector<float>{4, -0.25f})}).ok());
  // The first Adam step moves each weight by ~lr against the gradient's sign.
  EXPECT_NEAR(w.value().data<float>()[0], 1.0f - 0.001f, 1e-7);
  EXPECT_NEAR(w.value().data<float>()[1], -1.0f + 0.001f, 1e-7);
}

TEST(LearningRateSchedule, ConstantExponentialCosine) {
  EXPECT_EQ(LearningRateSchedule::constant(0.3).at(1000), 0.3);
  auto e = LearningRateSchedule::exponential_decay(0.1, 100, 0.5);
  EXPECT_DOUBLE_EQ(e.at(0), 0.1);
  EXPECT_DOUBLE_EQ(e.at(100), 0.05);
  EXPECT_DOUBLE_EQ(e.at(50), 0.1 / std::sqrt(2.0));
  auto s = LearningRateSchedule::exponential_decay(0.1, 100, 0.5, true);
  EXPECT_DOUBLE_EQ(s.at(199), 0.05);
  auto c = LearningRateSchedule::cosine_decay(0.2, 10, 0.1);
  EXPECT_DOUBLE_EQ(c.at(0), 0.2);
  EXPECT_NEAR(c.at(5), 0.2 * (0.9 * 0.5 + 0.1), 1e-15);
  EXPECT_NEAR(c.at(10), 0.02, 1e-15);
  EXPECT_NEAR(c.at(50), 0.02, 1e-15);  // stays at alpha * initial
  EXPECT_FALSE(LearningRateSchedule::cosine_decay(0.1, 0).validate().ok());
}

TEST(Optimizer, ScheduleIsEvaluatedAtTheStepCountBeforeTheStep) {
  OptimizerOptions o;
  o.learning_rate = LearningRateSchedule::exponential_decay(1.0, 1, 0.5);
  Optimizer opt(o);
  Variable w("w", f64({0.0}), true);
  ASSERT_TRUE(opt.apply({&w}, {f64({1.0})}).ok());  // lr 1
  ASSERT_TRUE(opt.apply({&w}, {f64({1.0})}).ok());  // lr 0.5
  EXPECT_DOUBLE_EQ(w.value().data<double>()[0], -1.5);
  EXPECT_DOUBLE_EQ(opt.current_learning_rate(), 0.25);
}

TEST(Optimizer, StateRoundTripContinuesIdentically) {
  OptimizerOptions o = OptimizerOptions::keras_defaults(OptimizerKind::kAdam);
  Optimizer a(o);
  Variable wa("dense/kernel", f64({1.0, 2.0}), true);
  ASSERT_TRUE(a.apply({&wa}, {f64({0.3, -0.2})}).ok());
  Optimizer b(o);
  Variable wb("dense/kernel", wa.value().clone(), true);
  ASSERT_TRUE(b.restore({&wb}, a.state({&wa})).ok());
  EXPECT_EQ(b.iterations(), 1);
  ASSERT_TRUE(a.apply({&wa}, {f64({0.1, 0.5})}).ok());
  ASSERT_TRUE(b.apply({&wb}, {f64({0.1, 0.5})}).ok());
  EXPECT_EQ(wa.value().data<double>()[0], wb.value().data<double>()[0]);
  EXPECT_EQ(wa.value().data<double>()[1], wb.value().data<double>()[1]);
  auto bad = a.state({&wa});
  bad["dense/kernel/m"] = f64({1.0});
  Status s = b.restore({&wb}, bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("dense/kernel/m"), std::string::npos) << s.message();
}

TEST(Optimizer, UnknownNameIsAnError) {
  EXPECT_FALSE(optimizer_kind_from_name("adagrad").ok());
  EXPECT_EQ(*optimizer_kind_from_name("adamw"), OptimizerKind::kAdamW);
}

}  // namespace
}  // namespace hubimg
