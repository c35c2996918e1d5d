// The graph-level helpers: append_node (entry lookup, output sizes, dtypes and shapes), prune
// and check_implemented.
#include "graph/graph.h"

#include <gtest/gtest.h>

namespace hubimg::graph {
namespace {

Node make(const std::string& name, const std::string& op, std::vector<ValueRef> inputs = {},
          AttrMap attrs = {}) {
  Node n;
  n.name = name;
  n.op = op;
  n.function = "__inference_f_1";
  n.inputs = std::move(inputs);
  n.attrs = std::move(attrs);
  return n;
}

TEST(AppendNode, LooksUpTheEntryAndSizesOutputs) {
  Graph g;
  auto x = append_node(g, make("x", kArgOp));
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(g.nodes[0].spec, nullptr);
  EXPECT_EQ(g.nodes[0].num_outputs, 1);
  auto id = append_node(g, make("idn", "IdentityN", {{0, 0}, {0, 0}, {0, 0}},
                                {{"T", std::vector<DType>(3, DType::kFloat32)}}));
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(g.nodes[static_cast<size_t>(*id)].spec, ops::OpRegistry::global().find("IdentityN"));
  EXPECT_EQ(g.nodes[static_cast<size_t>(*id)].num_outputs, 3);
  auto bn = append_node(g, make("bn", "FusedBatchNormV3"));
  ASSERT_TRUE(bn.ok());
  EXPECT_EQ(g.nodes[static_cast<size_t>(*bn)].num_outputs, 6);
}

TEST(AppendNode, UnknownOpFailsNamingOpNodeAndFunctionUnlessAPlaceholder) {
  Graph g;
  auto bad = append_node(g, make("model/loss/L2Loss", "NoSuchOpXyz"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnimplemented);
  const std::string& msg = bad.status().message();
  EXPECT_NE(msg.find("'NoSuchOpXyz'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model/loss/L2Loss"), std::string::npos) << msg;
  EXPECT_NE(msg.find("__inference_f_1"), std::string::npos) << msg;
  EXPECT_TRUE(g.nodes.empty());
  Node placeholder = make("model/loss/L2Loss", "NoSuchOpXyz");
  placeholder.unimplemented = true;
  ASSERT_TRUE(append_node(g, std::move(placeholder)).ok());
  EXPECT_EQ(g.nodes[0].spec, nullptr);
  EXPECT_EQ(g.nodes[0].num_outputs, 1);
}

TEST(AppendNode, DtypesAndShapesFromConstValuesAndOutputShapes) {
  Graph g;
  auto c = append_node(g, make("c", "Const", {}, {{"value", Tensor(DType::kInt32, {2, 3})}}));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(g.nodes[0].output_dtypes, std::vector<DType>{DType::kInt32});
  ASSERT_EQ(g.nodes[0].output_shapes.size(), 1u);
  EXPECT_EQ(g.nodes[0].output_shapes[0], PartialShape::known({2, 3}));
  auto r = append_node(
      g, make("r", "Relu", {{0, 0}},
              {{"_output_shapes", std::vector<PartialShape>{PartialShape::known({-1, 3})}}}));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(g.nodes[1].output_shapes.size(), 1u);
  EXPECT_EQ(g.nodes[1].output_shapes[0], PartialShape::known({-1, 3}));
  // A count that does not match the outputs is ignored rather than misattributed.
  auto bad = append_node(
      g, make("s", "Relu", {{0, 0}}, {{"_output_shapes", std::vector<PartialShape>(2)}}));
  ASSERT_TRUE(bad.ok());
  EXPECT_TRUE(g.nodes[2].output_shapes.empty());
}

TEST(Prune, KeepsWhatOutputsSideEffectsAndTheirControlInputsNeed) {
  Graph g;
  auto add = [&](Node n) { return append_node(g, std::move(n)).value(); };
  const int x = add(make("x", kArgOp));
  g.arg_nodes = {x};
  const int unused = add(make("unused", "Relu", {{x, 0}}));
  Node loss = make("loss", "MadeUpLoss", {{unused, 0}});
  loss.unimplemented = true;
  add(std::move(loss));
  const int before = add(make("before", "Relu", {{x, 0}}));
  Node y = make("y", "Sigmoid", {{x, 0}});
  y.control_inputs = {before};
  const int y_id = add(std::move(y));
  const int write_input = add(make("w", "Neg", {{x, 0}}));
  const int write = add(make("assign", "AssignVariableOp", {{write_input, 0}}));
  g.outputs = {{y_id, 0}};
  g.side_effect_nodes = {write};
  EXPECT_FALSE(check_implemented(g).ok());
  prune(g);
  std::vector<std::string> names;
  for (const auto& n : g.nodes) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"x", "before", "y", "w", "assign"}));
  EXPECT_EQ(g.outputs[0], (ValueRef{2, 0}));
  EXPECT_EQ(g.nodes[2].control_inputs, std::vector<int>{1});
  EXPECT_EQ(g.side_effect_nodes, std::vector<int>{4});
  EXPECT_EQ(g.nodes[4].inputs[0], (ValueRef{3, 0}));
  EXPECT_TRUE(check_implemented(g).ok());
}

TEST(CheckImplemented, NamesTheSurvivingPlaceholder) {
  Graph g;
  Node loss = make("layer/L2Loss", "L2LossXyz");
  loss.unimplemented = true;
  const int id = append_node(g, std::move(loss)).value();
  g.outputs = {{id, 0}};
  prune(g);
  Status s = check_implemented(g);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.message().find("'L2LossXyz'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("layer/L2Loss"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace hubimg::graph
