#include "format/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/temp_dir.h"
#include "format/model_files.h"

namespace hubimg::format {
namespace {

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};

// " (conflicting archive entries?)" where a file is in the way of a folder or the reverse.
std::string conflict_hint(const std::error_code& ec) {
  return ec == std::errc::not_a_directory || ec == std::errc::file_exists ||
                 ec == std::errc::is_a_directory
             ? " (conflicting archive entries?)"
             : "";
}

bool is_safe_relative(const std::filesystem::path& p) {
  if (p.empty() || p.is_absolute()) return false;
  for (const auto& part : p) {
    if (part == "..") return false;
  }
  return true;
}

std::string archive_error(archive* reader) {
  const char* text = archive_error_string(reader);
  return text ? text : "unknown error";
}

Expected<uint64_t> parse_size(const char* variable, const char* text, bool allow_suffix) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long value = std::strtoull(text, &end, 10);
  uint64_t scale = 1;
  if (allow_suffix && end != text && *end != '\0' && end[1] == '\0') {
    switch (*end) {
      case 'K':
      case 'k':
        scale = uint64_t{1} << 10;
        ++end;
        break;
      case 'M':
      case 'm':
        scale = uint64_t{1} << 20;
        ++end;
        break;
      case 'G':
      case 'g':
        scale = uint64_t{1} << 30;
        ++end;
        break;
      case 'T':
      case 't':
        scale = uint64_t{1} << 40;
        ++end;
        break;
      default: break;
    }
  }
  if (end == text || *end != '\0' || errno == ERANGE || text[0] == '-' || value == 0 ||
      value > UINT64_MAX / scale) {
    return invalid_argument(std::string(variable) + "='" + text + "' is not a positive number" +
                            (allow_suffix ? " (optionally with a K, M, G or T suffix)" : ""));
  }
  return static_cast<uint64_t>(value) * scale;
}

// Writes one regular-file entry; O_EXCL so that an entry can never overwrite an earlier one
// (or follow anything already there).
Status write_entry(archive* reader, const std::filesystem::path& target, const std::string& where,
                   const std::string& name, uint64_t& total, const ArchiveLimits& limits,
                   std::vector<char>& buffer) {
  const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) {
      return data_loss(where + ": archive entry '" + name + "' occurs twice or conflicts with " +
                       "another entry");
    }
    return failed_precondition(where + ": cannot extract '" + name + "': " + std::strerror(err));
  }
  FileDescriptor out(fd);
  for (;;) {
    const la_ssize_t n = archive_read_data(reader, buffer.data(), buffer.size());
    if (n == 0) break;
    if (n < 0) {
      return data_loss(where + ": corrupted archive data in '" + name + "' (" +
                       archive_error(reader) + ")");
    }
    total += static_cast<uint64_t>(n);
    if (total > limits.max_bytes) {
      return out_of_range(where + ": archive expands past the limit of " +
                          std::to_string(limits.max_bytes) +
                          " bytes (HUBIMG_ARCHIVE_MAX_BYTES raises it)");
    }
    for (la_ssize_t written = 0; written < n;) {
      const ssize_t w =
          ::write(out.get(), buffer.data() + written, static_cast<size_t>(n - written));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        return failed_precondition(where + ": cannot extract '" + name +
                                   "': " + std::strerror(errno));
      }
      written += w;
    }
  }
  return {};
}

