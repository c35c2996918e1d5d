// SavedModels as model hubs serve them: a (gzip'd) tar of the SavedModel directory, or a zip
// (Teachable Machine's export, a zipped folder).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "hubimg/status.h"

namespace hubimg::format {

struct ExtractedArchive {
  std::filesystem::path saved_model_dir;  // the folder holding saved_model.pb(txt)
  std::filesystem::path root;             // where the archive was extracted
  std::shared_ptr<void> owner;            // removes the temporary directory when released
};

// What extraction may write before the model is even looked at.
struct ArchiveLimits {
  uint64_t max_bytes = uint64_t{4} << 30;  // total size of the files extracted
  uint64_t max_entries = 100000;           // entries of any kind (files, folders, skipped)
  int max_depth = 64;                      // path components of an entry
};

// The defaults, overridden by the environment: HUBIMG_ARCHIVE_MAX_BYTES (bytes, or with a
// K/M/G/T suffix, powers of 1024) and HUBIMG_ARCHIVE_MAX_ENTRIES. An unparsable value is an
// error rather than silently ignored.
Expected<ArchiveLimits> archive_limits_from_environment();

// Extracts a .tar, .tar.gz, .tgz or .zip into a fresh temporary directory (see core/temp_dir.h: it
// is removed when `owner` goes away, after any error, and on SIGINT/SIGTERM/SIGHUP/SIGPIPE).
// Rejects entries that would land outside it (absolute paths, "..") or deeper than `max_depth`,
// skips links and special files, and stops when the archive has more than `max_entries` entries or
// expands past `max_bytes`. `saved_model_dir` is the shallowest folder holding saved_model.pb(txt);
// two at that depth are an error naming them.
Expected<ExtractedArchive> extract_saved_model_archive(const std::filesystem::path& archive,
                                                       const ArchiveLimits& limits);
// With archive_limits_from_environment().
Expected<ExtractedArchive> extract_saved_model_archive(const std::filesystem::path& archive);

}  // namespace hubimg::format
