#include "output_paths.h"

#include <fmt/format.h>

#include <cstdint>
#include <system_error>

namespace hubimg::cli {
namespace {

constexpr size_t kMaxEscapedBytes = 200;

bool kept_as_is(unsigned char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || (c == '.' && !first);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

Expected<std::string> safe_file_name(const std::string& name) {
  if (name.empty()) return invalid_argument("an empty name cannot be a file name");
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (kept_as_is(c, i == 0)) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  if (out.size() > kMaxEscapedBytes) {
    out.resize(kMaxEscapedBytes - 17);
    // Do not leave half of a %XX escape at the cut.
    if (auto pct = out.rfind('%'); pct != std::string::npos && pct + 3 > out.size()) {
      out.resize(pct);
    }
    out += fmt::format("~{:016x}", fnv1a(name));
  }
  return out;
}

Status check_inside(const std::filesystem::path& dir, const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_symlink(std::filesystem::symlink_status(path, ec))) {
    return failed_precondition(path.string() +
                               " is a symbolic link; refusing to write through it (it could lead "
                               "outside the output folder)");
  }
  const auto real_dir = std::filesystem::weakly_canonical(dir, ec);
  if (ec) return failed_precondition(dir.string() + ": " + ec.message());
  const auto real_path = std::filesystem::weakly_canonical(path, ec);
  if (ec) return failed_precondition(path.string() + ": " + ec.message());
  const auto rel = real_path.lexically_relative(real_dir);
  if (rel.empty() || rel.is_absolute() || *rel.begin() == ".." || rel == ".") {
    return failed_precondition(path.string() + " resolves to " + real_path.string() +
                               ", outside the output folder " + real_dir.string() +
                               "; refusing to write it");
  }
  return {};
}

Expected<std::filesystem::path> output_file_path(const std::filesystem::path& dir,
                                                 const std::string& name,
                                                 const std::string& extension,
                                                 const std::string& what) {
  auto file = safe_file_name(name);
  if (!file.ok()) return invalid_argument(what + " '" + name + "': " + file.status().message());
  std::filesystem::path path = dir / (*file + extension);
  HUBIMG_RETURN_IF_ERROR(check_inside(dir, path));
  return path;
}

std::string escape_line(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace hubimg::cli
