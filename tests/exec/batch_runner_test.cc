// Running a batch as chunks of rows: outputs are concatenated in order, and a graph that
// regroups rows is caught rather than answered wrongly.
#include "exec/batch_runner.h"

#include <gtest/gtest.h>

#include "ops/op_registry.h"

namespace hubimg::exec {
namespace {

// x -> Reshape(x, shape) -> Mul(·, 2)
graph::Graph reshape_graph(std::vector<int32_t> shape) {
  graph::Graph g;
  auto add = [&g](std::string op, std::vector<int> inputs, AttrMap attrs = {}) {
    graph::Node n;
    n.name = op + std::to_string(g.nodes.size());
    n.op = op;
    n.spec = ops::OpRegistry::global().find(op);
    n.attrs = std::move(attrs);
    for (int i : inputs) n.inputs.push_back({i, 0});
    g.nodes.push_back(std::move(n));
    return static_cast<int>(g.nodes.size()) - 1;
  };
  graph::Node arg;
  arg.name = "x";
  arg.op = graph::kArgOp;
  arg.arg_index = 0;
  g.nodes.push_back(arg);
  g.arg_nodes = {0};
  int target =
      add("Const", {},
          {{"value", Tensor::from_vector<int32_t>({static_cast<int64_t>(shape.size())}, shape)},
           {"dtype", DType::kInt32}});
  int two = add("Const", {}, {{"value", Tensor::scalar(2.0f)}, {"dtype", DType::kFloat32}});
  int reshaped = add("Reshape", {0, target}, {{"T", DType::kFloat32}});
  int doubled = add("Mul", {reshaped, two}, {{"T", DType::kFloat32}});
  g.outputs = {{doubled, 0}};
  g.description = "test graph";
  return g;
}

Tensor iota(Dims shape) {
  Tensor t(DType::kFloat32, std::move(shape));
  for (int64_t i = 0; i < t.num_elements(); ++i) t.mutable_data<float>()[i] = static_cast<float>(i);
  return t;
}

TEST(BatchRunner, ChunksAreConcatenatedInOrder) {
  graph::Graph g = reshape_graph({-1, 6});
  Tensor x = iota({7, 2, 3});
  for (int64_t chunk : {1, 2, 3, 6}) {
    SCOPED_TRACE(chunk);
    RunStats stats;
    auto out = run_graph_in_row_chunks(g, {&x, 1}, {}, chunk, &stats);
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    ASSERT_EQ((*out)[0].shape(), (Dims{7, 6}));
    for (int64_t i = 0; i < 42; ++i) ASSERT_EQ((*out)[0].data<float>()[i], 2.0f * i);
    EXPECT_EQ(stats.calls_by_op["Mul"], (7 + chunk - 1) / chunk);
  }
}

TEST(BatchRunner, AReshapeThatRegroupsRowsIsReportedNotConcatenated) {
  graph::Graph g = reshape_graph({-1, 3});  // a row of 6 becomes two rows
  Tensor x = iota({4, 6});
  auto out = run_graph_in_row_chunks(g, {&x, 1}, {}, 2, nullptr);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(out.status().message().find("regroups rows"), std::string::npos);
}

TEST(BatchRunner, ChunkSizes) {
  EXPECT_EQ(chunk_rows_for(1, 2), 0);  // one image: layers run on all threads instead
  EXPECT_GT(chunk_rows_for(2, 2), 0);
  EXPECT_LE(chunk_rows_for(32, 2), 16);
  EXPECT_LE(chunk_rows_for(3, 2), 2);  // both threads get work
  // Weight-heavy graphs take bigger chunks than activation-heavy ones.
  constexpr size_t kMB = 1 << 20;
  EXPECT_EQ(
      chunk_rows_for(32, 2, {.weight_bytes = 100 * kMB, .largest_value_bytes_per_row = 3 * kMB}),
      16);
  EXPECT_EQ(
      chunk_rows_for(32, 2, {.weight_bytes = 14 * kMB, .largest_value_bytes_per_row = 5 * kMB}), 1);
  EXPECT_EQ(chunk_rows_for(8, 2, {.weight_bytes = 1000 * kMB, .largest_value_bytes_per_row = kMB}),
            4);  // never more than a thread's share
}

}  // namespace
}  // namespace hubimg::exec
