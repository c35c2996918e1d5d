// `hubimg info` end to end: the built CLI on every real fixture and on damaged inputs.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "util/test_util.h"

namespace hubimg {
namespace {

using hubimg::testing::cli_path;
using hubimg::testing::real_fixture;
using hubimg::testing::run_command;

std::string info(const std::string& args) {
  return cli_path().string() + " info " + args;
}

TEST(InfoCommand, JsonOnEveryFixtureHasTheDocumentedKeys) {
  HUBIMG_REQUIRE_SHARED();
  for (const std::string& fixture : hubimg::testing::runnable_fixtures()) {
    SCOPED_TRACE(fixture);
    auto r = run_command(info((real_fixture(fixture) / "saved_model").string() + " --json"));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_TRUE(j["tensorflow_version"].is_string());
    ASSERT_TRUE(j["signatures"].is_object());
    for (const auto& [name, sig] : j["signatures"].items()) {
      for (const char* side : {"inputs", "outputs"}) {
        for (const auto& [key, spec] : sig[side].items()) {
          EXPECT_TRUE(spec["dtype"].is_string()) << name << " " << key;
          EXPECT_TRUE(spec["shape"].is_array() || spec["shape"].is_null());
        }
      }
    }
    ASSERT_TRUE(j["call"].is_array());
    for (const auto& c : j["call"]) {
      EXPECT_TRUE(c["function"].is_string());
      EXPECT_TRUE(c["inputs"].is_array());
      EXPECT_TRUE(c["training"].is_boolean() || c["training"].is_null());
      EXPECT_TRUE(c["kwargs"].is_object());
    }
    ASSERT_TRUE(j["variables"].is_array());
    int64_t params = 0;
    for (const auto& v : j["variables"]) {
      int64_t n = 1;
      for (int64_t d : v["shape"]) n *= d;
      params += n;
      EXPECT_TRUE(v["trainable"].is_boolean());
    }
    EXPECT_EQ(j["num_parameters"].get<int64_t>(), params);
    EXPECT_TRUE(j["regularization_losses"].is_number_integer());
    ASSERT_TRUE(j["ops"].is_object());
    EXPECT_FALSE(j["ops"].empty());
    // Every fixture runs; only the tf.Example parsing of half_plus_two's classify and regress
    // signatures is beyond hubimg.
    const auto expected_missing = fixture == "tf_testdata/serving_half_plus_two_tf2_cpu"
                                      ? nlohmann::json::parse(R"(["ParseExampleV2"])")
                                      : nlohmann::json::array();
    EXPECT_EQ(j["not_implemented_ops"], expected_missing);

    auto human = run_command(info((real_fixture(fixture) / "saved_model").string()));
    EXPECT_EQ(human.exit_code, 0) << human.out;
    EXPECT_NE(human.out.find("Signatures"), std::string::npos);
  }
}

TEST(InfoCommand, SpecificFixtureFacts) {
  HUBIMG_REQUIRE_SHARED();
  auto r =
      run_command(info((real_fixture("mnist_cnn_tf231") / "saved_model").string() + " --json"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["tensorflow_version"], "2.3.1");
  auto in = j["signatures"]["serving_default"]["inputs"]["conv2d_input"];
  EXPECT_EQ(in["dtype"], "float32");
  EXPECT_EQ(in["shape"], nlohmann::json::parse("[-1, 28, 28, 1]"));
  EXPECT_EQ(j["call"].size(), 4u);
  EXPECT_EQ(j["variables"].size(), 16u);
  EXPECT_EQ(j["variables"][0]["name"], "conv2d/kernel");
  // PROVENANCE.md: the ops reachable from serving_default and __call__ include these.
  for (const char* op : {"Conv2D", "MaxPool", "MatMul", "Relu", "Softmax", "RandomUniform"}) {
    EXPECT_TRUE(j["ops"].contains(op)) << op;
  }
}

// A TF1 graph with a tf.cond (Switch/Merge, resolved by the builder), Roll and two ops hubimg
// does not have: info lists all the ops and names the two, without running anything.
TEST(InfoCommand, NamesEveryOpHubimgCannotRun) {
  testing::TempDir tmp;
  auto node = [](const std::string& name, const std::string& op,
                 const std::vector<std::string>& inputs, const std::string& attrs = "") {
    std::string s = "node { name: \"" + name + "\" op: \"" + op + "\"";
    for (const auto& in : inputs) s += " input: \"" + in + "\"";
    return s + " " + attrs + " }\n";
  };
  const std::string f32 = R"(attr { key: "T" value { type: DT_FLOAT } })";
  const std::string ints =
      R"(attr { key: "dtype" value { type: DT_INT32 } } attr { key: "value" value { tensor { )"
      R"(dtype: DT_INT32 tensor_shape { dim { size: 1 } } int_val: 1 } } })";
  std::string graph =
      node("x", "Placeholder", {}, R"(attr { key: "dtype" value { type: DT_FLOAT } })") +
      node("lp", "Const", {},
           R"(attr { key: "dtype" value { type: DT_BOOL } } attr { key: "value" value { )"
           R"(tensor { dtype: DT_BOOL tensor_shape { } bool_val: false } } })") +
      node("sw", "Switch", {"x", "lp"}, f32) + node("m", "Merge", {"sw", "sw:1"}, f32) +
      node("odd", "MadeUpOp", {"m"}, f32) + node("s", "Const", {}, ints) +
      node("r", "Roll", {"odd", "s", "s"}, f32) + node("y", "OtherMissingOp", {"r"}, f32);
  const std::string model =
      "meta_graphs { meta_info_def { tags: \"serve\" } graph_def {\n" + graph +
      "}\n signature_def { key: \"serving_default\" value {\n"
      "  inputs { key: \"x\" value { name: \"x:0\" dtype: DT_FLOAT } }\n"
      "  outputs { key: \"y\" value { name: \"y:0\" dtype: DT_FLOAT } } } } }\n";
  std::filesystem::create_directories(tmp.path() / "m");
  testing::write_file(tmp.path() / "m" / "saved_model.pbtxt", model);
  auto r = run_command(info((tmp.path() / "m").string() + " --json"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  for (const char* op : {"Switch", "Merge", "Roll", "MadeUpOp", "OtherMissingOp"}) {
    EXPECT_TRUE(j["ops"].contains(op)) << op;
  }
  EXPECT_EQ(j["not_implemented_ops"], nlohmann::json::parse(R"(["MadeUpOp", "OtherMissingOp"])"));
  auto human = run_command(info((tmp.path() / "m").string()));
  ASSERT_EQ(human.exit_code, 0) << human.out;
  EXPECT_NE(
      human.out.find("2 of these ops are not implemented in hubimg: MadeUpOp, OtherMissingOp"),
      std::string::npos)
      << human.out;
  EXPECT_EQ(human.out.find("Roll                                 1  (not"), std::string::npos)
      << human.out;
}

TEST(InfoCommand, NegativeAndMissingModelsFailWithOneLine) {
  HUBIMG_REQUIRE_SHARED();
  auto r = run_command(
      info((real_fixture("lenet_tfmodule_nofunctions_tf216") / "saved_model").string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("no traced functions"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  auto missing = run_command(info("/nonexistent/model"));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.out.find("/nonexistent/model"), std::string::npos);
}

}  // namespace
}  // namespace hubimg
