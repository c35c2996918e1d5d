#include "format/labels.h"

#include <system_error>

#include "core/file_io.h"
#include "format/saved_model.h"

namespace hubimg::format {
namespace {

// Whether `line` is "<index> <name>".
bool has_index_prefix(std::string_view line, size_t index) {
  const std::string prefix = std::to_string(index) + " ";
  return line.size() > prefix.size() && line.starts_with(prefix);
}

}  // namespace

std::vector<std::string> parse_labels(std::string_view text) {
  std::vector<std::string> labels;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (line.ends_with('\r')) line.remove_suffix(1);
    labels.emplace_back(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  bool indexed = !labels.empty();
  for (size_t i = 0; indexed && i < labels.size(); ++i) indexed = has_index_prefix(labels[i], i);
  if (indexed) {
    for (size_t i = 0; i < labels.size(); ++i) {
      labels[i].erase(0, std::to_string(i).size() + 1);
    }
  }
  return labels;
}

Expected<std::vector<std::string>> read_labels_file(const std::filesystem::path& path) {
  constexpr uint64_t kMaxLabelsBytes = uint64_t{64} << 20;
  HUBIMG_ASSIGN_OR_RETURN(std::string text, read_regular_file(path, kMaxLabelsBytes));
  return parse_labels(text);
}

std::filesystem::path shipped_labels_file(const SavedModel& model) {
  std::error_code ec;
  std::filesystem::path in_assets = model.directory() / "assets" / "labels.txt";
  if (std::filesystem::is_regular_file(in_assets, ec)) return in_assets;
  // Beside the folder: never outside an extracted archive (that would be $TMPDIR).
  const std::filesystem::path& root = model.archive_root();
  if (root.empty() || model.directory() != root) {
    std::filesystem::path beside = model.directory().parent_path() / "labels.txt";
    if (std::filesystem::is_regular_file(beside, ec)) return beside;
  }
  return {};
}

}  // namespace hubimg::format
