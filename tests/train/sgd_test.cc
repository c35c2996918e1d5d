#include <gtest/gtest.h>

#include "hubimg/train.h"

namespace hubimg {
namespace {

Tensor values(std::vector<float> v) {
  Tensor t(DType::kFloat32, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.mutable_data<float>()[i] = v[i];
  return t;
}

// Keras SGD by hand: lr 0.1, momentum 0.9, gradient 1 twice: v1 = -0.1, w1 = w0 - 0.1;
// v2 = 0.9 * -0.1 - 0.1 = -0.19, w2 = w1 - 0.19.
TEST(Sgd, MomentumMatchesKerasUpdateRule) {
  Variable w("w", values({1.0f, -2.0f}), true);
  SgdOptimizer sgd({.learning_rate = 0.1, .momentum = 0.9});
  ASSERT_TRUE(sgd.apply({&w}, {values({1.0f, 2.0f})}).ok());
  EXPECT_NEAR(w.value().data<float>()[0], 0.9f, 1e-6);
  EXPECT_NEAR(w.value().data<float>()[1], -2.2f, 1e-6);
  ASSERT_TRUE(sgd.apply({&w}, {values({1.0f, 2.0f})}).ok());
  EXPECT_NEAR(w.value().data<float>()[0], 0.9f - 0.19f, 1e-6);
  EXPECT_NEAR(w.value().data<float>()[1], -2.2f - 0.38f, 1e-6);
  EXPECT_NEAR(sgd.velocity(w).data<float>()[0], -0.19f, 1e-6);
}

// Nesterov: w += m * v - lr * g with the new v: step 1: v = -0.1, w -= 0.09 + 0.1.
TEST(Sgd, NesterovLooksAhead) {
  Variable w("w", values({0.0f}), true);
  SgdOptimizer sgd({.learning_rate = 0.1, .momentum = 0.9, .nesterov = true});
  ASSERT_TRUE(sgd.apply({&w}, {values({1.0f})}).ok());
  EXPECT_NEAR(w.value().data<float>()[0], -0.19f, 1e-6);
}

TEST(Sgd, PlainDescentAndSharedBufferIsNotWrittenThrough) {
  Variable w("w", values({1.0f}), true);
  const Tensor held = w.value();  // a caller still reading the old value
  SgdOptimizer sgd({.learning_rate = 0.5});
  ASSERT_TRUE(sgd.apply({&w}, {values({2.0f})}).ok());
  EXPECT_FLOAT_EQ(w.value().data<float>()[0], 0.0f);
  EXPECT_FLOAT_EQ(held.data<float>()[0], 1.0f);
  EXPECT_FALSE(sgd.velocity(w).valid());
}

TEST(Sgd, MismatchesNameTheVariableAndChangeNothing) {
  Variable a("dense/kernel", values({1.0f, 2.0f}), true);
  Variable b("dense/bias", values({3.0f}), true);
  SgdOptimizer sgd({.learning_rate = 0.1, .momentum = 0.9});
  Status s = sgd.apply({&a, &b}, {values({1.0f, 1.0f}), values({1.0f, 1.0f})});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("dense/bias"), std::string::npos) << s.message();
  EXPECT_FLOAT_EQ(a.value().data<float>()[0], 1.0f);
  EXPECT_FALSE(sgd.apply({&a}, {}).ok());
  Tensor f64(DType::kFloat64, {2});
  EXPECT_FALSE(sgd.apply({&a}, {f64}).ok());
}

}  // namespace
}  // namespace hubimg
