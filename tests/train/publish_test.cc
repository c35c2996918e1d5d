// publish_classifier: a retrained classifier (base hub model + Dropout + Dense head) written as
// a Reusable SavedModel from the base's own FunctionDefs, reloaded and checked against the base
// model and the head computed here.
#include "train/publish.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <regex>
#include <set>

#include "format/saved_model.h"
#include "graph.pb.h"
#include "hubimg/classifier.h"
#include "hubimg/model.h"
#include "saved_model.pb.h"
#include "util/test_util.h"
#include "zoo/zoo.h"

namespace hubimg::train {
namespace {

using hubimg::testing::TempDir;

Tensor random_tensor(Dims shape, uint64_t seed, float lo = 0.0f, float hi = 1.0f) {
  Tensor t(DType::kFloat32, std::move(shape));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.mutable_data<float>()[i] = u(rng);
  return t;
}

Variable* find_variable(const Model& m, const std::string& name) {
  for (Variable* v : m.variables()) {
    if (v->name() == name) return v;
  }
  return nullptr;
}

// features [b, F] x kernel [F, C] + bias [C], in double.
std::vector<double> head(const Tensor& features, const Tensor& kernel, const Tensor& bias) {
  const int64_t b = features.shape()[0], f = features.shape()[1], c = kernel.shape()[1];
  std::vector<double> out(static_cast<size_t>(b * c));
  for (int64_t i = 0; i < b; ++i)
    for (int64_t j = 0; j < c; ++j) {
      double acc = bias.data<float>()[j];
      for (int64_t k = 0; k < f; ++k)
        acc += static_cast<double>(features.data<float>()[i * f + k]) *
               kernel.data<float>()[k * c + j];
      out[static_cast<size_t>(i * c + j)] = acc;
    }
  return out;
}

std::filesystem::path export_tiny_base(const TempDir& tmp) {
  zoo::ZooOptions o;
  o.feature_vector = true;
  o.input_size = -1;
  o.momentum_argument = true;
  o.l2 = 4e-5;
  o.write_manifest = false;
  const auto dir = tmp.path() / "base";
  auto s = zoo::write_zoo_model("tiny_cnn", dir, o);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return dir;
}

TEST(Publish, ClassifierOnAnExportedFeatureVector) {
  TempDir tmp;
  const auto base_dir = export_tiny_base(tmp);
  auto base = Model::load(base_dir);
  ASSERT_TRUE(base.ok()) << base.status().to_string();

  // "Retrained" base: one variable changed, as the trainer would hand it over.
  Tensor new_kernel =
      random_tensor(find_variable(*base, "conv2d/kernel")->value().shape(), 3, -0.3f, 0.3f);
  find_variable(*base, "conv2d/kernel")->assign(new_kernel);
  const Tensor images = random_tensor({3, 16, 16, 3}, 5);
  auto features = (*base)(images);
  ASSERT_TRUE(features.ok()) << features.status().to_string();
  ASSERT_EQ((*features)[0].shape(), (Dims{3, 32}));

  PublishRequest req;
  req.base_model = base_dir;
  req.base_variables["conv2d/kernel"] = new_kernel;
  req.base_trainable = true;
  req.base_arguments["batch_norm_momentum"] = 0.9;
  req.head_kernel = random_tensor({32, 3}, 7, -0.5f, 0.5f);
  req.head_bias = random_tensor({3}, 8, -0.1f, 0.1f);
  req.dropout_rate = 0.5f;
  req.head_l2 = 1e-3;
  req.labels = {"cat", "dog", "bird"};
  req.image_height = 16;
  req.image_width = 16;
  const auto out_dir = tmp.path() / "published";
  Status s = publish_classifier(req, out_dir);
  ASSERT_TRUE(s.ok()) << s.to_string();

  auto m = Model::load(out_dir);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_TRUE(m->load_warnings().empty()) << m->load_warnings()[0];
  auto logits = (*m)(images);
  ASSERT_TRUE(logits.ok()) << logits.status().to_string();
  ASSERT_EQ((*logits)[0].shape(), (Dims{3, 3}));
  const auto expected = head((*features)[0], req.head_kernel, req.head_bias);
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR((*logits)[0].data<float>()[i], expected[i], 1e-5 * (1 + std::abs(expected[i])));

  // serving_default: softmax probabilities of those logits.
  EXPECT_EQ(m->signature_input_specs("serving_default")[0].shape.to_string(), "[-1, 16, 16, 3]");
  auto probs = m->call_signature("serving_default", {{"inputs", images}});
  ASSERT_TRUE(probs.ok()) << probs.status().to_string();
  const Tensor& p = probs->at("dense");
  for (int i = 0; i < 3; ++i) {
    double sum = 0, denom = 0;
    for (int j = 0; j < 3; ++j) {
      sum += p.data<float>()[i * 3 + j];
      denom += std::exp(expected[i * 3 + j]);
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
    for (int j = 0; j < 3; ++j)
      EXPECT_NEAR(p.data<float>()[i * 3 + j], std::exp(expected[i * 3 + j]) / denom, 1e-6);
  }

  // Variables: the base's (trainable: fine-tuned) then the head.
  EXPECT_EQ(m->variables().size(), base->variables().size() + 2);
  EXPECT_EQ(m->trainable_variables().size(), base->trainable_variables().size() + 2);
  EXPECT_EQ(m->trainable_variables().back()->name(), "dense/bias");
  EXPECT_EQ(std::memcmp(find_variable(*m, "conv2d/kernel")->value().raw_data(),
                        new_kernel.raw_data(), new_kernel.byte_size()),
            0);

  // Regularization losses: the base's three conv kernels, then the head's L2.
  auto losses = m->regularization_losses();
  ASSERT_TRUE(losses.ok()) << losses.status().to_string();
  ASSERT_EQ(losses->size(), 4u);
  auto l2 = [](const Tensor& t, double factor) {
    double s = 0;
    for (int64_t i = 0; i < t.num_elements(); ++i)
      s += double(t.data<float>()[i]) * t.data<float>()[i];
    return factor * s;
  };
  const double first = l2(new_kernel, 4e-5);
  EXPECT_NEAR((*losses)[0].data<float>()[0], first, 1e-5 * first);
  const double last = l2(req.head_kernel, 1e-3);
  EXPECT_NEAR((*losses)[3].data<float>()[0], last, 1e-5 * last);

  // Labels asset: the file and its place in the object graph and asset_file_def.
  EXPECT_EQ(hubimg::testing::read_file(out_dir / "assets" / "labels.txt"), "cat\ndog\nbird\n");
  const auto& meta = m->saved_model().meta_graph();
  ASSERT_EQ(meta.asset_file_def_size(), 1);
  EXPECT_EQ(meta.asset_file_def(0).filename(), "labels.txt");
  int assets = 0;
  for (const auto& n : meta.object_graph_def().nodes()) assets += n.has_asset();
  EXPECT_EQ(assets, 1);

  // Training trace: dropout makes it differ from inference; moving statistics move with the
  // momentum baked in (0.9): moving' = 0.9 moving + 0.1 batch.
  Variable* mm = find_variable(*m, "batch_normalization/moving_mean");
  ASSERT_NE(mm, nullptr);
  const Tensor before = mm->value();
  CallOptions training;
  training.training = true;
  auto t = (*m)(images, training);
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  ASSERT_EQ((*t)[0].shape(), (Dims{3, 3}));
  double diff = 0;
  for (int i = 0; i < 9; ++i)
    diff += std::abs((*t)[0].data<float>()[i] - (*logits)[0].data<float>()[i]);
  EXPECT_GT(diff, 1e-4);
  double moved = 0;
  for (int64_t i = 0; i < before.num_elements(); ++i)
    moved += std::abs(mm->value().data<float>()[i] - before.data<float>()[i]);
  EXPECT_GT(moved, 1e-6);

  // Same batch statistic from the base at momentum 0.9 gives the same new moving mean.
  CallOptions base_training;
  base_training.training = true;
  base_training.arguments["batch_norm_momentum"] = Tensor::scalar(0.9f);
  ASSERT_TRUE((*base)(images, base_training).ok());
  const Tensor& base_after = find_variable(*base, "batch_normalization/moving_mean")->value();
  for (int64_t i = 0; i < before.num_elements(); ++i)
    EXPECT_NEAR(mm->value().data<float>()[i], base_after.data<float>()[i], 1e-5);
}

// The library's own path from a trained ImageClassifier to a SavedModel (what `hubimg retrain`
// calls): a fine-tuned base with a hyperparameter argument, reloaded, gives the in-memory
// classifier's outputs; the bytes are the same when published twice; class names default to the
// label numbers.
TEST(Publish, ImageClassifierPublishesWhatItComputes) {
  TempDir tmp;
  auto base = Model::load(export_tiny_base(tmp));
  ASSERT_TRUE(base.ok()) << base.status().to_string();
  ClassifierOptions options;
  options.hub.trainable = true;
  options.hub.arguments["batch_norm_momentum"] = Tensor::scalar<float>(0.9f);
  options.num_classes = 3;
  options.image_height = 16;
  options.image_width = 16;
  options.dropout_rate = 0.3;
  options.l2 = 1e-3;
  options.optimizer.learning_rate = LearningRateSchedule::constant(0.05);
  auto classifier = ImageClassifier::create(*base, options);
  ASSERT_TRUE(classifier.ok()) << classifier.status().to_string();
  Tensor labels(DType::kInt64, {4});
  for (int64_t i = 0; i < 4; ++i) labels.mutable_data<int64_t>()[i] = i % 3;
  for (int step = 0; step < 3; ++step) {
    auto m = classifier->train_step(random_tensor({4, 16, 16, 3}, 20 + step), labels);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
  }
  const Tensor images = random_tensor({3, 16, 16, 3}, 9);
  auto logits = classifier->logits(images);
  ASSERT_TRUE(logits.ok()) << logits.status().to_string();

  const auto out = tmp.path() / "published";
  ASSERT_TRUE(classifier->publish(out, {"cat", "dog", "bird"}).ok());
  auto m = Model::load(out);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto reloaded = (*m)(images);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().to_string();
  ASSERT_EQ((*reloaded)[0].shape(), (Dims{3, 3}));
  for (int64_t i = 0; i < 9; ++i) {
    const float want = logits->data<float>()[i];
    EXPECT_NEAR((*reloaded)[0].data<float>()[i], want, 1e-6 * (1 + std::abs(want))) << i;
  }
  // Fine-tuned: the base's variables are trainable in the published model, with their new values.
  EXPECT_EQ(m->trainable_variables().size(), classifier->trainable_variables().size());
  const Variable* trained = find_variable(classifier->base(), "conv2d/kernel");
  const Variable* written = find_variable(*m, "conv2d/kernel");
  ASSERT_TRUE(trained != nullptr && written != nullptr);
  const auto trained_values = trained->value().values<float>();
  const auto written_values = written->value().values<float>();
  EXPECT_TRUE(std::equal(trained_values.begin(), trained_values.end(), written_values.begin(),
                         written_values.end()));
  auto names = read_labels(m->labels_file());
  ASSERT_TRUE(names.ok()) << names.status().to_string();
  EXPECT_EQ(*names, (std::vector<std::string>{"cat", "dog", "bird"}));

  const auto again = tmp.path() / "again";
  ASSERT_TRUE(classifier->publish(again, {"cat", "dog", "bird"}).ok());
  for (const char* file : {"saved_model.pb", "variables/variables.index",
                           "variables/variables.data-00000-of-00001", "assets/labels.txt"}) {
    EXPECT_EQ(testing::read_file(out / file), testing::read_file(again / file)) << file;
  }

  const auto numbered = tmp.path() / "numbered";
  ASSERT_TRUE(classifier->publish(numbered).ok());
  auto numbered_model = Model::load(numbered);
  ASSERT_TRUE(numbered_model.ok()) << numbered_model.status().to_string();
  EXPECT_EQ(*read_labels(numbered_model->labels_file()), (std::vector<std::string>{"0", "1", "2"}));
}

// A base loaded from a zip (as model hubs serve them) publishes like a folder, and errors name
// the zip the user gave, not the private folder it was extracted to.
TEST(Publish, ImageClassifierOverAnArchivedBase) {
  TempDir tmp;
  const auto zip = tmp.path() / "base.zip";
  testing::write_zip(zip, testing::archive_files_below(export_tiny_base(tmp), "base/"));
  auto base = Model::load(zip);
  ASSERT_TRUE(base.ok()) << base.status().to_string();
  ClassifierOptions options;
  options.num_classes = 2;
  options.image_height = 16;
  options.image_width = 16;
  auto classifier = ImageClassifier::create(*base, options);
  ASSERT_TRUE(classifier.ok()) << classifier.status().to_string();

  Status wrong = classifier->publish(tmp.path() / "wrong", {"a", "b", "c"});
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.message().find(zip.string() + ": 3"), std::string::npos) << wrong.message();
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "wrong"));

