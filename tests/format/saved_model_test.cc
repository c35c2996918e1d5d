#include "format/saved_model.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <regex>
#include <set>

#include "checkpoint.pb.h"
#include "format/tensor_bundle.h"
#include "saved_model.pb.h"
#include "util/test_util.h"

namespace hubimg::format {
namespace {

using hubimg::testing::real_fixture;
using hubimg::testing::TempDir;

std::filesystem::path model_dir(const std::string& fixture) {
  return real_fixture(fixture) / "saved_model";
}

// "<checkpoint key> <dtype> [d0, d1]" lines of a PROVENANCE.md variable list.
std::map<std::string, std::string> provenance_checkpoint_entries(const std::string& fixture) {
  std::ifstream in(real_fixture(fixture) / "PROVENANCE.md");
  std::map<std::string, std::string> entries;
  std::regex line_re(R"(^(\S+) (\w+) (\[[-0-9, ]*\])$)");
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, line_re))
      entries[m[1]] = std::string(m[2]) + " " + std::string(m[3]);
  }
  return entries;
}

// "- `name` (...): inputs [k: dtype [shape] (...), ...] -> outputs [...]" lines.
std::set<std::string> provenance_signature_names(const std::string& fixture) {
  std::ifstream in(real_fixture(fixture) / "PROVENANCE.md");
  std::set<std::string> names;
  std::regex line_re(R"(^- `([^`]+)` \(tensorflow/serving/\w+\): inputs)");
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, line_re)) names.insert(m[1]);
  }
  return names;
}

TEST(SavedModelFixtures, VariablesAndSignaturesAgreeWithProvenance) {
  HUBIMG_REQUIRE_SHARED();
  for (const std::string& fixture : hubimg::testing::runnable_fixtures()) {
    SCOPED_TRACE(fixture);
    auto model = SavedModel::load(model_dir(fixture));
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    EXPECT_TRUE((*model)->check_runnable().ok());
    auto entries = provenance_checkpoint_entries(fixture);
    ASSERT_FALSE(entries.empty()) << "PROVENANCE.md lists no checkpoint entries";
    for (const auto& v : (*model)->variables()) {
      auto it = entries.find(v.checkpoint_key);
      ASSERT_NE(it, entries.end()) << v.name << " -> " << v.checkpoint_key;
      EXPECT_EQ(it->second, dtype_name(v.dtype) + " " + dims_to_string(v.shape)) << v.name;
      EXPECT_EQ(v.value.shape(), v.shape);
    }
    std::set<std::string> ours;
    for (const auto& [key, sig] : (*model)->signatures()) ours.insert(key);
    EXPECT_EQ(ours, provenance_signature_names(fixture));
  }
}

TEST(SavedModelFixtures, RustRegressionWeightIsExact) {
  HUBIMG_REQUIRE_SHARED();
  auto model = SavedModel::load(model_dir("tf_testdata/rust_regression_savedmodel"));
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const VariableInfo* w = nullptr;
  for (const auto& v : (*model)->variables()) {
    if (v.name == "w") w = &v;
  }
  ASSERT_NE(w, nullptr);
  ASSERT_EQ(w->value.shape(), Dims{1});
  EXPECT_EQ(w->value.data<float>()[0], 0.20429754f);
}

TEST(SavedModelFixtures, KerasCallHasFourTracesWithTrainingFlag) {
  HUBIMG_REQUIRE_SHARED();
  auto model = SavedModel::load(model_dir("mnist_cnn_tf231"));
  ASSERT_TRUE(model.ok());
  const auto& call = (*model)->root_call();
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(call->parameter_names, (std::vector<std::string>{"inputs", "training", "mask"}));
  ASSERT_EQ(call->concrete_functions.size(), 4u);
  int with_training = 0;
  for (const auto& cf : call->concrete_functions) {
    ASSERT_TRUE(cf.training.has_value());
    with_training += *cf.training;
    ASSERT_EQ(cf.flat_inputs.size(), 1u);
    EXPECT_EQ(cf.flat_inputs[0].shape, PartialShape::known({-1, 28, 28, 1}));
    EXPECT_EQ(cf.output_keys, std::vector<std::string>{"output_0"});
    EXPECT_EQ(cf.bound_inputs.size(), 16u);  // 8 layers' kernels and biases
  }
  EXPECT_EQ(with_training, 2);
  const auto& sig = (*model)->signatures().at("serving_default");
  ASSERT_NE(sig.function, nullptr);
  EXPECT_EQ(sig.argument_keywords, std::vector<std::string>{"conv2d_input"});
}

