#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "exec/executor.h"
#include "format/saved_model.h"
#include "graph.pb.h"
#include "graph/optimize.h"
#include "hubimg/model.h"
#include "hubimg/npy.h"
#include "ops/op_registry.h"
#include "saved_model.pb.h"
#include "util/test_util.h"
#include "zoo/zoo.h"

namespace hubimg::zoo {
namespace {

using hubimg::testing::TempDir;
using ::testing::ElementsAre;

// Keras' model.summary() / len(model.weights) for keras.applications with weights=None,
// include_top=True, 224x224x3 (moving statistics count as non-trainable parameters).
struct KerasCounts {
  const char* name;
  int64_t total;
  int64_t trainable;
  int weights;
  int trainable_weights;
};
constexpr KerasCounts kKeras[] = {
    {"mobilenet_v2", 3'538'984, 3'504'872, 262, 158},
    {"efficientnet_b0", 5'330'571, 5'288'548, 314, 213},
    {"resnet50", 25'636'712, 25'583'592, 320, 214},
};

struct Loaded {
  ZooModelSummary summary;
  std::shared_ptr<format::SavedModel> model;
};

Loaded write_and_load(const std::string& name, const std::filesystem::path& dir,
                      ZooOptions options = {}) {
  auto summary = write_zoo_model(name, dir, options);
  EXPECT_TRUE(summary.ok()) << summary.status().to_string();
  if (!summary.ok()) return {};
  auto model = format::SavedModel::load(dir);
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  if (!model.ok()) return {};
  return {*summary, *model};
}

class KerasParameterCounts : public ::testing::TestWithParam<KerasCounts> {};

TEST_P(KerasParameterCounts, MatchKerasApplications) {
  const KerasCounts& keras = GetParam();
  TempDir tmp;
  Loaded l = write_and_load(keras.name, tmp.path() / keras.name, {.training_trace = false});
  ASSERT_TRUE(l.model);
  int64_t total = 0, trainable = 0;
  int trainable_weights = 0;
  for (const auto& v : l.model->variables()) {
    total += v.value.num_elements();
    if (v.trainable) {
      trainable += v.value.num_elements();
      ++trainable_weights;
    }
  }
  EXPECT_EQ(total, keras.total);
  EXPECT_EQ(trainable, keras.trainable);
  EXPECT_EQ(total - trainable, keras.total - keras.trainable);
  EXPECT_EQ(static_cast<int>(l.model->variables().size()), keras.weights);
  EXPECT_EQ(trainable_weights, keras.trainable_weights);
  EXPECT_EQ(l.summary.parameters, keras.total);

  ASSERT_TRUE(l.model->root_call().has_value());
  const auto& cf = l.model->root_call()->concrete_functions.at(0);
  ASSERT_EQ(cf.flat_inputs.size(), 1u);
  EXPECT_EQ(cf.flat_inputs[0].shape, PartialShape::known({-1, 224, 224, 3}));
  EXPECT_EQ(cf.output.tensor.shape, PartialShape::known({-1, 1000}));
  const auto& sig = l.model->signatures().at("serving_default");
  EXPECT_EQ(sig.inputs.at("input_1").shape, PartialShape::known({-1, 224, 224, 3}));
  EXPECT_EQ(sig.outputs.at("predictions").shape, PartialShape::known({-1, 1000}));
}

INSTANTIATE_TEST_SUITE_P(Bench, KerasParameterCounts, ::testing::ValuesIn(kKeras),
                         [](const auto& info) { return std::string(info.param.name); });

std::map<std::string, int64_t> inference_ops(const format::SavedModel& m) {
  const auto& cf = m.root_call()->concrete_functions.at(0);
  return m.op_histogram(m.reachable_functions({cf.name}));
}

TEST(BenchModels, MobileNetV2Layers) {
  TempDir tmp;
  Loaded l = write_and_load("mobilenet_v2", tmp.path(), {.training_trace = false});
  ASSERT_TRUE(l.model);
  auto ops = inference_ops(*l.model);
  // Conv1 + 16 expand + 17 project + Conv_1; one depthwise per block; ZeroPadding2D before
  // the depthwise conv of the 4 stride-2 blocks after the first; 10 residual adds.
  EXPECT_EQ(ops["Conv2D"], 35);
  EXPECT_EQ(ops["DepthwiseConv2dNative"], 17);
  EXPECT_EQ(ops["FusedBatchNormV3"], 52);
  EXPECT_EQ(ops["Relu6"], 35);
  EXPECT_EQ(ops["Pad"], 4);
  EXPECT_EQ(ops["AddV2"], 10);
  EXPECT_EQ(ops["Mean"], 1);
  EXPECT_EQ(ops["MatMul"], 1);
  EXPECT_EQ(ops["BiasAdd"], 1);
  EXPECT_EQ(ops["Softmax"], 0);
  // Keras' batch norm epsilon is set explicitly on every FusedBatchNormV3.
  for (const auto& name :
       l.model->reachable_functions({l.model->root_call()->concrete_functions[0].name})) {
    for (const auto& node : l.model->function(name)->node_def()) {
      if (node.op() != "FusedBatchNormV3") continue;
      EXPECT_FLOAT_EQ(node.attr().at("epsilon").f(), 1e-3f) << name;
      EXPECT_FALSE(node.attr().at("is_training").b()) << name;
    }
  }
}

TEST(BenchModels, EfficientNetB0Layers) {
  TempDir tmp;
  Loaded l = write_and_load("efficientnet_b0", tmp.path(), {.training_trace = false});
  ASSERT_TRUE(l.model);
  auto ops = inference_ops(*l.model);
  // 16 blocks: 15 expand convs, 16 projections, 2 SE convs each, stem and top conv.
  EXPECT_EQ(ops["Conv2D"], 1 + 15 + 16 + 32 + 1);
  EXPECT_EQ(ops["DepthwiseConv2dNative"], 16);
  EXPECT_EQ(ops["FusedBatchNormV3"], 1 + 15 + 16 + 16 + 1);
  // Stride-2 depthwise convs use correct_pad (4) plus the stem.
  EXPECT_EQ(ops["Pad"], 5);
  // Residual adds where stride 1 and filters_in == filters_out: repeats - 1 per stage.
  EXPECT_EQ(ops["AddV2"], 0 + 1 + 1 + 2 + 2 + 3 + 0);
  // Swish (Sigmoid * x) after stem, 15 expands, 16 depthwise, 16 SE reduces and top; plus
  // the 16 SE gates (Sigmoid) multiplied into the features.
  EXPECT_EQ(ops["Sigmoid"], 1 + 15 + 16 + 16 + 1 + 16);
  EXPECT_EQ(ops["Mul"], 1 + 15 + 16 + 16 + 1 + 16);
  EXPECT_EQ(ops["Mean"], 16 + 1);
  EXPECT_EQ(ops["RealDiv"], 1);
  const auto& vars = l.model->variables();
  ASSERT_FALSE(vars.empty());
  EXPECT_EQ(vars[0].name, "normalization/mean");
  EXPECT_EQ(vars[2].name, "normalization/count");
  EXPECT_EQ(vars[2].dtype, DType::kInt64);
  EXPECT_FALSE(vars[2].trainable);
}

TEST(BenchModels, ResNet50Layers) {
  TempDir tmp;
  Loaded l = write_and_load("resnet50", tmp.path(), {.training_trace = false});
  ASSERT_TRUE(l.model);
  auto ops = inference_ops(*l.model);
  EXPECT_EQ(ops["Conv2D"], 1 + 16 * 3 + 4);
  EXPECT_EQ(ops["BiasAdd"], 1 + 16 * 3 + 4 + 1);
  EXPECT_EQ(ops["FusedBatchNormV3"], 1 + 16 * 3 + 4);
  EXPECT_EQ(ops["Relu"], 1 + 16 * 3);
  EXPECT_EQ(ops["AddV2"], 16);
  EXPECT_EQ(ops["MaxPool"], 1);
  EXPECT_EQ(ops["Pad"], 2);
  // v1.5: stage-opening 3x3 convs carry the stride; their 1x1 reductions do not.
  const auto& m = *l.model;
  for (const auto& name : m.reachable_functions({m.root_call()->concrete_functions[0].name})) {
    const bool block2 = name.find("conv3_block1_2_conv_layer") != std::string::npos;
    const bool block1 = name.find("conv3_block1_1_conv_layer") != std::string::npos;
    if (!block1 && !block2) continue;
    for (const auto& node : m.function(name)->node_def()) {
      if (node.op() != "Conv2D") continue;
      EXPECT_THAT(node.attr().at("strides").list().i(),
                  ElementsAre(1, block2 ? 2 : 1, block2 ? 2 : 1, 1))
          << name;
    }
  }
}

TEST(BenchModels, TinyCnnManifestAndNpy) {
  TempDir tmp;
  Loaded l = write_and_load("tiny_cnn", tmp.path(), {.seed = 7, .dump_npy = true});
  ASSERT_TRUE(l.model);
  // 3x3 convs 3->8->16->32 without bias, batch norm (4 per channel), dense 32->5.
  EXPECT_EQ(l.summary.parameters, (27 * 8 + 72 * 16 + 144 * 32) + 4 * (8 + 16 + 32) + (32 * 5 + 5));
  std::ifstream in(tmp.path() / "weights_manifest.json");
  auto manifest = nlohmann::json::parse(in);
  EXPECT_EQ(manifest["input"]["shape"], nlohmann::json({-1, 64, 64, 3}));
  ASSERT_EQ(manifest["variables"].size(), l.model->variables().size());
  for (size_t i = 0; i < l.model->variables().size(); ++i) {
    const auto& v = l.model->variables()[i];
    const auto& entry = manifest["variables"][i];
    EXPECT_EQ(entry["name"], v.name);
    EXPECT_EQ(entry["checkpoint_key"], v.checkpoint_key);
    auto npy = read_npy(tmp.path() / entry["npy"].get<std::string>());
    ASSERT_TRUE(npy.ok()) << npy.status().to_string();
    ASSERT_EQ(npy->shape(), v.value.shape());
    for (int64_t k = 0; k < npy->num_elements(); ++k) {
      ASSERT_EQ(element_as_double(*npy, k), element_as_double(v.value, k)) << v.name;
    }
  }
  EXPECT_EQ(manifest["layers"][0]["name"], "conv2d");
  EXPECT_EQ(manifest["layers"].back()["type"], "Dense");
  // Batch-norm statistics lie in the ranges the generator promises.
  for (const auto& v : l.model->variables()) {
    for (int64_t k = 0; k < v.value.num_elements(); ++k) {
      const double x = element_as_double(v.value, k);
      if (v.name.ends_with("moving_variance")) {
        EXPECT_GE(x, 0.5);
        EXPECT_LE(x, 1.5);
      }
      if (v.name.ends_with("gamma")) {
        EXPECT_GE(x, 0.8);
        EXPECT_LE(x, 1.2);
      }
    }
  }
}

TEST(BenchModels, SeedsChangeWeightsDeterministically) {
  TempDir tmp;
  Loaded a = write_and_load("tiny_cnn", tmp.path() / "a", {.seed = 1});
  Loaded b = write_and_load("tiny_cnn", tmp.path() / "b", {.seed = 1});
  Loaded c = write_and_load("tiny_cnn", tmp.path() / "c", {.seed = 2});
  ASSERT_TRUE(a.model && b.model && c.model);
  const Tensor& ka = a.model->variables()[0].value;
  const Tensor& kb = b.model->variables()[0].value;
  const Tensor& kc = c.model->variables()[0].value;
  EXPECT_EQ(0, std::memcmp(ka.raw_data(), kb.raw_data(), ka.byte_size()));
  EXPECT_NE(0, std::memcmp(ka.raw_data(), kc.raw_data(), ka.byte_size()));
}

TEST(BenchModels, TrainingTraceUpdatesBatchNormStatistics) {
  TempDir tmp;
  Loaded l = write_and_load("tiny_cnn", tmp.path());
  ASSERT_TRUE(l.model);
  const auto& call = *l.model->root_call();
  ASSERT_EQ(call.concrete_functions.size(), 2u);
  EXPECT_EQ(call.concrete_functions[1].training, std::optional<bool>(true));
  auto ops = l.model->op_histogram(l.model->reachable_functions({call.concrete_functions[1].name}));
  EXPECT_EQ(ops["AssignVariableOp"], 6);  // moving mean and variance of 3 batch norms
  EXPECT_EQ(ops["FusedBatchNormV3"], 3);
}

TEST(BenchModels, TinyCnnRuns) {
  for (const char* op : {"Mean", "Conv2D", "FusedBatchNormV3", "MaxPool"}) {
    if (ops::OpRegistry::global().find(op) == nullptr) GTEST_SKIP() << "waits on kernel " << op;
  }
  TempDir tmp;
  ASSERT_TRUE(write_zoo_model("tiny_cnn", tmp.path(), {}).ok());
  auto model = Model::load(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  Tensor images(DType::kFloat32, {2, 64, 64, 3});
  float* p = images.mutable_data<float>();
  for (int64_t i = 0; i < images.num_elements(); ++i)
    p[i] = static_cast<float>((i * 37) % 101) / 100.0f;
  auto logits = (*model)(images);
  ASSERT_TRUE(logits.ok()) << logits.status().to_string();
  ASSERT_THAT((*logits)[0].shape(), ElementsAre(2, 5));
  for (float v : (*logits)[0].values<float>()) {
    EXPECT_TRUE(std::isfinite(v));
    EXPECT_LT(std::abs(v), 100.0f);
  }
  auto sig = model->call_signature("serving_default", {{"input_1", images}});
  ASSERT_TRUE(sig.ok()) << sig.status().to_string();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(sig->at("dense").values<float>()[i], (*logits)[0].values<float>()[i]);
  }
}

}  // namespace
}  // namespace hubimg::zoo

