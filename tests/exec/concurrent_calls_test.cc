// One Model called from several threads at once, as a server calls it: every entry point that
// only reads the variables (root __call__, a signature, inference-mode gradients, regularization
// losses and their gradients) returns bit for bit what it returns when called alone. The calls
// start on a freshly loaded model, so the threads also race to build, optimize and cache its
// graphs.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>

#include "hubimg/model.h"
#include "util/test_util.h"
#include "zoo/zoo.h"

namespace hubimg {
namespace {

using hubimg::testing::random_images;
using hubimg::testing::TempDir;

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()) == 0;
}

// What one call computes; `kind` picks the entry point.
enum class Entry { kCall, kSignature, kGradients, kRegularization, kRegularizationGradients };

struct Work {
  Entry entry;
  Tensor images;
};

// The call's results in a fixed order: outputs, then gradients. `width`: the output's.
Expected<std::vector<Tensor>> run(const Model& model, const Work& work, int64_t width) {
  switch (work.entry) {
    case Entry::kCall: return model(work.images);
    case Entry::kSignature: {
      HUBIMG_ASSIGN_OR_RETURN(auto out,
                              model.call_signature("serving_default", {{"input_1", work.images}}));
      std::vector<Tensor> values;
      for (auto& [name, t] : out) values.push_back(std::move(t));
      return values;
    }
    case Entry::kGradients: {
      Tensor cotangent(DType::kFloat32, {work.images.dim(0), width});
      for (int64_t i = 0; i < cotangent.num_elements(); ++i) {
        cotangent.mutable_data<float>()[i] = 0.25f * static_cast<float>(i % 5) - 0.5f;
      }
      GradientTargets targets{.cotangents = {{"output_0", cotangent}}};
      HUBIMG_ASSIGN_OR_RETURN(auto g, model.gradients({{"inputs", work.images}}, targets));
      std::vector<Tensor> values{g.outputs.at("output_0"), g.input_gradients.at("inputs")};
      for (Tensor& t : g.gradients) values.push_back(std::move(t));
      return values;
    }
    case Entry::kRegularization: return model.regularization_losses();
    case Entry::kRegularizationGradients: {
      Tensor total;
      HUBIMG_ASSIGN_OR_RETURN(std::vector<Tensor> values, model.regularization_gradients(&total));
      values.push_back(total);
      return values;
    }
  }
  return Status(StatusCode::kInternal, "unknown entry");
}

struct ZooCase {
  const char* name;
  zoo::ZooOptions options;
};

class ConcurrentCalls : public ::testing::TestWithParam<ZooCase> {};

TEST_P(ConcurrentCalls, EveryInferenceEntryPointAgreesWithCallsMadeAlone) {
  TempDir tmp;
  const auto dir = tmp.path() / "model";
  auto summary = zoo::write_zoo_model(GetParam().name, dir, GetParam().options);
  ASSERT_TRUE(summary.ok()) << summary.status().to_string();
  const int64_t width = summary->num_outputs;

  std::vector<Work> work;
  uint64_t seed = 11;
  for (auto [batch, size] : {std::pair{1, 32}, {3, 32}, {2, 48}, {5, 40}, {1, 64}, {4, 24}}) {
    for (Entry entry : {Entry::kCall, Entry::kSignature, Entry::kGradients}) {
      work.push_back({entry, random_images(batch, size, seed++)});
    }
  }
  work.push_back({Entry::kRegularization, {}});
  work.push_back({Entry::kRegularizationGradients, {}});

  std::vector<std::vector<Tensor>> alone;
  {
    auto reference = Model::load(dir);
    ASSERT_TRUE(reference.ok()) << reference.status().to_string();
    for (const Work& w : work) {
      auto out = run(*reference, w, width);
      ASSERT_TRUE(out.ok()) << out.status().to_string();
      alone.push_back(std::move(*out));
    }
  }

  auto shared = Model::load(dir);
  ASSERT_TRUE(shared.ok()) << shared.status().to_string();
  constexpr int kThreads = 4;
  constexpr int kRounds = 3;
  std::vector<std::vector<std::string>> failures(kThreads);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        // Each thread walks the work in its own order, starting at a different item.
        for (size_t k = 0; k < kRounds * work.size(); ++k) {
          const size_t i = (t * 5 + k * (t + 1)) % work.size();
          auto out = run(*shared, work[i], width);
          if (!out.ok()) {
            failures[t].push_back("item " + std::to_string(i) + ": " + out.status().to_string());
            continue;
          }
          bool same = out->size() == alone[i].size();
          for (size_t j = 0; same && j < out->size(); ++j) same = same_bits((*out)[j], alone[i][j]);
          if (!same) failures[t].push_back("item " + std::to_string(i) + " differs");
        }
      });
    }
  }
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(failures[t].empty()) << "thread " << t << ": " << failures[t].front();
  }
  // The inference calls did not move the batch-norm statistics.
  for (size_t i = 0; i < work.size(); ++i) {
    auto again = run(*shared, work[i], width);
    ASSERT_TRUE(again.ok()) << again.status().to_string();
    for (size_t j = 0; j < again->size(); ++j) EXPECT_TRUE(same_bits((*again)[j], alone[i][j]));
  }
}

// Any input size, TF Hub's batch_norm_momentum argument, L2 regularization losses. The
// MobileNetV2 (depthwise and batch-split paths) only outside AddressSanitizer, where its 240
// calls take 25 s.
std::vector<ZooCase> zoo_cases() {
  std::vector<ZooCase> cases{{"tiny_cnn",
                              {.seed = 3,
                               .num_classes = 8,
                               .input_size = -1,
                               .momentum_argument = true,
                               .l2 = 1e-3,
                               .write_manifest = false}}};
  if (!testing::kUnderAddressSanitizer) {
    cases.push_back({"mobilenet_v2",
                     {.seed = 4,
                      .alpha = 0.35,
                      .feature_vector = true,
                      .input_size = -1,
                      .momentum_argument = true,
                      .l2 = 4e-5,
                      .write_manifest = false}});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Zoo, ConcurrentCalls, ::testing::ValuesIn(zoo_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace hubimg
