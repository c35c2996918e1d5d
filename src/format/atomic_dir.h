// Writing a directory so that it appears whole or not at all.
#pragma once

#include <filesystem>
#include <functional>

#include "hubimg/status.h"

namespace hubimg::format {

// Runs `write` on a fresh sibling directory "<out>.tmp-XXXXXX", then renames it to `out`. Fails
// (writing nothing) when `out` exists and is not an empty directory; on any error the
// temporary directory is removed.
Status write_directory_atomically(const std::filesystem::path& out,
                                  const std::function<Status(const std::filesystem::path&)>& write);

}  // namespace hubimg::format
