// `hubimg export` and the model zoo as Reusable SavedModels: feature vectors of any input size,
// the batch_norm_momentum hyperparameter in the training trace, L2 regularization losses, alpha,
// seeds, and the CLI's contract.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <span>

#include "format/saved_model.h"
#include "hubimg/image.h"
#include "hubimg/model.h"
#include "hubimg/npy.h"
#include "util/test_util.h"
#include "zoo/zoo.h"

namespace hubimg::zoo {
namespace {

using hubimg::testing::random_images;
using hubimg::testing::TempDir;

ZooOptions export_options(double alpha = 1.0) {
  ZooOptions o;
  o.alpha = alpha;
  o.feature_vector = true;
  o.input_size = -1;
  o.momentum_argument = true;
  o.l2 = 4e-5;
  o.write_manifest = false;
  return o;
}

const Variable* find_variable(const Model& m, const std::string& name) {
  for (const Variable* v : m.variables()) {
    if (v->name() == name) return v;
  }
  return nullptr;
}

struct ArchCase {
  const char* arch;
  double alpha;
  int64_t features;
};

class ExportedFeatureVector : public ::testing::TestWithParam<ArchCase> {};

TEST_P(ExportedFeatureVector, AnyInputSizeGivesBatchByFeatures) {
  const ArchCase& c = GetParam();
  TempDir tmp;
  auto summary = write_zoo_model(c.arch, tmp.path() / "m", export_options(c.alpha));
  ASSERT_TRUE(summary.ok()) << summary.status().to_string();
  EXPECT_EQ(summary->num_outputs, c.features);
  EXPECT_EQ(summary->input_shape, (std::vector<int64_t>{-1, -1, -1, 3}));
  auto model = Model::load(tmp.path() / "m");
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  ASSERT_EQ(model->call_input_specs().size(), 2u);  // inputs, batch_norm_momentum
  EXPECT_EQ(model->call_input_specs()[0].shape.to_string(), "[-1, -1, -1, 3]");
  for (int64_t size : {32, 48}) {
    auto out = (*model)(random_images(2, size, 7));
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    ASSERT_EQ(out->size(), 1u);
    EXPECT_EQ((*out)[0].shape(), (Dims{2, c.features})) << c.arch << " at " << size;
    for (int64_t i = 0; i < (*out)[0].num_elements(); ++i)
      ASSERT_TRUE(std::isfinite((*out)[0].data<float>()[i]));
  }
  // The serving signature runs the same network.
  auto sig = model->call_signature("serving_default", {{"input_1", random_images(1, 40, 3)}});
  ASSERT_TRUE(sig.ok()) << sig.status().to_string();
  EXPECT_EQ(sig->begin()->second.shape(), (Dims{1, c.features}));
}

INSTANTIATE_TEST_SUITE_P(Zoo, ExportedFeatureVector,
                         ::testing::Values(ArchCase{"mobilenet_v2", 0.35, 1280},
                                           ArchCase{"efficientnet_b0", 1.0, 1280},
                                           ArchCase{"resnet50", 1.0, 2048},
                                           ArchCase{"tiny_cnn", 1.0, 32}),
                         [](const auto& info) { return std::string(info.param.arch); });

TEST(Export, MobileNetV2AlphaFollowsKeras) {
  TempDir tmp;
  struct Case {
    double alpha;
    int64_t first, last_project, last_conv;
  };
  // Keras: _make_divisible(32 * alpha, 8), _make_divisible(int(320 * alpha), 8), and 1280 for
  // alpha <= 1 else _make_divisible(1280 * alpha, 8).
  for (const Case& c : {Case{0.35, 16, 112, 1280}, Case{0.5, 16, 160, 1280},
                        Case{1.0, 32, 320, 1280}, Case{1.3, 40, 416, 1664}}) {
    const auto dir = tmp.path() / std::to_string(c.alpha);
    ZooOptions o = export_options(c.alpha);
    o.training_trace = false;
    auto s = write_zoo_model("mobilenet_v2", dir, o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    EXPECT_EQ(s->num_outputs, c.last_conv);
    auto m = Model::load(dir);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    const Variable* first = find_variable(*m, "Conv1/kernel");
    const Variable* project = find_variable(*m, "block_16_project/kernel");
    const Variable* last = find_variable(*m, "Conv_1/kernel");
    ASSERT_TRUE(first && project && last);
    EXPECT_EQ(first->value().shape(), (Dims{3, 3, 3, c.first})) << c.alpha;
    EXPECT_EQ(project->value().shape()[3], c.last_project) << c.alpha;
    EXPECT_EQ(last->value().shape(), (Dims{1, 1, c.last_project, c.last_conv})) << c.alpha;
  }
}

TEST(Export, ClassifierReturnsLogits) {
  TempDir tmp;
  ZooOptions o = export_options();
  o.feature_vector = false;
  o.num_classes = 7;
  auto s = write_zoo_model("tiny_cnn", tmp.path() / "m", o);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  auto m = Model::load(tmp.path() / "m");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto out = (*m)(random_images(3, 24, 1));
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].shape(), (Dims{3, 7}));
  // Logits, not probabilities: rows do not sum to 1.
  double row = 0;
  for (int k = 0; k < 7; ++k) row += (*out)[0].data<float>()[k];
  EXPECT_GT(std::abs(row - 1.0), 1e-3);
}

TEST(Export, BadOptionsAreErrors) {
  TempDir tmp;
  ZooOptions o = export_options(0.5);
  auto r = write_zoo_model("resnet50", tmp.path() / "a", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("alpha"), std::string::npos);
  o = export_options();
  o.num_classes = 3;  // with feature_vector
  EXPECT_FALSE(write_zoo_model("tiny_cnn", tmp.path() / "b", o).ok());
  EXPECT_FALSE(write_zoo_model("vgg16", tmp.path() / "c", export_options()).ok());
  o = export_options();
  o.write_manifest = true;  // a manifest needs a fixed size
  EXPECT_FALSE(write_zoo_model("tiny_cnn", tmp.path() / "d", o).ok());
}

// moving <- m * moving + (1 - m) * batch_stat, with m the batch_norm_momentum argument.
TEST(Export, TrainingTraceUsesTheMomentumArgument) {
  TempDir tmp;
  ASSERT_TRUE(write_zoo_model("tiny_cnn", tmp.path() / "m", export_options()).ok());
  const Tensor images = random_images(4, 16, 11);
  const std::vector<std::string> stats = {
      "batch_normalization/moving_mean", "batch_normalization/moving_variance",
      "batch_normalization_2/moving_mean", "batch_normalization_2/moving_variance"};
  // Runs one training call from the exported state; returns old and new statistics.
  auto step = [&](std::optional<float> momentum) {
    std::vector<std::pair<std::vector<float>, std::vector<float>>> result;
    auto m = Model::load(tmp.path() / "m");
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    if (!m.ok()) return result;
    std::vector<std::vector<float>> before;
    for (const auto& name : stats) {
      const Tensor& t = find_variable(*m, name)->value();
      before.emplace_back(t.data<float>(), t.data<float>() + t.num_elements());
    }
    CallOptions options;
    options.training = true;
    if (momentum) options.arguments["batch_norm_momentum"] = Tensor::scalar(*momentum);
    auto out = (*m)(images, options);
    EXPECT_TRUE(out.ok()) << out.status().to_string();
    for (size_t i = 0; i < stats.size(); ++i) {
      const Tensor& t = find_variable(*m, stats[i])->value();
      result.emplace_back(before[i],
                          std::vector<float>(t.data<float>(), t.data<float>() + t.num_elements()));
    }
    return result;
  };
  const auto a = step(0.9f);
  const auto b = step(0.5f);
  const auto keep = step(1.0f);
  const auto by_default = step(std::nullopt);
  ASSERT_EQ(a.size(), stats.size());
  ASSERT_EQ(b.size(), stats.size());
  for (size_t i = 0; i < stats.size(); ++i) {
    const auto& [old_a, new_a] = a[i];
    const auto& [old_b, new_b] = b[i];
    ASSERT_EQ(old_a, old_b);
    bool changed = false;
    for (size_t c = 0; c < old_a.size(); ++c) {
      // The batch statistic implied by the m = 0.9 step predicts the m = 0.5 step.
      const double batch = (new_a[c] - 0.9 * old_a[c]) / 0.1;
      const double predicted = 0.5 * old_b[c] + 0.5 * batch;
      EXPECT_NEAR(new_b[c], predicted, 1e-4 * (1 + std::abs(predicted))) << stats[i] << " " << c;
      EXPECT_FLOAT_EQ(keep[i].second[c], old_a[c]) << stats[i];
      const double default_expected = 0.99 * old_a[c] + 0.01 * batch;
      EXPECT_NEAR(by_default[i].second[c], default_expected, 1e-4 * (1 + std::abs(batch)));
      if (stats[i].ends_with("variance")) {
        EXPECT_GE(batch, -1e-4);
      }
      changed |= std::abs(new_a[c] - old_a[c]) > 1e-6;
    }
    EXPECT_TRUE(changed) << stats[i] << " did not move";
  }
}

// The first batch norm's batch mean is the mean of the first convolution's output, which the
// test computes itself: checks what the update moves towards, not just its linearity.
TEST(Export, MovingMeanMovesTowardTheBatchMean) {
  TempDir tmp;
  ASSERT_TRUE(write_zoo_model("tiny_cnn", tmp.path() / "m", export_options()).ok());
  auto m = Model::load(tmp.path() / "m");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Tensor images = random_images(2, 8, 5);
  const Tensor kernel = find_variable(*m, "conv2d/kernel")->value();  // [3, 3, 3, 8] SAME
  const Tensor old_mean = find_variable(*m, "batch_normalization/moving_mean")->value();
  std::vector<float> before(old_mean.data<float>(), old_mean.data<float>() + 8);
  std::vector<double> batch_mean(8, 0.0);
  const float* x = images.data<float>();
  const float* k = kernel.data<float>();
  for (int n = 0; n < 2; ++n)
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 8; ++j)
        for (int o = 0; o < 8; ++o) {
          double acc = 0;
          for (int di = -1; di <= 1; ++di)
            for (int dj = -1; dj <= 1; ++dj) {
              const int ii = i + di, jj = j + dj;
              if (ii < 0 || jj < 0 || ii >= 8 || jj >= 8) continue;
              for (int c = 0; c < 3; ++c)
                acc += x[((n * 8 + ii) * 8 + jj) * 3 + c] *
                       k[(((di + 1) * 3 + (dj + 1)) * 3 + c) * 8 + o];
            }
          batch_mean[o] += acc / 128.0;
        }
  CallOptions options;
  options.training = true;
  options.arguments["batch_norm_momentum"] = Tensor::scalar(0.75f);
  ASSERT_TRUE((*m)(images, options).ok());
  const Tensor& after = find_variable(*m, "batch_normalization/moving_mean")->value();
  for (int o = 0; o < 8; ++o) {
    EXPECT_NEAR(after.data<float>()[o], 0.75 * before[o] + 0.25 * batch_mean[o], 1e-5) << o;
  }
}