  ASSERT_TRUE(classifier->publish(tmp.path() / "out", {"a", "b"}).ok());
  auto m = Model::load(tmp.path() / "out");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Tensor images = random_tensor({2, 16, 16, 3}, 5);
  auto logits = classifier->logits(images);
  auto reloaded = (*m)(images);
  ASSERT_TRUE(logits.ok() && reloaded.ok());
  for (int64_t i = 0; i < 4; ++i) {
    const float want = logits->data<float>()[i];
    EXPECT_NEAR((*reloaded)[0].data<float>()[i], want, 1e-6 * (1 + std::abs(want))) << i;
  }
}

TEST(Publish, FrozenBaseAndRefusals) {
  TempDir tmp;
  const auto base_dir = export_tiny_base(tmp);
  PublishRequest req;
  req.base_model = base_dir;
  req.head_kernel = random_tensor({32, 2}, 1);
  req.head_bias = random_tensor({2}, 2);
  req.labels = {"a", "b"};
  ASSERT_TRUE(publish_classifier(req, tmp.path() / "out").ok());
  auto m = Model::load(tmp.path() / "out");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  ASSERT_EQ(m->trainable_variables().size(), 2u);  // only the head
  auto losses = m->regularization_losses();
  ASSERT_TRUE(losses.ok());
  EXPECT_EQ(losses->size(), 3u);  // the base's; no head L2
  // Unknown size kept from the base: any input size runs.
  auto out = (*m)(random_tensor({1, 24, 24, 3}, 4));
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].shape(), (Dims{1, 2}));

  // The output exists and is not empty: refused, left as it was.
  auto again = publish_classifier(req, tmp.path() / "out");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.message().find("not empty"), std::string::npos) << again.message();
  // Bad heads and unknown variables: errors, nothing written.
  PublishRequest bad = req;
  bad.head_kernel = random_tensor({31, 2}, 1);
  EXPECT_FALSE(publish_classifier(bad, tmp.path() / "bad1").ok());
  bad = req;
  bad.labels = {"only one"};
  EXPECT_FALSE(publish_classifier(bad, tmp.path() / "bad2").ok());
  bad = req;
  bad.base_variables["no/such/variable"] = random_tensor({1}, 1);
  auto r = publish_classifier(bad, tmp.path() / "bad3");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("no/such/variable"), std::string::npos);
  bad = req;
  bad.base_variables["conv2d/kernel"] = random_tensor({2, 2}, 1);
  EXPECT_FALSE(publish_classifier(bad, tmp.path() / "bad4").ok());
  for (const char* d : {"bad1", "bad2", "bad3", "bad4"})
    EXPECT_FALSE(std::filesystem::exists(tmp.path() / d)) << d;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

