// Load-time errors of Model: an op hubimg does not implement is named with its function and
// node before anything runs; damaged files are named through the CLI in one line.
#include <gtest/gtest.h>

#include <functional>

#include "format/saved_model_writer.h"
#include "format/tensor_bundle.h"
#include "graph.pb.h"
#include "hubimg/model.h"
#include "ops/op_registry.h"
#include "saved_model.pb.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using hubimg::testing::read_file;
using hubimg::testing::real_fixture;
using hubimg::testing::run_command;
using hubimg::testing::TempDir;
using hubimg::testing::write_file;

std::filesystem::path copy_model(const std::string& fixture, const TempDir& tmp) {
  return hubimg::testing::copy_fixture_model(fixture, tmp);
}

TEST(ModelLoad, InventedOpIsReportedAtLoadWithFunctionAndNode) {
  HUBIMG_REQUIRE_SHARED();
  TempDir tmp;
  auto dir = copy_model("mnist_cnn_tf231", tmp);
  tf::SavedModel proto;
  ASSERT_TRUE(proto.ParseFromString(read_file(dir / "saved_model.pb")));
  std::string function_name, node_name;
  for (auto& f :
       *proto.mutable_meta_graphs(0)->mutable_graph_def()->mutable_library()->mutable_function()) {
    for (auto& n : *f.mutable_node_def()) {
      if (n.op() == "Relu") {  // every Relu, so every inference trace has one
        n.set_op("MadeUpActivation");
        function_name = f.signature().name();
        node_name = n.name();
      }
    }
  }
  ASSERT_FALSE(function_name.empty());
  write_file(dir / "saved_model.pb", proto.SerializeAsString());
  auto model = Model::load(dir);
  ASSERT_FALSE(model.ok());
  const std::string& msg = model.status().message();
  EXPECT_EQ(model.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(msg.find("'MadeUpActivation'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("in function '__inference_"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node '"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Relu"), std::string::npos) << msg;  // Keras names the node after the op
}

// y = Relu(x) from a Keras-style layer function that also returns a "loss" Mul(x, x), whose op is
// then renamed to one hubimg does not implement. `use_loss`: the root call returns the loss.
void write_model_with_unknown_loss_op(const std::filesystem::path& dir, bool use_loss) {
  using namespace format;
  SavedModelWriter writer(ops::find_op_def);
  const TensorSpec in{"x", DType::kFloat32, PartialShape::known({-1})};
  FunctionBuilder layer(writer.unique_function_name("layer_call_and_return_conditional_losses"),
                        writer.op_defs());
  const auto x = layer.add_input("x", DType::kFloat32, in.shape);
  layer.add_output(layer.add("Relu", {x}));
  layer.add_output(layer.add("Mul", {x, x}, {}, "loss"));
  auto layer_sig = writer.add_function(std::move(layer));
  ASSERT_TRUE(layer_sig.ok()) << layer_sig.status().to_string();
  FunctionBuilder call(writer.unique_function_name("__call__"), writer.op_defs());
  const auto outs = call.add_call(*layer_sig, {call.add_input("x", DType::kFloat32, in.shape)});
  ASSERT_EQ(outs.size(), 2u);
  call.add_output(outs[use_loss ? 1 : 0]);
  auto call_sig = writer.add_function(std::move(call));
  ASSERT_TRUE(call_sig.ok()) << call_sig.status().to_string();
  const TensorSpec out{"output_0", DType::kFloat32, PartialShape::known({-1})};
  ASSERT_TRUE(writer.set_call({{call_sig->name, in, std::nullopt, {}, out}}).ok());
  ASSERT_TRUE(
      writer
          .add_signature({"serving_default", call_sig->name, {{"x", in}}, {{"output_0", out}}, {}})
          .ok());
  ASSERT_TRUE(writer.write(dir).ok());

  tf::SavedModel proto;
  ASSERT_TRUE(proto.ParseFromString(read_file(dir / "saved_model.pb")));
  int renamed = 0;
  for (auto& f :
       *proto.mutable_meta_graphs(0)->mutable_graph_def()->mutable_library()->mutable_function()) {
    for (auto& n : *f.mutable_node_def()) {
      if (n.op() == "Mul") {
        n.set_op("MadeUpLoss");
        ++renamed;
      }
    }
  }
  ASSERT_EQ(renamed, 1);
  write_file(dir / "saved_model.pb", proto.SerializeAsString());
}

TEST(ModelLoad, UnknownOpFeedingOnlyUnusedOutputsNeitherBlocksLoadingNorRuns) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(write_model_with_unknown_loss_op(tmp.path(), false));
  auto model = Model::load(tmp.path());
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  // Running it would fail: MadeUpLoss has no kernel.
  auto y = (*model)(Tensor::from_vector<float>({3}, {-1.0f, 2.0f, 0.5f}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  ASSERT_EQ(y->size(), 1u);
  const auto values = (*y)[0].values<float>();
  EXPECT_EQ(std::vector<float>(values.begin(), values.end()),
            (std::vector<float>{0.0f, 2.0f, 0.5f}));
  auto s =
      model->call_signature("serving_default", {{"x", Tensor::from_vector<float>({1}, {-3.0f})}});
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->at("output_0").values<float>()[0], 0.0f);
}

TEST(ModelLoad, UnknownOpOnTheNeededPathFailsAtLoadNamingOpAndNode) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(write_model_with_unknown_loss_op(tmp.path(), true));
  auto model = Model::load(tmp.path());
  ASSERT_FALSE(model.ok());
  const std::string& msg = model.status().message();
  EXPECT_EQ(model.status().code(), StatusCode::kUnimplemented) << msg;
  EXPECT_NE(msg.find("'MadeUpLoss'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node '"), std::string::npos) << msg;
  EXPECT_NE(msg.find("loss"), std::string::npos) << msg;
  EXPECT_NE(msg.find("layer_call_and_return_conditional_losses"), std::string::npos) << msg;
}

