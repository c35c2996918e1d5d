// The inference optimizer keeps results (frozen variables, folded constants and batch norms)
// and notices when variables change.
#include "graph/optimize.h"

#include <gtest/gtest.h>

#include <cmath>

#include "exec/executor.h"
#include "format/saved_model.h"
#include "hubimg/model.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using hubimg::testing::real_fixture;

Tensor pattern(Dims shape, float scale) {
  Tensor t(DType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    t.mutable_data<float>()[i] = scale * static_cast<float>((i * 2654435761u) % 1000) / 1000.0f;
  }
  return t;
}

void expect_close(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  double scale = 1;
  for (int64_t i = 0; i < b.num_elements(); ++i)
    scale = std::max(scale, std::abs(element_as_double(b, i)));
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    EXPECT_NEAR(element_as_double(a, i), element_as_double(b, i), 1e-4 * scale) << i;
  }
}

int count_ops(const graph::Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op == op;
  return n;
}

TEST(OptimizeForInference, FoldsBatchNormIntoConvolutionsOfARealModel) {
  HUBIMG_REQUIRE_SHARED();
  auto saved =
      format::SavedModel::load(real_fixture("emoji_mobilenet025_gray_tf282") / "saved_model");
  ASSERT_TRUE(saved.ok()) << saved.status().to_string();
  std::vector<std::unique_ptr<Variable>> owned;
  std::vector<Variable*> vars;
  for (const auto& v : (*saved)->variables()) {
    owned.push_back(std::make_unique<Variable>(v.name, v.value, v.trainable));
    vars.push_back(owned.back().get());
  }
  const auto& sig = (*saved)->signatures().at("serving_default");
  auto raw = graph::build_function_graph(**saved, *sig.function, "serving_default");
  ASSERT_TRUE(raw.ok()) << raw.status().to_string();
  graph::OptimizeStats stats;
  auto opt = graph::optimize_for_inference(**raw, vars, {}, &stats);
  ASSERT_TRUE(opt.ok()) << opt.status().to_string();
  // MobileNet(alpha=0.25): 27 convolutions, each followed by a batch norm.
  EXPECT_EQ(count_ops(**raw, "FusedBatchNormV3"), 27);
  EXPECT_EQ(count_ops(**opt, "FusedBatchNormV3"), 0);
  EXPECT_EQ(stats.batch_norms_folded, 27);
  EXPECT_EQ(count_ops(**opt, "ReadVariableOp"), 0);
  // Every convolution then carries its folded bias and Relu6 in one fused node; the 1x1
  // classifier convolution (Keras MobileNet's conv_preds) carries its bias.
  int relu6 = 0;
  for (const auto& n : (*opt)->nodes) {
    if (n.op.starts_with("_HubimgFused")) relu6 += *n.attrs.get_string("activation") == "Relu6";
  }
  EXPECT_EQ(relu6, 27);
  EXPECT_EQ(count_ops(**opt, "Relu6"), 0);
  EXPECT_EQ(stats.layers_fused, 28);
  EXPECT_LT(stats.nodes_after, stats.nodes_before);

  Tensor x = pattern({2, 160, 120, 1}, 255.0f);
  std::vector<Tensor> in{x};
  auto a = exec::run_graph(**raw, in, vars);
  auto b = exec::run_graph(**opt, in, vars);
  ASSERT_TRUE(a.ok() && b.ok());
  expect_close((*b)[0], (*a)[0]);
}

TEST(OptimizeForInference, ModelsAgreeWithAndWithoutOptimizationAndAfterAssign) {
  HUBIMG_REQUIRE_SHARED();
  for (const char* fixture : {"tm_mobilenetv2_035_tf115", "intel_cnn_keras3_tf218"}) {
    SCOPED_TRACE(fixture);
    auto path = real_fixture(fixture) / "saved_model";
    LoadOptions plain;
    plain.optimize = false;
    auto slow = Model::load(path, plain);
    auto fast = Model::load(path);
    ASSERT_TRUE(slow.ok() && fast.ok());
    const auto spec = fast->signature_input_specs("serving_default")[0];
    Dims shape = spec.shape.dims;
    shape[0] = 2;
    Tensor x = pattern(shape, 1.0f);
    auto run = [&](const Model& m) {
      auto out = m.call_signature("serving_default", {{spec.name, x}});
      EXPECT_TRUE(out.ok()) << out.status().to_string();
      return out->begin()->second;
    };
    expect_close(run(*fast), run(*slow));
    // Change the first kernel in both models: the optimized graph must follow.
    for (const Model* m : {&*slow, &*fast}) {
      Variable* v = m->variables()[0];
      Tensor changed = v->value().clone();
      for (int64_t i = 0; i < changed.num_elements(); ++i) changed.mutable_data<float>()[i] *= 0.5f;
      v->assign(changed);
    }
    expect_close(run(*fast), run(*slow));
  }
}

}  // namespace
}  // namespace hubimg
