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
  graph::AttrMap attrs{{"num", int64_t{3}},
                       {"T", std::vector<DType>{DType::kFloat32, DType::kInt32}}};
  auto sizes = output_arg_sizes(spec, attrs);
  ASSERT_TRUE(sizes.ok());
  EXPECT_EQ(*sizes, (std::vector<size_t>{1, 3, 2}));
  EXPECT_FALSE(output_arg_sizes(spec, graph::AttrMap{}).ok());
}

TEST(AttrMap, TypedGettersAndFallbacks) {
  graph::AttrMap attrs{{"strides", std::vector<int64_t>{1, 2, 2, 1}}, {"eps", 0.5f}};
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
