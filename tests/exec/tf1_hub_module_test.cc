// TF1 graphs with reference variables (VariableV2: tf.compat.v1, TF-Slim) in the TF1 Hub format
// (hub.Module exports: a "train" and an untagged meta graph, signatures "default" and
// "image_feature_vector", tfhub_module.pb). The module is written here as TensorFlow lays it
// out; the expected features are computed in this file with plain loops.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "format/tensor_bundle.h"
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
  auto logits = classifier->logits(x);
  ASSERT_TRUE(logits.ok()) << logits.status().to_string();
  Status s = classifier->publish(tmp.path() / "published", {"a", "b"});
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto published = Model::load(tmp.path() / "published");
  ASSERT_TRUE(published.ok()) << published.status().to_string();
  auto reloaded = (*published)(x);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().to_string();
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_NEAR((*reloaded)[0].data<float>()[i], logits->data<float>()[i], 1e-6) << i;
  }
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

}  // namespace
}  // namespace hubimg
