// `hubimg run`, `embed` and `classify` end to end on the fixtures.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "hubimg/image.h"
#include "hubimg/npy.h"
#include "util/golden.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using hubimg::testing::cli_path;
using hubimg::testing::real_fixture;
using hubimg::testing::run_command;
using hubimg::testing::shell_quote;
using hubimg::testing::TempDir;

// Every golden case through the CLI: inputs as .npy files, outputs compared with the
// reference files.
TEST(RunCommand, EveryGoldenCaseThroughTheCli) {
  HUBIMG_REQUIRE_SHARED();
  int cases_run = 0;
  int cases_seen = 0;
  std::set<std::pair<std::string, std::string>> models_and_signatures;
  for (const auto& model : hubimg::testing::golden_models()) {
    for (const auto& c : hubimg::testing::load_golden_cases(model)) {
      ++cases_seen;
      const bool first_of_its_signature =
          models_and_signatures.emplace(c.model, c.signature).second;
      // Under the sanitizers, one case per model and signature: every way through the CLI's
      // code without 89 process starts (40 s there); GoldenModel.* run every case in process.
      if (hubimg::testing::kUnderAddressSanitizer && !first_of_its_signature) continue;
      TempDir out;
      std::string cmd = cli_path().string() + " run " + shell_quote(c.model);
      if (c.signature != "__call__") cmd += " --signature " + c.signature;
      for (const auto& [key, file] : c.inputs) cmd += " --input " + key + "=" + shell_quote(file);
      cmd += " --output " + shell_quote(out.path());
      auto r = run_command(cmd);
      ASSERT_EQ(r.exit_code, 0) << c.id << "\n" << cmd << "\n" << r.out;
      for (const auto& [key, file] : c.outputs) {
        auto actual = read_npy(out.path() / (key + ".npy"));
        ASSERT_TRUE(actual.ok()) << c.id << ": " << actual.status().to_string();
        auto reference = read_npy(file);
        ASSERT_TRUE(reference.ok());
        EXPECT_TRUE(hubimg::testing::matches_reference(*actual, *reference, c, key));
      }
      ++cases_run;
    }
  }
  EXPECT_EQ(cases_seen, 89);  // golden/README.md: 89 cases over 14 models
  EXPECT_EQ(cases_run, hubimg::testing::kUnderAddressSanitizer
                           ? static_cast<int>(models_and_signatures.size())
                           : 89);
}

TEST(RunCommand, ErrorsNameWhatIsWrong) {
  HUBIMG_REQUIRE_SHARED();
  TempDir out;
  auto model = real_fixture("mnist_cnn_tf231") / "saved_model";
  auto missing = run_command(cli_path().string() + " run " + shell_quote(model) +
                             " --input /nonexistent.npy --output " + shell_quote(out.path()));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.out.find("/nonexistent.npy"), std::string::npos) << missing.out;
  auto bad_sig = run_command(cli_path().string() + " run " + shell_quote(model) +
                             " --signature nope --output " + shell_quote(out.path()));
  EXPECT_NE(bad_sig.exit_code, 0);
  EXPECT_NE(bad_sig.out.find("no signature 'nope'"), std::string::npos) << bad_sig.out;
}

struct SampleExpectation {
  std::string fixture;
  std::string range;
  std::map<std::string, int> top1;  // image file name -> reference class (golden/README.md)
};

TEST(ClassifyCommand, SampleImagesGetTheReferenceClass) {
  HUBIMG_REQUIRE_SHARED();
  const SampleExpectation expectations[] = {
      {"potato_cnn_aug_tf25", "0,255", {{"early_blight_1.jpg", 0}, {"late_blight_1.jpg", 0}}},
      {"rps_cnn_tf231", "0,1", {{"testpaper01-00.png", 1}}},
      {"tm_mobilenetv2_035_tf115", "-1,1", {{"open.jpg", 0}, {"closed.jpg", 1}}},
  };
  for (const auto& e : expectations) {
    auto dir = real_fixture(e.fixture);
    auto r = run_command(cli_path().string() + " classify " + shell_quote(dir / "saved_model") +
                         " " + shell_quote(dir / "samples") + " --json --top 2 --range=" + e.range);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["results"].size(), e.top1.size());
    for (const auto& row : j["results"]) {
      auto name = std::filesystem::path(row["image"].get<std::string>()).filename().string();
      EXPECT_EQ(row["top"][0]["class"].get<int>(), e.top1.at(name)) << e.fixture << " " << name;
      EXPECT_EQ(row["top"].size(), 2u);
    }
  }
}

