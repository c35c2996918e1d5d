#include "format/model_files.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <deque>
#include <string_view>
#include <system_error>
#include <utility>

#include "core/file_io.h"

namespace hubimg::format {
namespace {

constexpr std::string_view kSaveAsSavedModel =
    "write a SavedModel with tf.saved_model.save(model, DIR) (TensorFlow 2 Keras: also "
    "model.save(DIR)), or model.export(DIR) in Keras 3, and pass DIR";

std::string lowercase_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

bool is_saved_model_folder(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::is_regular_file(dir / "saved_model.pb", ec) ||
         std::filesystem::is_regular_file(dir / "saved_model.pbtxt", ec);
}

bool is_file(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

}  // namespace

std::string describe_foreign_model_file(const std::filesystem::path& file) {
  std::array<char, 16> head{};
  size_t n = 0;
  if (auto opened = open_regular_file(file); opened.ok()) {
    n = static_cast<size_t>(std::min<uint64_t>(opened->size, head.size()));
    if (!read_exactly(*opened, 0, head.data(), n, file).ok()) n = 0;
  }
  const std::string_view bytes(head.data(), n);
  const std::string ext = lowercase_extension(file);
  if (bytes.starts_with(std::string_view("\x89HDF\r\n\x1a\n", 8))) {
    return "an HDF5 file (a Keras .h5 model), not a SavedModel: " + std::string(kSaveAsSavedModel);
  }
  if (bytes.size() >= 8 && bytes.substr(4, 4) == "TFL3") {
    return "a TensorFlow Lite model, not a SavedModel: pass the SavedModel it was converted from";
  }
  if (ext == ".keras") {
    return "a Keras 3 .keras file, not a SavedModel: " + std::string(kSaveAsSavedModel);
  }
  if (ext == ".onnx") {
    return "an ONNX model, not a SavedModel: hubimg reads TensorFlow SavedModels";
  }
  if (file.filename() == "model.json") {
    return "a TensorFlow.js model, not a SavedModel: pass the SavedModel it was converted from";
  }
  if (ext == ".index" || ext == ".ckpt" || ext.starts_with(".data-")) {
    if (const auto folder = file.parent_path().parent_path();
        file.parent_path().filename() == "variables" && is_saved_model_folder(folder)) {
      return "a checkpoint file of the SavedModel in '" + folder.string() + "': pass that folder";
    }
    return "a TensorFlow checkpoint file, not a SavedModel: pass the SavedModel folder (the one "
           "holding saved_model.pb and variables/)";
  }
  if (ext == ".pt" || ext == ".pth") {
    return "a PyTorch model, not a SavedModel: hubimg reads TensorFlow SavedModels";
  }
  if (ext == ".pb") {
    return "a .pb file not named saved_model.pb: a SavedModel is a folder holding saved_model.pb "
           "and variables/ (pass the folder); a TensorFlow 1 frozen graph is not a SavedModel";
  }
  return {};
}

std::vector<std::filesystem::path> saved_models_below(const std::filesystem::path& dir,
                                                      int max_depth, int max_entries, int limit) {
  std::vector<std::filesystem::path> found;
  std::deque<std::pair<std::filesystem::path, int>> pending{{dir, 0}};
  int entries = 0;
  while (!pending.empty() && static_cast<int>(found.size()) < limit) {
    auto [folder, depth] = std::move(pending.front());
    pending.pop_front();
    if (depth > 0 && is_saved_model_folder(folder)) {
      found.push_back(folder.lexically_relative(dir));
      continue;
    }
    if (depth == max_depth) continue;
    std::error_code ec;
    std::vector<std::filesystem::path> subfolders;
    for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (++entries > max_entries) return found;
      std::error_code type_ec;
      if (it->is_directory(type_ec)) subfolders.push_back(it->path());
    }
    std::sort(subfolders.begin(), subfolders.end());
    for (auto& sub : subfolders) pending.emplace_back(std::move(sub), depth + 1);
  }
  return found;
}

std::string describe_folder_without_saved_model(const std::filesystem::path& dir, int max_depth,
                                                int max_entries) {
  if (is_file(dir / "model.json")) {
    return "it is a TensorFlow.js model (model.json), not a SavedModel: pass the SavedModel it "
           "was converted from";
  }
  if (is_file(dir / "config.json") && is_file(dir / "model.weights.h5")) {
    return "it is a Keras 3 model (config.json, model.weights.h5), not a SavedModel: " +
           std::string(kSaveAsSavedModel);
  }
  constexpr size_t kNamed = 3;
  const auto below = saved_models_below(dir, max_depth, max_entries, kNamed + 1);
  if (below.size() == 1) {
    return "it holds a SavedModel in '" + below.front().string() + "' (pass that folder)";
  }
  if (!below.empty()) {
    std::string text = "it holds SavedModels in ";
    for (size_t i = 0; i < std::min(below.size(), kNamed); ++i) {
      text += (i ? ", '" : "'") + below[i].string() + "'";
    }
    return text + (below.size() > kNamed ? ", ..." : "") + " (pass one of those folders)";
  }
  std::error_code ec;
  int entries = 0;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (++entries > max_entries) break;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    if (std::string what = describe_foreign_model_file(it->path()); !what.empty()) {
      return "it holds " + it->path().filename().string() + ", " + what;
    }
  }
  if (std::filesystem::is_directory(dir / "variables", ec)) {
    return "it has variables/ but no saved_model.pb: an incomplete copy?";
  }
  return {};
}

}  // namespace hubimg::format
