// Hostile SavedModels (docs/hostile-inputs.md D5, D6, D8, D9, D13): each class of attack, by
// more than one route, ends in a clear error (or a correct result) in bounded time and memory.
// Models are written here as saved_model.pbtxt text or built as protos in C++.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint.pb.h"
#include "format/saved_model.h"
#include "format/saved_model_writer.h"
#include "format/tensor_bundle.h"
#include "graph.pb.h"
#include "hubimg/model.h"
#include "hubimg/tensor.h"
#include "ops/op_registry.h"
#include "saved_model.pb.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using hubimg::testing::TempDir;
using hubimg::testing::write_file;

// A TF1 SavedModel (serve tag) with float input x:0 [-1, 4] (or `input_shape`) and the given
// graph nodes, library and outputs (signature key -> tensor name).
std::string tf1_pbtxt(const std::string& nodes,
                      const std::vector<std::pair<std::string, std::string>>& outputs,
                      const std::string& library = "", const std::string& input_dims = "-1, 4") {
  std::string dims;
  std::string rest = input_dims;
  for (size_t pos = 0; pos != std::string::npos;) {
    size_t comma = rest.find(',', pos);
    dims +=
        " dim { size: " + rest.substr(pos, comma == std::string::npos ? comma : comma - pos) + " }";
    pos = comma == std::string::npos ? comma : comma + 1;
  }
  std::string s = "meta_graphs { meta_info_def { tags: \"serve\" } graph_def { ";
  s += "node { name: \"x\" op: \"Placeholder\" attr { key: \"dtype\" value { type: DT_FLOAT } } } ";
  s += nodes;
  if (!library.empty()) s += " library { " + library + " }";
  s += " } signature_def { key: \"serving_default\" value { inputs { key: \"x\" value { name: "
       "\"x:0\" dtype: DT_FLOAT tensor_shape {" +
       dims + " } } } ";
  for (const auto& [key, tensor] : outputs) {
    s += "outputs { key: \"" + key + "\" value { name: \"" + tensor + "\" dtype: DT_FLOAT } } ";
  }
  return s + "} } }";
}

std::filesystem::path write_model(const TempDir& tmp, const std::string& name,
                                  const std::string& pbtxt) {
  auto dir = tmp.path() / name;
  std::filesystem::create_directories(dir);
  write_file(dir / "saved_model.pbtxt", pbtxt);
  return dir;
}

std::string int_const(const std::string& name, const std::vector<int64_t>& values,
                      const std::string& dtype = "DT_INT32") {
  std::string s = "node { name: \"" + name +
                  "\" op: \"Const\" attr { key: \"dtype\" value { type: " + dtype +
                  " } } attr { key: \"value\" value { tensor { dtype: " + dtype +
                  " tensor_shape { dim { size: " + std::to_string(values.size()) + " } } ";
  for (int64_t v : values) {
    s += (dtype == "DT_INT64" ? "int64_val: " : "int_val: ") + std::to_string(v) + " ";
  }
  return s + "} } } }";
}

std::string node(const std::string& name, const std::string& op,
                 const std::vector<std::string>& inputs, const std::string& attrs = "") {
  std::string s = "node { name: \"" + name + "\" op: \"" + op + "\" ";
  for (const auto& in : inputs) s += "input: \"" + in + "\" ";
  return s + attrs + " }";
}

const std::string kTFloat = "attr { key: \"T\" value { type: DT_FLOAT } }";

struct Measured {
  int exit_code = -1;
  std::string output;
  long max_rss_kb = 0;
  double seconds = 0;
  double cpu_seconds = 0;  // user + system time of the child
};

// Runs the CLI with `args` in a child process and reports its own peak RSS (wait4), so the
// memory of earlier tests in this process does not count.
Measured run_cli(const std::vector<std::string>& args, const TempDir& tmp,
                 const std::vector<std::string>& env = {}) {
  const auto log = tmp.path() / "cli_output.txt";
  std::string cli = hubimg::testing::cli_path().string();
  std::vector<char*> argv{cli.data()};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const bool replaced = std::any_of(env.begin(), env.end(), [&](const std::string& extra) {
      return entry.substr(0, entry.find('=') + 1) == extra.substr(0, extra.find('=') + 1);
    });
    if (!replaced) envp.push_back(*e);
  }
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  // posix_spawn, not fork: the child must not inherit (and pay, in its own CPU time, for tearing
  // down) the page tables of this process, which may hold a large model.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, cli.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  Measured m;
  if (spawned != 0) {
    ADD_FAILURE() << "cannot start " << cli << ": " << std::strerror(spawned);
    return m;
  }
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  m.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  m.max_rss_kb = usage.ru_maxrss;
  m.cpu_seconds = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                  1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
  m.output = hubimg::testing::read_file(log);
  return m;
}

// ----------------------------------------------------------------------------------------------
// D5: nesting.

TEST(HostileNesting, DeepStructuredValueInTextIsAClearError) {
  TempDir tmp;
  const int n = 10000;
  std::string t =
      "meta_graphs { object_graph_def { nodes { children { node_id: 1 local_name: \"__call__\" } "
      "user_object {} } nodes { function { concrete_functions: \"f\" } } concrete_functions { key: "
      "\"f\" value { canonicalized_input_signature ";
  for (int i = 0; i < n; ++i) t += "{ list_value { values ";
  t += "{ none_value {} }";
  for (int i = 0; i < n; ++i) t += " } }";
  t += " } } } }";
  auto dir = write_model(tmp, "deep", t);
  auto model = format::SavedModel::load(dir);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("saved_model.pbtxt"), std::string::npos)
      << model.status().message();
  EXPECT_NE(model.status().message().find("100"), std::string::npos) << model.status().message();
}

