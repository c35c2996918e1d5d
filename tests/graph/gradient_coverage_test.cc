// Every op on the traces of every shared fixture model has a gradient rule or is marked
// not_differentiable: the root __call__ traces (training=True and training=False, and traces
// without a training argument), or the signatures of models without a root __call__.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "format/saved_model.h"
#include "graph/graph.h"
#include "ops/op_registry.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

namespace fs = std::filesystem;

// Ops the autodiff pass handles without consulting a rule: arguments, constants (no inputs),
// variable reads (gradient sources) and identity-like ops (wired through at build time).
bool handled_by_autodiff(const graph::Node& node) {
  if (node.op == graph::kArgOp || node.op == "Const" || node.op == "ReadVariableOp") return true;
  return node.spec != nullptr && node.spec->identity_like;
}

// Collects the ops of `g` and of its run-time branches; nodes whose op cannot be differentiated
// (no rule, not marked, or a run-time branch) go to `missing` as "op (node 'name')".
void collect(const graph::Graph& g, std::set<std::string>& ops,
             std::map<std::string, std::string>& missing) {
  for (const auto& node : g.nodes) {
    if (node.op == graph::kArgOp) continue;
    ops.insert(node.op);
    for (const auto& branch : node.branches) collect(*branch, ops, missing);
    if (handled_by_autodiff(node)) continue;
    if (!node.branches.empty()) {
      missing.emplace(node.op, "node '" + node.name + "' (run-time branches have no gradient)");
      continue;
    }
    if (node.spec == nullptr) {
      missing.emplace(node.op, "node '" + node.name + "' (op not implemented)");
      continue;
    }
    if (!node.spec->gradient && !node.spec->not_differentiable) {
      missing.emplace(node.op, "node '" + node.name + "'");
    }
  }
}

struct Trace {
  std::string label;
  Expected<std::shared_ptr<graph::Graph>> graph;
};

std::vector<Trace> traces_of(const format::SavedModel& model) {
  std::vector<Trace> traces;
  if (model.root_call()) {
    for (const auto& cf : model.root_call()->concrete_functions) {
      std::string label = "__call__ " + cf.name + " training=";
      label += cf.training ? (*cf.training ? "true" : "false") : "none";
      traces.push_back({label, graph::build_function_graph(model, cf, label)});
    }
    return traces;
  }
  // Without a root __call__ (Keras 3 exports, TF1 graphs): the signatures.
  for (const auto& [key, sig] : model.signatures()) {
    const std::string label = "signature " + key;
    traces.push_back({label, sig.function ? graph::build_function_graph(model, *sig.function, label)
                                          : graph::build_tf1_signature_graph(model, sig)});
  }
  return traces;
}

std::vector<fs::path> fixture_models() {
  std::vector<fs::path> models;
  const fs::path real = testing::shared_dir() / "fixtures" / "real";
  for (const fs::path& dir : {real, real / "tf_testdata"}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (fs::is_directory(entry.path() / "saved_model")) models.push_back(entry.path());
    }
  }
  const fs::path tiny = testing::shared_dir() / "fixtures" / "golden-train" / "tiny_cnn";
  if (fs::is_directory(tiny / "saved_model")) models.push_back(tiny);
  std::sort(models.begin(), models.end());
  return models;
}

TEST(GradientCoverage, EveryOpOnEveryFixtureTraceHasARuleOrIsNotDifferentiable) {
  HUBIMG_REQUIRE_SHARED();
  const auto models = fixture_models();
  ASSERT_FALSE(models.empty()) << "no fixture models under " << testing::shared_dir();
  std::set<std::string> all_ops;
  int trace_count = 0;
  for (const auto& dir : models) {
    const std::string name = fs::relative(dir, testing::shared_dir() / "fixtures").string();
    auto model = format::SavedModel::load(dir / "saved_model");
    ASSERT_TRUE(model.ok()) << name << ": " << model.status().to_string();
    if (!(*model)->root_call() && (*model)->signatures().empty()) {
      std::cout << name << ": no __call__ and no signature (nothing to differentiate)\n";
      continue;
    }
    for (const auto& trace : traces_of(**model)) {
      if (!trace.graph.ok()) {
        // A signature using an op hubimg does not implement (tf.Example parsing) cannot run at
        // all; the trace-building tests cover what must build.
        ASSERT_EQ(trace.graph.status().code(), StatusCode::kUnimplemented)
            << name << " / " << trace.label << ": " << trace.graph.status().to_string();
        std::cout << name << " / " << trace.label
                  << ": skipped, does not build: " << trace.graph.status().message() << "\n";
        continue;
      }
      const graph::Graph& g = **trace.graph;
      std::set<std::string> ops;
      std::map<std::string, std::string> missing;
      collect(g, ops, missing);
      ++trace_count;
      all_ops.insert(ops.begin(), ops.end());
      std::cout << name << " / " << trace.label << ": " << ops.size() << " ops, " << g.nodes.size()
                << " nodes\n";
      for (const auto& [op, where] : missing) {
        ADD_FAILURE() << name << " / " << trace.label << ": op " << op
                      << " has no gradient rule and is not marked not_differentiable (" << where
                      << ")";
      }
    }
  }
  EXPECT_GT(trace_count, 0);
  std::string list;
  for (const auto& op : all_ops) list += " " + op;
  std::cout << all_ops.size() << " ops over " << trace_count << " traces:" << list << "\n";
}

}  // namespace
}  // namespace hubimg
