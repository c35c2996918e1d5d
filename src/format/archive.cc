#include "format/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <vector>

namespace hubimg::format {
namespace {

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};

struct TempDirRemover {
  std::filesystem::path path;
  ~TempDirRemover() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

bool is_safe_relative(const std::filesystem::path& p) {
  if (p.empty() || p.is_absolute()) return false;
  for (const auto& part : p) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

Expected<ExtractedArchive> extract_saved_model_archive(const std::filesystem::path& path,
                                                       uint64_t max_bytes) {
  const std::string where = path.string();
  std::unique_ptr<archive, ArchiveCloser> reader(archive_read_new());
  archive_read_support_filter_all(reader.get());
  archive_read_support_format_tar(reader.get());
  archive_read_support_format_gnutar(reader.get());
  if (archive_read_open_filename(reader.get(), path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return data_loss(where + ": not a SavedModel directory and not a readable tar archive (" +
                     std::string(archive_error_string(reader.get())
                                     ? archive_error_string(reader.get())
                                     : "unknown format") +
                     ")");
  }
  std::random_device rd;
  auto remover = std::make_shared<TempDirRemover>();
  for (;;) {
    remover->path = std::filesystem::temp_directory_path() /
                    ("hubimg_model_" + std::to_string(getpid()) + "_" + std::to_string(rd()));
    if (std::filesystem::create_directory(remover->path)) break;
  }
  uint64_t total = 0;
  std::vector<std::filesystem::path> model_dirs;
  std::vector<char> buffer(1 << 16);
  archive_entry* entry = nullptr;
  for (;;) {
    int r = archive_read_next_header(reader.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return data_loss(where + ": corrupted archive (" +
                       std::string(archive_error_string(reader.get())) + ")");
    }
    std::filesystem::path name =
        std::filesystem::path(archive_entry_pathname(entry)).lexically_normal();
    if (name == "." || name == "./") continue;
    if (!is_safe_relative(name)) {
      return data_loss(where + ": archive entry '" + name.string() +
                       "' points outside the archive");
    }
    auto type = archive_entry_filetype(entry);
    auto target = remover->path / name;
    if (type == AE_IFDIR) {
      std::filesystem::create_directories(target);
      continue;
    }
    if (type != AE_IFREG) continue;  // links and devices are never part of a SavedModel
    std::filesystem::create_directories(target.parent_path());
    std::ofstream out(target, std::ios::binary);
    if (!out) return internal_error(where + ": cannot write " + target.string());
    for (;;) {
      la_ssize_t n = archive_read_data(reader.get(), buffer.data(), buffer.size());
      if (n == 0) break;
      if (n < 0) {
        return data_loss(where + ": corrupted archive data in '" + name.string() + "' (" +
                         std::string(archive_error_string(reader.get())) + ")");
      }
      total += static_cast<uint64_t>(n);
      if (total > max_bytes) return out_of_range(where + ": archive expands past the size limit");
      out.write(buffer.data(), n);
    }
    if (name.filename() == "saved_model.pb" || name.filename() == "saved_model.pbtxt") {
      model_dirs.push_back(target.parent_path());
    }
  }
  if (model_dirs.empty()) {
    return not_found(where + ": archive holds no saved_model.pb or saved_model.pbtxt");
  }
  std::sort(model_dirs.begin(), model_dirs.end(), [](const auto& a, const auto& b) {
    return std::distance(a.begin(), a.end()) < std::distance(b.begin(), b.end());
  });
  return ExtractedArchive{model_dirs.front(), std::move(remover)};
}

}  // namespace hubimg::format