TEST(HostileNesting, DeepFunctionAttributeInTextIsAClearError) {
  // Another route: NameAttrList inside AttrValue inside NameAttrList ... in a graph node.
  TempDir tmp;
  const int n = 5000;
  std::string attr;
  for (int i = 0; i < n; ++i) attr += "attr { key: \"f\" value { func { name: \"g\" ";
  for (int i = 0; i < n; ++i) attr += "} } } ";
  auto dir = write_model(tmp, "deep_attr",
                         tf1_pbtxt(node("y", "Identity", {"x"}, kTFloat + attr), {{"y", "y:0"}}));
  auto model = Model::load(dir);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("saved_model.pbtxt"), std::string::npos)
      << model.status().message();
}

TEST(HostileNesting, StructuredValueWalkHasADepthLimit) {
  // Deeper than any file can carry through the protobuf parsers, built in memory.
  auto root = std::make_unique<tf::StructuredValue>();
  tf::StructuredValue* v = root.get();
  for (int i = 0; i < 1000; ++i) v = v->mutable_tuple_value()->add_values();
  v->mutable_none_value();
  auto arg = format::StructuredArg::from_proto(*root);
  ASSERT_FALSE(arg.ok());
  EXPECT_NE(arg.status().message().find(std::to_string(format::StructuredArg::kMaxNesting)),
            std::string::npos)
      << arg.status().message();
  // Within the limit the nest is read (and flattened) as before.
  tf::StructuredValue shallow;
  tf::StructuredValue* s = &shallow;
  for (int i = 0; i < format::StructuredArg::kMaxNesting - 1; ++i) {
    s = s->mutable_list_value()->add_values();
  }
  s->mutable_tensor_spec_value()->set_dtype(tf::DT_FLOAT);
  auto ok = format::StructuredArg::from_proto(shallow);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->count_tensors(), 1);
}

// ----------------------------------------------------------------------------------------------
// D6: function call fan-out.

// fan0 .. fan{n-1}: each calls the next twice ('a', 'b'); `ret` says what it returns.
std::string fan_library(int n, const std::string& ret) {
  std::string lib;
  for (int i = 0; i <= n; ++i) {
    lib += "function { signature { name: \"fan" + std::to_string(i) +
           "\" input_arg { name: \"x\" type: DT_FLOAT } output_arg { name: \"y\" type: DT_FLOAT } "
           "} ";
    if (i < n) {
      for (const char* call : {"a", "b"}) {
        lib += std::string("node_def { name: \"") + call +
               "\" op: \"PartitionedCall\" input: \"x\" attr { key: \"f\" value { func { name: "
               "\"fan" +
               std::to_string(i + 1) +
               "\" } } } attr { key: \"Tin\" value { list { type: DT_FLOAT } } } attr { key: "
               "\"Tout\" value { list { type: DT_FLOAT } } } } ";
      }
      lib += ret;
    } else {
      lib += "ret { key: \"y\" value: \"x\" } ";
    }
    lib += "} ";
  }
  return lib;
}

std::string call_fan0(const std::string& name) {
  return node(name, "PartitionedCall", {"x"},
              "attr { key: \"f\" value { func { name: \"fan0\" } } } attr { key: \"Tin\" value { "
              "list { type: DT_FLOAT } } } attr { key: \"Tout\" value { list { type: DT_FLOAT } } "
              "}");
}