// hub.KerasLayer(signature=...): the hub layer calls a signature instead of __call__. On a zoo
// model the serving_default signature computes the inference __call__'s features, so the two
// classifiers agree; the published one calls the signature's function in both traces.
TEST(Publish, ImageClassifierOverASignature) {
  TempDir tmp;
  auto base = Model::load(export_tiny_base(tmp));
  ASSERT_TRUE(base.ok()) << base.status().to_string();
  ClassifierOptions options;
  options.num_classes = 3;
  options.image_height = options.image_width = 16;
  options.dropout_rate = 0.25;
  options.l2 = 1e-3;
  options.seed = 11;
  auto over_call = ImageClassifier::create(*base, options);
  options.hub.signature = "serving_default";
  auto over_signature = ImageClassifier::create(*base, options);
  ASSERT_TRUE(over_call.ok()) << over_call.status().to_string();
  ASSERT_TRUE(over_signature.ok()) << over_signature.status().to_string();
  EXPECT_EQ(over_signature->num_features(), over_call->num_features());
  Tensor labels(DType::kInt64, {4});
  for (int64_t i = 0; i < 4; ++i) labels.mutable_data<int64_t>()[i] = i % 3;
  for (int step = 0; step < 3; ++step) {
    const Tensor images = random_tensor({4, 16, 16, 3}, 40 + step);
    auto a = over_call->train_step(images, labels);
    auto b = over_signature->train_step(images, labels);
    ASSERT_TRUE(a.ok() && b.ok()) << (a.ok() ? b.status() : a.status()).to_string();
    EXPECT_NEAR(a->loss, b->loss, 1e-5 * (1 + std::abs(a->loss))) << step;
  }
  const Tensor images = random_tensor({3, 16, 16, 3}, 9);
  auto logits = over_signature->logits(images);
  auto want = over_call->logits(images);
  ASSERT_TRUE(logits.ok() && want.ok());
  for (int64_t i = 0; i < 9; ++i)
    EXPECT_NEAR(logits->data<float>()[i], want->data<float>()[i], 1e-5) << i;

  const auto out = tmp.path() / "published";
  Status s = over_signature->publish(out, {"a", "b", "c"});
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto m = Model::load(out);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  for (bool training : {false, true}) {
    CallOptions call;
    call.training = training;
    auto reloaded = (*m)(images, call);
    ASSERT_TRUE(reloaded.ok()) << reloaded.status().to_string();
    ASSERT_EQ((*reloaded)[0].shape(), (Dims{3, 3}));
    if (training) continue;  // dropout
    for (int64_t i = 0; i < 9; ++i) {
      const float w = logits->data<float>()[i];
      EXPECT_NEAR((*reloaded)[0].data<float>()[i], w, 1e-6 * (1 + std::abs(w))) << i;
    }
  }
  auto probabilities = m->call_signature("serving_default", {{"inputs", images}});
  ASSERT_TRUE(probabilities.ok()) << probabilities.status().to_string();
  for (int64_t i = 0; i < 3; ++i) {
    double total = 0;
    for (int64_t j = 0; j < 3; ++j) total += std::exp(logits->data<float>()[i * 3 + j]);
    for (int64_t j = 0; j < 3; ++j) {
      EXPECT_NEAR(probabilities->at("dense").data<float>()[i * 3 + j],
                  std::exp(logits->data<float>()[i * 3 + j]) / total, 1e-6);
    }
  }
  // Frozen: only the head trains; a signature brings no regularization losses (the head's L2
  // is the one left).
  EXPECT_EQ(m->trainable_variables().size(), 2u);
  auto losses = m->regularization_losses();
  ASSERT_TRUE(losses.ok()) << losses.status().to_string();
  EXPECT_EQ(losses->size(), 1u);
  // The base's signature function is in the published library, unchanged.
  const auto& sig = base->saved_model().signatures().at("serving_default");
  ASSERT_TRUE(sig.function);
  const auto* copied = m->saved_model().function(sig.function->name);
  ASSERT_NE(copied, nullptr);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      *copied, *base->saved_model().function(sig.function->name)));
}

