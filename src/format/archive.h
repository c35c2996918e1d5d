// SavedModels as model hubs serve them: a (gzip'd) tar of the SavedModel directory.
#pragma once

#include <filesystem>
#include <memory>

#include "hubimg/status.h"

namespace hubimg::format {

struct ExtractedArchive {
  std::filesystem::path saved_model_dir;  // the folder holding saved_model.pb(txt)
  std::shared_ptr<void> owner;            // removes the temporary directory when released
};

// Extracts a .tar, .tar.gz or .tgz into a fresh temporary directory. Rejects entries that would
// land outside it (absolute paths, "..", links) and archives that expand past `max_bytes`.
Expected<ExtractedArchive> extract_saved_model_archive(const std::filesystem::path& archive,
                                                       uint64_t max_bytes = uint64_t{16} << 30);

}  // namespace hubimg::format
