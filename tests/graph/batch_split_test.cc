// Which graphs may run a batch as independent chunks of rows, and that the chunked run gives
// the batch's results.
#include "graph/batch_split.h"

#include <gtest/gtest.h>

#include <cmath>

#include "hubimg/model.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using graph::Graph;
using graph::Node;
using graph::ValueRef;

// A tiny graph builder: x = _Arg (rank `rank`), then nodes appended in order.
struct GraphSketch {
  Graph g;
  explicit GraphSketch(int num_args = 1) {
    for (int i = 0; i < num_args; ++i) {
      Node arg;
      arg.name = "x" + std::to_string(i);
      arg.op = graph::kArgOp;
      arg.arg_index = i;
      g.arg_nodes.push_back(static_cast<int>(g.nodes.size()));
      g.nodes.push_back(arg);
    }
  }
  int constant(Tensor value) {
    Node n;
    n.name = "c" + std::to_string(g.nodes.size());
    n.op = "Const";
    n.attrs.set("value", std::move(value));
    return append(std::move(n));
  }
  int ints(std::vector<int32_t> values) {
    return constant(Tensor::from_vector<int32_t>({static_cast<int64_t>(values.size())}, values));
  }
  int op(const std::string& op, std::vector<int> inputs, AttrMap attrs = {}) {
    Node n;
    n.name = "n" + std::to_string(g.nodes.size());
    n.op = op;
    n.attrs = std::move(attrs);
    for (int i : inputs) n.inputs.push_back(ValueRef{i, 0});
    return append(std::move(n));
  }
  int append(Node n) {
    const std::string name = n.name;
    auto id = graph::append_node(g, std::move(n));
    EXPECT_TRUE(id.ok()) << name << ": " << id.status().message();
    return id.ok() ? *id : 0;
  }
  graph::RowIndependence check(int output, std::vector<int> ranks = {4}) {
    g.outputs = {ValueRef{output, 0}};
    return graph::rows_are_independent(g, ranks);
  }
};

Tensor filter() {
  return Tensor(DType::kFloat32, {3, 3, 3, 8});
}

TEST(RowIndependence, ConvolutionPoolingAndGlobalMeanKeepRows) {
  GraphSketch s;
  int conv = s.op("Conv2D", {0, s.constant(filter())});
  int relu = s.op("Relu6", {conv});
  int pool = s.op("MaxPool", {relu});
  int mean = s.op("Mean", {pool, s.ints({1, 2})});
  int logits = s.op("MatMul", {mean, s.constant(Tensor(DType::kFloat32, {8, 10}))});
  auto r = s.check(s.op("Softmax", {logits}));
  EXPECT_TRUE(r.independent) << r.reason;
}

TEST(RowIndependence, SqueezeExciteScalesRowsByRows) {
  GraphSketch s;
  int mean = s.op("Mean", {0, s.ints({-3, -2})}, {{"keep_dims", true}});
  int gate = s.op("Sigmoid", {mean});
  auto r = s.check(s.op("Mul", {0, gate}));
  EXPECT_TRUE(r.independent) << r.reason;
}

TEST(RowIndependence, FusedConvolutionWithGateAndResidualKeepsRows) {
  // The optimizer's projection node: input, filter, bias, residual, gate (fused_ops.cc).
  GraphSketch s;
  int mean = s.op("Mean", {0, s.ints({1, 2})}, {{"keep_dims", true}});
  int gate = s.op("Sigmoid", {mean});
  const AttrMap attrs = {{"has_bias", true}, {"has_residual", true}, {"has_input_mul", true}};
  int fused =
      s.op("_HubimgFusedConv2D",
           {0, s.constant(filter()), s.constant(Tensor(DType::kFloat32, {8})), 0, gate}, attrs);
  auto r = s.check(fused);
  EXPECT_TRUE(r.independent) << r.reason;

  // A gate that is a constant, or a residual that is one, is refused (conservatively).
  GraphSketch t;
  int constant_gate = t.constant(Tensor(DType::kFloat32, {1, 1, 1, 3}));
  auto refused = t.check(
      t.op("_HubimgFusedConv2D",
           {0, t.constant(filter()), t.constant(Tensor(DType::kFloat32, {8})), 0, constant_gate},
           attrs));
  EXPECT_FALSE(refused.independent);
  EXPECT_NE(refused.reason.find("input factor"), std::string::npos) << refused.reason;
  GraphSketch u;
  auto no_residual =
      u.check(u.op("_HubimgFusedConv2D",
                   {0, u.constant(filter()), u.constant(Tensor(DType::kFloat32, {8})),
                    u.constant(Tensor(DType::kFloat32, {1, 1, 1, 8})), 0},
                   attrs));
  EXPECT_FALSE(no_residual.independent);
  EXPECT_NE(no_residual.reason.find("residual"), std::string::npos) << no_residual.reason;
}

