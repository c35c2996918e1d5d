// Decodes the fixtures' sample images ourselves and compares them with the golden sample
// batches, which another decoder made (see golden/README.md). Decoders differ slightly (JPEG
// IDCT and chroma upsampling), so only small differences are expected.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "hubimg/image.h"
#include "hubimg/npy.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

struct SampleCase {
  std::vector<std::filesystem::path> images;
  std::filesystem::path input;
  double scale = 1, offset = 0;
};

// The first `samples` case of a model: its images, input batch and "v*scale+offset" note.
std::optional<SampleCase> find_samples_case(const std::string& model) {
  auto dir = testing::golden_dir() / model;
  std::ifstream in(dir / "cases.json");
  if (!in) return std::nullopt;
  auto cases = nlohmann::json::parse(in);
  for (const auto& c : cases) {
    if (c.value("case", "").find("/samples") == std::string::npos) continue;
    SampleCase s;
    for (const auto& img : c.at("images")) {
      s.images.push_back(testing::shared_dir() / "fixtures" / img.get<std::string>());
    }
    s.input = dir / c.at("inputs").begin()->get<std::string>();
    std::smatch m;
    std::string note = c.value("note", "");
    static const std::regex re(R"(v\*([0-9.eE+-]+?)([+-][0-9.eE]+))");
    if (!std::regex_search(note, m, re)) return std::nullopt;
    s.scale = std::stod(m[1]);
    s.offset = std::stod(m[2]);
    return s;
  }
  return std::nullopt;
}

struct Diff {
  double mean = 0, max = 0;
};

void compare_model(const std::string& model, double mean_bound, double max_bound) {
  auto sc = find_samples_case(model);
  ASSERT_TRUE(sc.has_value()) << "no samples case for " << model;
  auto golden = read_npy(sc->input);
  ASSERT_TRUE(golden.ok()) << golden.status().to_string();
  ASSERT_EQ(golden->rank(), 4);
  ASSERT_EQ(golden->dim(0), static_cast<int64_t>(sc->images.size()));
  const int64_t h = golden->dim(1), w = golden->dim(2), c = golden->dim(3);
  auto batch = load_image_batch(sc->images, h, w, c == 1 ? ColorMode::kGray : ColorMode::kRgb, {});
  ASSERT_TRUE(batch.ok()) << batch.status().to_string();
  ASSERT_EQ(batch->shape(), golden->shape());
  const int64_t per_image = h * w * c;
  for (size_t i = 0; i < sc->images.size(); ++i) {
    const float* ours = batch->data<float>() + i * per_image;
    const float* ref = golden->data<float>() + i * per_image;
    Diff d;
    for (int64_t k = 0; k < per_image; ++k) {
      // Both in 0..255 units: ours is in [0, 1]; the golden row is v * scale + offset.
      double a = ours[k] * 255.0;
      double b = (ref[k] - sc->offset) / sc->scale;
      double e = std::abs(a - b);
      d.mean += e;
      d.max = std::max(d.max, e);
    }
    d.mean /= static_cast<double>(per_image);
    std::printf("[ measured ] %s %s: mean |diff| %.6f, max |diff| %.6f (0..255 units)\n",
                model.c_str(), sc->images[i].filename().string().c_str(), d.mean, d.max);
    EXPECT_LT(d.mean, mean_bound) << sc->images[i];
    EXPECT_LT(d.max, max_bound) << sc->images[i];
  }
}

TEST(GoldenSamples, Potato) {
  HUBIMG_REQUIRE_SHARED();
  compare_model("potato_cnn_aug_tf25", 1.0, 12.0);
}
TEST(GoldenSamples, RockPaperScissorsPng) {
  HUBIMG_REQUIRE_SHARED();
  compare_model("rps_cnn_tf231", 0.01, 0.01);  // lossless: only resize arithmetic
}
TEST(GoldenSamples, TeachableMachine) {
  HUBIMG_REQUIRE_SHARED();
  compare_model("tm_mobilenetv2_035_tf115", 1.0, 12.0);
}
TEST(GoldenSamples, IntelHasNoSampleImages) {
  HUBIMG_REQUIRE_SHARED();
  // The fixture ships only labels.txt in samples/, so there is no samples case to compare.
  EXPECT_FALSE(find_samples_case("intel_cnn_keras3_tf218").has_value());
}

}  // namespace
}  // namespace hubimg