TEST(SavedModelFixtures, Tf1GraphVariablesMapThroughCheckpointFullNames) {
  HUBIMG_REQUIRE_SHARED();
  auto model = SavedModel::load(model_dir("tm_mobilenetv2_035_tf115"));
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_FALSE((*model)->has_object_graph());
  int idx = (*model)->variable_index_for_name("Conv1/kernel");
  ASSERT_GE(idx, 0);
  const auto& v = (*model)->variables()[static_cast<size_t>(idx)];
  EXPECT_EQ(v.shape, (Dims{3, 3, 3, 16}));
  EXPECT_TRUE(v.trainable);
  EXPECT_EQ(v.checkpoint_key,
            "layer_with_weights-0/layer_with_weights-0/layer_with_weights-0/kernel/.ATTRIBUTES/"
            "VARIABLE_VALUE");
}

TEST(SavedModelFixtures, NoFunctionsModelSaysSo) {
  HUBIMG_REQUIRE_SHARED();
  auto model = SavedModel::load(model_dir("lenet_tfmodule_nofunctions_tf216"));
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  Status s = (*model)->check_runnable();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no traced functions"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("variables"), std::string::npos);
}

std::filesystem::path copy_fixture(const std::string& fixture, const TempDir& tmp) {
  return hubimg::testing::copy_fixture_model(fixture, tmp);
}

void expect_error(const std::filesystem::path& path, const std::string& must_contain) {
  auto model = SavedModel::load(path);
  ASSERT_FALSE(model.ok()) << "loaded " << path;
  EXPECT_NE(model.status().message().find(must_contain), std::string::npos)
      << model.status().message();
}

TEST(SavedModelBadInput, MissingDirectoryOrProto) {
  TempDir tmp;
  expect_error(tmp.path() / "nope", "no such file");
  expect_error(tmp.path(), "no saved_model.pb");
}

TEST(SavedModelBadInput, TruncatedAndGarbageProto) {
  HUBIMG_REQUIRE_SHARED();
  TempDir tmp;
  auto dir = copy_fixture("mnist_cnn_tf231", tmp);
  auto pb = dir / "saved_model.pb";
  std::string bytes = hubimg::testing::read_file(pb);
  hubimg::testing::write_file(pb, bytes.substr(0, bytes.size() / 3));
  expect_error(dir, "saved_model.pb: not a valid SavedModel protobuf");
  hubimg::testing::write_file(pb, std::string(1000, '\xff'));
  expect_error(dir, "saved_model.pb: not a valid SavedModel protobuf");
  hubimg::testing::write_file(pb, "");
  expect_error(dir, "no MetaGraphDef");
}

tf::SavedModel read_proto(const std::filesystem::path& pb) {
  tf::SavedModel proto;
  EXPECT_TRUE(proto.ParseFromString(hubimg::testing::read_file(pb)));
  return proto;
}

TEST(SavedModelBadInput, ObjectGraphChildOutOfRange) {
  HUBIMG_REQUIRE_SHARED();
  TempDir tmp;
  auto dir = copy_fixture("mnist_cnn_tf231", tmp);
  auto proto = read_proto(dir / "saved_model.pb");
  auto* graph = proto.mutable_meta_graphs(0)->mutable_object_graph_def();
  graph->mutable_nodes(3)->add_children()->set_node_id(1 << 30);
  hubimg::testing::write_file(dir / "saved_model.pb", proto.SerializeAsString());
  expect_error(dir, "points to node 1073741824");
}

TEST(SavedModelBadInput, ObjectGraphLoopsDoNotHang) {
  HUBIMG_REQUIRE_SHARED();
  TempDir tmp;
  auto dir = copy_fixture("mnist_cnn_tf231", tmp);
  auto proto = read_proto(dir / "saved_model.pb");
  auto* graph = proto.mutable_meta_graphs(0)->mutable_object_graph_def();
  auto* back = graph->mutable_nodes(1)->add_children();  // layer -> root: a cycle
  back->set_node_id(0);
  back->set_local_name("parent");
  hubimg::testing::write_file(dir / "saved_model.pb", proto.SerializeAsString());
  auto model = SavedModel::load(dir);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_EQ((*model)->variables().size(), 16u);
}