TEST(HostileCalls, UnusedCallsAreNotInlined) {
  // 2^40 inlines if every call were inlined; only the used chain is (41 functions).
  TempDir tmp;
  const std::string lib = fan_library(40, "ret { key: \"y\" value: \"a:output:0\" } ");
  auto dir = write_model(tmp, "fan", tf1_pbtxt(call_fan0("call"), {{"y", "call:0"}}, lib));
  const auto start = std::chrono::steady_clock::now();
  auto model = Model::load(dir);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const Tensor x = Tensor::from_vector<float>({1, 4}, {1, 2, 3, 4});
  auto out = model->call_signature("serving_default", {{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").values<float>()[3], 4.0f);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 20.0);
}

TEST(HostileCalls, UnusedCallInsideAnUnusedNodeOfTheServingFunctionCostsNothing) {
  // The doc's route: an unused call injected next to the real graph; here through a used
  // function whose body holds the unused call.
  TempDir tmp;
  std::string lib = fan_library(40, "ret { key: \"y\" value: \"a:output:0\" } ");
  lib +=
      "function { signature { name: \"serve\" input_arg { name: \"x\" type: DT_FLOAT } output_arg "
      "{ name: \"y\" type: DT_FLOAT } } node_def { name: \"injected\" op: \"PartitionedCall\" "
      "input: \"x\" attr { key: \"f\" value { func { name: \"fan0\" } } } attr { key: \"Tin\" "
      "value { list { type: DT_FLOAT } } } attr { key: \"Tout\" value { list { type: DT_FLOAT } } "
      "} } node_def { name: \"r\" op: \"Relu\" input: \"x\" attr { key: \"T\" value { type: "
      "DT_FLOAT } } } ret { key: \"y\" value: \"r:activations:0\" } } ";
  auto dir = write_model(
      tmp, "fan_unused",
      tf1_pbtxt(node("call", "PartitionedCall", {"x"},
                     "attr { key: \"f\" value { func { name: \"serve\" } } } attr { key: \"Tin\" "
                     "value { list { type: DT_FLOAT } } } attr { key: \"Tout\" value { list { "
                     "type: DT_FLOAT } } }"),
                {{"y", "call:0"}}, lib));
  auto model = Model::load(dir);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  auto out = model->call_signature("serving_default",
                                   {{"x", Tensor::from_vector<float>({1, 4}, {-1, 2, -3, 4})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").values<float>()[0], 0.0f);
  EXPECT_EQ(out->at("y").values<float>()[1], 2.0f);
}

void expect_fan_out_error(const std::string& ret) {
  TempDir tmp;
  auto dir = write_model(tmp, "fan",
                         tf1_pbtxt(call_fan0("call"), {{"y", "call:0"}}, fan_library(40, ret)));
  const auto start = std::chrono::steady_clock::now();
  auto model = Model::load(dir);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(model.ok());
  const std::string& msg = model.status().message();
  EXPECT_NE(msg.find("function 'fan"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fan out"), std::string::npos) << msg;
  // Counted before inlining: milliseconds. Inlining until the budget ran out took 1.8 s
  // (release) and 24-32 s (ASan).
  EXPECT_LT(seconds, 1.0);
}

TEST(HostileCalls, UsedFanOutHitsTheInliningBudget) {
  // Both results used: the graph really would have 2^40 nodes.
  expect_fan_out_error(
      "node_def { name: \"s\" op: \"AddV2\" input: \"a:output:0\" input: \"b:output:0\" attr { "
      "key: \"T\" value { type: DT_FLOAT } } } ret { key: \"y\" value: \"s:z:0\" } ");
}

TEST(HostileCalls, FanOutThroughControlEdgesHitsTheInliningBudget) {
  expect_fan_out_error(
      "node_def { name: \"i\" op: \"Identity\" input: \"a:output:0\" input: \"^b\" attr { key: "
      "\"T\" value { type: DT_FLOAT } } } ret { key: \"y\" value: \"i:output:0\" } ");
}

// ----------------------------------------------------------------------------------------------
// D8, D9: sizes from model data.

std::string float_const(const std::string& name, const std::vector<int64_t>& dims,
                        const std::string& dtype = "DT_FLOAT",
                        const std::string& value = "float_val: 1") {
  std::string shape;
  for (int64_t d : dims) shape += "dim { size: " + std::to_string(d) + " } ";
  return "node { name: \"" + name +
         "\" op: \"Const\" attr { key: \"dtype\" value { type: " + dtype +
         " } } attr { key: \"value\" value { tensor { dtype: " + dtype + " tensor_shape { " +
         shape + "} " + value + " } } } }";
}

void expect_size_error(const Expected<Model>& model, const std::string& node_name) {
  ASSERT_FALSE(model.ok());
  const std::string& msg = model.status().message();
  EXPECT_NE(msg.find("tensor size limit"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node '" + node_name + "'"), std::string::npos) << msg;
}

TEST(HostileSizes, HugeConstantsAreRefusedBeforeAllocation) {
  TempDir tmp;
  // 3 GiB of float from one float_val (the doc's 204-byte model), 2^36 strings, 512 GiB.
  for (const auto& [dims, dtype, value] :
       std::vector<std::tuple<std::vector<int64_t>, std::string, std::string>>{
           {{int64_t{3} << 28}, "DT_FLOAT", "float_val: 1"},
           {{int64_t{1} << 36}, "DT_STRING", "string_val: \"a\""},
           {{int64_t{1} << 20, int64_t{1} << 17}, "DT_FLOAT", "float_val: 1"}}) {
    auto dir = write_model(tmp, "const_" + dtype + std::to_string(dims[0]),
                           tf1_pbtxt(float_const("c", dims, dtype, value) +
                                         node("y", "Identity", {"c"},
                                              "attr { key: \"T\" value { type: " + dtype + " } }"),
                                     {{"y", "y:0"}}));
    expect_size_error(Model::load(dir), "c");
  }
}

TEST(HostileSizes, UnusedHugeConstantInAFunctionIsNotMaterialised) {
  TempDir tmp;
  const std::string lib =
      "function { signature { name: \"g\" input_arg { name: \"x\" type: DT_FLOAT } output_arg { "
      "name: \"y\" type: DT_FLOAT } } node_def { name: \"big\" op: \"Const\" attr { key: "
      "\"dtype\" value { type: DT_FLOAT } } attr { key: \"value\" value { tensor { dtype: "
      "DT_FLOAT tensor_shape { dim { size: 805306368 } } float_val: 1 } } } } ret { key: \"y\" "
      "value: \"x\" } } ";
  auto dir = write_model(
      tmp, "unused_big",
      tf1_pbtxt(node("call", "PartitionedCall", {"x"},
                     "attr { key: \"f\" value { func { name: \"g\" } } } attr { key: \"Tin\" value "
                     "{ list { type: DT_FLOAT } } } attr { key: \"Tout\" value { list { type: "
                     "DT_FLOAT } } }"),
                {{"y", "call:0"}}, lib));
  auto model = Model::load(dir);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  auto out = model->call_signature("serving_default",
                                   {{"x", Tensor::from_vector<float>({1, 4}, {1, 2, 3, 4})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").num_elements(), 4);
}

// Runs serving_default on x [1, 4] and expects a size error naming `node_name`.
void expect_run_size_error(const std::string& nodes, const std::string& node_name,
                           const std::string& output = "y:0") {
  TempDir tmp;
  auto dir = write_model(tmp, "m", tf1_pbtxt(nodes, {{"y", output}}));
  for (bool optimize : {true, false}) {
    LoadOptions options;
    options.optimize = optimize;
    auto model = Model::load(dir, options);
    if (!model.ok()) {  // constant folding may already meet it at load
      expect_size_error(model, node_name);
      continue;
    }
    auto out = model->call_signature("serving_default",
                                     {{"x", Tensor::from_vector<float>({1, 4}, {1, 2, 3, 4})}});
    ASSERT_FALSE(out.ok()) << "optimize " << optimize;
    const std::string& msg = out.status().message();
    EXPECT_NE(msg.find("node '" + node_name + "'"), std::string::npos) << msg;
    EXPECT_TRUE(msg.find("tensor size limit") != std::string::npos ||
                msg.find("overflow") != std::string::npos)
        << msg;
  }
}

// The error of loading the model in `dir` (with or without the inference optimizer) or, when it
// loads, of calling serving_default on x [1, 4]; empty when both succeed.
std::string load_or_call_error(const std::filesystem::path& dir, bool optimize) {
  LoadOptions options;
  options.optimize = optimize;
  auto model = Model::load(dir, options);
  if (!model.ok()) return model.status().message();
  auto out = model->call_signature("serving_default",
                                   {{"x", Tensor::from_vector<float>({1, 4}, {1, 2, 3, 4})}});
  return out.ok() ? std::string() : out.status().message();
}

// fuzz_model_pbtxt found a Const without a "value" (its key mangled) feeding a BiasAdd that the
// inference optimizer fuses into a MatMul: it read the missing attribute (UBSan: reference to
// null). Malformed constants on every folding and fusion path must end in an error naming the
// node, with and without the optimizer.
TEST(HostileConstants, MalformedConstOnAFusionOrFoldingPathIsAClearError) {
  const std::string no_value =
      "node { name: \"b\" op: \"Const\" attr { key: \"dtype\" value { type: DT_FLOAT } } }";
  const std::string int_value =
      "node { name: \"b\" op: \"Const\" attr { key: \"dtype\" value { type: DT_FLOAT } } "
      "attr { key: \"value\" value { i: 3 } } }";
  const std::string w = float_const("w", {4, 2});
  const std::vector<std::string> consumers = {
      // MatMul + BiasAdd (+ Relu): the fused-kernel rewrite reads the bias constant.
      w + node("m", "MatMul", {"x", "w"}, kTFloat) + node("mb", "BiasAdd", {"m", "b"}, kTFloat) +
          node("y", "Relu", {"mb"}, kTFloat),
      // Constant folding: an op whose inputs are all constants.
      w + node("y0", "Add", {"b", "b"}, kTFloat) + node("m", "MatMul", {"x", "w"}, kTFloat) +
          node("y", "Add", {"m", "y0"}, kTFloat),
      // MatMul with the malformed constant as its weights.
      node("y", "MatMul", {"x", "b"}, kTFloat),
  };
  for (const std::string& bad : {no_value, int_value}) {
    for (size_t c = 0; c < consumers.size(); ++c) {
      TempDir tmp;
      auto dir = write_model(tmp, "m", tf1_pbtxt(bad + consumers[c], {{"y", "y:0"}}));
      for (bool optimize : {true, false}) {
        SCOPED_TRACE("consumer " + std::to_string(c) + ", optimize " + std::to_string(optimize));
        const std::string message = load_or_call_error(dir, optimize);
        ASSERT_FALSE(message.empty()) << "the model loaded and ran";
        EXPECT_NE(message.find("'b'"), std::string::npos) << message;
      }
    }
  }
}

// fuzz_model_pbtxt's second finding: a BiasAdd with one input (its second "input" key mangled)
// after a MatMul: the fusion pass read inputs[1] past the end (ASan: heap-buffer-overflow). The
// fusion and folding patterns check every node's arity; the kernel then names the node.
TEST(HostileConstants, WrongArityOnAFusionPathIsAClearError) {
  const std::string w = float_const("w", {4, 2});
  const std::string b = float_const("b", {2});
  const std::string w4 = float_const("w4", {1, 1, 1, 2});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {w + node("m", "MatMul", {"x", "w"}, kTFloat) + node("mb", "BiasAdd", {"m"}, kTFloat) +
           node("y", "Relu", {"mb"}, kTFloat),
       "mb"},
      {w + b + node("m", "MatMul", {"x", "w"}, kTFloat) +
           node("mb", "BiasAdd", {"m", "b"}, kTFloat) + node("y", "Relu", {"mb", "mb"}, kTFloat),
       "y"},
      {w + node("m", "MatMul", {"x", "w"}, kTFloat) + node("s", "Sigmoid", {"m"}, kTFloat) +
           node("y", "Mul", {"m"}, kTFloat) + node("unused", "Identity", {"s"}, kTFloat),
       "y"},
      {w4 + node("r", "Reshape", {"x", "shape"}, kTFloat) + int_const("shape", {1, 2, 2, 1}) +
           node("y", "Conv2D", {"r"},
                kTFloat + "attr { key: \"strides\" value { list { i: 1 i: 1 i: 1 i: 1 } } } "
                          "attr { key: \"padding\" value { s: \"VALID\" } }"),
       "y"},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    TempDir tmp;
    auto dir = write_model(tmp, "m", tf1_pbtxt(cases[c].first, {{"y", "y:0"}}));
    for (bool optimize : {true, false}) {
      SCOPED_TRACE("case " + std::to_string(c) + ", optimize " + std::to_string(optimize));
      const std::string message = load_or_call_error(dir, optimize);
      ASSERT_FALSE(message.empty()) << "the model loaded and ran";
      EXPECT_NE(message.find("'" + cases[c].second + "'"), std::string::npos) << message;
    }
  }
}

// A node's data inputs are counted against its op's TensorFlow OpDef when the graph is built,
// before the optimizer or a kernel looks at them: the error names the function (or the
// top-level graph), the node, the op and its input args. Control inputs ("^w") do not count.
TEST(HostileArity, InputCountsAreCheckedAgainstTheOpDefAtLoad) {
  const std::string w = float_const("w", {4, 2});
  const std::string b = float_const("b", {2});
  const std::string f32_list = "list { type: DT_FLOAT type: DT_FLOAT }";
  // f(a, c) = ConcatV2 with N = 3 but only two values and the axis.
  const std::string library =
      "function { signature { name: \"f\" input_arg { name: \"a\" type: DT_FLOAT } input_arg { "
      "name: \"c\" type: DT_FLOAT } output_arg { name: \"y\" type: DT_FLOAT } } " +
      int_const("axis", {1}).replace(0, 4, "node_def") +
      " node_def { name: \"cat\" op: \"ConcatV2\" input: \"a\" input: \"c\" input: "
      "\"axis:output:0\" attr { key: \"N\" value { i: 3 } } " +
      kTFloat + " } ret { key: \"y\" value: \"cat:output:0\" } }";
  auto call = [&](const std::vector<std::string>& inputs, const std::string& tin) {
    return node("call", "PartitionedCall", inputs,
                "attr { key: \"f\" value { func { name: \"f\" } } } attr { key: \"Tin\" value { " +
                    tin + " } } attr { key: \"Tout\" value { list { type: DT_FLOAT } } }");
  };
  struct Case {
    std::string nodes, library, message;
  };
  const std::vector<Case> cases = {
      {w + node("m", "MatMul", {"x", "w"}, kTFloat) + node("y", "BiasAdd", {"m", "^w"}, kTFloat),
       "", "node 'y' in the top-level graph (BiasAdd): expects 2 inputs (value, bias), has 1"},
      {w + b + node("y", "MatMul", {"x", "w", "b"}, kTFloat), "",
       "node 'y' in the top-level graph (MatMul): expects 2 inputs (a, b), has 3"},
      {call({"x", "x"}, f32_list) + node("y", "Identity", {"call:0"}, kTFloat), library,
       "node 'cat' in function 'f' (ConcatV2): expects 4 inputs (values[N=3], axis), has 3"},
      {call({"x"}, f32_list) + node("y", "Identity", {"call:0"}, kTFloat), library,
       "node 'call' in the top-level graph (PartitionedCall): expects 2 inputs (args[Tin=2]), "
       "has 1"},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    TempDir tmp;
    auto dir = write_model(tmp, "m", tf1_pbtxt(cases[c].nodes, {{"y", "y:0"}}, cases[c].library));
    for (bool optimize : {true, false}) {
      SCOPED_TRACE("case " + std::to_string(c) + ", optimize " + std::to_string(optimize));
      LoadOptions options;
      options.optimize = optimize;
      auto model = Model::load(dir, options);
      ASSERT_FALSE(model.ok()) << "the malformed model loaded";
      EXPECT_NE(model.status().message().find(cases[c].message), std::string::npos)
          << model.status().message();
    }
  }
  // The same graphs with the right arity load and run; "^w" is a control input, not data.
  TempDir tmp;
  auto dir = write_model(tmp, "ok",
                         tf1_pbtxt(w + b + node("m", "MatMul", {"x", "w"}, kTFloat) +
                                       node("y", "BiasAdd", {"m", "b", "^w"}, kTFloat),
                                   {{"y", "y:0"}}));
  EXPECT_EQ(load_or_call_error(dir, true), "");
  EXPECT_EQ(load_or_call_error(dir, false), "");
}

TEST(HostileSizes, FillFromRunTimeShape) {
  // dims computed at run time: Shape(x) * [2^31, 1] -> [2^31, 4] floats (32 GiB).
  expect_run_size_error(
      node("s", "Shape", {"x"}, kTFloat + "attr { key: \"out_type\" value { type: DT_INT64 } }") +
          int_const("k", {int64_t{1} << 31, 1}, "DT_INT64") +
          node("d", "Mul", {"s", "k"}, "attr { key: \"T\" value { type: DT_INT64 } }") +
          float_const("one", {}) +
          node("y", "Fill", {"d", "one"},
               kTFloat + "attr { key: \"index_type\" value { type: DT_INT64 } }"),
      "y");
}

TEST(HostileSizes, PadWithHugePaddings) {
  // The doc's D9: [0, 2e9] on the last axis, int32 and int64 paddings, and int64 overflow.
  for (const auto& [values, dtype] : std::vector<std::pair<std::vector<int64_t>, std::string>>{
           {{0, 0, 0, 2000000000}, "DT_INT32"},
           {{0, 0, 0, int64_t{1} << 40}, "DT_INT64"},
           {{0, 0, INT64_MAX - 1, INT64_MAX - 1}, "DT_INT64"}}) {
    std::string p = int_const("p", values, dtype);
    // int_const makes a vector; Pad wants [rank, 2].
    p.replace(p.find("dim { size: 4 }"), 15, "dim { size: 2 } dim { size: 2 }");
    expect_run_size_error(
        p + node("y", "Pad", {"x", "p"},
                 kTFloat + "attr { key: \"Tpaddings\" value { type: " + dtype + " } }"),
        "y");
  }
}

TEST(HostileSizes, TileBroadcastToAndBroadcastingGrowth) {
  expect_run_size_error(int_const("m", {1 << 20, 1 << 12}) +
                            node("y", "Tile", {"x", "m"},
                                 kTFloat + "attr { key: \"Tmultiples\" value { type: DT_INT32 } }"),
                        "y");
  expect_run_size_error(int_const("s", {1 << 20, 1 << 12, 4}) +
                            node("y", "BroadcastTo", {"x", "s"},
                                 kTFloat + "attr { key: \"Tidx\" value { type: DT_INT32 } }"),
                        "y");
  // [n, 1] + [1, n] with n = 2^17 from run-time reshapes: 64 GiB of float.
  expect_run_size_error(float_const("c", {1 << 17}) + int_const("r1", {-1, 1}) +
                            int_const("r2", {1, -1}) +
                            node("a", "Reshape", {"c", "r1"},
                                 kTFloat + "attr { key: \"Tshape\" value { type: DT_INT32 } }") +
                            node("b", "Reshape", {"c", "r2"},
                                 kTFloat + "attr { key: \"Tshape\" value { type: DT_INT32 } }") +
                            node("y", "AddV2", {"a", "b"}, kTFloat),
                        "y");
  // MatMul [n, 1] x [1, n]: the output is sized by the kernel itself.
  expect_run_size_error(float_const("c", {1 << 17}) + int_const("r1", {-1, 1}) +
                            int_const("r2", {1, -1}) +
                            node("a", "Reshape", {"c", "r1"},
                                 kTFloat + "attr { key: \"Tshape\" value { type: DT_INT32 } }") +
                            node("b", "Reshape", {"c", "r2"},
                                 kTFloat + "attr { key: \"Tshape\" value { type: DT_INT32 } }") +
                            node("y", "MatMul", {"a", "b"}, kTFloat),
                        "y");
}

TEST(HostileSizes, TheLimitIsConfigurable) {
  const int64_t saved = max_tensor_bytes();
  set_max_tensor_bytes(1 << 20);
  EXPECT_FALSE(Tensor::create(DType::kFloat32, {1 << 19}).ok());
  EXPECT_TRUE(Tensor::create(DType::kFloat32, {1 << 18}).ok());
  EXPECT_THROW(Tensor(DType::kFloat32, {1 << 19}), TensorTooLarge);
  set_max_tensor_bytes(saved);
  EXPECT_TRUE(Tensor::create(DType::kFloat32, {1 << 19}).ok());
}

TEST(HostileSizes, PeakMemoryStaysSmallThroughTheCli) {
  // A 3 GiB constant and a 2e9 Pad: the errors come before any allocation of that size.
  TempDir tmp;
  std::string p = int_const("p", {0, 0, 0, 2000000000});
  p.replace(p.find("dim { size: 4 }"), 15, "dim { size: 2 } dim { size: 2 }");
  const auto pad = write_model(
      tmp, "pad",
      tf1_pbtxt(p + node("y", "Pad", {"x", "p"},
                         kTFloat + "attr { key: \"Tpaddings\" value { type: DT_INT32 } }"),
                {{"y", "y:0"}}));
  const auto big = write_model(
      tmp, "big",
      tf1_pbtxt(float_const("c", {int64_t{3} << 28}) + node("y", "Identity", {"c"}, kTFloat),
                {{"y", "y:0"}}));
  hubimg::testing::write_file(tmp.path() / "x.npy", [] {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4), }";
    header.resize(117, ' ');
    header += '\n';
    std::string npy = std::string("\x93NUMPY\x01\x00", 8);
    npy += static_cast<char>(header.size() & 0xff);
    npy += static_cast<char>(header.size() >> 8);
    return npy + header + std::string(16, '\0');
  }());
  for (const auto& dir : {pad, big}) {
    Measured m =
        run_cli({"run", dir.string(), "--signature", "serving_default", "--input",
                 "x=" + (tmp.path() / "x.npy").string(), "--output", (tmp.path() / "out").string()},
                tmp);
    EXPECT_EQ(m.exit_code, 1) << m.output;
    EXPECT_NE(m.output.find("tensor size limit"), std::string::npos) << m.output;
    EXPECT_LT(m.max_rss_kb, testing::kFailingCliRssLimitKb) << m.output;
  }
}

// ----------------------------------------------------------------------------------------------
// D13: object-graph lookups. Each test times a load of a file with tens of thousands of entries
// in CPU seconds of this process (the machine may be shared): linear work takes one to two
// seconds (2.3 s once, in a CI run with the other tests beside it), the quadratic matching that
// was there took 13 s (60 000 signatures) and 27 s (100 000 checkpoint children).

// AddressSanitizer: allocations cost several times more.
constexpr double kSlowdown = hubimg::testing::kUnderAddressSanitizer ? 8 : 1;
constexpr double kLinearLoadSeconds = 4.0 * kSlowdown;

double cpu_seconds() {
  return static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
}

// y = w * x + b: a TF2 SavedModel written by hubimg's own writer, signature "serving_default"
// (x -> output_0) and root.__call__.
void write_small_model(const std::filesystem::path& dir) {
  using format::FunctionBuilder;
  using format::SavedModelWriter;
  SavedModelWriter writer(ops::find_op_def);
  auto w = writer.add_variable({"w"}, "w", Tensor::scalar(3.0f), true);
  auto b = writer.add_variable({"b"}, "b", Tensor::scalar(-0.5f), true);
  ASSERT_TRUE(w.ok() && b.ok());
  FunctionBuilder f(writer.unique_function_name("__call__"), writer.op_defs());
  const auto x = f.add_input("x", DType::kFloat32, PartialShape::known({-1}));
  const auto wv =
      f.read_variable(writer.add_resource_input(f, "mul_readvariableop_resource", *w), "mul");
  const auto bv =
      f.read_variable(writer.add_resource_input(f, "add_readvariableop_resource", *b), "add");
  f.add_output(f.add("AddV2", {f.add("Mul", {wv, x}, {}, "mul"), bv}, {}, "add"));
  auto call = writer.add_function(std::move(f));
  ASSERT_TRUE(call.ok()) << call.status().to_string();
  format::TensorSpec in{"x", DType::kFloat32, PartialShape::known({-1})};
  format::TensorSpec out{"output_0", DType::kFloat32, PartialShape::known({-1})};
  ASSERT_TRUE(writer.set_call({{call->name, in, std::nullopt, {*w, *b}, out}}).ok());
  ASSERT_TRUE(writer
                  .add_signature(
                      {"serving_default", call->name, {{"x", in}}, {{"output_0", out}}, {*w, *b}})
                  .ok());
  ASSERT_TRUE(writer.write(dir).ok());
}

tf::SavedModel read_saved_model(const std::filesystem::path& dir) {
  tf::SavedModel proto;
  EXPECT_TRUE(proto.ParseFromString(hubimg::testing::read_file(dir / "saved_model.pb")));
  return proto;
}

int child_named(const tf::SavedObjectGraph& g, int node, const std::string& name) {
  for (const auto& c : g.nodes(node).children()) {
    if (c.local_name() == name) return c.node_id();
  }
  return -1;
}

TEST(HostileObjectGraph, ManySignaturesParseInLinearTime) {
  tf::SavedModel proto;
  auto* mg = proto.add_meta_graphs();
  mg->mutable_meta_info_def()->add_tags("serve");
  auto* g = mg->mutable_object_graph_def();
  auto* root = g->add_nodes();
  root->mutable_user_object();
  auto* sig_map = g->add_nodes();
  sig_map->mutable_user_object();
  auto* fn = g->add_nodes();
  fn->mutable_bare_concrete_function()->set_concrete_function_name("f");
  root->add_children()->set_node_id(1);
  root->mutable_children(0)->set_local_name("signatures");
  (*g->mutable_concrete_functions())["f"];
  const int n = 60000;
  for (int i = 0; i < n; ++i) {
    const std::string key = "sig" + std::to_string(i);
    auto* c = sig_map->add_children();
    c->set_node_id(2);
    c->set_local_name(key);
    (*mg->mutable_signature_def())[key].set_method_name("tensorflow/serving/predict");
  }
  const std::string bytes = proto.SerializeAsString();
  const double start = cpu_seconds();
  auto model = format::SavedModel::parse(bytes, "many_signatures");
  const double seconds = cpu_seconds() - start;
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_EQ((*model)->signatures().size(), static_cast<size_t>(n));
  EXPECT_NE((*model)->signatures().at("sig59999").function, nullptr);
  EXPECT_LT(seconds, kLinearLoadSeconds);
}

// docs/hostile-inputs.md D13's recipe on a model of our own writer: 60 000 copies of
// serving_default naming the same function node, and 20 000 more each with a function node of
// its own. SavedModel::load, Model::load and `hubimg info` stay linear.
TEST(HostileObjectGraph, ManySignaturesOfARealModelLoadInLinearTime) {
  TempDir tmp;
  const auto dir = tmp.path() / "many_signatures";
  ASSERT_NO_FATAL_FAILURE(write_small_model(dir));
  tf::SavedModel proto = read_saved_model(dir);
  auto* mg = proto.mutable_meta_graphs(0);
  auto* g = mg->mutable_object_graph_def();
  const int sigs = child_named(*g, 0, "signatures");
  ASSERT_GE(sigs, 0);
  const int fn_node = child_named(*g, sigs, "serving_default");
  ASSERT_GE(fn_node, 0);
  const tf::SignatureDef def = mg->signature_def().at("serving_default");
  const tf::SavedObject fn_object = g->nodes(fn_node);
  const int shared = 60000, own = 20000;
  for (int i = 0; i < shared + own; ++i) {
    const std::string key = "sig" + std::to_string(i);
    (*mg->mutable_signature_def())[key] = def;
    auto* c = g->mutable_nodes(sigs)->add_children();
    c->set_local_name(key);
    if (i < shared) {
      c->set_node_id(fn_node);
    } else {
      c->set_node_id(g->nodes_size());
      *g->add_nodes() = fn_object;
    }
  }
  hubimg::testing::write_file(dir / "saved_model.pb", proto.SerializeAsString());

  double start = cpu_seconds();
  auto saved = format::SavedModel::load(dir);
  double seconds = cpu_seconds() - start;
  ASSERT_TRUE(saved.ok()) << saved.status().to_string();
  EXPECT_EQ((*saved)->signatures().size(), static_cast<size_t>(shared + own + 1));
  EXPECT_LT(seconds, kLinearLoadSeconds) << "SavedModel::load";
  saved->reset();

  start = cpu_seconds();
  auto model = Model::load(dir);
  seconds = cpu_seconds() - start;
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_LT(seconds, kLinearLoadSeconds) << "Model::load";
  for (const char* key : {"serving_default", "sig0", "sig79999"}) {
    auto out = model->call_signature(key, {{"x", Tensor::from_vector<float>({2}, {1, -2})}});
    ASSERT_TRUE(out.ok()) << key << ": " << out.status().to_string();
    EXPECT_EQ(out->at("output_0").values<float>()[0], 2.5f) << key;
    EXPECT_EQ(out->at("output_0").values<float>()[1], -6.5f) << key;
  }

  // The CLI's time in the release build only: under AddressSanitizer this one command takes
  // 14 s of CPU (23 s of wall time), and `info --json` runs on every fixture there too
  // (InfoCommand.*).
  if (!hubimg::testing::kUnderAddressSanitizer) {
    Measured m = run_cli({"info", dir.string(), "--json"}, tmp);
    ASSERT_EQ(m.exit_code, 0) << m.output.substr(0, 2000);
    EXPECT_NE(m.output.find("\"sig79999\""), std::string::npos);
    // The CLI also starts a process, writes every signature as JSON and tears it all down: 3.2 s
    // of CPU on an idle machine, mostly allocation, which slows down when other jobs share the
    // cores (5 s in a CI run, launched by fork then).
    EXPECT_LT(m.cpu_seconds, 2 * kLinearLoadSeconds) << "hubimg info";
  }
}

// A TF1 model with one signature per node of a large top-level graph: Model::load builds every
// signature's graph; each build looks at the nodes its outputs need, not the whole graph (that
// took 5 s for 4 000 signatures and grew with the square).
TEST(HostileObjectGraph, ManyTf1SignaturesOverALargeGraphLoadInLinearTime) {
  TempDir tmp;
  const auto dir = tmp.path() / "tf1_signatures";
  std::filesystem::create_directories(dir);
  tf::SavedModel proto;
  auto* mg = proto.add_meta_graphs();
  mg->mutable_meta_info_def()->add_tags("serve");
  auto* g = mg->mutable_graph_def();
  auto* x = g->add_node();
  x->set_name("x");
  x->set_op("Placeholder");
  (*x->mutable_attr())["dtype"].set_type(tf::DT_FLOAT);
  const int n = 8000;
  for (int i = 0; i < n; ++i) {
    auto* node = g->add_node();
    node->set_name("y" + std::to_string(i));
    node->set_op("Identity");
    node->add_input("x");
    (*node->mutable_attr())["T"].set_type(tf::DT_FLOAT);
    auto& sig = (*mg->mutable_signature_def())["sig" + std::to_string(i)];
    sig.set_method_name("tensorflow/serving/predict");
    auto& in = (*sig.mutable_inputs())["x"];
    in.set_name("x:0");
    in.set_dtype(tf::DT_FLOAT);
    in.mutable_tensor_shape()->add_dim()->set_size(-1);
    auto& out = (*sig.mutable_outputs())["y"];
    out.set_name("y" + std::to_string(i) + ":0");
    out.set_dtype(tf::DT_FLOAT);
  }
  hubimg::testing::write_file(dir / "saved_model.pb", proto.SerializeAsString());
  const double start = cpu_seconds();
  auto model = Model::load(dir);
  const double seconds = cpu_seconds() - start;
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_LT(seconds, kLinearLoadSeconds);
  auto out = model->call_signature("sig7999", {{"x", Tensor::from_vector<float>({2}, {1, -2})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").values<float>()[1], -2.0f);
}

// The checkpoint walk matches every child of the checkpoint's object graph by name among the
// SavedObjectGraph node's children: 100 000 extra root children in both graphs.
TEST(HostileObjectGraph, ManyCheckpointChildrenLoadInLinearTime) {
  TempDir tmp;
  const auto dir = tmp.path() / "many_children";
  ASSERT_NO_FATAL_FAILURE(write_small_model(dir));
  const int n = 100000;
  tf::SavedModel proto = read_saved_model(dir);
  auto* g = proto.mutable_meta_graphs(0)->mutable_object_graph_def();
  for (int i = 0; i < n; ++i) {
    auto* c = g->mutable_nodes(0)->add_children();
    c->set_node_id(g->nodes_size());
    c->set_local_name("extra" + std::to_string(i));
    g->add_nodes()->mutable_user_object()->set_identifier("_generic_user_object");
  }
  hubimg::testing::write_file(dir / "saved_model.pb", proto.SerializeAsString());

  const auto prefix = dir / "variables" / "variables";
  std::vector<std::pair<std::string, Tensor>> tensors;
  {
    auto reader = format::TensorBundleReader::open(prefix);
    ASSERT_TRUE(reader.ok()) << reader.status().to_string();
    for (const auto& e : (*reader)->entries()) {
      auto t = (*reader)->read(e.key);
      ASSERT_TRUE(t.ok());
      tensors.emplace_back(e.key, t->clone());
    }
  }
  for (auto& f : std::filesystem::directory_iterator(dir / "variables")) std::filesystem::remove(f);
  format::TensorBundleWriter writer(prefix);
  bool found_graph = false;
  for (auto& [key, t] : tensors) {
    if (key == "_CHECKPOINTABLE_OBJECT_GRAPH") {
      found_graph = true;
      tf::TrackableObjectGraph trackable;
      ASSERT_TRUE(trackable.ParseFromString(t.strings()[0]));
      for (int i = 0; i < n; ++i) {
        auto* c = trackable.mutable_nodes(0)->add_children();
        c->set_node_id(trackable.nodes_size());
        c->set_local_name("extra" + std::to_string(i));
        trackable.add_nodes();
      }
      t = Tensor::from_strings({}, {trackable.SerializeAsString()});
    }
    ASSERT_TRUE(writer.add(key, t).ok());
  }
  ASSERT_TRUE(found_graph);
  ASSERT_TRUE(writer.finish().ok());

  const double start = cpu_seconds();
  auto saved = format::SavedModel::load(dir);
  const double seconds = cpu_seconds() - start;
  ASSERT_TRUE(saved.ok()) << saved.status().to_string();
  ASSERT_EQ((*saved)->variables().size(), 2u);
  EXPECT_EQ((*saved)->variables()[0].value.values<float>()[0], 3.0f);
  EXPECT_EQ((*saved)->variables()[1].value.values<float>()[0], -0.5f);
  EXPECT_LT(seconds, kLinearLoadSeconds);
}

}  // namespace
}  // namespace hubimg