// Each damage gets a non-zero exit and one line naming the damaged file.
TEST(InfoBadInput, DamagedFilesGiveOneLineNamingTheFile) {
  HUBIMG_REQUIRE_SHARED();
  struct Damage {
    std::string name;
    std::string file;  // relative to the model dir, named in the message
    std::function<void(const std::filesystem::path&)> apply;
  };
  auto truncate = [](const std::filesystem::path& p, size_t keep) {
    std::string b = read_file(p);
    write_file(p, b.substr(0, std::min(keep, b.size())));
  };
  auto flip = [](const std::filesystem::path& p, size_t from_end) {
    std::string b = read_file(p);
    b[b.size() - from_end] ^= 0x5a;
    write_file(p, b);
  };
  const Damage damages[] = {
      {"truncated pb", "saved_model.pb", [&](auto d) { truncate(d / "saved_model.pb", 1000); }},
      {"truncated index", "variables.index",
       [&](auto d) { truncate(d / "variables/variables.index", 30); }},
      {"bad magic", "variables.index", [&](auto d) { flip(d / "variables/variables.index", 1); }},
      {"block CRC", "variables.index", [&](auto d) { flip(d / "variables/variables.index", 200); }},
      {"missing shard", "variables.data-00000-of-00001",
       [&](auto d) { std::filesystem::remove(d / "variables/variables.data-00000-of-00001"); }},
      {"truncated shard", "variables.data-00000-of-00001",
       [&](auto d) { truncate(d / "variables/variables.data-00000-of-00001", 5000); }},
      {"tensor CRC", "variables.data-00000-of-00001",
       [&](auto d) {
         // A byte inside the first conv kernel, which every trace reads.
         auto reader = format::TensorBundleReader::open(d / "variables/variables");
         ASSERT_TRUE(reader.ok());
         const auto* e = (*reader)->find("layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE");
         ASSERT_NE(e, nullptr);
         auto p = d / "variables/variables.data-00000-of-00001";
         std::string b = read_file(p);
         b[static_cast<size_t>(e->offset + 5)] ^= 0x5a;
         reader->reset();
         write_file(p, b);
       }},
  };
  for (const auto& damage : damages) {
    SCOPED_TRACE(damage.name);
    TempDir tmp;
    auto dir = copy_model("mnist_cnn_tf231", tmp);
    damage.apply(dir);
    auto r = run_command(hubimg::testing::cli_path().string() + " info '" + dir.string() + "'");
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_LT(r.exit_code, 128) << "crashed: " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_NE(r.out.find(damage.file), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace hubimg
