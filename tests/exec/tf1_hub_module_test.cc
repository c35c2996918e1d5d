// TF1 graphs with reference variables (VariableV2: tf.compat.v1, TF-Slim) in the TF1 Hub format
// (hub.Module exports: a "train" and an untagged meta graph, signatures "default" and
// "image_feature_vector", tfhub_module.pb). The module is written here as TensorFlow lays it
// out; the expected features are computed in this file with plain loops.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <random>

#include "format/saved_model.h"
#include "format/tensor_bundle.h"
#include "graph.pb.h"
#include "hubimg/classifier.h"
#include "hubimg/image.h"
#include "hubimg/model.h"
#include "hubimg/npy.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using hubimg::testing::TempDir;
using hubimg::testing::write_file;

constexpr int64_t kIn = 3, kOut = 4;

std::string node(const std::string& name, const std::string& op,
                 const std::vector<std::string>& inputs, const std::string& attrs = "") {
  std::string s = "node { name: \"" + name + "\" op: \"" + op + "\" ";
  for (const auto& in : inputs) s += "input: \"" + in + "\" ";
  return s + attrs + " } ";
}

std::string type_attr(const std::string& key, const std::string& type = "DT_FLOAT") {
  return "attr { key: \"" + key + "\" value { type: " + type + " } } ";
}

std::string variable(const std::string& name, const std::vector<int64_t>& shape) {
  std::string dims;
  for (int64_t d : shape) dims += "dim { size: " + std::to_string(d) + " } ";
  return node(name, "VariableV2", {},
              type_attr("dtype") + "attr { key: \"shape\" value { shape { " + dims +
                  "} } } attr { key: \"container\" value { s: \"\" } } "
                  "attr { key: \"shared_name\" value { s: \"\" } }");
}

// conv (3x3, stride 2, SAME) -> bias -> activation -> spatial mean: features [batch, 4]. The
// weights are read through "weights/read" (Identity of the reference), the biases straight from
// the reference, as TF-Slim graphs do.
std::string graph(const std::string& tags, const std::string& activation) {
  std::string g = "meta_graphs { meta_info_def { " + tags + " } graph_def { ";
  g += node("images", "Placeholder", {},
            type_attr("dtype") +
                "attr { key: \"shape\" value { shape { dim { size: -1 } dim { size: -1 } "
                "dim { size: -1 } dim { size: 3 } } } }");
  g += variable("conv/weights", {3, 3, kIn, kOut});
  g += node("conv/weights/read", "Identity", {"conv/weights"}, type_attr("T"));
  g += variable("conv/biases", {kOut});
  g += node("conv/Conv2D", "Conv2D", {"images", "conv/weights/read"},
            type_attr("T") +
                "attr { key: \"strides\" value { list { i: 1 i: 2 i: 2 i: 1 } } } "
                "attr { key: \"padding\" value { s: \"SAME\" } } "
                "attr { key: \"data_format\" value { s: \"NHWC\" } }");
  g += node("conv/BiasAdd", "BiasAdd", {"conv/Conv2D", "conv/biases"}, type_attr("T"));
  g += node("conv/act", activation, {"conv/BiasAdd"}, type_attr("T"));
  g += node("axes", "Const", {},
            type_attr("dtype", "DT_INT32") +
                "attr { key: \"value\" value { tensor { dtype: DT_INT32 tensor_shape { dim { "
                "size: 2 } } int_val: 1 int_val: 2 } } }");
  g += node("pool", "Mean", {"conv/act", "axes"},
            type_attr("T") + type_attr("Tidx", "DT_INT32") +
                "attr { key: \"keep_dims\" value { b: false } }");
  // A TF1 training-graph write through the reference: not implemented.
  g += node("new_bias", "Const", {},
            type_attr("dtype") +
                "attr { key: \"value\" value { tensor { dtype: DT_FLOAT tensor_shape { dim { "
                "size: 4 } } float_val: 0 } } }");
  g += node("assign", "Assign", {"conv/biases", "new_bias"},
            type_attr("T") + "attr { key: \"use_locking\" value { b: true } } " +
                "attr { key: \"validate_shape\" value { b: true } }");
  g += " } ";
  const std::string input =
      "inputs { key: \"images\" value { name: \"images:0\" dtype: DT_FLOAT tensor_shape { "
      "dim { size: -1 } dim { size: -1 } dim { size: -1 } dim { size: 3 } } } } ";
  for (const char* key : {"default", "image_feature_vector"}) {
    g += std::string("signature_def { key: \"") + key + "\" value { " + input +
         "outputs { key: \"default\" value { name: \"pool:0\" dtype: DT_FLOAT tensor_shape { "
         "dim { size: -1 } dim { size: 4 } } } } method_name: \"\" } } ";
  }
  g += "signature_def { key: \"assigns\" value { " + input +
       "outputs { key: \"default\" value { name: \"assign:0\" dtype: DT_FLOAT } } } } ";
  return g + "} ";
}