TEST(Publish, ImageClassifierOverASignatureRefusals) {
  TempDir tmp;
  auto base = Model::load(export_tiny_base(tmp));
  ASSERT_TRUE(base.ok()) << base.status().to_string();
  ClassifierOptions options;
  options.num_classes = 2;
  options.image_height = options.image_width = 16;
  options.hub.signature = "serving_defualt";
  auto unknown = ImageClassifier::create(*base, options);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("no signature 'serving_defualt' (signatures: "
                                            "serving_default)"),
            std::string::npos)
      << unknown.status().message();
  options.hub.signature = "serving_default";
  options.hub.trainable = true;
  auto trainable = ImageClassifier::create(*base, options);
  ASSERT_FALSE(trainable.ok());
  EXPECT_NE(trainable.status().message().find("cannot be trainable"), std::string::npos)
      << trainable.status().message();
  options.hub.trainable = false;
  options.hub.arguments["batch_norm_momentum"] = Tensor::scalar<float>(0.9f);
  auto arguments = ImageClassifier::create(*base, options);
  ASSERT_FALSE(arguments.ok());
  EXPECT_NE(arguments.status().message().find("takes only the images"), std::string::npos)
      << arguments.status().message();
}

// Models without __call__: a Keras 3 export (its signature's function is copied) and a TF1
// graph (its signature's nodes are converted to a function).
TEST(Publish, ImageClassifierOverSignaturesOfTensorFlowWrittenModels) {
  HUBIMG_REQUIRE_SHARED();
  const auto keras3 = hubimg::testing::real_fixture("intel_cnn_keras3_tf218/saved_model");
  auto base = Model::load(keras3);
  ASSERT_TRUE(base.ok()) << base.status().to_string();
  ASSERT_FALSE(base->has_call());
  ClassifierOptions options;
  options.num_classes = 2;
  options.image_height = options.image_width = 150;
  auto no_call = ImageClassifier::create(*base, options);
  ASSERT_FALSE(no_call.ok());
  EXPECT_NE(no_call.status().message().find("no __call__; call one of its signatures (serve, "
                                            "serving_default)"),
            std::string::npos)
      << no_call.status().message();
  options.hub.signature = "serving_default";
  auto classifier = ImageClassifier::create(*base, options);
  ASSERT_TRUE(classifier.ok()) << classifier.status().to_string();
  const Tensor images = random_tensor({2, 150, 150, 3}, 3, 0.0f, 255.0f);
  auto features = base->call_signature("serving_default", {{"keras_tensor_182", images}});
  ASSERT_TRUE(features.ok()) << features.status().to_string();
  const Tensor& f = features->at("output_0");
  const auto expected = head(f, classifier->kernel().value(), classifier->bias().value());
  TempDir tmp;
  Status s = classifier->publish(tmp.path() / "out", {"x", "y"});
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto m = Model::load(tmp.path() / "out");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto logits = (*m)(images);
  ASSERT_TRUE(logits.ok()) << logits.status().to_string();
  ASSERT_EQ((*logits)[0].num_elements(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR((*logits)[0].data<float>()[i], expected[i], 1e-5 * (1 + std::abs(expected[i])));

  auto tf1 = Model::load(hubimg::testing::real_fixture("tm_mobilenetv2_035_tf115/saved_model"));
  ASSERT_TRUE(tf1.ok()) << tf1.status().to_string();
  options.image_height = options.image_width = 224;
  auto over_graph = ImageClassifier::create(*tf1, options);
  ASSERT_TRUE(over_graph.ok()) << over_graph.status().to_string();
  EXPECT_EQ(over_graph->num_features(), 2);
  // The TF1 signature's graph nodes become a function of the published model.
  const Tensor tf1_images = random_tensor({2, 224, 224, 3}, 4, -1.0f, 1.0f);
  auto tf1_logits = over_graph->logits(tf1_images);
  ASSERT_TRUE(tf1_logits.ok()) << tf1_logits.status().to_string();
  Status published = over_graph->publish(tmp.path() / "tf1");
  ASSERT_TRUE(published.ok()) << published.to_string();
  auto tf1_model = Model::load(tmp.path() / "tf1");
  ASSERT_TRUE(tf1_model.ok()) << tf1_model.status().to_string();
  EXPECT_EQ(tf1_model->variables().size(), tf1->variables().size() + 2);
  auto tf1_reloaded = (*tf1_model)(tf1_images);
  ASSERT_TRUE(tf1_reloaded.ok()) << tf1_reloaded.status().to_string();
  for (int64_t i = 0; i < 4; ++i) {
    const float w = tf1_logits->data<float>()[i];
    EXPECT_NEAR((*tf1_reloaded)[0].data<float>()[i], w, 1e-5 * (1 + std::abs(w))) << i;
  }
}

// A TF-written Keras model as the base: its __call__ FunctionDefs are copied as they are.
TEST(Publish, ClassifierOnATensorFlowWrittenModel) {
  HUBIMG_REQUIRE_SHARED();
  const auto base_dir = hubimg::testing::real_fixture("mnist_cnn_tf231/saved_model");
  auto base = Model::load(base_dir);
  ASSERT_TRUE(base.ok()) << base.status().to_string();
  const auto spec = base->call_input_specs()[0];
  Dims shape = spec.shape.dims;
  shape[0] = 2;
  const Tensor images = random_tensor(shape, 12);
  auto features = (*base)(images);
  ASSERT_TRUE(features.ok()) << features.status().to_string();
  const int64_t f = (*features)[0].shape()[1];

  TempDir tmp;
  PublishRequest req;
  req.base_model = base_dir;
  req.head_kernel = random_tensor({f, 4}, 13, -1.0f, 1.0f);
  req.head_bias = random_tensor({4}, 14);
  req.labels = {"w", "x", "y", "z"};
  Status s = publish_classifier(req, tmp.path() / "out");
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto m = Model::load(tmp.path() / "out");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto logits = (*m)(images);
  ASSERT_TRUE(logits.ok()) << logits.status().to_string();
  const auto expected = head((*features)[0], req.head_kernel, req.head_bias);
  ASSERT_EQ((*logits)[0].num_elements(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR((*logits)[0].data<float>()[i], expected[i], 1e-5 * (1 + std::abs(expected[i])));
  CallOptions training;
  training.training = true;
  auto t = (*m)(images, training);
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(m->variables().size(), base->variables().size() + 2);

  // Every FunctionDef of the base's __call__ is in the published library, unchanged.
  const auto& base_saved = base->saved_model();
  std::vector<std::string> roots;
  for (const auto& cf : base_saved.root_call()->concrete_functions) roots.push_back(cf.name);
  for (const auto& name : base_saved.reachable_functions(roots)) {
    const auto* mine = m->saved_model().function(name);
    ASSERT_NE(mine, nullptr) << name;
    EXPECT_TRUE(
        google::protobuf::util::MessageDifferencer::Equals(*mine, *base_saved.function(name)))
        << name;
  }
}

// The object graph and naming follow what TensorFlow writes.
TEST(Publish, LayoutMatchesTensorFlowWrittenModels) {
  HUBIMG_REQUIRE_SHARED();
  auto tf_model =
      format::SavedModel::load(hubimg::testing::real_fixture("mnist_cnn_tf231/saved_model"));
  ASSERT_TRUE(tf_model.ok()) << tf_model.status().to_string();
  TempDir tmp;
  const auto base_dir = export_tiny_base(tmp);
  PublishRequest req;
  req.base_model = base_dir;
  req.head_kernel = random_tensor({32, 2}, 1);
  req.head_bias = random_tensor({2}, 2);
  req.labels = {"a", "b"};
  req.head_l2 = 1e-4;
  ASSERT_TRUE(publish_classifier(req, tmp.path() / "out").ok());
  auto ours = format::SavedModel::load(tmp.path() / "out");
  ASSERT_TRUE(ours.ok()) << ours.status().to_string();

  auto root_children = [](const format::SavedModel& s) {
    std::map<std::string, tf::SavedObject::KindCase> out;
    const auto& g = s.meta_graph().object_graph_def();
    for (const auto& c : g.nodes(0).children())
      out[c.local_name()] = g.nodes(c.node_id()).kind_case();
    return out;
  };
  const auto theirs_root = root_children(**tf_model);
  const auto ours_root = root_children(**ours);
  for (const char* name :
       {"__call__", "signatures", "variables", "trainable_variables", "regularization_losses"}) {
    ASSERT_TRUE(theirs_root.count(name)) << "TF fixture lacks " << name;
    ASSERT_TRUE(ours_root.count(name)) << name;
    EXPECT_EQ(ours_root.at(name), theirs_root.at(name)) << name;
  }
  const std::regex inference("__inference_.+_[0-9]+");
  for (const auto& s : {*tf_model, *ours}) {
    for (const auto& cf : s->root_call()->concrete_functions)
      EXPECT_TRUE(std::regex_match(cf.name, inference)) << cf.name;
    for (const auto& [key, sig] : s->signatures())
      EXPECT_TRUE(std::regex_match(sig.function->name, inference)) << sig.function->name;
    for (const auto& v : s->variables())
      EXPECT_TRUE(v.checkpoint_key.ends_with("/.ATTRIBUTES/VARIABLE_VALUE")) << v.checkpoint_key;
    // The saver functions TensorFlow's C++ loader runs.
    EXPECT_TRUE(s->meta_graph().has_saver_def());
    EXPECT_EQ(s->meta_graph().saver_def().version(), 2);
  }
  std::set<std::string> keys;
  for (const auto& v : (*ours)->variables()) keys.insert(v.checkpoint_key);
  EXPECT_TRUE(keys.count("layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE"));
  // Base variables are reached first through root.variables (breadth-first, as TensorFlow
  // names checkpoint keys).
  EXPECT_TRUE(keys.count("variables/0/.ATTRIBUTES/VARIABLE_VALUE"));
  // Both traces of __call__, with a `training` argument, as Keras writes them.
  std::set<bool> modes;
  for (const auto& cf : (*ours)->root_call()->concrete_functions) modes.insert(cf.training.value());
  EXPECT_EQ(modes, (std::set<bool>{false, true}));
  EXPECT_EQ((*ours)->regularization_losses().size(), 4u);
}

}  // namespace
}  // namespace hubimg::train