TEST(RowIndependence, SpatialMeanOutputOfAFusedConvolutionIsRows) {
  GraphSketch s;
  int fused = s.op("_HubimgFusedDepthwiseConv2dNative", {0, s.constant(filter())},
                   {{"spatial_mean", true}, {"spatial_mean_keep_dims", false}});
  s.g.nodes[static_cast<size_t>(fused)].num_outputs = 2;
  Node logits;
  logits.name = "logits";
  logits.op = "MatMul";
  logits.inputs = {ValueRef{fused, 1}, ValueRef{s.constant(Tensor(DType::kFloat32, {8, 10})), 0}};
  s.append(std::move(logits));
  auto r = s.check(static_cast<int>(s.g.nodes.size()) - 1);
  EXPECT_TRUE(r.independent) << r.reason;
  // Without the attribute the second output is unknown.
  s.g.nodes[static_cast<size_t>(fused)].attrs.set("spatial_mean", false);
  auto refused = s.check(static_cast<int>(s.g.nodes.size()) - 1);
  EXPECT_FALSE(refused.independent);
  EXPECT_NE(refused.reason.find("second output"), std::string::npos) << refused.reason;
}

TEST(RowIndependence, ConstantsBroadcastOnlyAlongNonBatchDimensions) {
  {
    GraphSketch s;  // [3] channel normalization: fine
    auto r = s.check(s.op("Sub", {0, s.constant(Tensor(DType::kFloat32, {3}))}));
    EXPECT_TRUE(r.independent) << r.reason;
  }
  {
    GraphSketch s;  // [1, 1, 1, 3]: fine
    auto r = s.check(s.op("Mul", {s.constant(Tensor(DType::kFloat32, {1, 1, 1, 3})), 0}));
    EXPECT_TRUE(r.independent) << r.reason;
  }
  {
    GraphSketch s;  // a constant with one value per batch row ties the batch size
    auto r = s.check(s.op("Add", {0, s.constant(Tensor(DType::kFloat32, {4, 1, 1, 1}))}));
    EXPECT_FALSE(r.independent);
    EXPECT_NE(r.reason.find("spans the batch"), std::string::npos) << r.reason;
  }
}

TEST(RowIndependence, OpsThatMixRowsAreRefused) {
  auto refused = [](auto build, const std::string& why, std::vector<int> ranks = {4}) {
    GraphSketch s;
    int out = build(s);
    auto r = s.check(out, ranks);
    EXPECT_FALSE(r.independent) << why;
    EXPECT_FALSE(r.reason.empty());
  };
  refused([](GraphSketch& s) { return s.op("Mean", {0, s.ints({0, 1, 2})}); }, "mean over batch");
  refused([](GraphSketch& s) { return s.op("Sum", {0, s.ints({-4})}); }, "negative batch axis");
  refused([](GraphSketch& s) { return s.op("Reshape", {0, s.ints({-1})}); }, "reshape");
  refused([](GraphSketch& s) { return s.op("Softmax", {0}); }, "softmax of rank 1", {1});
  refused(
      [](GraphSketch& s) {
        return s.op("FusedBatchNormV3", {0, s.constant(Tensor(DType::kFloat32, {3}))});
      },
      "batch statistics (is_training defaults to true)");
  refused(
      [](GraphSketch& s) {
        Tensor pads(DType::kInt32, {4, 2});
        pads.mutable_data<int32_t>()[0] = 1;
        return s.op("Pad", {0, s.constant(pads)});
      },
      "pads the batch");
  refused([](GraphSketch& s) { return s.op("Squeeze", {0}); }, "squeeze without dims");
  refused(
      [](GraphSketch& s) {
        Node n;
        n.name = "made_up";
        n.op = "MadeUpOp";
        n.unimplemented = true;
        n.inputs = {ValueRef{0, 0}};
        return s.append(std::move(n));
      },
      "unknown op");
  refused(
      [](GraphSketch& s) {
        return s.op("MatMul",
                    {s.op("Mean", {0, s.ints({1, 2})}), s.op("Mean", {0, s.ints({1, 2})})},
                    {{"transpose_b", true}});
      },
      "rows times rows (a Gram matrix across the batch)");
}

// SpaceToBatchND moves spatial blocks into the batch and BatchToSpaceND back: neither keeps
// output row i a function of input row i (the ops have no row rule), so a graph with either,
// the dilated-convolution pattern included, always runs its batch whole.
TEST(RowIndependence, SpaceToBatchAndBatchToSpaceMixRows) {
  auto check = [](const std::string& op) {
    GraphSketch s;
    auto r = s.check(s.op(op, {0, s.ints({2, 2}), s.constant(Tensor(DType::kInt32, {2, 2}))}));
    EXPECT_FALSE(r.independent) << op;
    EXPECT_NE(r.reason.find("(" + op + "): not known to keep rows independent"), std::string::npos)
        << r.reason;
  };
  check("SpaceToBatchND");
  check("BatchToSpaceND");

  GraphSketch s;
  const int block = s.ints({2, 2});
  const int s2b = s.op("SpaceToBatchND", {0, block, s.constant(Tensor(DType::kInt32, {2, 2}))});
  const int conv = s.op("Conv2D", {s2b, s.constant(filter())}, {{"padding", std::string("VALID")}});
  auto r =
      s.check(s.op("BatchToSpaceND", {conv, block, s.constant(Tensor(DType::kInt32, {2, 2}))}));
  EXPECT_FALSE(r.independent);
  EXPECT_NE(r.reason.find("(SpaceToBatchND)"), std::string::npos) << r.reason;
}