Tensor random_tensor(Dims shape, uint64_t seed, float lo, float hi) {
  Tensor t(DType::kFloat32, std::move(shape));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.mutable_data<float>()[i] = u(rng);
  return t;
}

struct Module {
  std::filesystem::path dir;
  Tensor weights, biases;
};

Module write_module(const TempDir& tmp) {
  Module m;
  m.dir = tmp.path() / "module";
  std::filesystem::create_directories(m.dir / "variables");
  // The "train" graph first: the untagged inference graph must be found, not taken by position.
  write_file(m.dir / "saved_model.pbtxt", "saved_model_schema_version: 1 " +
                                              graph("tags: \"train\"", "Tanh") + graph("", "Relu"));
  write_file(m.dir / "tfhub_module.pb", std::string("\x08\x03", 2));  // ModuleDef format: 3
  m.weights = random_tensor({3, 3, kIn, kOut}, 1, -1, 1);
  m.biases = random_tensor({kOut}, 2, -0.5f, 0.5f);
  format::TensorBundleWriter writer(m.dir / "variables" / "variables");
  EXPECT_TRUE(writer.add("conv/weights", m.weights).ok());
  EXPECT_TRUE(writer.add("conv/biases", m.biases).ok());
  EXPECT_TRUE(writer.finish().ok());
  return m;
}

// mean over positions of relu(conv_same_stride2(x, w) + b), in double.
std::vector<double> expected_features(const Tensor& x, const Module& m) {
  const int64_t n = x.dim(0), h = x.dim(1), w = x.dim(2);
  const int64_t oh = (h + 1) / 2, ow = (w + 1) / 2;
  // SAME: total padding max((out - 1) * stride + 3 - in, 0), the smaller half before.
  const int64_t pad_top = std::max<int64_t>((oh - 1) * 2 + 3 - h, 0) / 2;
  const int64_t pad_left = std::max<int64_t>((ow - 1) * 2 + 3 - w, 0) / 2;
  std::vector<double> out(static_cast<size_t>(n * kOut), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t o = 0; o < kOut; ++o) {
          double acc = m.biases.data<float>()[o];
          for (int64_t ky = 0; ky < 3; ++ky)
            for (int64_t kx = 0; kx < 3; ++kx) {
              const int64_t y = oy * 2 + ky - pad_top, xx = ox * 2 + kx - pad_left;
              if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
              for (int64_t i = 0; i < kIn; ++i) {
                acc += static_cast<double>(x.data<float>()[((b * h + y) * w + xx) * kIn + i]) *
                       m.weights.data<float>()[((ky * 3 + kx) * kIn + i) * kOut + o];
              }
            }
          out[static_cast<size_t>(b * kOut + o)] +=
              std::max(acc, 0.0) / static_cast<double>(oh * ow);
        }
  return out;
}

// Publishes a two-class classifier to `dir` and checks that the reloaded model's __call__ gives
// the in-memory logits on `x`; nullopt (with a test failure) otherwise.
std::optional<Model> publish_and_compare(const ImageClassifier& classifier, const Tensor& x,
                                         const std::filesystem::path& dir) {
  auto logits = classifier.logits(x);
  EXPECT_TRUE(logits.ok()) << logits.status().to_string();
  Status s = classifier.publish(dir, {"a", "b"});
  EXPECT_TRUE(s.ok()) << s.to_string();
  auto published = Model::load(dir);
  EXPECT_TRUE(published.ok()) << published.status().to_string();
  if (!logits.ok() || !s.ok() || !published.ok()) return std::nullopt;
  auto reloaded = (*published)(x);
  EXPECT_TRUE(reloaded.ok()) << reloaded.status().to_string();
  if (!reloaded.ok()) return std::nullopt;
  EXPECT_EQ((*reloaded)[0].shape(), logits->shape());
  for (int64_t i = 0; i < logits->num_elements(); ++i) {
    EXPECT_NEAR((*reloaded)[0].data<float>()[i], logits->data<float>()[i], 1e-6) << i;
  }
  return std::move(published).value();
}

