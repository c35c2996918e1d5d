#include <gtest/gtest.h>

#include "hubimg/model.h"
#include "ops/op_registry.h"
#include "ops/variable.h"

namespace hubimg::ops {
namespace {

std::vector<int64_t> as_vector(const Tensor& t) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < t.num_elements(); ++i)
    v.push_back(static_cast<int64_t>(element_as_double(t, i)));
  return v;
}

TEST(BroadcastGradientArgs, ReducesWhereAnInputWasBroadcast) {
  struct Case {
    std::vector<int32_t> s0, s1;
    std::vector<int64_t> r0, r1;
  };
  // Worked out by hand: right-align, pad with 1s, reduce an input where its size is 1.
  const Case cases[] = {
      {{1}, {3}, {0}, {}},           {{2, 3}, {3}, {}, {0}}, {{2, 1, 4}, {5, 1}, {1}, {0, 2}},
      {{1, 1}, {1}, {0, 1}, {0, 1}}, {{4}, {4}, {}, {}},
  };
  for (const auto& c : cases) {
    std::vector<Tensor> in{Tensor::from_vector<int32_t>({static_cast<int64_t>(c.s0.size())}, c.s0),
                           Tensor::from_vector<int32_t>({static_cast<int64_t>(c.s1.size())}, c.s1)};
    auto out = run_op("BroadcastGradientArgs", in, {});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_EQ(as_vector((*out)[0]), c.r0);
    EXPECT_EQ(as_vector((*out)[1]), c.r1);
  }
  std::vector<Tensor> bad{Tensor::from_vector<int32_t>({1}, {2}),
                          Tensor::from_vector<int32_t>({1}, {3})};
  auto err = run_op("BroadcastGradientArgs", bad, {}, "grad/args");
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.status().message().find("node 'grad/args'"), std::string::npos);
}

TEST(ResourceApplyGradientDescent, UpdatesTheVariable) {
  const OpSpec* spec = OpRegistry::global().find("ResourceApplyGradientDescent");
  ASSERT_NE(spec, nullptr);
  Variable w("w", Tensor::from_vector<float>({2}, {1.0f, -2.0f}), true);
  std::vector<Tensor> in{Tensor::scalar<float>(0.5f),
                         Tensor::from_vector<float>({2}, {4.0f, 2.0f})};
  AttrMap attrs;
  KernelContext ctx("sgd", "ResourceApplyGradientDescent", attrs, in, 0);
  Variable* vars[] = {&w};
  ctx.set_variables(vars);
  ASSERT_TRUE(spec->kernel(ctx).ok());
  EXPECT_EQ(w.value().data<float>()[0], 1.0f - 0.5f * 4.0f);
  EXPECT_EQ(w.value().data<float>()[1], -2.0f - 0.5f * 2.0f);
}

TEST(ReadVariableOp, ReturnsTheValueWithoutCopying) {
  const OpSpec* spec = OpRegistry::global().find("ReadVariableOp");
  Variable v("v", Tensor::from_vector<float>({3}, {1, 2, 3}), true);
  AttrMap attrs;
  KernelContext ctx("read", "ReadVariableOp", attrs, {}, 1);
  Variable* vars[] = {&v};
  ctx.set_variables(vars);
  ASSERT_TRUE(spec->kernel(ctx).ok());
  EXPECT_TRUE(ctx.outputs()[0].shares_buffer_with(v.value()));
}

}  // namespace
}  // namespace hubimg::ops

namespace hubimg::ops {
namespace {

TEST(RngReadAndSkip, ReturnsOldStateAndAdvancesTheCounterWithCarry) {
  const OpSpec* spec = OpRegistry::global().find("RngReadAndSkip");
  ASSERT_NE(spec, nullptr);
  Variable state("rng", Tensor::from_vector<int64_t>({3}, {-2, 7, 42}), false);
  std::vector<Tensor> in{Tensor::scalar<int64_t>(1), Tensor::scalar<uint64_t>(5)};
  AttrMap attrs;
  KernelContext ctx("rng", "RngReadAndSkip", attrs, in, 1);
  Variable* vars[] = {&state};
  ctx.set_variables(vars);
  ASSERT_TRUE(spec->kernel(ctx).ok());
  EXPECT_EQ(ctx.outputs()[0].data<int64_t>()[0], -2);
  // -2 is 0xffff...fe as the low counter word: +5 wraps to 3 and carries into the high word.
  EXPECT_EQ(state.value().data<int64_t>()[0], 3);
  EXPECT_EQ(state.value().data<int64_t>()[1], 8);
  EXPECT_EQ(state.value().data<int64_t>()[2], 42);
}

}  // namespace
}  // namespace hubimg::ops