TEST(Export, RegularizationLossesAreL2OfConvAndDenseKernels) {
  TempDir tmp;
  ZooOptions o = export_options(0.35);
  o.feature_vector = false;
  o.num_classes = 4;
  o.training_trace = false;
  auto s = write_zoo_model("mobilenet_v2", tmp.path() / "m", o);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  auto m = Model::load(tmp.path() / "m");
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  std::vector<double> expected;
  for (const Variable* v : m->variables()) {
    if (!v->name().ends_with("/kernel")) continue;  // not depthwise_kernel, not batch norm
    double sum = 0;
    for (int64_t i = 0; i < v->value().num_elements(); ++i) {
      const double w = v->value().data<float>()[i];
      sum += w * w;
    }
    expected.push_back(4e-5 * sum);
  }
  EXPECT_EQ(static_cast<int>(expected.size()), s->num_regularization_losses);
  EXPECT_EQ(expected.size(), 36u);  // 35 convolutions + the Dense head
  auto losses = m->regularization_losses();
  ASSERT_TRUE(losses.ok()) << losses.status().to_string();
  ASSERT_EQ(losses->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR((*losses)[i].data<float>()[0], expected[i], 1e-5 * expected[i]) << i;
  }
}

TEST(Export, SeedDeterminesTheWeights) {
  TempDir tmp;
  ZooOptions o = export_options();
  o.training_trace = false;
  ASSERT_TRUE(write_zoo_model("tiny_cnn", tmp.path() / "a", o).ok());
  ASSERT_TRUE(write_zoo_model("tiny_cnn", tmp.path() / "b", o).ok());
  o.seed = 2;
  ASSERT_TRUE(write_zoo_model("tiny_cnn", tmp.path() / "c", o).ok());
  auto a = Model::load(tmp.path() / "a");
  auto b = Model::load(tmp.path() / "b");
  auto c = Model::load(tmp.path() / "c");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  const auto va = a->variables(), vb = b->variables(), vc = c->variables();
  ASSERT_EQ(va.size(), vb.size());
  bool any_differs = false;
  for (size_t i = 0; i < va.size(); ++i) {
    const Tensor &x = va[i]->value(), &y = vb[i]->value(), &z = vc[i]->value();
    ASSERT_EQ(x.num_elements(), y.num_elements());
    EXPECT_EQ(std::memcmp(x.raw_data(), y.raw_data(), x.byte_size()), 0) << va[i]->name();
    if (x.dtype() == DType::kFloat32 && x.num_elements() > 1)
      any_differs |= std::memcmp(x.raw_data(), z.raw_data(), x.byte_size()) != 0;
  }
  EXPECT_TRUE(any_differs);
}

