// The ops Keras vision-transformer models write that the convolutional families do not: patch
// extraction (tf.image.extract_patches -> ExtractImagePatches, keras.io's ViT example), position
// embeddings (keras.layers.Embedding over a variable -> ResourceGather) and shifted windows
// (tf.roll -> Roll, Swin Transformer). A SavedModel using all three must compute, differentiate,
// fine-tune and publish what plain loops written here from the ops' documented semantics give.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "format/saved_model_writer.h"
#include "hubimg/classifier.h"
#include "hubimg/model.h"
#include "ops/op_registry.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using testing::TempDir;

// 8x8 RGB images cut into 2x2 patches of 4x4 pixels (48 values), projected to 5 features.
constexpr int64_t kSize = 8, kPatch = 4, kGrid = 2, kTokens = 4, kPatchValues = 48, kFeatures = 5;
// The position each token reads from the embedding table: repeated and out of order, so the
// gradient must add up rows and put them in the right place.
const std::vector<int32_t> kPositions = {3, 1, 1, 0};
// Roll of the [batch, 2, 2, features] token grid: one row down, one column left.
const std::vector<int32_t> kShift = {1, -1};

Tensor uniform_tensor(Dims shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  Tensor t(DType::kFloat32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.mutable_data<float>()[i] = dist(rng);
  return t;
}

struct Weights {
  Tensor kernel = uniform_tensor({kPatchValues, kFeatures}, 1);
  Tensor embeddings = uniform_tensor({kTokens, kFeatures}, 2);
  Tensor token_weights = uniform_tensor({kTokens, kFeatures}, 3);  // a constant of the model
};

// __call__(inputs [batch, 8, 8, 3]) -> [batch, 5]:
//   patches = ExtractImagePatches(inputs, 4x4, stride 4, VALID)        [batch, 2, 2, 48]
//   tokens  = Reshape(patches, [-1, 48]) @ kernel -> [batch, 4, 5] + ResourceGather(embeddings,
//             kPositions)
//   rolled  = Roll(Reshape(tokens, [-1, 2, 2, 5]), kShift, axes [1, 2]) -> [batch, 4, 5]
//   output  = Sum(rolled * token_weights, axis 1)
Status write_model(const std::filesystem::path& dir, const Weights& w) {
  using namespace format;
  SavedModelWriter writer(ops::find_op_def);
  HUBIMG_ASSIGN_OR_RETURN(VariableHandle kernel,
                          writer.add_variable({"dense", "kernel"}, "dense/kernel", w.kernel, true));
  HUBIMG_ASSIGN_OR_RETURN(VariableHandle embeddings,
                          writer.add_variable({"pos_embedding", "embeddings"},
                                              "pos_embedding/embeddings", w.embeddings, true));
  const PartialShape image_shape = PartialShape::known({-1, kSize, kSize, 3});
  auto trace = [&]() -> Expected<FunctionSignature> {
    FunctionBuilder f(writer.unique_function_name("__call__"), writer.op_defs());
    const auto x = f.add_input("inputs", DType::kFloat32, image_shape);
    auto ints = [&](Dims shape, const std::vector<int32_t>& values) {
      return f.add_const(Tensor::from_vector<int32_t>(std::move(shape), values));
    };
    const auto patches = f.add("ExtractImagePatches", {x},
                               {{"ksizes", attr::ints({1, kPatch, kPatch, 1})},
                                {"strides", attr::ints({1, kPatch, kPatch, 1})},
                                {"rates", attr::ints({1, 1, 1, 1})},
                                {"padding", attr::str("VALID")}});
    const auto rows = f.add("Reshape", {patches, ints({2}, {-1, kPatchValues})});
    const auto projection =
        f.add("MatMul", {rows, f.read_variable(writer.add_resource_input(f, "dense_kernel", kernel),
                                               "dense/MatMul")});
    const auto tokens = f.add("Reshape", {projection, ints({3}, {-1, kTokens, kFeatures})});
    const auto position =
        f.add("ResourceGather",
              {writer.add_resource_input(f, "embedding_lookup_resource", embeddings),
               ints({kTokens}, kPositions)},
              {{"dtype", attr::type(DType::kFloat32)}}, "pos_embedding/embedding_lookup");
    const auto embedded = f.add("AddV2", {tokens, position});
    const auto grid = f.add("Reshape", {embedded, ints({4}, {-1, kGrid, kGrid, kFeatures})});
    const auto rolled = f.add("Roll", {grid, ints({2}, kShift), ints({2}, {1, 2})});
    const auto flat = f.add("Reshape", {rolled, ints({3}, {-1, kTokens, kFeatures})});
    const auto weighted = f.add("Mul", {flat, f.add_const(w.token_weights)});
    f.add_output(f.add("Sum", {weighted, ints({1}, {1})}));
    return writer.add_function(std::move(f));
  };
  const TensorSpec in{"inputs", DType::kFloat32, image_shape};
  const TensorSpec out{"output_0", DType::kFloat32, PartialShape::known({-1, kFeatures})};
  // No op behaves differently in training: the two traces of __call__ compute the same.
  std::vector<CallTrace> traces;
  for (bool training : {false, true}) {
    HUBIMG_ASSIGN_OR_RETURN(FunctionSignature call, trace());
    traces.push_back({call.name, in, training, {kernel, embeddings}, out});
  }
  HUBIMG_RETURN_IF_ERROR(writer.set_call(std::move(traces)));
  return writer.write(dir);
}

// The same computation as plain loops in double, from the ops' definitions.
std::vector<double> reference(const std::vector<double>& images, int64_t batch,
                              const std::vector<double>& kernel,
                              const std::vector<double>& embeddings, const Tensor& token_weights) {
  std::vector<double> out(static_cast<size_t>(batch * kFeatures), 0.0);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t gy = 0; gy < kGrid; ++gy) {
      for (int64_t gx = 0; gx < kGrid; ++gx) {
        // The token at grid (gy, gx) before the roll ends up at (gy + 1, gx - 1) mod 2.
        const int64_t t = gy * kGrid + gx;
        const int64_t ry = (gy + kShift[0] + kGrid) % kGrid;
        const int64_t rx = (gx + kShift[1] + kGrid) % kGrid;
        const int64_t rolled_t = ry * kGrid + rx;
        for (int64_t f = 0; f < kFeatures; ++f) {
          double token = embeddings[static_cast<size_t>(kPositions[t] * kFeatures + f)];
          for (int64_t i = 0; i < kPatch; ++i) {
            for (int64_t j = 0; j < kPatch; ++j) {
              for (int64_t c = 0; c < 3; ++c) {
                const int64_t y = gy * kPatch + i, x = gx * kPatch + j;
                const int64_t k = (i * kPatch + j) * 3 + c;  // a patch lists (row, col, channel)
                token += images[static_cast<size_t>(((b * kSize + y) * kSize + x) * 3 + c)] *
                         kernel[static_cast<size_t>(k * kFeatures + f)];
              }
            }
          }
          out[static_cast<size_t>(b * kFeatures + f)] +=
              token * token_weights.data<float>()[rolled_t * kFeatures + f];
        }
      }
    }
  }
  return out;
}