// Teachable Machine's "Export -> Tensorflow -> Savedmodel" download: converted_savedmodel.zip
// with the SavedModel and labels.txt ("0 Eyes open", ...) side by side. classify and info name
// the classes.
TEST(ClassifyCommand, ATeachableMachineZipNamesItsClasses) {
  HUBIMG_REQUIRE_SHARED();
  TempDir tmp;
  const auto fixture = real_fixture("tm_mobilenetv2_035_tf115");
  auto files = hubimg::testing::archive_files_below(fixture / "saved_model",
                                                    "converted_savedmodel/model.savedmodel/");
  files.push_back({"converted_savedmodel/labels.txt",
                   hubimg::testing::read_file(fixture / "samples" / "labels.txt")});
  const auto zip = tmp.path() / "converted_savedmodel.zip";
  hubimg::testing::write_zip(zip, files);
  auto r =
      run_command(cli_path().string() + " classify " + shell_quote(zip) + " " +
                  shell_quote(fixture / "samples" / "open.jpg") + " " +
                  shell_quote(fixture / "samples" / "closed.jpg") + " --json --top 1 --range -1,1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["labels"], "converted_savedmodel/labels.txt in " + zip.string());
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][0]["top"][0]["label"], "Eyes open");
  EXPECT_EQ(j["results"][1]["top"][0]["label"], "Eyes closed");

  auto info = run_command(cli_path().string() + " info --json " + shell_quote(zip));
  ASSERT_EQ(info.exit_code, 0) << info.out;
  auto labels = nlohmann::json::parse(info.out)["labels"];
  EXPECT_EQ(labels["file"], "converted_savedmodel/labels.txt in " + zip.string());
  EXPECT_EQ(labels["names"], nlohmann::json({"Eyes open", "Eyes closed"}));
}