TEST(Tf1HubModule, ReferenceVariablesRunInTheUntaggedGraph) {
  TempDir tmp;
  const Module m = write_module(tmp);
  auto model = Model::load(m.dir);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_FALSE(model->has_call());
  EXPECT_EQ(model->default_signature(), "default");
  ASSERT_EQ(model->variables().size(), 2u);
  for (const char* signature : {"default", "image_feature_vector"}) {
    for (Dims shape : {Dims{2, 9, 7, 3}, Dims{1, 16, 16, 3}}) {
      const Tensor x = random_tensor(shape, 3 + shape[1], 0, 1);
      auto out = model->call_signature(signature, {{"images", x}});
      ASSERT_TRUE(out.ok()) << out.status().to_string();
      const Tensor& f = out->at("default");
      ASSERT_EQ(f.shape(), (Dims{shape[0], kOut}));
      const auto want = expected_features(x, m);
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_NEAR(f.data<float>()[i], want[i], 1e-5) << signature << " " << i;
      }
    }
  }
  // A write through the reference is refused by name.
  auto assigns =
      model->call_signature("assigns", {{"images", random_tensor({1, 4, 4, 3}, 5, 0, 1)}});
  ASSERT_FALSE(assigns.ok());
  EXPECT_NE(assigns.status().message().find("Assign"), std::string::npos)
      << assigns.status().message();
}

// hub.KerasLayer(TF1 module) is a frozen feature extractor: the classifier calls "default", and
// the classifier publishes as a TF2 Reusable SavedModel.
TEST(Tf1HubModule, FrozenHubLayerOverTheDefaultSignature) {
  TempDir tmp;
  const Module m = write_module(tmp);
  auto model = Model::load(m.dir);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  ClassifierOptions options;
  options.hub.signature = model->default_signature();
  options.num_classes = 2;
  options.image_height = options.image_width = 8;
  auto classifier = ImageClassifier::create(*model, options);
  ASSERT_TRUE(classifier.ok()) << classifier.status().to_string();
  EXPECT_EQ(classifier->num_features(), kOut);
  const Tensor x = random_tensor({3, 8, 8, 3}, 7, 0, 1);
  auto features = classifier->features(x);
  ASSERT_TRUE(features.ok()) << features.status().to_string();
  const auto want = expected_features(x, m);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(features->data<float>()[i], want[i], 1e-5);
  // Published: the graph from `images` to `pool` becomes a function reading the variables as
  // resources; the Assign node, which the output does not need, is left out.
  auto published = publish_and_compare(*classifier, x, tmp.path() / "published");
  ASSERT_TRUE(published.has_value());
  for (const auto& name : {"conv/weights", "conv/biases"}) {
    bool found = false;
    for (Variable* v : published->variables()) found = found || v->name() == name;
    EXPECT_TRUE(found) << name;
  }
}

// The CLI: `info` names the format; `embed` calls the "default" signature on image files (a
// module taking any size needs --size; the image's own keeps it unresized).
TEST(Tf1HubModule, InfoAndEmbedFromTheCommandLine) {
  TempDir tmp;
  const Module m = write_module(tmp);
  const std::string cli = hubimg::testing::cli_path().string();
  auto info = hubimg::testing::run_command(cli + " info " + m.dir.string());
  EXPECT_EQ(info.exit_code, 0) << info.out;
  EXPECT_NE(info.out.find("TF1 Hub format module"), std::string::npos) << info.out;
  const Tensor image = random_tensor({10, 12, 3}, 8, 0, 1);
  ASSERT_TRUE(write_png(tmp.path() / "a.png", image).ok());
  const auto features = tmp.path() / "features.npy";
  auto embed = hubimg::testing::run_command(cli + " embed " + m.dir.string() + " " +
                                            (tmp.path() / "a.png").string() +
                                            " --size 10x12 --output " + features.string());
  ASSERT_EQ(embed.exit_code, 0) << embed.out;
  auto got = read_npy(features);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_EQ(got->shape(), (Dims{1, kOut}));
  // The PNG holds 8-bit values: the expected features come from the decoded image.
  auto decoded = decode_image_file(tmp.path() / "a.png");
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  Tensor batch(DType::kFloat32, {1, 10, 12, 3});
  std::copy_n(decoded->data<float>(), 10 * 12 * 3, batch.mutable_data<float>());
  const auto want = expected_features(batch, m);
  for (int64_t i = 0; i < kOut; ++i) EXPECT_NEAR(got->data<float>()[i], want[i], 1e-5) << i;
}

