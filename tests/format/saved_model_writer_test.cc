#include "format/saved_model_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "checkpoint.pb.h"
#include "format/saved_model.h"
#include "format/tensor_bundle.h"
#include "graph.pb.h"
#include "hubimg/model.h"
#include "ops/op_registry.h"
#include "saved_model.pb.h"
#include "util/test_util.h"

namespace hubimg::format {
namespace {

using hubimg::testing::TempDir;
using ::testing::ElementsAre;

constexpr DType kF32 = DType::kFloat32;

// Ops the run checks need that may not be registered yet in this checkout.
bool ops_available(std::initializer_list<const char*> ops) {
  for (const char* op : ops) {
    if (ops::OpRegistry::global().find(op) == nullptr) return false;
  }
  return true;
}

#define SKIP_UNLESS_OPS(...)                                                              \
  do {                                                                                    \
    if (!ops_available({__VA_ARGS__})) GTEST_SKIP() << "waits on kernels: " #__VA_ARGS__; \
  } while (0)

const tf::NodeDef* find_node(const tf::FunctionDef& f, const std::string& name) {
  for (const auto& n : f.node_def()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

const tf::NodeDef* find_graph_node(const tf::GraphDef& g, const std::string& name) {
  for (const auto& n : g.node()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

std::vector<std::string> child_names(const tf::SavedObjectGraph& g, int node) {
  std::vector<std::string> names;
  for (const auto& c : g.nodes(node).children()) names.push_back(c.local_name());
  return names;
}

int child(const tf::SavedObjectGraph& g, int node, const std::string& name) {
  for (const auto& c : g.nodes(node).children()) {
    if (c.local_name() == name) return c.node_id();
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// y = w * x + b, a tf.Module with variables directly under the root and no `training` argument.

constexpr float kW = 3.0f;
constexpr float kB = -0.5f;

Status write_scalar_model(const std::filesystem::path& dir) {
  SavedModelWriter writer(ops::find_op_def);
  HUBIMG_ASSIGN_OR_RETURN(VariableHandle w,
                          writer.add_variable({"w"}, "w", Tensor::scalar(kW), true));
  HUBIMG_ASSIGN_OR_RETURN(VariableHandle b,
                          writer.add_variable({"b"}, "b", Tensor::scalar(kB), false));
  FunctionBuilder f(writer.unique_function_name("__call__"), writer.op_defs());
  const auto x = f.add_input("x", kF32, PartialShape::known({-1}));
  const auto w_value =
      f.read_variable(writer.add_resource_input(f, "mul_readvariableop_resource", w), "mul");
  const auto b_value =
      f.read_variable(writer.add_resource_input(f, "add_readvariableop_resource", b), "add");
  f.add_output(f.add("AddV2", {f.add("Mul", {w_value, x}, {}, "mul"), b_value}, {}, "add"));
  HUBIMG_ASSIGN_OR_RETURN(FunctionSignature call, writer.add_function(std::move(f)));
  TensorSpec in{"x", kF32, PartialShape::known({-1})};
  TensorSpec out{"output_0", kF32, PartialShape::known({-1})};
  HUBIMG_RETURN_IF_ERROR(writer.set_call({{call.name, in, std::nullopt, {w, b}, out}}));
  HUBIMG_RETURN_IF_ERROR(writer.add_signature(
      {"serving_default", call.name, {{"x", in}}, {{"output_0", out}}, {w, b}}));
  return writer.write(dir);
}

TEST(SavedModelWriter, ScalarModuleLoadsBack) {
  TempDir tmp;
  ASSERT_TRUE(write_scalar_model(tmp.path()).ok());
  ASSERT_TRUE(std::filesystem::exists(tmp.path() / "saved_model.pb"));
  ASSERT_TRUE(std::filesystem::exists(tmp.path() / "variables" / "variables.index"));
  ASSERT_TRUE(std::filesystem::exists(tmp.path() / "variables" / "variables.data-00000-of-00001"));

  auto model = SavedModel::load(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const SavedModel& m = **model;
  EXPECT_EQ(m.tensorflow_version(), "2.15.0");
  EXPECT_TRUE(m.has_object_graph());
  const auto& meta = m.meta_graph();
  EXPECT_THAT(meta.meta_info_def().tags(), ElementsAre("serve"));
  EXPECT_TRUE(meta.meta_info_def().stripped_default_attrs());

  // Variables: exact values, trainable flags from root.trainable_variables, TF checkpoint keys.
  ASSERT_EQ(m.variables().size(), 2u);
  EXPECT_EQ(m.variables()[0].name, "w");
  EXPECT_EQ(m.variables()[0].checkpoint_key, "w/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_TRUE(m.variables()[0].trainable);
  EXPECT_EQ(m.variables()[0].value.dtype(), kF32);
  EXPECT_TRUE(m.variables()[0].value.shape().empty());
  EXPECT_EQ(m.variables()[0].value.data<float>()[0], kW);
  EXPECT_EQ(m.variables()[1].name, "b");
  EXPECT_EQ(m.variables()[1].checkpoint_key, "b/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_FALSE(m.variables()[1].trainable);
  EXPECT_EQ(m.variables()[1].value.data<float>()[0], kB);

  // Object graph: root children in TensorFlow's order, list objects, the signature map.
  const auto& g = meta.object_graph_def();
  EXPECT_THAT(child_names(g, 0), ElementsAre("w", "b", "variables", "trainable_variables",
                                             "regularization_losses", "__call__", "signatures"));
  const int vars = child(g, 0, "variables");
  EXPECT_EQ(g.nodes(vars).user_object().identifier(), "trackable_list_wrapper");
  EXPECT_THAT(child_names(g, vars), ElementsAre("0", "1"));
  EXPECT_EQ(g.nodes(vars).children(0).node_id(), child(g, 0, "w"));
  const int trainable = child(g, 0, "trainable_variables");
  ASSERT_EQ(g.nodes(trainable).children_size(), 1);
  EXPECT_EQ(g.nodes(trainable).children(0).node_id(), child(g, 0, "w"));
  EXPECT_EQ(g.nodes(child(g, 0, "regularization_losses")).children_size(), 0);
  const int sigs = child(g, 0, "signatures");
  EXPECT_EQ(g.nodes(sigs).user_object().identifier(), "signature_map");
  EXPECT_TRUE(g.nodes(child(g, sigs, "serving_default")).has_bare_concrete_function());
  const auto& w_node = g.nodes(child(g, 0, "w"));
  ASSERT_TRUE(w_node.has_variable());
  EXPECT_EQ(w_node.variable().name(), "w");
  EXPECT_TRUE(w_node.variable().trainable());
  EXPECT_EQ(w_node.variable().dtype(), tf::DT_FLOAT);

  // __call__ without a `training` argument: one trace, captures w and b.
  ASSERT_TRUE(m.root_call().has_value());
  EXPECT_THAT(m.root_call()->parameter_names, ElementsAre("inputs"));
  ASSERT_EQ(m.root_call()->concrete_functions.size(), 1u);
  const ConcreteFunction& cf = m.root_call()->concrete_functions[0];
  EXPECT_FALSE(cf.training.has_value());
  ASSERT_EQ(cf.flat_inputs.size(), 1u);
  EXPECT_EQ(cf.flat_inputs[0].dtype, kF32);
  EXPECT_EQ(cf.flat_inputs[0].shape, PartialShape::known({-1}));
  EXPECT_THAT(cf.bound_inputs, ElementsAre(child(g, 0, "w"), child(g, 0, "b")));
  EXPECT_THAT(cf.output_keys, ElementsAre("output_0"));

  // The traced function: TensorFlow's argument layout and Identity(^NoOp) ending.
  const tf::FunctionDef* f = m.function(cf.name);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->signature().input_arg_size(), 3);
  EXPECT_EQ(f->signature().input_arg(0).name(), "x");
  EXPECT_EQ(f->signature().input_arg(1).type(), tf::DT_RESOURCE);
  ASSERT_EQ(f->signature().input_arg(1).handle_data_size(), 1);
  EXPECT_EQ(f->signature().input_arg(1).handle_data(0).dtype(), tf::DT_FLOAT);
  EXPECT_TRUE(f->signature().is_stateful());
  EXPECT_EQ(f->ret().at("identity"), "Identity:output:0");
  const tf::NodeDef* identity = find_node(*f, "Identity");
  ASSERT_NE(identity, nullptr);
  EXPECT_THAT(identity->input(), ElementsAre("add:z:0", "^NoOp"));
  const tf::NodeDef* mul = find_node(*f, "mul");
  ASSERT_NE(mul, nullptr);
  EXPECT_THAT(mul->input(), ElementsAre("mul/ReadVariableOp:value:0", "x"));
  EXPECT_EQ(mul->attr().at("T").type(), tf::DT_FLOAT);
  const tf::NodeDef* noop = find_node(*f, "NoOp");
  ASSERT_NE(noop, nullptr);
  EXPECT_THAT(noop->input(), ElementsAre("^add/ReadVariableOp", "^mul/ReadVariableOp"));

  // Signature: placeholder and call node in the top-level graph, as TensorFlow names them.
  ASSERT_EQ(m.signatures().count("serving_default"), 1u);
  const Signature& sig = m.signatures().at("serving_default");
  EXPECT_EQ(sig.method_name, "tensorflow/serving/predict");
  ASSERT_EQ(sig.inputs.count("x"), 1u);
  EXPECT_EQ(sig.inputs.at("x").tensor_name, "serving_default_x:0");
  EXPECT_EQ(sig.inputs.at("x").dtype, kF32);
  ASSERT_EQ(sig.outputs.count("output_0"), 1u);
  EXPECT_EQ(sig.outputs.at("output_0").tensor_name, "StatefulPartitionedCall:0");
  ASSERT_NE(sig.function, nullptr);
  EXPECT_THAT(sig.argument_keywords, ElementsAre("x"));
  const tf::NodeDef* ph = find_graph_node(m.graph(), "serving_default_x");
  ASSERT_NE(ph, nullptr);
  EXPECT_EQ(ph->op(), "Placeholder");
  const tf::NodeDef* call = find_graph_node(m.graph(), "StatefulPartitionedCall");
  ASSERT_NE(call, nullptr);
  EXPECT_THAT(call->input(), ElementsAre("serving_default_x", "w", "b"));
  EXPECT_EQ(call->attr().at("f").func().name(), sig.function->name);
  const tf::NodeDef* w_handle = find_graph_node(m.graph(), "w");
  ASSERT_NE(w_handle, nullptr);
  EXPECT_EQ(w_handle->op(), "VarHandleOp");
  EXPECT_EQ(w_handle->attr().at("shared_name").s(), "w");
  EXPECT_EQ(
      meta.signature_def().at("__saved_model_init_op").outputs().at("__saved_model_init_op").name(),
      "NoOp");
}

TEST(SavedModelWriter, CheckpointObjectGraphMirrorsTheSavedObjectGraph) {
  TempDir tmp;
  ASSERT_TRUE(write_scalar_model(tmp.path()).ok());
  auto model = SavedModel::load(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const auto& g = (*model)->meta_graph().object_graph_def();

  auto bundle = TensorBundleReader::open(tmp.path() / "variables" / "variables");
  ASSERT_TRUE(bundle.ok()) << bundle.status().to_string();
  std::vector<std::string> keys;
  for (const auto& e : (*bundle)->entries()) keys.push_back(e.key);
  EXPECT_THAT(keys, ElementsAre("_CHECKPOINTABLE_OBJECT_GRAPH", "b/.ATTRIBUTES/VARIABLE_VALUE",
                                "w/.ATTRIBUTES/VARIABLE_VALUE"));
  auto graph_tensor = (*bundle)->read("_CHECKPOINTABLE_OBJECT_GRAPH");
  ASSERT_TRUE(graph_tensor.ok());
  tf::TrackableObjectGraph trackable;
  ASSERT_TRUE(trackable.ParseFromString(graph_tensor->strings()[0]));
  ASSERT_EQ(trackable.nodes_size(), g.nodes_size());
  for (int i = 0; i < g.nodes_size(); ++i) {
    ASSERT_EQ(trackable.nodes(i).children_size(), g.nodes(i).children_size()) << "node " << i;
    for (int c = 0; c < g.nodes(i).children_size(); ++c) {
      EXPECT_EQ(trackable.nodes(i).children(c).node_id(), g.nodes(i).children(c).node_id());
      EXPECT_EQ(trackable.nodes(i).children(c).local_name(), g.nodes(i).children(c).local_name());
    }
  }
  const int w = child(g, 0, "w");
  ASSERT_EQ(trackable.nodes(w).attributes_size(), 1);
  EXPECT_EQ(trackable.nodes(w).attributes(0).name(), "VARIABLE_VALUE");
  EXPECT_EQ(trackable.nodes(w).attributes(0).full_name(), "w");
  EXPECT_EQ(trackable.nodes(w).attributes(0).checkpoint_key(), "w/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_TRUE(trackable.nodes(0).has_checkpoint_values().value());
  EXPECT_TRUE(trackable.nodes(w).has_checkpoint_values().value());
  EXPECT_FALSE(trackable.nodes(child(g, 0, "__call__")).has_checkpoint_values().value());
}

TEST(SavedModelWriter, SaverRestoresEveryCheckpointKey) {
  TempDir tmp;
  ASSERT_TRUE(write_scalar_model(tmp.path()).ok());
  auto model = SavedModel::load(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const auto& meta = (*model)->meta_graph();
  EXPECT_EQ(meta.saver_def().filename_tensor_name(), "saver_filename:0");
  EXPECT_EQ(meta.saver_def().version(), 2);
  const tf::NodeDef* restore =
      find_graph_node((*model)->graph(), meta.saver_def().restore_op_name());
  ASSERT_NE(restore, nullptr);
  EXPECT_EQ(restore->op(), "StatefulPartitionedCall");
  EXPECT_THAT(restore->input(), ElementsAre("saver_filename", "w", "b"));
  const tf::FunctionDef* f = (*model)->function(restore->attr().at("f").func().name());
  ASSERT_NE(f, nullptr);
  const tf::NodeDef* names = find_node(*f, "RestoreV2/tensor_names");
  ASSERT_NE(names, nullptr);
  EXPECT_THAT(names->attr().at("value").tensor().string_val(),
              ElementsAre("w/.ATTRIBUTES/VARIABLE_VALUE", "b/.ATTRIBUTES/VARIABLE_VALUE"));
  int assigns = 0;
  for (const auto& n : f->node_def()) assigns += n.op() == "AssignVariableOp";
  EXPECT_EQ(assigns, 2);
  const tf::NodeDef* save_call =
      find_graph_node((*model)->graph(), meta.saver_def().save_tensor_name().substr(0, 25));
  ASSERT_NE(save_call, nullptr);
  EXPECT_THAT(save_call->input(), ElementsAre("saver_filename", "w/Read/ReadVariableOp",
                                              "b/Read/ReadVariableOp", "Const"));
  // Every op the model uses has its OpDef in the stripped op list.
  std::set<std::string> listed;
  for (const auto& op : meta.meta_info_def().stripped_op_list().op()) listed.insert(op.name());
  for (const char* op : {"AddV2", "Mul", "ReadVariableOp", "VarHandleOp", "Placeholder", "NoOp",
                         "Identity", "StatefulPartitionedCall", "RestoreV2", "SaveV2"}) {
    EXPECT_TRUE(listed.count(op)) << op;
  }
}

TEST(SavedModelWriter, ScalarModuleRuns) {
  SKIP_UNLESS_OPS("Mul", "AddV2");
  TempDir tmp;
  ASSERT_TRUE(write_scalar_model(tmp.path()).ok());
  auto model = Model::load(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Tensor x = Tensor::from_vector<float>({3}, {1.0f, 2.0f, -4.0f});
  auto y = (*model)(x);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  ASSERT_EQ(y->size(), 1u);
  // 3 * [1, 2, -4] - 0.5
  EXPECT_THAT((*y)[0].values<float>(), ElementsAre(2.5f, 5.5f, -12.5f));
  auto s = model->call_signature("serving_default", {{"x", x}});
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_THAT(s->at("output_0").values<float>(), ElementsAre(2.5f, 5.5f, -12.5f));
}

// ---------------------------------------------------------------------------------------------
// Dense layer with `training`: the training trace skips the Relu, so a wrong trace choice shows.

Status write_dense_model(const std::filesystem::path& dir) {
  SavedModelWriter writer(ops::find_op_def);
  const Tensor kernel = Tensor::from_vector<float>({3, 2}, {1, -1, 2, 0.5f, -3, 1});
  const Tensor bias = Tensor::from_vector<float>({2}, {0.25f, -4});
  HUBIMG_ASSIGN_OR_RETURN(VariableHandle k, writer.add_variable({"layer_with_weights-0", "kernel"},
                                                                "dense/kernel", kernel, true));
  HUBIMG_ASSIGN_OR_RETURN(VariableHandle b, writer.add_variable({"layer_with_weights-0", "bias"},
                                                                "dense/bias", bias, true));
  TensorSpec in{"inputs", kF32, PartialShape::known({-1, 3})};
  TensorSpec out{"output_0", kF32, PartialShape::known({-1, 2})};
  std::vector<CallTrace> traces;
  for (bool training : {false, true}) {
    FunctionBuilder f(writer.unique_function_name("dense_layer_call_fn"), writer.op_defs());
    const auto x = f.add_input("inputs", kF32, in.shape);
    const auto kv = f.read_variable(
        writer.add_resource_input(f, "matmul_readvariableop_resource", k), "MatMul");
    const auto bv = f.read_variable(
        writer.add_resource_input(f, "biasadd_readvariableop_resource", b), "BiasAdd");
    auto y = f.add("BiasAdd", {f.add("MatMul", {x, kv}), bv});
    if (!training) y = f.add("Relu", {y});
    f.add_output(y);
    HUBIMG_ASSIGN_OR_RETURN(FunctionSignature sig, writer.add_function(std::move(f)));
    traces.push_back({sig.name, in, training, {k, b}, out});
  }
  const std::string inference = traces[0].function;
  HUBIMG_RETURN_IF_ERROR(writer.set_call(std::move(traces)));
  HUBIMG_RETURN_IF_ERROR(writer.add_signature(
      {"serving_default", inference, {{"dense_input", in}}, {{"dense", out}}, {k, b}}));
  return writer.write(dir);
}

// x @ kernel + bias for x = [[1, 2, 3], [-1, 0, 2]]:
//   row 0: [1 + 4 - 9, -1 + 1 + 3] + [0.25, -4] = [-3.75, -1]
//   row 1: [-1 + 0 - 6, 1 + 0 + 2] + [0.25, -4] = [-6.75, -1]
const std::vector<float> kDenseInput = {1, 2, 3, -1, 0, 2};

TEST(SavedModelWriter, DenseModelTracesAndCheckpointKeys) {
  TempDir tmp;
  Status s = write_dense_model(tmp.path());
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto model = SavedModel::load(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const SavedModel& m = **model;
  ASSERT_EQ(m.variables().size(), 2u);
  EXPECT_EQ(m.variables()[0].checkpoint_key,
            "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_EQ(m.variables()[1].checkpoint_key,
            "layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE");
  EXPECT_THAT(m.variables()[0].value.shape(), ElementsAre(3, 2));
  EXPECT_THAT(m.variables()[0].value.values<float>(), ElementsAre(1, -1, 2, 0.5f, -3, 1));
  EXPECT_THAT(m.variables()[1].value.values<float>(), ElementsAre(0.25f, -4));
  const auto& g = m.meta_graph().object_graph_def();
  const int layer = child(g, 0, "layer_with_weights-0");
  ASSERT_GE(layer, 0);
  EXPECT_EQ(g.nodes(layer).user_object().identifier(), "_generic_user_object");
  EXPECT_THAT(child_names(g, layer), ElementsAre("kernel", "bias"));

  ASSERT_TRUE(m.root_call().has_value());
  EXPECT_THAT(m.root_call()->parameter_names, ElementsAre("inputs", "training"));
  ASSERT_EQ(m.root_call()->concrete_functions.size(), 2u);
  EXPECT_EQ(m.root_call()->concrete_functions[0].training, std::optional<bool>(false));
  EXPECT_EQ(m.root_call()->concrete_functions[1].training, std::optional<bool>(true));
  const int kernel_node = child(g, layer, "kernel");
  const int bias_node = child(g, layer, "bias");
  for (const auto& cf : m.root_call()->concrete_functions) {
    EXPECT_THAT(cf.bound_inputs, ElementsAre(kernel_node, bias_node));
    ASSERT_EQ(cf.args.size(), 2u);
    EXPECT_EQ(cf.args[0].first, "inputs");
    EXPECT_EQ(cf.args[0].second.tensor.name, "inputs");
  }
  const Signature& sig = m.signatures().at("serving_default");
  EXPECT_EQ(sig.inputs.at("dense_input").tensor_name, "serving_default_dense_input:0");
  EXPECT_EQ(sig.inputs.at("dense_input").shape, PartialShape::known({-1, 3}));
  EXPECT_EQ(sig.outputs.at("dense").tensor_name, "StatefulPartitionedCall:0");
  EXPECT_EQ(sig.outputs.at("dense").shape, PartialShape::known({-1, 2}));
  ASSERT_NE(sig.function, nullptr);
  EXPECT_THAT(sig.function->output_keys, ElementsAre("dense"));
  EXPECT_THAT(sig.function->bound_inputs, ElementsAre(kernel_node, bias_node));
  const tf::NodeDef* call = find_graph_node(m.graph(), "StatefulPartitionedCall");
  ASSERT_NE(call, nullptr);
  EXPECT_THAT(call->input(),
              ElementsAre("serving_default_dense_input", "dense/kernel", "dense/bias"));
  EXPECT_THAT(call->attr().at("_read_only_resource_inputs").list().i(), ElementsAre(1, 2));
}

TEST(SavedModelWriter, DenseModelRunsBothTracesAndTheSignature) {
  SKIP_UNLESS_OPS("MatMul", "BiasAdd", "Relu");
  TempDir tmp;
  ASSERT_TRUE(write_dense_model(tmp.path()).ok());
  auto model = Model::load(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Tensor x = Tensor::from_vector<float>({2, 3}, kDenseInput);
  auto inference = (*model)(x);
  ASSERT_TRUE(inference.ok()) << inference.status().to_string();
  EXPECT_THAT((*inference)[0].shape(), ElementsAre(2, 2));
  EXPECT_THAT((*inference)[0].values<float>(), ElementsAre(0, 0, 0, 0));
  CallOptions training;
  training.training = true;
  auto trained = (*model)(x, training);
  ASSERT_TRUE(trained.ok()) << trained.status().to_string();
  EXPECT_THAT((*trained)[0].values<float>(), ElementsAre(-3.75f, -1, -6.75f, -1));
  // A positive row shows the Relu passes values through: x = [0, 0, -1] -> [3.25, -5] -> [3.25, 0].
  auto one = (*model)(Tensor::from_vector<float>({1, 3}, {0, 0, -1}));
  ASSERT_TRUE(one.ok());
  EXPECT_THAT((*one)[0].values<float>(), ElementsAre(3.25f, 0));
  auto sig = model->call_signature(
      "serving_default", {{"dense_input", Tensor::from_vector<float>({1, 3}, {0, 0, -1})}});
  ASSERT_TRUE(sig.ok()) << sig.status().to_string();
  EXPECT_THAT(sig->at("dense").values<float>(), ElementsAre(3.25f, 0));
  ASSERT_EQ(model->trainable_variables().size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Conv2D + BiasAdd + Relu + Mean + MatMul head, each layer its own function (Keras style).

constexpr int kH = 4, kW2 = 5, kCin = 2, kCout = 3, kClasses = 2;

std::vector<float> pattern(size_t n, float scale, float phase) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.7f * static_cast<float>(i) + phase);
  return v;
}

struct ConvWeights {
  std::vector<float> kernel = pattern(3 * 3 * kCin * kCout, 0.5f, 0.1f);  // HWIO
  std::vector<float> bias = pattern(kCout, 0.2f, 1.0f);
  std::vector<float> dense = pattern(kCout * kClasses, 1.0f, 2.0f);  // [Cout, classes]
  std::vector<float> dense_bias = {0.1f, -0.2f};
};

// The same network by direct loops: SAME padding (1 each side for a 3x3 window, stride 1).
std::vector<float> conv_model_reference(const std::vector<float>& x, int batch,
                                        const ConvWeights& w) {
  std::vector<float> logits;
  for (int n = 0; n < batch; ++n) {
    std::vector<double> pooled(kCout, 0.0);
    for (int i = 0; i < kH; ++i) {
      for (int j = 0; j < kW2; ++j) {
        for (int o = 0; o < kCout; ++o) {
          double acc = w.bias[o];
          for (int di = 0; di < 3; ++di) {
            for (int dj = 0; dj < 3; ++dj) {
              const int yi = i + di - 1, yj = j + dj - 1;
              if (yi < 0 || yi >= kH || yj < 0 || yj >= kW2) continue;
              for (int c = 0; c < kCin; ++c) {
                acc += double(x[((n * kH + yi) * kW2 + yj) * kCin + c]) *
                       w.kernel[((di * 3 + dj) * kCin + c) * kCout + o];
              }
            }
          }
          pooled[o] += std::max(acc, 0.0) / (kH * kW2);
        }
      }
    }
    for (int k = 0; k < kClasses; ++k) {
      double acc = w.dense_bias[k];
      for (int o = 0; o < kCout; ++o) acc += pooled[o] * w.dense[o * kClasses + k];
      logits.push_back(static_cast<float>(acc));
    }
  }
  return logits;
}

Status write_conv_model(const std::filesystem::path& dir, const ConvWeights& w) {
  SavedModelWriter writer(ops::find_op_def);
  auto var = [&](const std::string& layer_path, const std::string& layer, const std::string& name,
                 Dims shape, const std::vector<float>& values) {
    return writer.add_variable({layer_path, name}, layer + "/" + name,
                               Tensor::from_vector<float>(std::move(shape), values), true);
  };
  HUBIMG_ASSIGN_OR_RETURN(
      auto kernel, var("layer_with_weights-0", "conv2d", "kernel", {3, 3, kCin, kCout}, w.kernel));
  HUBIMG_ASSIGN_OR_RETURN(auto bias,
                          var("layer_with_weights-0", "conv2d", "bias", {kCout}, w.bias));
  HUBIMG_ASSIGN_OR_RETURN(
      auto dense, var("layer_with_weights-1", "dense", "kernel", {kCout, kClasses}, w.dense));
  HUBIMG_ASSIGN_OR_RETURN(auto dense_bias,
                          var("layer_with_weights-1", "dense", "bias", {kClasses}, w.dense_bias));

  const PartialShape image = PartialShape::known({-1, kH, kW2, kCin});
  // conv2d layer
  FunctionBuilder conv(
      writer.unique_function_name("conv2d_layer_call_and_return_conditional_losses"),
      writer.op_defs());
  {
    const auto x = conv.add_input("inputs", kF32, image);
    const auto k = conv.read_variable(
        writer.add_resource_input(conv, "conv2d_readvariableop_resource", kernel), "Conv2D");
    const auto b = conv.read_variable(
        writer.add_resource_input(conv, "biasadd_readvariableop_resource", bias), "BiasAdd");
    const auto y = conv.add(
        "Conv2D", {x, k}, {{"strides", attr::ints({1, 1, 1, 1})}, {"padding", attr::str("SAME")}});
    conv.add_output(conv.add("Relu", {conv.add("BiasAdd", {y, b})}));
  }
  HUBIMG_ASSIGN_OR_RETURN(FunctionSignature conv_fn, writer.add_function(std::move(conv)));
  // global_average_pooling2d layer (no variables: PartitionedCall)
  FunctionBuilder pool(writer.unique_function_name(
                           "global_average_pooling2d_layer_call_and_return_conditional_losses"),
                       writer.op_defs());
  {
    const auto x = pool.add_input("inputs", kF32, PartialShape::known({-1, kH, kW2, kCout}));
    const auto axes =
        pool.add_const(Tensor::from_vector<int32_t>({2}, {1, 2}), "Mean/reduction_indices");
    pool.add_output(pool.add("Mean", {x, axes}));
  }
  HUBIMG_ASSIGN_OR_RETURN(FunctionSignature pool_fn, writer.add_function(std::move(pool)));
  EXPECT_FALSE(pool_fn.stateful);
  // dense layer
  FunctionBuilder head(
      writer.unique_function_name("dense_layer_call_and_return_conditional_losses"),
      writer.op_defs());
  {
    const auto x = head.add_input("inputs", kF32, PartialShape::known({-1, kCout}));
    const auto k = head.read_variable(
        writer.add_resource_input(head, "matmul_readvariableop_resource", dense), "MatMul");
    const auto b = head.read_variable(
        writer.add_resource_input(head, "biasadd_readvariableop_resource", dense_bias), "BiasAdd");
    head.add_output(head.add("BiasAdd", {head.add("MatMul", {x, k}), b}));
  }
  HUBIMG_ASSIGN_OR_RETURN(FunctionSignature head_fn, writer.add_function(std::move(head)));

  TensorSpec in{"inputs", kF32, image};
  TensorSpec out{"output_0", kF32, PartialShape::known({-1, kClasses})};
  std::vector<CallTrace> traces;
  for (bool training : {false, true}) {
    FunctionBuilder model(writer.unique_function_name("model_layer_call_fn"), writer.op_defs());
    const auto x = model.add_input("inputs", kF32, image);
    const auto hk = writer.add_resource_input(model, "unknown", kernel);
    const auto hb = writer.add_resource_input(model, "unknown_0", bias);
    const auto hd = writer.add_resource_input(model, "unknown_1", dense);
    const auto hdb = writer.add_resource_input(model, "unknown_2", dense_bias);
    const auto c = model.add_call(conv_fn, {x, hk, hb}, "conv2d/StatefulPartitionedCall")[0];
    const auto p = model.add_call(pool_fn, {c}, "global_average_pooling2d/PartitionedCall")[0];
    model.add_output(model.add_call(head_fn, {p, hd, hdb}, "dense/StatefulPartitionedCall")[0]);
    HUBIMG_ASSIGN_OR_RETURN(FunctionSignature sig, writer.add_function(std::move(model)));
    traces.push_back({sig.name, in, training, {kernel, bias, dense, dense_bias}, out});
  }
  const std::string inference = traces[0].function;
  HUBIMG_RETURN_IF_ERROR(writer.set_call(std::move(traces)));
  HUBIMG_RETURN_IF_ERROR(writer.add_signature({"serving_default",
                                               inference,
                                               {{"input_1", in}},
                                               {{"dense", out}},
                                               {kernel, bias, dense, dense_bias}}));
  return writer.write(dir);
}

TEST(SavedModelWriter, ConvModelStructure) {
  TempDir tmp;
  ConvWeights w;
  Status s = write_conv_model(tmp.path(), w);
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto model = SavedModel::load(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const SavedModel& m = **model;
  ASSERT_EQ(m.variables().size(), 4u);
  EXPECT_THAT(m.variables()[0].value.values<float>(), ::testing::ElementsAreArray(w.kernel));
  EXPECT_THAT(m.variables()[2].value.values<float>(), ::testing::ElementsAreArray(w.dense));
  EXPECT_EQ(m.variables()[3].checkpoint_key,
            "layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE");
  const auto& cf = m.root_call()->concrete_functions[0];
  const tf::FunctionDef* f = m.function(cf.name);
  ASSERT_NE(f, nullptr);
  const tf::NodeDef* conv_call = find_node(*f, "conv2d/StatefulPartitionedCall");
  ASSERT_NE(conv_call, nullptr);
  EXPECT_EQ(conv_call->op(), "StatefulPartitionedCall");
  EXPECT_THAT(conv_call->input(), ElementsAre("inputs", "unknown", "unknown_0"));
  EXPECT_THAT(conv_call->attr().at("Tin").list().type(),
              ElementsAre(tf::DT_FLOAT, tf::DT_RESOURCE, tf::DT_RESOURCE));
  const tf::NodeDef* pool_call = find_node(*f, "global_average_pooling2d/PartitionedCall");
  ASSERT_NE(pool_call, nullptr);
  EXPECT_EQ(pool_call->op(), "PartitionedCall");
  EXPECT_THAT(pool_call->input(), ElementsAre("conv2d/StatefulPartitionedCall:output:0"));
  // Per-layer functions are reachable from the trace; the op histogram counts each once.
  auto histogram = m.op_histogram(m.reachable_functions({cf.name}));
  EXPECT_EQ(histogram["Conv2D"], 1);
  EXPECT_EQ(histogram["Mean"], 1);
  EXPECT_EQ(histogram["MatMul"], 1);
  EXPECT_EQ(histogram["ReadVariableOp"], 4);
  EXPECT_EQ(histogram["StatefulPartitionedCall"], 2);
  EXPECT_EQ(histogram["PartitionedCall"], 1);
}

TEST(SavedModelWriter, ConvModelRunsLikeADirectLoop) {
  SKIP_UNLESS_OPS("Conv2D", "BiasAdd", "Relu", "Mean", "MatMul");
  TempDir tmp;
  ConvWeights w;
  ASSERT_TRUE(write_conv_model(tmp.path(), w).ok());
  auto model = Model::load(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const int batch = 2;
  const std::vector<float> x = pattern(static_cast<size_t>(batch * kH * kW2 * kCin), 1.0f, 0.3f);
  const std::vector<float> expected = conv_model_reference(x, batch, w);
  const Tensor input = Tensor::from_vector<float>({batch, kH, kW2, kCin}, x);
  for (bool training : {false, true}) {
    CallOptions options;
    options.training = training;
    auto y = (*model)(input, options);
    ASSERT_TRUE(y.ok()) << y.status().to_string();
    ASSERT_THAT((*y)[0].shape(), ElementsAre(batch, kClasses));
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_NEAR((*y)[0].values<float>()[i], expected[i], 1e-5) << i;
    }
  }
  auto sig = model->call_signature("serving_default", {{"input_1", input}});
  ASSERT_TRUE(sig.ok()) << sig.status().to_string();
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(sig->at("dense").values<float>()[i], expected[i], 1e-5) << i;
  }
}

// ---------------------------------------------------------------------------------------------
// Errors and escaping.

TEST(SavedModelWriter, EscapesCheckpointLocalNames) {
  EXPECT_EQ(escape_checkpoint_local_name("a.b/c"), "a..b.Sc");
  TempDir tmp;
  SavedModelWriter writer(ops::find_op_def);
  ASSERT_TRUE(writer.add_variable({"block.1", "conv/x"}, "v", Tensor::scalar(1.0f), true).ok());
  ASSERT_TRUE(writer.write(tmp.path()).ok());
  ASSERT_EQ(writer.written_variables().size(), 1u);
  EXPECT_EQ(writer.written_variables()[0].checkpoint_key,
            "block..1/conv.Sx/.ATTRIBUTES/VARIABLE_VALUE");
  auto bundle = TensorBundleReader::open(tmp.path() / "variables" / "variables");
  ASSERT_TRUE(bundle.ok());
  EXPECT_NE((*bundle)->find("block..1/conv.Sx/.ATTRIBUTES/VARIABLE_VALUE"), nullptr);
}

TEST(SavedModelWriter, ReportsBuilderErrors) {
  SavedModelWriter writer(ops::find_op_def);
  FunctionBuilder f(writer.unique_function_name("bad"), writer.op_defs());
  const auto x = f.add_input("x", kF32, PartialShape::known({2}));
  f.add("NoSuchOp", {x});
  f.add_output(x);
  auto added = writer.add_function(std::move(f));
  ASSERT_FALSE(added.ok());
  EXPECT_THAT(added.status().message(), ::testing::HasSubstr("NoSuchOp"));

  FunctionBuilder g(writer.unique_function_name("bad_input"), writer.op_defs());
  g.add_input("x", kF32, PartialShape::known({2}));
  g.add_output(g.add("Relu", {"missing:output:0"}));
  auto added2 = writer.add_function(std::move(g));
  ASSERT_FALSE(added2.ok());
  EXPECT_THAT(added2.status().message(), ::testing::HasSubstr("missing:output:0"));

  FunctionBuilder h(writer.unique_function_name("mixed_types"), writer.op_defs());
  const auto a = h.add_input("a", kF32, PartialShape::known({2}));
  const auto b = h.add_input("b", DType::kInt32, PartialShape::known({2}));
  h.add_output(h.add("AddV2", {a, b}));
  EXPECT_FALSE(writer.add_function(std::move(h)).ok());

  EXPECT_FALSE(writer.add_variable({"variables"}, "v", Tensor::scalar(1.0f), true).ok());
  ASSERT_TRUE(writer.add_variable({"layer", "kernel"}, "k", Tensor::scalar(1.0f), true).ok());
  EXPECT_FALSE(writer.add_variable({"layer", "kernel"}, "k2", Tensor::scalar(1.0f), true).ok());
  EXPECT_FALSE(writer.add_variable({"layer"}, "k3", Tensor::scalar(1.0f), true).ok());
  EXPECT_FALSE(writer.set_call({{"__inference_missing_1", {}, false, {}, {}}}).ok());

  // One function for both traces of __call__ (TensorFlow writes one per trace).
  FunctionBuilder once(writer.unique_function_name("__call__"), writer.op_defs());
  once.add_output(once.add("Neg", {once.add_input("inputs", kF32, PartialShape::known({2}))}));
  auto call = writer.add_function(std::move(once));
  ASSERT_TRUE(call.ok()) << call.status().to_string();
  const TensorSpec spec{"inputs", kF32, PartialShape::known({2})};
  const auto twice =
      writer.set_call({{call->name, spec, false, {}, spec}, {call->name, spec, true, {}, spec}});
  ASSERT_FALSE(twice.ok());
  EXPECT_THAT(twice.message(), ::testing::HasSubstr("is given twice"));
}

TEST(SavedModelWriter, AnOpWithoutAnOpDefIsAnErrorNamingIt) {
  // The writer knows ops only through the lookup its caller gives it: here the op table's,
  // without Relu.
  SavedModelWriter writer([](std::string_view op) -> const tf::OpDef* {
    return op == "Relu" ? nullptr : ops::find_op_def(op);
  });
  FunctionBuilder f(writer.unique_function_name("no_relu"), writer.op_defs());
  const auto x = f.add_input("x", kF32, PartialShape::known({2}));
  const auto y = f.add("Neg", {x});
  f.add_output(f.add("Relu", {y}, {}, "act"));
  auto added = writer.add_function(std::move(f));
  ASSERT_FALSE(added.ok());
  EXPECT_THAT(added.status().message(),
              ::testing::HasSubstr("node 'act': the writer has no OpDef for op 'Relu'"));
}

TEST(SavedModelWriter, InfersTypeAttributesAndOutputNames) {
  SavedModelWriter writer(ops::find_op_def);
  FunctionBuilder f(writer.unique_function_name("bn"), writer.op_defs());
  const auto x = f.add_input("x", kF32, PartialShape::known({1, 2, 2, 3}));
  const auto c = f.add_const(Tensor::from_vector<float>({3}, {1, 2, 3}), "c");
  const auto outs = f.add_node("FusedBatchNormV3", {x, c, c, c, c},
                               {{"epsilon", attr::f(1e-3f)}, {"is_training", attr::b(false)}});
  EXPECT_THAT(
      outs,
      ElementsAre("FusedBatchNormV3:y:0", "FusedBatchNormV3:batch_mean:0",
                  "FusedBatchNormV3:batch_variance:0", "FusedBatchNormV3:reserve_space_1:0",
                  "FusedBatchNormV3:reserve_space_2:0", "FusedBatchNormV3:reserve_space_3:0"));
  const auto pads =
      f.add_const(Tensor::from_vector<int32_t>({4, 2}, {0, 0, 0, 1, 0, 1, 0, 0}), "pads");
  const auto padded = f.add("Pad", {outs[0], pads});
  EXPECT_EQ(padded, "Pad:output:0");
  EXPECT_EQ(f.dtype_of(padded), kF32);
  f.add_output(f.add("Relu6", {padded}));
  auto sig = writer.add_function(std::move(f));
  ASSERT_TRUE(sig.ok()) << sig.status().to_string();
  TempDir tmp;
  ASSERT_TRUE(writer.write(tmp.path()).ok());
  auto model = SavedModel::load(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const tf::FunctionDef* def = (*model)->function(sig->name);
  ASSERT_NE(def, nullptr);
  const tf::NodeDef* bn = find_node(*def, "FusedBatchNormV3");
  EXPECT_EQ(bn->attr().at("T").type(), tf::DT_FLOAT);
  EXPECT_EQ(bn->attr().at("U").type(), tf::DT_FLOAT);
  EXPECT_FLOAT_EQ(bn->attr().at("epsilon").f(), 1e-3f);
  const tf::NodeDef* pad = find_node(*def, "Pad");
  EXPECT_EQ(pad->attr().at("Tpaddings").type(), tf::DT_INT32);
  const tf::NodeDef* c_node = find_node(*def, "c");
  EXPECT_EQ(c_node->attr().at("value").tensor().tensor_content().size(), 12u);
  EXPECT_EQ(def->ret().at("identity"), "Identity:output:0");
  EXPECT_FALSE(def->signature().is_stateful());
}

}  // namespace
}  // namespace hubimg::format
