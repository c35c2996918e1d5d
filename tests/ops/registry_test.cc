#include <gtest/gtest.h>

#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

TEST(OpRegistry, UnknownOpIsUnimplementedAndNamed) {
  auto r = run_op("NoSuchOpXyz", {}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("NoSuchOpXyz"), std::string::npos);
}

TEST(OpRegistry, OutputArgSizesFromAttrs) {
  OpSpec spec{"Fake", {{"a", ""}, {"b", "num"}, {"c", "T"}}, nullptr};
  AttrMap attrs{{"num", int64_t{3}}, {"T", std::vector<DType>{DType::kFloat32, DType::kInt32}}};
  auto sizes = output_arg_sizes(spec, attrs);
  ASSERT_TRUE(sizes.ok());
  EXPECT_EQ(*sizes, (std::vector<size_t>{1, 3, 2}));
  EXPECT_FALSE(output_arg_sizes(spec, AttrMap{}).ok());
}

TEST(OpRegistry, TraitsLiveInTheEntries) {
  const OpRegistry& r = OpRegistry::global();
  for (const char* op : {"AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
                         "ResourceApplyGradientDescent", "RngReadAndSkip"}) {
    ASSERT_NE(r.find(op), nullptr) << op;
    EXPECT_TRUE(r.find(op)->writes_variable) << op;
    EXPECT_TRUE(r.find(op)->stateful) << op;
  }
  EXPECT_FALSE(r.find("ReadVariableOp")->writes_variable);
  for (const char* op : {"Identity", "IdentityN", "Snapshot"}) {
    ASSERT_NE(r.find(op), nullptr) << op;
    EXPECT_TRUE(r.find(op)->identity_like) << op;
  }
  EXPECT_FALSE(r.find("StopGradient")->identity_like);  // its gradient differs
  EXPECT_EQ(r.find("Relu")->row_rule, RowRule::kElementwise);
  EXPECT_EQ(r.find("AddV2")->row_rule, RowRule::kBroadcastBinary);
  EXPECT_EQ(r.find("Conv2D")->row_rule, RowRule::kSpatial);
  EXPECT_EQ(r.find("FusedBatchNormV3")->row_rule, RowRule::kBatchNorm);
  EXPECT_EQ(r.find("Mean")->row_rule, RowRule::kReduction);
  EXPECT_EQ(r.find("Transpose")->row_rule, RowRule::kUnknown);
}

TEST(OpRegistry, IdentityNForwardsEveryInput) {
  AttrMap attrs{{"T", std::vector<DType>{DType::kFloat32, DType::kInt32}}};
  std::vector<Tensor> in = {Tensor::scalar<float>(2.5f), Tensor::scalar<int32_t>(7)};
  auto out = run_op("IdentityN", in, attrs);
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].data<float>()[0], 2.5f);
  EXPECT_EQ((*out)[1].data<int32_t>()[0], 7);
}

TEST(AttrMap, TypedGettersAndFallbacks) {
  AttrMap attrs{{"strides", std::vector<int64_t>{1, 2, 2, 1}}, {"eps", 0.5f}};
  EXPECT_EQ(*attrs.get_ints("strides"), (std::vector<int64_t>{1, 2, 2, 1}));
  EXPECT_EQ(*attrs.get_float("eps"), 0.5f);
  EXPECT_EQ(*attrs.get_float("missing", 1e-4f), 1e-4f);
  EXPECT_FALSE(attrs.get_float("missing").ok());
  auto wrong = attrs.get_int("eps");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("eps"), std::string::npos);
}

}  // namespace
}  // namespace hubimg::ops
