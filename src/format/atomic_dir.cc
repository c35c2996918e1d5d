#include "format/atomic_dir.h"

#include <random>
#include <string>
#include <system_error>

namespace hubimg::format {

Status write_directory_atomically(
    const std::filesystem::path& out,
    const std::function<Status(const std::filesystem::path&)>& write) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path target = out.has_filename() ? out : out.parent_path();
  if (target.empty()) return invalid_argument("output directory: empty path");
  const bool exists = fs::exists(target, ec);
  if (exists) {
    if (!fs::is_directory(target, ec)) {
      return failed_precondition(target.string() + ": exists and is not a directory");
    }
    if (!fs::is_empty(target, ec)) {
      return failed_precondition(target.string() +
                                 ": exists and is not empty (remove it or choose another output)");
    }
  }
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  if (ec) return not_found(parent.string() + ": cannot create: " + ec.message());
  std::random_device rd;
  fs::path tmp;
  for (int attempt = 0;; ++attempt) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string suffix;
    for (int i = 0; i < 6; ++i) suffix += kHex[rd() % 16];
    tmp = parent / (target.filename().string() + ".tmp-" + suffix);
    if (fs::create_directory(tmp, ec)) break;
    if (ec || attempt > 16) {
      return not_found(tmp.string() +
                       ": cannot create: " + (ec ? ec.message() : std::string("name taken")));
    }
  }
  Status s = write(tmp);
  if (s.ok() && exists) {
    fs::remove(target, ec);  // the empty directory
    if (ec) s = failed_precondition(target.string() + ": cannot replace: " + ec.message());
  }
  if (s.ok()) {
    fs::rename(tmp, target, ec);
    if (ec)
      s = failed_precondition(target.string() +
                              ": cannot rename the written model there: " + ec.message());
  }
  if (!s.ok()) fs::remove_all(tmp, ec);
  return s;
}

}  // namespace hubimg::format
