// Load-time errors of Model: an op hubimg does not implement is named with its function and
// node before anything runs; damaged files are named through the CLI in one line.
#include <gtest/gtest.h>

#include <functional>

#include "format/tensor_bundle.h"
#include "graph.pb.h"
#include "hubimg/model.h"
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
