// Zip archives load like tar archives; what is not a SavedModel is named (Keras, TensorFlow Lite,
// TensorFlow.js, ONNX, a frozen graph, a folder with the SavedModel further down); the class
// names a model ships.
#include "format/model_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "format/labels.h"
#include "format/saved_model.h"
#include "hubimg/model.h"
#include "util/test_util.h"
#include "zoo/zoo.h"

namespace hubimg::format {
namespace {

namespace fs = std::filesystem;
using hubimg::testing::archive_files_below;
using hubimg::testing::read_file;
using hubimg::testing::TempDir;
using hubimg::testing::write_file;
using hubimg::testing::write_zip;
using ::testing::HasSubstr;
using ::testing::Not;

std::string load_error(const fs::path& path) {
  auto model = SavedModel::load(path);
  if (model.ok()) return "loaded";
  return model.status().message();
}

fs::path write_tiny_cnn(const fs::path& dir) {
  EXPECT_TRUE(zoo::write_zoo_model("tiny_cnn", dir, {.input_size = 16}).ok());
  return dir;
}

Tensor test_images() {
  std::vector<float> pixels(2 * 16 * 16 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>(i % 97) / 96.0f;
  return Tensor::from_vector<float>({2, 16, 16, 3}, pixels);
}

// Teachable Machine's "converted_savedmodel.zip" layout: the SavedModel two folders down, with a
// labels file beside it.
TEST(ZipArchives, AZippedSavedModelLoadsAndRunsAsTheFolderDoes) {
  TempDir tmp;
  const fs::path folder = write_tiny_cnn(tmp.path() / "tiny");
  auto entries = archive_files_below(folder, "converted_savedmodel/model.savedmodel/");
  ASSERT_GE(entries.size(), 3u);
  entries.push_back({"converted_savedmodel/labels.txt", "0 a\n1 b\n"});
  const fs::path zip = tmp.path() / "converted_savedmodel.zip";
  write_zip(zip, entries);

  auto from_folder = Model::load(folder);
  ASSERT_TRUE(from_folder.ok()) << from_folder.status().to_string();
  auto from_zip = Model::load(zip);
  ASSERT_TRUE(from_zip.ok()) << from_zip.status().to_string();
  auto expected = (*from_folder)(test_images());
  auto actual = (*from_zip)(test_images());
  ASSERT_TRUE(expected.ok() && actual.ok());
  ASSERT_EQ(expected->size(), 1u);
  ASSERT_EQ(actual->size(), 1u);
  const auto want = (*expected)[0].values<float>();
  const auto got = (*actual)[0].values<float>();
  ASSERT_EQ(got.size(), want.size());
  EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin()));

