// Zip archives load like tar archives; what is not a SavedModel is named (Keras, TensorFlow Lite,
// TensorFlow.js, ONNX, a frozen graph, a folder with the SavedModel further down).
#include "format/model_files.h"

#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "format/saved_model.h"
#include "hubimg/model.h"
#include "util/test_util.h"
#include "zoo/zoo.h"

namespace hubimg::format {
namespace {

namespace fs = std::filesystem;
using hubimg::testing::read_file;
using hubimg::testing::TempDir;
using hubimg::testing::write_file;
using ::testing::HasSubstr;
using ::testing::Not;

std::string load_error(const fs::path& path) {
  auto model = SavedModel::load(path);
  if (model.ok()) return "loaded";
  return model.status().message();
}

struct ZipEntry {
  std::string name;
  std::string content;
};

// Every file below `dir` as an entry under `prefix`, in a sorted order.
std::vector<ZipEntry> entries_below(const fs::path& dir, const std::string& prefix) {
  std::vector<ZipEntry> entries;
  for (const auto& item : fs::recursive_directory_iterator(dir)) {
    if (!item.is_regular_file()) continue;
    entries.push_back(
        {prefix + item.path().lexically_relative(dir).string(), read_file(item.path())});
  }
  std::sort(entries.begin(), entries.end(),
            [](const ZipEntry& a, const ZipEntry& b) { return a.name < b.name; });
  return entries;
}

// Written with libarchive, as `zip -r` (deflated entries, a central directory) would.
void write_zip(const fs::path& path, const std::vector<ZipEntry>& entries) {
  archive* a = archive_write_new();
  ASSERT_EQ(archive_write_set_format_zip(a), ARCHIVE_OK);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    archive_entry_set_size(entry, static_cast<la_int64_t>(e.content.size()));
    ASSERT_EQ(archive_write_header(a, entry), ARCHIVE_OK) << e.name;
    ASSERT_EQ(archive_write_data(a, e.content.data(), e.content.size()),
              static_cast<la_ssize_t>(e.content.size()));
    archive_entry_free(entry);
  }
  ASSERT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
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
  auto entries = entries_below(folder, "converted_savedmodel/model.savedmodel/");
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
       "a Keras HDF5 model"},
      {"renamed.bin", std::string("\x89HDF\r\n\x1a\n", 8) + std::string(64, '\0'),
       "a Keras HDF5 model"},
      {"model.tflite", std::string("\x1c\0\0\0TFL3", 8) + std::string(64, '\0'),
       "a TensorFlow Lite model"},
      {"model.keras", "PK\x03\x04 not really", "a Keras 3 .keras file"},
      {"model.onnx", "\x08\x07\x12\x04onnx", "an ONNX model"},
      {"frozen_inference_graph.pb", "\x0a\x03\x0a\x01x", "a TensorFlow 1 frozen graph"},
      {"model.json", "{\"modelTopology\": {}}", "a TensorFlow.js model"},
  };
  for (const auto& c : cases) {
    write_file(tmp.path() / c.file, c.bytes);
    const std::string error = load_error(tmp.path() / c.file);
    EXPECT_THAT(error, HasSubstr((tmp.path() / c.file).string() + ": ")) << c.file;
    EXPECT_THAT(error, HasSubstr(c.expected)) << c.file;
  }
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