// Rewrites the checkpoint with `edit` applied to its object graph and `drop_key` left out.
void rewrite_checkpoint(const std::filesystem::path& dir,
                        const std::function<void(tf::TrackableObjectGraph&)>& edit,
                        const std::string& drop_key = "") {
  auto prefix = dir / "variables" / "variables";
  auto reader = TensorBundleReader::open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& e : (*reader)->entries()) {
    auto t = (*reader)->read(e.key);
    ASSERT_TRUE(t.ok());
    tensors.emplace_back(e.key, t->clone());
  }
  reader->reset();
  for (auto& f : std::filesystem::directory_iterator(dir / "variables")) std::filesystem::remove(f);
  TensorBundleWriter writer(prefix);
  for (auto& [key, t] : tensors) {
    if (key == drop_key) continue;
    if (key == "_CHECKPOINTABLE_OBJECT_GRAPH") {
      tf::TrackableObjectGraph g;
      ASSERT_TRUE(g.ParseFromString(t.strings()[0]));
      edit(g);
      t = Tensor::from_strings({}, {g.SerializeAsString()});
    }
    ASSERT_TRUE(writer.add(key, t).ok());
  }
  ASSERT_TRUE(writer.finish().ok());
}

TEST(SavedModelBadInput, CheckpointObjectGraphChildOutOfRangeOrLooping) {
  HUBIMG_REQUIRE_SHARED();
  {
    TempDir tmp;
    auto dir = copy_fixture("mnist_cnn_tf231", tmp);
    rewrite_checkpoint(dir, [](tf::TrackableObjectGraph& g) {
      g.mutable_nodes(0)->mutable_children(0)->set_node_id(-5);
    });
    expect_error(dir, "pointing to node -5");
  }
  {
    TempDir tmp;
    auto dir = copy_fixture("mnist_cnn_tf231", tmp);
    rewrite_checkpoint(dir, [](tf::TrackableObjectGraph& g) {
      auto* c = g.mutable_nodes(1)->add_children();
      c->set_node_id(0);
      c->set_local_name("loop");
    });
    auto model = SavedModel::load(dir);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
  }
}

TEST(SavedModelBadInput, MissingVariableValue) {
  HUBIMG_REQUIRE_SHARED();
  TempDir tmp;
  auto dir = copy_fixture("mnist_cnn_tf231", tmp);
  rewrite_checkpoint(
      dir, [](tf::TrackableObjectGraph&) {},
      "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE");
  expect_error(dir, "conv2d/kernel");
}

TEST(SavedModelBadInput, MissingCheckpointIndex) {
  HUBIMG_REQUIRE_SHARED();
  TempDir tmp;
  auto dir = copy_fixture("mnist_cnn_tf231", tmp);
  std::filesystem::remove(dir / "variables" / "variables.index");
  expect_error(dir, "variables.index: missing");
}

TEST(SavedModelFormats, TextProtoLoadsLikeBinary) {
  HUBIMG_REQUIRE_SHARED();
  TempDir tmp;
  auto dir = copy_fixture("tf_testdata/tfjs_node_times_three_float", tmp);
  auto proto = read_proto(dir / "saved_model.pb");
  std::string text;
  ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(proto, &text));
  std::filesystem::remove(dir / "saved_model.pb");
  hubimg::testing::write_file(dir / "saved_model.pbtxt", text);
  auto model = SavedModel::load(dir);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  ASSERT_TRUE((*model)->root_call().has_value());
  EXPECT_EQ((*model)->variables().size(), 1u);
  EXPECT_EQ((*model)->signatures().count("serving_default"), 1u);
}

TEST(SavedModelFormats, GzippedTarArchive) {
  HUBIMG_REQUIRE_SHARED();
  TempDir tmp;
  auto archive = tmp.path() / "model.tar.gz";
  auto cmd = "tar -C " + model_dir("mnist_cnn_tf231").string() + " -czf " + archive.string() + " .";
  ASSERT_EQ(hubimg::testing::run_command(cmd).exit_code, 0);
  auto model = SavedModel::load(archive);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_EQ((*model)->variables().size(), 16u);
  auto extracted = (*model)->directory();
  EXPECT_TRUE(std::filesystem::exists(extracted / "saved_model.pb"));
  model->reset();
  EXPECT_FALSE(std::filesystem::exists(extracted)) << "temporary extraction not removed";
  hubimg::testing::write_file(tmp.path() / "bad.tar.gz", "not an archive at all");
  expect_error(tmp.path() / "bad.tar.gz", "not a readable tar or zip archive");
}

}  // namespace
}  // namespace hubimg::format