// Keras' initializers, from their definitions (keras/initializers): glorot_uniform draws from
// U(-l, l), l = sqrt(6 / (fan_in + fan_out)), variance l^2 / 3; VarianceScaling(2, fan_out,
// truncated_normal) has variance 2 / fan_out and no value beyond two of its untruncated
// standard deviations; VarianceScaling(1/3, fan_out, uniform) is U(-l, l), l = sqrt(1/fan_out).
// Fans: the receptive field times the input (output) channels of a [kh, kw, in, out] kernel.
struct KernelLaw {
  double variance;
  double bound;
};
KernelLaw keras_law(const std::string& arch, const std::string& name, const Dims& shape) {
  const double receptive = shape.size() == 4 ? static_cast<double>(shape[0] * shape[1]) : 1.0;
  const double fan_in = receptive * static_cast<double>(shape[shape.size() - 2]);
  const double fan_out = receptive * static_cast<double>(shape.back());
  if (arch == "efficientnet_b0") {
    if (name.starts_with("predictions/")) return {1.0 / (3.0 * fan_out), std::sqrt(1.0 / fan_out)};
    return {2.0 / fan_out, 2.0 * std::sqrt(2.0 / fan_out) / 0.87962566103423978};
  }
  const double limit = std::sqrt(6.0 / (fan_in + fan_out));
  return {limit * limit / 3.0, limit};
}