// SpaceToDepth and DepthToSpace rearrange each image on its own.
TEST(RowIndependence, DepthToSpaceAndBackKeepRows) {
  GraphSketch s;
  const AttrMap two = {{"block_size", int64_t{2}}};
  auto r = s.check(s.op("DepthToSpace", {s.op("SpaceToDepth", {0}, two)}, two));
  EXPECT_TRUE(r.independent) << r.reason;
}

// Roll (Swin's shifted windows) keeps rows when it rolls within each image only.
TEST(RowIndependence, RollWithinImagesKeepsRowsAcrossTheBatchDoesNot) {
  GraphSketch s;
  auto r = s.check(s.op("Roll", {0, s.ints({1, -1}), s.ints({1, -2})}));
  EXPECT_TRUE(r.independent) << r.reason;
  for (int32_t axis : {0, -4}) {
    GraphSketch t;
    auto across = t.check(t.op("Roll", {0, t.ints({1}), t.ints({axis})}));
    EXPECT_FALSE(across.independent) << axis;
    EXPECT_NE(across.reason.find("rolls along the batch"), std::string::npos) << across.reason;
  }
  GraphSketch u(2);  // the shift is the second graph input
  auto fed = u.check(u.op("Roll", {0, 1, u.ints({1})}), {4, 1});
  EXPECT_FALSE(fed.independent) << "a shift that is not a constant";
}

TEST(RowIndependence, TwoInputsAndConcatenationAlongChannels) {
  GraphSketch s(2);
  int axis = s.ints({3});
  auto r = s.check(s.op("ConcatV2", {0, 1, axis}), {4, 4});
  EXPECT_TRUE(r.independent) << r.reason;
  GraphSketch t(2);
  auto r0 = t.check(t.op("ConcatV2", {0, 1, t.ints({0})}), {4, 4});
  EXPECT_FALSE(r0.independent);
}

// Real models: a split batch gives the whole batch's results, and is used where it applies.
Tensor pattern(Dims shape) {
  Tensor t(DType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    t.mutable_data<float>()[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.0f;
  }
  return t;
}

TEST(RowIndependence, FixtureModelsGiveTheSameResultsSplitAndWhole) {
  HUBIMG_REQUIRE_SHARED();
  int split_models = 0;
  for (const auto& name : testing::runnable_fixtures()) {
    SCOPED_TRACE(name);
    auto model = Model::load(testing::real_fixture(name) / "saved_model");
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    if (!model->has_call()) continue;
    auto specs = model->call_input_specs();
    if (specs.size() != 1 || specs[0].dtype != DType::kFloat32 || specs[0].shape.unknown_rank ||
        specs[0].shape.dims.size() != 4) {
      continue;
    }
    Dims shape = specs[0].shape.dims;
    shape[0] = 5;  // uneven chunks
    for (size_t i = 1; i < shape.size(); ++i) {
      if (shape[i] < 0) shape[i] = 64;
    }
    const Tensor x = pattern(shape);
    Profile whole_profile, split_profile;
    CallOptions whole;
    whole.profile = &whole_profile;
    whole.split_batch = false;
    CallOptions split;
    split.profile = &split_profile;
    auto a = (*model)(x, whole);
    auto b = (*model)(x, split);
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    ASSERT_EQ(a->size(), b->size());
    for (size_t o = 0; o < a->size(); ++o) {
      const Tensor& ta = (*a)[o];
      const Tensor& tb = (*b)[o];
      ASSERT_EQ(ta.shape(), tb.shape());
      for (int64_t i = 0; i < ta.num_elements(); ++i) {
        ASSERT_NEAR(element_as_double(ta, i), element_as_double(tb, i),
                    1e-5 * (1 + std::abs(element_as_double(ta, i))))
            << "output " << o << " element " << i;
      }
    }
    int64_t whole_calls = 0, split_calls = 0;
    for (const auto& [op, n] : whole_profile.calls_by_op) whole_calls += n;
    for (const auto& [op, n] : split_profile.calls_by_op) split_calls += n;
    if (split_calls > whole_calls) ++split_models;
  }
  // The Keras image models (emoji MobileNet, potato, rps, tm MobileNetV2, intel, mnist CNNs)
  // have only row-wise ops at inference.
  EXPECT_GE(split_models, 3);
}

}  // namespace
}  // namespace hubimg