std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.num_elements(); ++i) v.push_back(element_as_double(t, i));
  return v;
}

void expect_close(const Tensor& got, const std::vector<double>& want, const std::string& what,
                  double tolerance = 1e-4) {
  ASSERT_EQ(static_cast<size_t>(got.num_elements()), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(element_as_double(got, static_cast<int64_t>(i)), want[i],
                tolerance * (1 + std::abs(want[i])))
        << what << " element " << i;
  }
}

// d/dv sum(cotangent * reference) by central differences over the values of one argument (the
// reference is linear in each, so these are exact up to rounding).
std::vector<double> numeric_gradient(std::vector<double>& values, const std::vector<double>& cot,
                                     const std::function<std::vector<double>()>& forward) {
  std::vector<double> grad(values.size());
  const double h = 1e-3;
  auto loss = [&] {
    const auto y = forward();
    double l = 0;
    for (size_t i = 0; i < y.size(); ++i) l += cot[i] * y[i];
    return l;
  };
  for (size_t i = 0; i < values.size(); ++i) {
    const double keep = values[i];
    values[i] = keep + h;
    const double up = loss();
    values[i] = keep - h;
    const double down = loss();
    values[i] = keep;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

TEST(TransformerOps, PatchesPositionEmbeddingsAndRollAsPlainLoops) {
  TempDir tmp;
  const Weights w;
  ASSERT_TRUE(write_model(tmp.path() / "m", w).ok());
  for (bool optimize : {false, true}) {
    SCOPED_TRACE(optimize ? "optimized" : "as written");
    LoadOptions options;
    options.optimize = optimize;
    auto model = Model::load(tmp.path() / "m", options);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    for (int64_t batch : {1, 3}) {
      const Tensor x = uniform_tensor({batch, kSize, kSize, 3}, 10 + batch, 0.0f, 1.0f);
      auto y = (*model)(x);
      ASSERT_TRUE(y.ok()) << y.status().to_string();
      ASSERT_EQ((*y)[0].shape(), (Dims{batch, kFeatures}));
      expect_close((*y)[0],
                   reference(as_doubles(x), batch, as_doubles(w.kernel), as_doubles(w.embeddings),
                             w.token_weights),
                   "output, batch " + std::to_string(batch));
    }
  }
}

TEST(TransformerOps, GradientsReachTheEmbeddingTableAndThePixels) {
  TempDir tmp;
  const Weights w;
  ASSERT_TRUE(write_model(tmp.path() / "m", w).ok());
  auto model = Model::load(tmp.path() / "m");
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  const int64_t batch = 2;
  const Tensor x = uniform_tensor({batch, kSize, kSize, 3}, 20, 0.0f, 1.0f);
  const Tensor cotangent = uniform_tensor({batch, kFeatures}, 21);
  GradientTargets targets;
  targets.cotangents["output_0"] = cotangent;
  auto g = model->gradients({{"inputs", x}}, targets);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_EQ(model->trainable_variables().size(), 2u);
  ASSERT_EQ(g->gradients.size(), 2u);

  std::vector<double> images = as_doubles(x), kernel = as_doubles(w.kernel),
                      embeddings = as_doubles(w.embeddings);
  const std::vector<double> cot = as_doubles(cotangent);
  auto forward = [&] { return reference(images, batch, kernel, embeddings, w.token_weights); };
  for (size_t v = 0; v < 2; ++v) {
    const std::string name = model->trainable_variables()[v]->name();
    const bool is_kernel = name == "dense/kernel";
    ASSERT_TRUE(is_kernel || name == "pos_embedding/embeddings") << name;
    expect_close(g->gradients[v], numeric_gradient(is_kernel ? kernel : embeddings, cot, forward),
                 "gradient of " + name);
  }
  // Embedding row 2 is read by no token: its gradient is exactly zero; row 1 by two tokens.
  const float* d_embeddings =
      g->gradients[model->trainable_variables()[0]->name() == "dense/kernel" ? 1 : 0].data<float>();
  for (int64_t f = 0; f < kFeatures; ++f) EXPECT_EQ(d_embeddings[2 * kFeatures + f], 0.0f);
  ASSERT_EQ(g->input_gradients.count("inputs"), 1u);
  expect_close(g->input_gradients.at("inputs"), numeric_gradient(images, cot, forward),
               "gradient of the images");
}

TEST(TransformerOps, FineTunedClassifierPublishesTheOpsAndReloads) {
  TempDir tmp;
  ASSERT_TRUE(write_model(tmp.path() / "base", Weights{}).ok());
  auto base = Model::load(tmp.path() / "base");
  ASSERT_TRUE(base.ok()) << base.status().to_string();
  ClassifierOptions options;
  options.hub.trainable = true;
  options.num_classes = 3;
  options.image_height = kSize;
  options.image_width = kSize;
  options.optimizer.learning_rate = LearningRateSchedule::constant(0.1);
  auto classifier = ImageClassifier::create(*base, options);
  ASSERT_TRUE(classifier.ok()) << classifier.status().to_string();
  const Variable* embeddings = nullptr;
  for (const Variable* v : classifier->base().trainable_variables()) {
    if (v->name() == "pos_embedding/embeddings") embeddings = v;
  }
  ASSERT_NE(embeddings, nullptr);
  const Tensor before = embeddings->value().clone();
  Tensor labels(DType::kInt64, {4});
  for (int64_t i = 0; i < 4; ++i) labels.mutable_data<int64_t>()[i] = i % 3;
  for (int step = 0; step < 2; ++step) {
    auto m = classifier->train_step(uniform_tensor({4, kSize, kSize, 3}, 30 + step, 0, 1), labels);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
  }
  // Fine-tuning moved the embedding rows tokens read, and not row 2, which none reads.
  const Tensor& after = embeddings->value();
  double moved = 0;
  for (int64_t f = 0; f < kFeatures; ++f) {
    EXPECT_EQ(after.data<float>()[2 * kFeatures + f], before.data<float>()[2 * kFeatures + f]);
    moved += std::abs(after.data<float>()[f] - before.data<float>()[f]);
  }
  EXPECT_GT(moved, 0.0);

  const Tensor images = uniform_tensor({3, kSize, kSize, 3}, 40, 0, 1);
  auto logits = classifier->logits(images);
  ASSERT_TRUE(logits.ok()) << logits.status().to_string();
  const auto out = tmp.path() / "published";
  ASSERT_TRUE(classifier->publish(out, {"a", "b", "c"}).ok());
  auto published = Model::load(out);
  ASSERT_TRUE(published.ok()) << published.status().to_string();
  auto reloaded = (*published)(images);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().to_string();
  expect_close((*reloaded)[0], as_doubles(*logits), "published logits", 1e-6);
  // The base's own function is what was published: the three ops are in the written graph.
  const std::string graph = testing::read_file(out / "saved_model.pb");
  for (const char* op : {"ExtractImagePatches", "ResourceGather", "Roll"}) {
    EXPECT_NE(graph.find(op), std::string::npos) << op;
  }
}

}  // namespace
}  // namespace hubimg