TEST(Export, KerasInitializationFollowsTheArchitecturesInitializers) {
  for (const std::string arch : {"mobilenet_v2", "efficientnet_b0", "tiny_cnn"}) {
    SCOPED_TRACE(arch);
    TempDir tmp;
    ZooOptions o = export_options();
    o.feature_vector = false;  // the Dense head's initializer too
    o.num_classes = 10;
    o.training_trace = false;
    o.initialization = Initialization::kKeras;
    ASSERT_TRUE(write_zoo_model(arch, tmp.path(), o).ok());
    auto m = format::SavedModel::load(tmp.path());
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    int kernels_checked = 0;
    for (const auto& v : (*m)->variables()) {
      if (v.name.starts_with("normalization/")) continue;  // EfficientNet's fixed ImageNet stats
      const std::span<const float> x(v.value.data<float>(),
                                     static_cast<size_t>(v.value.num_elements()));
      const auto all_equal = [&](float value) {
        return std::ranges::all_of(x, [value](float e) { return e == value; });
      };
      if (v.name.ends_with("/gamma") || v.name.ends_with("/moving_variance")) {
        EXPECT_TRUE(all_equal(1.0f)) << v.name;
      } else if (v.name.ends_with("/beta") || v.name.ends_with("/moving_mean") ||
                 v.name.ends_with("/bias")) {
        EXPECT_TRUE(all_equal(0.0f)) << v.name;
      } else {
        ASSERT_TRUE(v.name.ends_with("kernel")) << v.name;
        const KernelLaw law = keras_law(arch, v.name, v.shape);
        double sum = 0, sum_sq = 0, max_abs = 0;
        for (float e : x) {
          sum += e;
          sum_sq += static_cast<double>(e) * e;
          max_abs = std::max(max_abs, std::abs(static_cast<double>(e)));
        }
        const auto n = static_cast<double>(x.size());
        EXPECT_LE(max_abs, law.bound * (1 + 1e-6)) << v.name;
        if (n >= 2000) {  // sampling error of the variance ~ sqrt(2/n) < 3.2%
          const double variance = sum_sq / n - (sum / n) * (sum / n);
          EXPECT_NEAR(variance / law.variance, 1.0, 0.12) << v.name << " (" << n << " values)";
          ++kernels_checked;
        }
      }
    }
    EXPECT_GE(kernels_checked, arch == "tiny_cnn" ? 1 : 20);
  }
}