TEST(Tf1HubModule, AReferenceVariableMissingFromTheCheckpointIsNamed) {
  TempDir tmp;
  const Module m = write_module(tmp);
  std::filesystem::remove_all(m.dir / "variables");
  std::filesystem::create_directories(m.dir / "variables");
  format::TensorBundleWriter writer(m.dir / "variables" / "variables");
  ASSERT_TRUE(writer.add("conv/weights", m.weights).ok());
  ASSERT_TRUE(writer.finish().ok());
  auto model = Model::load(m.dir);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("conv/biases"), std::string::npos)
      << model.status().message();
}

// TF1's tf.cond as Keras (TF 1.x) writes it around Dropout and BatchNormalization: Switch on the
// learning phase, a PlaceholderWithDefault of False that no signature feeds; branch constants
// hang on the branch's pivot by a control input; Merge joins the branches. With the default the
// false branch (x + 1) runs; with a True default, the true branch (x * 2).
// With `image`, x is an image batch [-1, -1, -1, 3] averaged over its pixels first, so y is a
// feature vector [batch, 3].
std::string learning_phase_graph(bool phase, bool feed_phase, bool image = false) {
  const std::string f = type_attr("T");
  auto scalar = [](const std::string& name, const std::string& type, const std::string& val,
                   const std::string& control) {
    return node(
        name, "Const",
        control.empty() ? std::vector<std::string>{} : std::vector<std::string>{"^" + control},
        type_attr("dtype", type) + "attr { key: \"value\" value { tensor { dtype: " + type +
            " tensor_shape { } " + val + " } } }");
  };
  std::string g = "meta_graphs { meta_info_def { tags: \"serve\" } graph_def { ";
  g += node("x", "Placeholder", {}, type_attr("dtype"));
  g += scalar("keras_learning_phase/input", "DT_BOOL",
              std::string("bool_val: ") + (phase ? "true" : "false"), "");
  g += node("keras_learning_phase", "PlaceholderWithDefault", {"keras_learning_phase/input"},
            type_attr("dtype", "DT_BOOL") + "attr { key: \"shape\" value { shape { } } }");
  const std::string tb = type_attr("T", "DT_BOOL");
  g += node("cond/Switch", "Switch", {"keras_learning_phase", "keras_learning_phase"}, tb);
  g += node("cond/switch_t", "Identity", {"cond/Switch:1"}, tb);
  g += node("cond/switch_f", "Identity", {"cond/Switch"}, tb);
  g += node("cond/pred_id", "Identity", {"keras_learning_phase"}, tb);
  std::string data = "x";
  if (image) {
    g += node("axes", "Const", {},
              type_attr("dtype", "DT_INT32") +
                  "attr { key: \"value\" value { tensor { dtype: DT_INT32 tensor_shape { dim { "
                  "size: 2 } } int_val: 1 int_val: 2 } } }");
    g += node("pooled", "Mean", {"x", "axes"},
              f + type_attr("Tidx", "DT_INT32") + "attr { key: \"keep_dims\" value { b: false } }");
    data = "pooled";
  }
  g += node("cond/Switch_1", "Switch", {data, "cond/pred_id"}, f);
  g += scalar("cond/two", "DT_FLOAT", "float_val: 2", "cond/switch_t");
  g += node("cond/mul", "Mul", {"cond/Switch_1:1", "cond/two"}, f);
  g += scalar("cond/one", "DT_FLOAT", "float_val: 1", "cond/switch_f");
  g += node("cond/add", "AddV2", {"cond/Switch_1", "cond/one"}, f);
  g += node("cond/Merge", "Merge", {"cond/mul", "cond/add"},
            f + "attr { key: \"N\" value { i: 2 } }");
  g += node("y", "Identity", {"cond/Merge"}, f);
  g += " } signature_def { key: \"serving_default\" value { inputs { key: \"x\" value { name: "
       "\"x:0\" dtype: DT_FLOAT tensor_shape { dim { size: -1 } " +
       std::string(image ? "dim { size: -1 } dim { size: -1 } dim { size: 3 } " : "") + "} } } ";
  if (feed_phase) {
    g += "inputs { key: \"phase\" value { name: \"keras_learning_phase:0\" dtype: DT_BOOL "
         "tensor_shape { } } } ";
  }
  g += "outputs { key: \"y\" value { name: \"y:0\" dtype: DT_FLOAT } } "
       "outputs { key: \"branch\" value { name: \"cond/Merge:1\" dtype: DT_INT32 } } "
       "} } }";
  return g;
}

