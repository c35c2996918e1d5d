// CallOptions::tap: a gradient call shows the inputs of the nodes asked for, as they were before
// the kernel ran (a kernel that may overwrite its sole-owned input must not do so under a tap).
#include <gtest/gtest.h>

#include "format/saved_model_writer.h"
#include "hubimg/model.h"
#include "ops/op_registry.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

// __call__(x) = Relu(x - x * x): the Relu's input is a fresh buffer nothing else holds.
void write_relu_model(const std::filesystem::path& dir) {
  using namespace format;
  SavedModelWriter writer(ops::find_op_def);
  const TensorSpec in{"x", DType::kFloat32, PartialShape::known({-1})};
  FunctionBuilder call(writer.unique_function_name("__call__"), writer.op_defs());
  const auto x = call.add_input("x", DType::kFloat32, in.shape);
  const auto square = call.add("Mul", {x, x});
  call.add_output(call.add("Relu", {call.add("Sub", {x, square})}));
  auto sig = writer.add_function(std::move(call));
  ASSERT_TRUE(sig.ok()) << sig.status().to_string();
  const TensorSpec out{"output_0", DType::kFloat32, PartialShape::known({-1})};
  ASSERT_TRUE(writer.set_call({{sig->name, in, std::nullopt, {}, out}}).ok());
  ASSERT_TRUE(writer.write(dir).ok());
}

TEST(NodeTap, SeesReluInputsBeforeTheKernelAndOnlyTheOpsAsked) {
  hubimg::testing::TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(write_relu_model(tmp.path()));
  auto model = Model::load(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().to_string();

  const std::vector<float> x = {-1.0f, 0.5f, 2.0f, 0.25f};
  std::vector<std::pair<std::string, Tensor>> seen;
  CallOptions::NodeTap tap;
  tap.ops = {"Relu", "ReluGrad"};
  tap.on_node = [&seen](const std::string& node, const std::string& op,
                        std::span<const Tensor> inputs) {
    ASSERT_FALSE(inputs.empty()) << node;
    seen.emplace_back(op, inputs[0]);
  };
  CallOptions options;
  options.tap = &tap;
  GradientTargets targets;
  targets.cotangents["output_0"] = Tensor::from_vector<float>({4}, {1, 1, 1, 1});
  auto r = model->gradients({{"inputs", Tensor::from_vector<float>({4}, x)}}, targets, options);
  ASSERT_TRUE(r.ok()) << r.status().to_string();

  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].first, "Relu");
  EXPECT_EQ(seen[1].first, "ReluGrad");  // its first input: the incoming gradient
  const auto pre = seen[0].second.values<float>();
  const auto y = r->outputs.at("output_0").values<float>();
  const auto dx = r->input_gradients.at("inputs").values<float>();
  ASSERT_EQ(pre.size(), 4u);
  for (size_t i = 0; i < x.size(); ++i) {
    const float expected_pre = x[i] - x[i] * x[i];  // -2, 0.25, -2, 0.1875
    EXPECT_FLOAT_EQ(pre[i], expected_pre) << i;     // negative ones not yet cut to 0
    EXPECT_FLOAT_EQ(y[i], std::max(expected_pre, 0.0f)) << i;
    EXPECT_FLOAT_EQ(dx[i], expected_pre > 0 ? 1 - 2 * x[i] : 0.0f) << i;
  }

  // No tap: same results.
  auto plain = model->gradients({{"inputs", Tensor::from_vector<float>({4}, x)}}, targets);
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  const auto y2 = plain->outputs.at("output_0").values<float>();
  EXPECT_EQ(std::vector<float>(y.begin(), y.end()), std::vector<float>(y2.begin(), y2.end()));
}

}  // namespace
}  // namespace hubimg