Expected<ExtractedArchive> extract(const std::filesystem::path& path, const ArchiveLimits& limits) {
  const std::string where = path.string();
  // Refuses FIFOs and devices before libarchive would block on them. Declared before `reader`,
  // so that the descriptor outlives it.
  HUBIMG_ASSIGN_OR_RETURN(RegularFile file, open_regular_file(path));
  std::unique_ptr<archive, ArchiveCloser> reader(archive_read_new());
  if (!reader) return out_of_range(where + ": out of memory");
  archive_read_support_filter_all(reader.get());
  archive_read_support_format_tar(reader.get());
  archive_read_support_format_gnutar(reader.get());
  // Both zip readers: the seekable one (the central directory; archive_read_open_fd seeks in a
  // regular file) and the streaming one as libarchive's fallback.
  archive_read_support_format_zip(reader.get());
  if (archive_read_open_fd(reader.get(), file.fd.get(), 1 << 16) != ARCHIVE_OK) {
    return data_loss(where +
                     ": not a SavedModel directory and not a readable tar or zip archive (" +
                     archive_error(reader.get()) + ")");
  }
  auto temp = TemporaryDirectory::create("hubimg_model_");
  if (!temp.ok()) return temp.status().with_context(where);
  std::shared_ptr<TemporaryDirectory> owner = std::move(temp).value();
  const std::filesystem::path root = owner->path();

  uint64_t total = 0, entries = 0;
  std::vector<std::filesystem::path> model_dirs;
  std::vector<char> buffer(1 << 16);
  archive_entry* entry = nullptr;
  for (;;) {
    const int r = archive_read_next_header(reader.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      return data_loss(where + ": corrupted archive (" + archive_error(reader.get()) + ")");
    }
    if (++entries > limits.max_entries) {
      return out_of_range(where + ": archive has more than " + std::to_string(limits.max_entries) +
                          " entries (HUBIMG_ARCHIVE_MAX_ENTRIES raises the limit)");
    }
    const char* raw_name = archive_entry_pathname(entry);
    if (raw_name == nullptr) return data_loss(where + ": archive entry without a name");
    const std::filesystem::path name = std::filesystem::path(raw_name).lexically_normal();
    if (name == "." || name == "./") continue;
    if (!is_safe_relative(name)) {
      return data_loss(where + ": archive entry '" + name.string() +
                       "' points outside the archive");
    }
    if (std::distance(name.begin(), name.end()) > limits.max_depth) {
      return data_loss(where + ": archive entry '" + name.string().substr(0, 200) +
                       "...' is nested deeper than " + std::to_string(limits.max_depth) +
                       " folders");
    }
    const auto type = archive_entry_filetype(entry);
    const std::filesystem::path target = root / name;
    std::error_code ec;
    if (type == AE_IFDIR) {
      std::filesystem::create_directories(target, ec);
      if (ec) {
        return data_loss(where + ": cannot extract folder '" + name.string() +
                         "': " + ec.message() + conflict_hint(ec));
      }
      continue;
    }
    if (type != AE_IFREG) continue;  // links and devices are never part of a SavedModel
    std::filesystem::create_directories(target.parent_path(), ec);
    if (ec) {
      return data_loss(where + ": cannot extract '" + name.string() + "': " + ec.message() +
                       conflict_hint(ec));
    }
    HUBIMG_RETURN_IF_ERROR(
        write_entry(reader.get(), target, where, name.string(), total, limits, buffer));
    if (name.filename() == "saved_model.pb" || name.filename() == "saved_model.pbtxt") {
      model_dirs.push_back(target.parent_path());
    }
  }
  if (model_dirs.empty()) {
    std::string message = where + ": archive holds no saved_model.pb or saved_model.pbtxt";
    if (std::string what = describe_folder_without_saved_model(root); !what.empty()) {
      message += "; " + what;
    }
    return not_found(std::move(message));
  }
  // The shallowest SavedModel (a model's own sub-models, if any, lie deeper); two at that depth
  // are ambiguous, and picking one by archive order could silently run the wrong model.
  auto depth = [](const std::filesystem::path& p) { return std::distance(p.begin(), p.end()); };
  std::sort(model_dirs.begin(), model_dirs.end(), [&](const auto& a, const auto& b) {
    return depth(a) != depth(b) ? depth(a) < depth(b) : a < b;
  });
  model_dirs.erase(std::unique(model_dirs.begin(), model_dirs.end()), model_dirs.end());
  if (model_dirs.size() > 1 && depth(model_dirs[1]) == depth(model_dirs[0])) {
    std::string names;
    for (size_t i = 0; i < model_dirs.size() && depth(model_dirs[i]) == depth(model_dirs[0]); ++i) {
      const std::string relative = model_dirs[i].lexically_relative(root).string();
      names += (names.empty() ? "'" : ", '") + (relative == "." ? "" : relative) + "'";
    }
    return invalid_argument(where + ": archive holds several SavedModels (" + names +
                            "): extract it and pass one folder");
  }
  return ExtractedArchive{model_dirs.front(), root, std::move(owner)};
}

}  // namespace

Expected<ArchiveLimits> archive_limits_from_environment() {
  ArchiveLimits limits;
  if (const char* v = std::getenv("HUBIMG_ARCHIVE_MAX_BYTES"); v && *v) {
    HUBIMG_ASSIGN_OR_RETURN(limits.max_bytes, parse_size("HUBIMG_ARCHIVE_MAX_BYTES", v, true));
  }
  if (const char* v = std::getenv("HUBIMG_ARCHIVE_MAX_ENTRIES"); v && *v) {
    HUBIMG_ASSIGN_OR_RETURN(limits.max_entries, parse_size("HUBIMG_ARCHIVE_MAX_ENTRIES", v, false));
  }
  return limits;
}

}  // namespace hubimg::format

namespace hubimg::format {

Expected<ExtractedArchive> extract_saved_model_archive(const std::filesystem::path& path,
                                                       const ArchiveLimits& limits) {
  return catch_exceptions(path.string(), [&] { return extract(path, limits); });
}

Expected<ExtractedArchive> extract_saved_model_archive(const std::filesystem::path& path) {
  auto limits = archive_limits_from_environment();
  if (!limits.ok()) return limits.status();
  return extract_saved_model_archive(path, *limits);
}

}  // namespace hubimg::format