  auto saved = SavedModel::load(zip);
  ASSERT_TRUE(saved.ok());
  const fs::path extracted = (*saved)->directory();
  EXPECT_EQ(extracted.filename(), "model.savedmodel");
  saved->reset();
  EXPECT_FALSE(fs::exists(extracted)) << "temporary extraction not removed";
}

TEST(ZipArchives, EntriesOutsideTheArchiveAndForeignZipsAreRefused) {
  TempDir tmp;
  const std::string model = read_file(write_tiny_cnn(tmp.path() / "tiny") / "saved_model.pb");
  const fs::path slip = tmp.path() / "slip.zip";
  write_zip(slip, {{"m/saved_model.pb", model}, {"../outside", "x"}});
  EXPECT_THAT(load_error(slip), HasSubstr("'../outside' points outside the archive"));
  EXPECT_FALSE(fs::exists(tmp.path().parent_path() / "outside"));

  // Two SavedModels side by side: which one is meant is not for hubimg to guess; one deeper
  // than the other: the shallowest.
  const fs::path two = tmp.path() / "two.zip";
  write_zip(two, {{"a/saved_model.pb", model}, {"b/saved_model.pb", model}});
  EXPECT_THAT(load_error(two), HasSubstr("archive holds several SavedModels ('a', 'b')"));
  auto nested_files = archive_files_below(tmp.path() / "tiny", "outer/");
  nested_files.push_back({"outer/inner/saved_model.pb", model});
  const fs::path nested = tmp.path() / "nested.zip";
  write_zip(nested, nested_files);
  auto shallowest = SavedModel::load(nested);
  ASSERT_TRUE(shallowest.ok()) << shallowest.status().to_string();
  EXPECT_EQ((*shallowest)->directory().filename(), "outer");

  const fs::path keras = tmp.path() / "model.zip";
  write_zip(keras, {{"config.json", "{}"}, {"metadata.json", "{}"}, {"model.weights.h5", "h"}});
  const std::string keras_error = load_error(keras);
  EXPECT_THAT(keras_error, HasSubstr("archive holds no saved_model.pb"));
  EXPECT_THAT(keras_error, HasSubstr("Keras 3 model"));
  EXPECT_THAT(keras_error, HasSubstr("model.export(DIR)"));

  const fs::path tfjs = tmp.path() / "web_model.zip";
  write_zip(tfjs, {{"model.json", "{}"}, {"group1-shard1of1.bin", "w"}});
  EXPECT_THAT(load_error(tfjs), HasSubstr("TensorFlow.js model"));

  write_file(tmp.path() / "truncated.zip", read_file(keras).substr(0, 40));
  EXPECT_THAT(load_error(tmp.path() / "truncated.zip"), HasSubstr("truncated.zip"));
  write_file(tmp.path() / "noise.bin", std::string(300, '\x17'));
  EXPECT_THAT(load_error(tmp.path() / "noise.bin"), HasSubstr("not a readable tar or zip archive"));
}

TEST(ForeignModels, OtherModelFormatsAreNamedWithWhatToDo) {
  TempDir tmp;
  struct Case {
    std::string file;
    std::string bytes;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"weights.h5", std::string("\x89HDF\r\n\x1a\n", 8) + std::string(64, '\0'),
       "an HDF5 file (a Keras .h5 model)"},
      {"renamed.bin", std::string("\x89HDF\r\n\x1a\n", 8) + std::string(64, '\0'),
       "an HDF5 file (a Keras .h5 model)"},
      {"model.tflite", std::string("\x1c\0\0\0TFL3", 8) + std::string(64, '\0'),
       "a TensorFlow Lite model"},
      {"model.keras", "PK\x03\x04 not really", "a Keras 3 .keras file"},
      {"model.onnx", "\x08\x07\x12\x04onnx", "an ONNX model"},
      {"frozen_inference_graph.pb", "\x0a\x03\x0a\x01x", "a TensorFlow 1 frozen graph"},
      {"model.json", "{\"modelTopology\": {}}", "a TensorFlow.js model"},
      {"variables.index", std::string(48, '\0'), "a TensorFlow checkpoint file"},
      {"variables.data-00000-of-00001", "\x01\x02", "a TensorFlow checkpoint file"},
      {"resnet.pth", "PK\x03\x04 torch zip", "a PyTorch model"},
  };
  for (const auto& c : cases) {
    write_file(tmp.path() / c.file, c.bytes);
    const std::string error = load_error(tmp.path() / c.file);
    EXPECT_THAT(error, HasSubstr((tmp.path() / c.file).string() + ": ")) << c.file;
    EXPECT_THAT(error, HasSubstr(c.expected)) << c.file;
  }
  const fs::path model = write_tiny_cnn(tmp.path() / "tiny");
  EXPECT_THAT(load_error(model / "variables" / "variables.index"),
              HasSubstr("a checkpoint file of the SavedModel in '" + model.string() +
                        "': pass that folder"));
  EXPECT_EQ(describe_foreign_model_file(tmp.path() / "absent.h5"), "");
  write_file(tmp.path() / "notes.txt", "hello");
  EXPECT_EQ(describe_foreign_model_file(tmp.path() / "notes.txt"), "");
}

TEST(ForeignModels, AFolderNamesTheSavedModelsFurtherDown) {
  TempDir tmp;
  const fs::path root = tmp.path() / "download";
  write_tiny_cnn(root / "model" / "1");
  EXPECT_THAT(load_error(root),
              HasSubstr("no saved_model.pb or saved_model.pbtxt); it holds a SavedModel in "
                        "'model/1' (pass that folder)"));

  for (const char* name : {"b", "c", "d", "e"}) {
    fs::create_directories(root / name);
    write_file(root / name / "saved_model.pbtxt", "");
  }
  const std::string many = load_error(root);
  EXPECT_THAT(many, HasSubstr("it holds SavedModels in 'b', 'c', 'd', ... (pass one of those"));

  // Deeper than three levels is not searched; a loop of links ends at the depth and the budget.
  const fs::path deep = tmp.path() / "deep";
  fs::create_directories(deep / "1" / "2" / "3" / "4");
  write_file(deep / "1" / "2" / "3" / "4" / "saved_model.pbtxt", "");
  fs::create_directory_symlink(deep, deep / "1" / "loop");
  EXPECT_THAT(load_error(deep), Not(HasSubstr("it holds")));
  EXPECT_EQ(saved_models_below(deep, 4, 100, 3), std::vector<fs::path>{"1/2/3/4"});
  EXPECT_TRUE(saved_models_below(deep, 50, 3, 3).empty()) << "the entry budget was not kept";
  EXPECT_EQ(saved_models_below(deep, 50, 100000, 3).size(), 3u);  // the same one, through links
}