TEST(Tf1ControlFlow, KerasLearningPhaseCondTakesTheDefaultBranch) {
  for (bool phase : {false, true}) {
    TempDir tmp;
    std::filesystem::create_directories(tmp.path() / "m");
    write_file(tmp.path() / "m" / "saved_model.pbtxt", learning_phase_graph(phase, false));
    auto model = Model::load(tmp.path() / "m");
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    const Tensor x = Tensor::from_vector<float>({3}, {1.5f, -2.0f, 4.0f});
    auto out = model->call_signature("serving_default", {{"x", x}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    for (int i = 0; i < 3; ++i) {
      const float v = x.data<float>()[i];
      EXPECT_EQ(out->at("y").data<float>()[i], phase ? v * 2 : v + 1) << phase;
    }
    EXPECT_EQ(out->at("branch").data<int32_t>()[0], phase ? 0 : 1);
  }
}

// A classifier over such a graph publishes: the function copies the taken branch only.
TEST(Tf1ControlFlow, AClassifierOverACondPublishesTheTakenBranch) {
  TempDir tmp;
  std::filesystem::create_directories(tmp.path() / "m");
  write_file(tmp.path() / "m" / "saved_model.pbtxt", learning_phase_graph(false, false, true));
  auto model = Model::load(tmp.path() / "m");
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  ClassifierOptions options;
  options.hub.signature = "serving_default";
  options.hub.output_key = "y";
  options.num_classes = 2;
  options.image_height = options.image_width = 4;
  auto classifier = ImageClassifier::create(*model, options);
  ASSERT_TRUE(classifier.ok()) << classifier.status().to_string();
  const Tensor x = random_tensor({2, 4, 4, 3}, 9, 0, 1);
  auto features = classifier->features(x);
  ASSERT_TRUE(features.ok()) << features.status().to_string();
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t c = 0; c < 3; ++c) {
      double mean = 0;
      for (int64_t p = 0; p < 16; ++p) mean += x.data<float>()[(b * 16 + p) * 3 + c] / 16.0;
      EXPECT_NEAR(features->data<float>()[b * 3 + c], mean + 1, 1e-5);
    }
  }
  auto published = publish_and_compare(*classifier, x, tmp.path() / "published");
  ASSERT_TRUE(published.has_value());
  for (const auto& f : published->saved_model().graph().library().function()) {
    for (const auto& n : f.node_def()) {
      EXPECT_NE(n.op(), "Switch");
      EXPECT_NE(n.op(), "Merge");
      EXPECT_NE(n.name(), "cond/mul") << "the branch not taken is copied";
    }
  }
}

// `hubimg run` without --signature on a model without __call__ runs serving_default.
TEST(Tf1ControlFlow, RunFromTheCommandLineWithoutASignature) {
  TempDir tmp;
  std::filesystem::create_directories(tmp.path() / "m");
  write_file(tmp.path() / "m" / "saved_model.pbtxt", learning_phase_graph(false, false));
  ASSERT_TRUE(write_npy(tmp.path() / "x.npy", Tensor::from_vector<float>({2}, {1.5f, -2.0f})).ok());
  auto r = hubimg::testing::run_command(hubimg::testing::cli_path().string() + " run " +
                                        (tmp.path() / "m").string() +
                                        " --input x=" + (tmp.path() / "x.npy").string() +
                                        " --output " + (tmp.path() / "out").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("running signature 'serving_default'"), std::string::npos) << r.out;
  auto y = read_npy(tmp.path() / "out" / "y.npy");
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  EXPECT_EQ(y->data<float>()[0], 2.5f);
  EXPECT_EQ(y->data<float>()[1], -1.0f);
}

TEST(Tf1ControlFlow, APredicateFedAtRunTimeIsRefusedByName) {
  TempDir tmp;
  std::filesystem::create_directories(tmp.path() / "m");
  write_file(tmp.path() / "m" / "saved_model.pbtxt", learning_phase_graph(false, true));
  auto model = Model::load(tmp.path() / "m");
  Status s = model.ok() ? model
                              ->call_signature("serving_default",
                                               {{"x", Tensor::from_vector<float>({1}, {1.0f})},
                                                {"phase", Tensor::scalar<bool>(false)}})
                              .status()
                        : model.status();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cond/Switch"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("predicate known only when the graph runs"), std::string::npos)
      << s.message();
}

}  // namespace
}  // namespace hubimg
