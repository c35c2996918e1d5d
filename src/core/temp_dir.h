// Temporary folders that are removed on every exit path: when their owner goes away, and also
// when the process is ended by SIGINT, SIGTERM, SIGHUP or SIGPIPE.
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "hubimg/status.h"

namespace hubimg {

class TemporaryDirectory {
 public:
  // A fresh private (0700) folder "<$TMPDIR or /tmp>/<prefix>XXXXXX". The first call installs
  // handlers for SIGINT, SIGTERM, SIGHUP and SIGPIPE that remove every live temporary folder (with
  // async-signal-safe calls only) and then end the process by the same signal as before.
  // A handler is installed only where the signal's disposition is the default one, so a host
  // program's own handlers (or SIG_IGN) are left alone.
  static Expected<std::unique_ptr<TemporaryDirectory>> create(std::string_view prefix);
  ~TemporaryDirectory();
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  TemporaryDirectory(std::filesystem::path path, int slot) : path_(std::move(path)), slot_(slot) {}
  std::filesystem::path path_;
  int slot_;  // index in the signal handler's table, -1 when the table was full
};

// How many temporary folders the signal handler would remove now (for tests).
int live_temporary_directories();

}  // namespace hubimg