TEST(Export, VariedInitializationMovesEveryBatchNormParameter) {
  TempDir tmp;
  ZooOptions o = export_options();
  o.training_trace = false;
  ASSERT_EQ(o.initialization, Initialization::kVaried);  // the default
  ASSERT_TRUE(write_zoo_model("tiny_cnn", tmp.path(), o).ok());
  auto m = format::SavedModel::load(tmp.path());
  ASSERT_TRUE(m.ok());
  int batch_norm_variables = 0;
  for (const auto& v : (*m)->variables()) {
    if (!v.name.starts_with("batch_normalization")) continue;
    ++batch_norm_variables;
    const float* x = v.value.data<float>();
    const float neutral = v.name.ends_with("gamma") || v.name.ends_with("variance") ? 1.0f : 0.0f;
    EXPECT_TRUE(std::none_of(x, x + v.value.num_elements(), [&](float e) { return e == neutral; }))
        << v.name;
  }
  EXPECT_EQ(batch_norm_variables, 12);
}

TEST(ExportCli, AcceptanceCommandWritesAHubFeatureVector) {
  TempDir tmp;
  const auto out = tmp.path() / "base";
  const std::string cli = hubimg::testing::cli_path().string();
  auto r = hubimg::testing::run_command(
      cli + " export mobilenet_v2 --alpha 0.35 --feature-vector --seed 1 --output " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("features [-1, 1280]"), std::string::npos) << r.out;
  auto m = Model::load(out);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto f = (*m)(random_images(2, 32, 9));
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ((*f)[0].shape(), (Dims{2, 1280}));
  auto losses = m->regularization_losses();
  ASSERT_TRUE(losses.ok());
  EXPECT_EQ(losses->size(), 35u);
  // Nothing left behind but the model.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "base");
  }
  EXPECT_EQ(entries, 1);

  // An existing non-empty output is refused and left alone.
  const std::string before = hubimg::testing::read_file(out / "saved_model.pb");
  r = hubimg::testing::run_command(cli + " export tiny_cnn --output " + out.string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("not empty"), std::string::npos) << r.out;
  EXPECT_EQ(hubimg::testing::read_file(out / "saved_model.pb"), before);

  r = hubimg::testing::run_command(cli + " export resnet50 --alpha 0.5 --output " +
                                   (tmp.path() / "x").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("alpha"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "x"));
  r = hubimg::testing::run_command(cli + " export tiny_cnn --num-classes 3 --feature-vector " +
                                   "--output " + (tmp.path() / "y").string());
  EXPECT_NE(r.exit_code, 0);
}

TEST(ExportCli, InitChoosesTheInitializers) {
  TempDir tmp;
  const std::string cli = hubimg::testing::cli_path().string();
  auto gammas_all_one = [](const std::filesystem::path& dir) {
    auto m = format::SavedModel::load(dir);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    if (!m.ok()) return false;
    bool all_one = true;
    for (const auto& v : (*m)->variables()) {
      if (!v.name.ends_with("/gamma")) continue;
      const float* x = v.value.data<float>();
      all_one &= std::all_of(x, x + v.value.num_elements(), [](float e) { return e == 1.0f; });
    }
    return all_one;
  };
  for (const std::string init : {"", "varied", "keras"}) {
    const auto out = tmp.path() / ("m" + init);
    auto r = hubimg::testing::run_command(cli + " export tiny_cnn --output " + out.string() +
                                          (init.empty() ? "" : " --init " + init));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(gammas_all_one(out), init == "keras") << init;
  }
  auto r = hubimg::testing::run_command(cli + " export tiny_cnn --init glorot --output " +
                                        (tmp.path() / "bad").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("glorot"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "bad"));
}

