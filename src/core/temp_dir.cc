#include "core/temp_dir.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

namespace hubimg {
namespace {

constexpr int kSlots = 64;
constexpr size_t kMaxPath = 4096;
// Deeper trees are not followed by the signal handler (archive extraction refuses deeper paths).
constexpr int kMaxRemovalDepth = 128;

enum SlotState : int { kFree = 0, kBusy = 1, kLive = 2 };

struct Slot {
  std::atomic<int> state{kFree};
  char path[kMaxPath];
};

std::array<Slot, kSlots> slots;

// SIGPIPE: `hubimg info model.tar.gz | head` ends hubimg by a broken pipe.
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};

// The layout the kernel's getdents64 fills in.
struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[1];
};

bool is_dot_or_dot_dot(const char* name) {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

// Removes `name` under `dir_fd` and everything below it. Only async-signal-safe system calls,
// no allocation, a small stack buffer per level.
void remove_tree_at(int dir_fd, const char* name, int depth) {
  if (::unlinkat(dir_fd, name, 0) == 0 || errno == ENOENT) return;
  if (depth > kMaxRemovalDepth) return;
  const int fd = ::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  alignas(8) char buffer[1024];
  // Removing entries while reading a folder may make the kernel skip some: read it again until
  // a pass removes nothing.
  for (bool removed_any = true; removed_any;) {
    removed_any = false;
    if (::lseek(fd, 0, SEEK_SET) != 0) break;
    for (;;) {
      const long n = ::syscall(SYS_getdents64, fd, buffer, sizeof(buffer));
      if (n <= 0) break;
      for (long offset = 0; offset < n;) {
        const auto* entry = reinterpret_cast<const LinuxDirent64*>(buffer + offset);
        offset += entry->d_reclen;
        if (is_dot_or_dot_dot(entry->d_name)) continue;
        remove_tree_at(fd, entry->d_name, depth + 1);
        removed_any = true;
      }
    }
  }
  ::close(fd);
  ::unlinkat(dir_fd, name, AT_REMOVEDIR);
}

void remove_live_directories_and_reraise(int signal_number) {
  const int saved_errno = errno;
  for (auto& slot : slots) {
    if (slot.state.load(std::memory_order_acquire) == kLive) {
      remove_tree_at(AT_FDCWD, slot.path, 0);
    }
  }
  errno = saved_errno;
  // The default action (terminate) happens when the handler returns: the signal is blocked
  // while its handler runs.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  ::sigaction(signal_number, &default_action, nullptr);
  ::raise(signal_number);
}

void install_signal_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int signal_number : kSignals) {
      struct sigaction current {};
      if (::sigaction(signal_number, nullptr, &current) != 0) continue;
      const bool is_default = !(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_DFL;
      if (!is_default) continue;
      struct sigaction action {};
      action.sa_handler = remove_live_directories_and_reraise;
      sigemptyset(&action.sa_mask);
      for (int other : kSignals) sigaddset(&action.sa_mask, other);
      ::sigaction(signal_number, &action, nullptr);
    }
  });
}

int claim_slot(const std::string& path) {
  if (path.size() >= kMaxPath) return -1;
  for (int i = 0; i < kSlots; ++i) {
    int expected = kFree;
    if (slots[i].state.compare_exchange_strong(expected, kBusy, std::memory_order_acq_rel)) {
      std::memcpy(slots[i].path, path.c_str(), path.size() + 1);
      slots[i].state.store(kLive, std::memory_order_release);
      return i;
    }
  }
  return -1;
}

}  // namespace

Expected<std::unique_ptr<TemporaryDirectory>> TemporaryDirectory::create(std::string_view prefix) {
  std::error_code ec;
  const std::filesystem::path base = std::filesystem::temp_directory_path(ec);
  if (ec) {
    return failed_precondition("cannot find a folder for temporary files (" + ec.message() +
                               "); set TMPDIR to a writable folder");
  }
  std::string pattern = (base / (std::string(prefix) + "XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  install_signal_handlers();
  if (::mkdtemp(buffer.data()) == nullptr) {
    return failed_precondition("cannot create a temporary folder in " + base.string() + ": " +
                               std::strerror(errno) + " (set TMPDIR to a writable folder)");
  }
  std::string path(buffer.data());
  const int slot = claim_slot(path);
  return std::unique_ptr<TemporaryDirectory>(new TemporaryDirectory(std::move(path), slot));
}

TemporaryDirectory::~TemporaryDirectory() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) remove_tree_at(AT_FDCWD, path_.c_str(), 0);
  if (slot_ >= 0) slots[static_cast<size_t>(slot_)].state.store(kFree, std::memory_order_release);
}

int live_temporary_directories() {
  int n = 0;
  for (const auto& slot : slots) n += slot.state.load(std::memory_order_acquire) == kLive;
  return n;
}

}  // namespace hubimg