namespace hubimg::zoo {
namespace {

// A deterministic 224x224 RGB input in [0, 1].
Tensor test_image(int64_t batch = 1) {
  Tensor x(DType::kFloat32, {batch, 224, 224, 3});
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    x.mutable_data<float>()[i] = static_cast<float>((i * 7919) % 256) / 255.0f;
  }
  return x;
}

// |actual - expected| <= 1e-4 * max(1, max |expected|) everywhere.
void expect_close_to_scale(const Tensor& actual, const Tensor& expected) {
  ASSERT_EQ(actual.shape(), expected.shape());
  double scale = 1;
  for (float v : expected.values<float>()) scale = std::max<double>(scale, std::abs(v));
  for (int64_t i = 0; i < expected.num_elements(); ++i) {
    EXPECT_NEAR(actual.data<float>()[i], expected.data<float>()[i], 1e-4 * scale) << i;
  }
}

// The optimizer on EfficientNet-B0: batch norms folded, swish and residual adds fused, same
// logits as the unoptimized graph.
TEST(BenchModelsOptimized, EfficientNetB0FusesSwishAndResidualsAndKeepsLogits) {
  hubimg::testing::TempDir tmp;
  auto summary = write_zoo_model("efficientnet_b0", tmp.path(), {.training_trace = false});
  ASSERT_TRUE(summary.ok()) << summary.status().to_string();
  auto saved = format::SavedModel::load(tmp.path());
  ASSERT_TRUE(saved.ok()) << saved.status().to_string();
  std::vector<std::unique_ptr<Variable>> owned;
  std::vector<Variable*> vars;
  for (const auto& v : (*saved)->variables()) {
    owned.push_back(std::make_unique<Variable>(v.name, v.value, v.trainable));
    vars.push_back(owned.back().get());
  }
  const auto& sig = (*saved)->signatures().begin()->second;
  auto raw = graph::build_function_graph(**saved, *sig.function, "serving");
  ASSERT_TRUE(raw.ok()) << raw.status().to_string();
  graph::OptimizeStats stats;
  auto opt = graph::optimize_for_inference(**raw, vars, {}, &stats);
  ASSERT_TRUE(opt.ok()) << opt.status().to_string();
  std::map<std::string, int> ops;
  std::map<std::string, int> activations;
  for (const auto& n : (*opt)->nodes) {
    ++ops[n.op];
    if (n.op.starts_with("_HubimgFused")) ++activations[*n.attrs.get_string("activation")];
  }
  EXPECT_EQ(stats.batch_norms_folded, 49);
  EXPECT_EQ(ops["FusedBatchNormV3"], 0);
  // Swish after the stem, 15 expand, 16 depthwise, 16 SE-reduce convs and the top conv.
  EXPECT_EQ(activations["Swish"], 1 + 15 + 16 + 16 + 1);
  // Only the 16 squeeze-excite gates keep a separate Sigmoid; the gate's Mul joins the
  // projection convolution that reads it.
  EXPECT_EQ(ops["Sigmoid"], 16);
  EXPECT_EQ(ops["Mul"], 0);
  int gated = 0;
  for (const auto& n : (*opt)->nodes) gated += n.attrs.get_bool("has_input_mul", false).value();
  EXPECT_EQ(gated, 16);
  // The 16 squeeze Means and the global average pooling are the second outputs of the
  // depthwise / top convolutions they read.
  EXPECT_EQ(ops["Mean"], 0);
  int pooled = 0;
  for (const auto& n : (*opt)->nodes) {
    pooled += n.attrs.get_bool("spatial_mean", false).value();
    if (n.attrs.get_bool("spatial_mean", false).value()) {
      EXPECT_EQ(n.num_outputs, 2) << n.name;
    }
  }
  EXPECT_EQ(pooled, 17);
  EXPECT_EQ(ops["AddV2"], 0);  // all 9 residual adds fused into their projection conv
  EXPECT_EQ(ops["Pad"], 0);    // the 5 zero pads became the convolutions' explicit padding

  // Batch 1 and 2: the fast kernels fold each image's gate into its own copy of the filter.
  for (int64_t batch : {1, 2}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    std::vector<Tensor> in{test_image(batch)};
    auto a = exec::run_graph(**raw, in, vars);
    auto b = exec::run_graph(**opt, in, vars);
    ASSERT_TRUE(a.ok() && b.ok());
    expect_close_to_scale((*b)[0], (*a)[0]);
  }
}

}  // namespace
}  // namespace hubimg::zoo

namespace hubimg::zoo {
namespace {

// ResNet-50's projection blocks feed one residual Add from two convolutions; only one of
// them may take it into its fused node. Optimized and plain runs must agree.
TEST(BenchModelsOptimized, ResNet50ResidualAddsJoinOneChain) {
  hubimg::testing::TempDir tmp;
  auto summary = write_zoo_model("resnet50", tmp.path(), {.training_trace = false});
  ASSERT_TRUE(summary.ok()) << summary.status().to_string();
  LoadOptions plain;
  plain.optimize = false;
  auto slow = Model::load(tmp.path(), plain);
  auto fast = Model::load(tmp.path());
  ASSERT_TRUE(slow.ok() && fast.ok());
  Tensor x = test_image();
  auto a = (*slow)(x);
  auto b = (*fast)(x);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  expect_close_to_scale((*b)[0], (*a)[0]);
}

}  // namespace
}  // namespace hubimg::zoo
