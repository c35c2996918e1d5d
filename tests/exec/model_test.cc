// The public Model API on the small TensorFlow test models, checked against the values their
// PROVENANCE.md files state, and its errors.
#include "hubimg/model.h"

#include <gtest/gtest.h>

#include "util/test_util.h"

namespace hubimg {
namespace {

using hubimg::testing::real_fixture;

Model load_fixture(const std::string& name) {
  auto m = Model::load(real_fixture("tf_testdata/" + name) / "saved_model");
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return std::move(m).value();
}

TEST(ModelStatedOutputs, HalfPlusTwo) {
  HUBIMG_REQUIRE_SHARED();
  Model m = load_fixture("serving_half_plus_two_tf2_cpu");
  auto y = m.call_signature("serving_default", {{"x", Tensor::from_vector<float>({1}, {1.0f})}});
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  EXPECT_EQ(y->at("y").data<float>()[0], 2.5f);  // 0.5 * 1 + 2
  auto y3 =
      m.call_signature("regress_x2_to_y3", {{"inputs", Tensor::from_vector<float>({1}, {2.0f})}});
  ASSERT_TRUE(y3.ok()) << y3.status().to_string();
  EXPECT_EQ(y3->at("outputs").data<float>()[0], 4.0f);  // 0.5 * 2 + 3
  // The tf.Example signatures need ParseExampleV2: loading warns, calling says why.
  EXPECT_FALSE(m.load_warnings().empty());
  auto parse = m.call_signature("classify_x_to_y", {{"inputs", Tensor::from_strings({1}, {""})}});
  ASSERT_FALSE(parse.ok());
  EXPECT_NE(parse.status().message().find("ParseExampleV2"), std::string::npos);
}

TEST(ModelStatedOutputs, TimesThreeThroughCallAndSignature) {
  HUBIMG_REQUIRE_SHARED();
  Model m = load_fixture("tfjs_node_times_three_float");
  for (float x : {1.0f, 2.0f, 3.0f}) {
    auto out = m(Tensor::scalar<float>(x));
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_EQ(out->at(0).data<float>()[0], 3 * x);
  }
}

TEST(ModelStatedOutputs, MultiOutputAndUint8Multiply) {
  HUBIMG_REQUIRE_SHARED();
  Model multi = load_fixture("tfjs_node_model_multi_output");
  auto out = multi.call({{"x", Tensor::scalar<int32_t>(5)}, {"y", Tensor::scalar<int32_t>(7)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("output_0").data<int32_t>()[0], 10);  // f(x, y) = [2x, y]
  EXPECT_EQ(out->at("output_1").data<int32_t>()[0], 7);
  Model u8 = load_fixture("tfjs_node_uint8_multiply");
  auto r = u8.call_signature("serving_default", {{"x", Tensor::from_vector<uint8_t>({1}, {3})}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("output_0").dtype(), DType::kInt32);
  EXPECT_EQ(r->at("output_0").data<int32_t>()[0], 18);
}

TEST(ModelStatedOutputs, JavaAddAndVariable) {
  HUBIMG_REQUIRE_SHARED();
  Model m = load_fixture("java_saved_model_using_python");
  auto sum = m.call_signature(
      "add", {{"a", Tensor::scalar<float>(10.0f)}, {"b", Tensor::scalar<float>(15.5f)}});
  ASSERT_TRUE(sum.ok()) << sum.status().to_string();
  EXPECT_EQ(sum->at("output_0").data<float>()[0], 25.5f);
  auto v = m.call_signature("get_variable", {{"dummy", Tensor::scalar<float>(0.0f)}});
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(v->at("output_0").data<float>()[0], 2.0f);
}

TEST(ModelErrors, WrongDtypeShapeAndNames) {
  HUBIMG_REQUIRE_SHARED();
  auto m = Model::load(real_fixture("mnist_cnn_tf231") / "saved_model");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto wrong_shape = (*m)(Tensor(DType::kFloat32, {2, 28, 28, 3}));
  ASSERT_FALSE(wrong_shape.ok());
  EXPECT_NE(wrong_shape.status().message().find("[-1, 28, 28, 1]"), std::string::npos)
      << wrong_shape.status().message();
  auto wrong_dtype = (*m)(Tensor(DType::kInt32, {2, 28, 28, 1}));
  ASSERT_FALSE(wrong_dtype.ok());
  EXPECT_NE(wrong_dtype.status().message().find("float32"), std::string::npos);
  auto no_sig = m->call_signature("nope", {});
  ASSERT_FALSE(no_sig.ok());
  EXPECT_NE(no_sig.status().message().find("serving_default"), std::string::npos);
  auto bad_key =
      m->call_signature("serving_default", {{"images", Tensor(DType::kFloat32, {1, 28, 28, 1})}});
  ASSERT_FALSE(bad_key.ok());
  EXPECT_NE(bad_key.status().message().find("images"), std::string::npos);
}

TEST(ModelBatches, TwoBatchSizesInOneProcessAgree) {
  HUBIMG_REQUIRE_SHARED();
  auto m = Model::load(real_fixture("rps_cnn_tf231") / "saved_model");
  ASSERT_TRUE(m.ok());
  Tensor batch(DType::kFloat32, {4, 128, 128, 3});
  float* p = batch.mutable_data<float>();
  for (int64_t i = 0; i < batch.num_elements(); ++i)
    p[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f;
  auto all = (*m)(batch);
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  Tensor last(DType::kFloat32, {1, 128, 128, 3});
  std::copy_n(p + 3 * 128 * 128 * 3, 128 * 128 * 3, last.mutable_data<float>());
  auto one = (*m)(last);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->at(0).shape(), (Dims{1, 3}));
  for (int k = 0; k < 3; ++k) {
    EXPECT_NEAR(one->at(0).data<float>()[k], all->at(0).data<float>()[9 + k], 1e-5);
  }
}

}  // namespace
}  // namespace hubimg