// The CLI's image and tensor commands take a TF Hub-style model whose __call__ also has a
// hyperparameter with a default (batch_norm_momentum=0.99): it is not an image input.
TEST(ExportCli, CommandsTakeAModelWithADefaultedHyperparameter) {
  TempDir tmp;
  const auto model_dir = tmp.path() / "fv";
  const std::string cli = hubimg::testing::cli_path().string();
  auto r = hubimg::testing::run_command(
      cli + " export tiny_cnn --feature-vector --seed 3 --output " + model_dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto m = Model::load(model_dir);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const auto specs = m->call_input_specs();
  ASSERT_EQ(specs.size(), 2u);
  int defaulted = 0;
  for (const auto& s : specs) {
    if (s.name == "batch_norm_momentum") {
      EXPECT_TRUE(s.has_default);
      ++defaulted;
    } else {
      EXPECT_FALSE(s.has_default) << s.name;
    }
  }
  EXPECT_EQ(defaulted, 1);

  // run: one .npy without a key feeds the images; the result equals the library's call.
  const Tensor images = random_images(2, 24, 5);
  ASSERT_TRUE(write_npy(tmp.path() / "x.npy", images).ok());
  r = hubimg::testing::run_command(cli + " run " + model_dir.string() + " --input " +
                                   (tmp.path() / "x.npy").string() + " --output " +
                                   (tmp.path() / "out").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto expected = (*m)(images);
  ASSERT_TRUE(expected.ok()) << expected.status().to_string();
  auto written = read_npy(tmp.path() / "out" / "output_0.npy");
  ASSERT_TRUE(written.ok()) << written.status().to_string() << "\n" << r.out;
  ASSERT_EQ(written->shape(), (*expected)[0].shape());
  EXPECT_EQ(std::memcmp(written->raw_data(), (*expected)[0].raw_data(), written->byte_size()), 0);

  // embed: a PNG of the first image gives one feature row, the library's call on the PNG's
  // 8-bit pixels.
  Tensor first(DType::kFloat32, {1, 24, 24, 3});
  for (int64_t i = 0; i < first.num_elements(); ++i) {
    first.mutable_data<float>()[i] = std::round(images.data<float>()[i] * 255.0f) / 255.0f;
  }
  auto pixels = first.reshaped({24, 24, 3});
  ASSERT_TRUE(pixels.ok());
  ASSERT_TRUE(write_png(tmp.path() / "a.png", *pixels).ok());
  r = hubimg::testing::run_command(cli + " embed " + model_dir.string() + " " +
                                   (tmp.path() / "a.png").string() + " --size 24x24 --output " +
                                   (tmp.path() / "f.npy").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto features = read_npy(tmp.path() / "f.npy");
  ASSERT_TRUE(features.ok()) << features.status().to_string();
  auto direct = (*m)(first);
  ASSERT_TRUE(direct.ok()) << direct.status().to_string();
  ASSERT_EQ(features->shape(), (*direct)[0].shape());
  for (int64_t i = 0; i < features->num_elements(); ++i) {
    EXPECT_NEAR(features->data<float>()[i], (*direct)[0].data<float>()[i],
                1e-5f * (1.0f + std::fabs((*direct)[0].data<float>()[i])))
        << "feature " << i;
  }

  // --interpolation bicubic: the PNG resized to 16x16 as tf.image.resize(method='bicubic').
  r = hubimg::testing::run_command(
      cli + " embed " + model_dir.string() + " " + (tmp.path() / "a.png").string() +
      " --size 16x16 --interpolation bicubic --output " + (tmp.path() / "b.npy").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto bicubic_features = read_npy(tmp.path() / "b.npy");
  ASSERT_TRUE(bicubic_features.ok()) << bicubic_features.status().to_string();
  auto small = resize_bicubic_op(first, 16, 16, {.half_pixel_centers = true});
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  auto small_direct = (*m)(*small);
  ASSERT_TRUE(small_direct.ok()) << small_direct.status().to_string();
  const Tensor& want = (*small_direct)[0];
  ASSERT_EQ(bicubic_features->shape(), want.shape());
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    EXPECT_NEAR(bicubic_features->data<float>()[i], want.data<float>()[i],
                1e-5f * (1.0f + std::fabs(want.data<float>()[i])))
        << "feature " << i;
  }
  r = hubimg::testing::run_command(
      cli + " embed " + model_dir.string() + " " + (tmp.path() / "a.png").string() +
      " --size 16x16 --interpolation lanczos7 --output " + (tmp.path() / "c.npy").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("lanczos7"), std::string::npos) << r.out;

  // bench and grad run the model with the default momentum too.
  r = hubimg::testing::run_command(cli + " bench " + model_dir.string() +
                                   " --size 24x24 --batch 2 --iterations 1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

}  // namespace
}  // namespace hubimg::zoo