// The project's own model: assets/labels.txt is used without --labels; --labels wins, and a count
// that does not match the model's classes is a warning.
TEST(ClassifyCommand, ClassNamesComeFromTheModelUnlessGiven) {
  TempDir tmp;
  const auto model = tmp.path() / "model";
  auto exported = run_command(cli_path().string() + " export tiny_cnn --num-classes 3 --output " +
                              shell_quote(model));
  ASSERT_EQ(exported.exit_code, 0) << exported.out;
  const auto image = tmp.path() / "image.png";
  std::vector<float> pixels(20 * 20 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>(i % 13) / 12.0f;
  ASSERT_TRUE(write_png(image, Tensor::from_vector<float>({20, 20, 3}, pixels)).ok());
  const std::string classify = cli_path().string() + " classify " + shell_quote(model) + " " +
                               shell_quote(image) + " --top 3 --size 20x20";

  auto unnamed = run_command(classify + " --json");
  ASSERT_EQ(unnamed.exit_code, 0) << unnamed.out;
  EXPECT_TRUE(nlohmann::json::parse(unnamed.out)["labels"].is_null());

  std::filesystem::create_directories(model / "assets");
  hubimg::testing::write_file(model / "assets" / "labels.txt", "0 red\n1 green\n2 blue\n");
  auto named = run_command(classify + " --json");
  ASSERT_EQ(named.exit_code, 0) << named.out;
  auto j = nlohmann::json::parse(named.out);
  EXPECT_EQ(j["labels"], (model / "assets" / "labels.txt").string());
  const std::vector<std::string> names = {"red", "green", "blue"};
  ASSERT_EQ(j["results"][0]["top"].size(), 3u);
  for (const auto& entry : j["results"][0]["top"]) {
    EXPECT_EQ(entry["label"], names.at(entry["class"].get<size_t>()));
  }

  // A shipped labels file that cannot be read (here: past the 64 MiB limit, sparse) is a
  // warning, not a failed classify.
  std::filesystem::resize_file(model / "assets" / "labels.txt", uint64_t{65} << 20);
  auto unreadable = run_command(classify);
  EXPECT_EQ(unreadable.exit_code, 0) << unreadable.out;
  EXPECT_THAT(unreadable.out, ::testing::HasSubstr("labels.txt"));
  EXPECT_THAT(unreadable.out, ::testing::HasSubstr("the classes are shown unnamed"));

  hubimg::testing::write_file(tmp.path() / "two.txt", "left\nright\n");
  auto given = run_command(classify + " --labels " + shell_quote(tmp.path() / "two.txt"));
  ASSERT_EQ(given.exit_code, 0) << given.out;
  EXPECT_THAT(given.out,
              ::testing::HasSubstr("(class names: " + (tmp.path() / "two.txt").string() + ")"));
  EXPECT_THAT(given.out, ::testing::HasSubstr("has 2 class names, the model's output 3 classes"));
  EXPECT_THAT(given.out, ::testing::Not(::testing::HasSubstr("green")));
}

TEST(EmbedCommand, RowsFollowTheListedFilesAndMatchClassify) {
  HUBIMG_REQUIRE_SHARED();
  TempDir tmp;
  auto dir = real_fixture("potato_cnn_aug_tf25");
  auto features = tmp.path() / "features.npy";
  auto late = dir / "samples" / "late_blight_1.jpg";
  auto early = dir / "samples" / "early_blight_1.jpg";
  auto r = run_command(cli_path().string() + " embed " + shell_quote(dir / "saved_model") + " " +
                       shell_quote(late) + " " + shell_quote(early) +
                       " --range 0,255 --batch 1 --output " + shell_quote(features));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto t = read_npy(features);
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  ASSERT_EQ(t->shape(), (Dims{2, 3}));
  // Row 0 is late_blight_1 (reference 0.9014 for class 0), row 1 early_blight_1 (1.0).
  EXPECT_NEAR(t->data<float>()[0], 0.90, 0.02);
  EXPECT_NEAR(t->data<float>()[3], 1.0, 0.01);
  std::ifstream names(features.string() + ".txt");
  std::string first, second;
  std::getline(names, first);
  std::getline(names, second);
  EXPECT_EQ(first, late.string());
  EXPECT_EQ(second, early.string());
  auto no_images =
      run_command(cli_path().string() + " embed " + shell_quote(dir / "saved_model") + " " +
                  shell_quote(tmp.path() / "nothing.png") + " --output " + shell_quote(features));
  EXPECT_NE(no_images.exit_code, 0);
  EXPECT_NE(no_images.out.find("nothing.png"), std::string::npos);
}

}  // namespace
}  // namespace hubimg

namespace hubimg {
namespace {

TEST(BenchCommand, JsonHasTheDocumentedKeys) {
  HUBIMG_REQUIRE_SHARED();
  auto r = hubimg::testing::run_command(
      hubimg::testing::cli_path().string() + " bench '" +
      (hubimg::testing::real_fixture("mnist_cnn_tf231") / "saved_model").string() +
      "' --batch 4 --iterations 3 --json --profile");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  for (const char* key : {"load_ms", "first_call_ms", "median_ms", "p90_ms", "images_per_second",
                          "peak_rss_mb", "batch", "threads"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["batch"], 4);
  EXPECT_GT(j["median_ms"].get<double>(), 0);
  EXPECT_GE(j["p90_ms"].get<double>(), j["median_ms"].get<double>());
  EXPECT_NEAR(j["images_per_second"].get<double>(), 4 * 1000.0 / j["median_ms"].get<double>(),
              1e-6);
  EXPECT_GT(j["peak_rss_mb"].get<double>(), 1);
  // mnist_cnn: 4 Conv2D layers (fused with their bias and Relu), their time is in the profile.
  ASSERT_TRUE(j["profile_ms_by_op"].contains("_HubimgFusedConv2D")) << j.dump();
  EXPECT_GT(j["profile_ms_by_op"]["_HubimgFusedConv2D"].get<double>(), 0);
}

}  // namespace
}  // namespace hubimg