TEST(ForeignModels, FoldersOfOtherFormatsAreNamed) {
  TempDir tmp;
  const fs::path tfjs = tmp.path() / "tfjs";
  fs::create_directories(tfjs);
  write_file(tfjs / "model.json", "{}");
  EXPECT_THAT(load_error(tfjs), HasSubstr("it is a TensorFlow.js model (model.json)"));

  const fs::path keras = tmp.path() / "keras";
  fs::create_directories(keras);
  write_file(keras / "config.json", "{}");
  write_file(keras / "model.weights.h5", "w");
  EXPECT_THAT(load_error(keras), HasSubstr("it is a Keras 3 model"));

  const fs::path lite = tmp.path() / "lite";
  fs::create_directories(lite);
  write_file(lite / "mobilenet.tflite", std::string("\x1c\0\0\0TFL3", 8));
  EXPECT_THAT(load_error(lite), HasSubstr("it holds mobilenet.tflite, a TensorFlow Lite model"));

  const fs::path half = tmp.path() / "half";
  fs::create_directories(half / "variables");
  EXPECT_THAT(load_error(half), HasSubstr("variables/ but no saved_model.pb"));

  const fs::path empty = tmp.path() / "empty";
  fs::create_directories(empty);
  const std::string plain = load_error(empty);
  EXPECT_THAT(plain, HasSubstr("not a SavedModel directory"));
  EXPECT_THAT(plain, Not(HasSubstr(";")));
}

}  // namespace
}  // namespace hubimg::format

namespace hubimg::format {
namespace {

using hubimg::testing::TempDir;
using hubimg::testing::write_file;

TEST(Labels, OneNamePerLineAndTeachableMachinesIndicesDropped) {
  using Names = std::vector<std::string>;
  EXPECT_EQ(parse_labels("cat\r\ndog\n"), (Names{"cat", "dog"}));
  EXPECT_EQ(parse_labels("cat\n\ndog"), (Names{"cat", "", "dog"}));
  EXPECT_EQ(parse_labels("0 Eyes open\n1 Eyes closed\n"), (Names{"Eyes open", "Eyes closed"}));
  // Kept as written: an index out of order, a line without one, a bare number.
  EXPECT_EQ(parse_labels("1 a\n0 b\n"), (Names{"1 a", "0 b"}));
  EXPECT_EQ(parse_labels("0 a\nb\n"), (Names{"0 a", "b"}));
  EXPECT_EQ(parse_labels("0\n1\n"), (Names{"0", "1"}));
  Names many;
  std::string text;
  for (int i = 0; i < 12; ++i) {
    text += std::to_string(i) + " class " + std::to_string(i) + "\n";
    many.push_back("class " + std::to_string(i));
  }
  EXPECT_EQ(parse_labels(text), many);
  EXPECT_TRUE(parse_labels("").empty());
}

TEST(Labels, TheModelsOwnAssetsFirstThenBesideTheFolderButNeverOutsideAnArchive) {
  TempDir tmp;
  const fs::path model_dir = tmp.path() / "tm" / "model.savedmodel";
  ASSERT_TRUE(zoo::write_zoo_model("tiny_cnn", model_dir, {.input_size = 16}).ok());
  auto shipped = [](const fs::path& path) {
    auto model = SavedModel::load(path);
    EXPECT_TRUE(model.ok()) << model.status().to_string();
    return model.ok() ? shipped_labels_file(**model) : fs::path("(not loaded)");
  };
  EXPECT_EQ(shipped(model_dir), fs::path());
  write_file(tmp.path() / "tm" / "labels.txt", "0 a\n1 b\n");
  EXPECT_EQ(shipped(model_dir), model_dir.parent_path() / "labels.txt");
  fs::create_directories(model_dir / "assets");
  write_file(model_dir / "assets" / "labels.txt", "x\ny\n");
  EXPECT_EQ(shipped(model_dir), model_dir / "assets" / "labels.txt");
  fs::remove(model_dir / "assets" / "labels.txt");

  // Inside a zip: beside the SavedModel folder when that folder is not the archive's top.
  const fs::path nested = tmp.path() / "nested.zip";
  auto files = hubimg::testing::archive_files_below(tmp.path() / "tm", "converted_savedmodel/");
  hubimg::testing::write_zip(nested, files);
  auto from_zip = SavedModel::load(nested);
  ASSERT_TRUE(from_zip.ok()) << from_zip.status().to_string();
  const fs::path found = shipped_labels_file(**from_zip);
  EXPECT_EQ(found.lexically_relative((*from_zip)->archive_root()),
            fs::path("converted_savedmodel/labels.txt"));
  auto names = read_labels_file(found);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b"}));

  // At the archive's top: a labels.txt in TMPDIR beside the extraction is not the model's.
  const fs::path top = tmp.path() / "top.zip";
  hubimg::testing::write_zip(top, hubimg::testing::archive_files_below(model_dir, ""));
  const fs::path tmpdir = tmp.path() / "tmpdir";
  fs::create_directories(tmpdir);
  write_file(tmpdir / "labels.txt", "stray\n");
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved = old_tmpdir ? old_tmpdir : "";
  ::setenv("TMPDIR", tmpdir.c_str(), 1);
  auto from_top = SavedModel::load(top);
  if (old_tmpdir) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  ASSERT_TRUE(from_top.ok()) << from_top.status().to_string();
  EXPECT_EQ((*from_top)->directory().parent_path(), tmpdir);
  EXPECT_EQ(shipped_labels_file(**from_top), fs::path());
}

}  // namespace
}  // namespace hubimg::format
