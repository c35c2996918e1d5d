// Special files never block a read, temporary folders go on signals, archive limits parse.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/file_io.h"
#include "core/temp_dir.h"
#include "format/archive.h"
#include "format/mapped_file.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using ::hubimg::testing::TempDir;
using ::hubimg::testing::write_file;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

TEST(SpecialFiles, AFifoIsRefusedWithoutBlocking) {
  TempDir tmp;
  const fs::path fifo = tmp.path() / "variables.index";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // No writer: a blocking open would never return.
  auto mapped = format::MappedFile::open(fifo);
  ASSERT_FALSE(mapped.ok());
  EXPECT_THAT(mapped.status().message(), HasSubstr("not a regular file (a FIFO)"));
  EXPECT_THAT(mapped.status().message(), HasSubstr(fifo.string()));
  auto bytes = read_regular_file(fifo, 100);
  ASSERT_FALSE(bytes.ok());
  EXPECT_THAT(bytes.status().message(), HasSubstr("FIFO"));
}

TEST(SpecialFiles, DevicesAndFoldersAreRefused) {
  auto zero = format::MappedFile::open("/dev/zero");
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(zero.status().message(), HasSubstr("character device"));
  TempDir tmp;
  auto dir = read_regular_file(tmp.path(), 100);
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(dir.status().message(), HasSubstr("is a directory"));
  write_file(tmp.path() / "f", "0123456789");
  auto small = read_regular_file(tmp.path() / "f", 5);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.status().code(), StatusCode::kOutOfRange);
  auto ok = read_regular_file(tmp.path() / "f", 10);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "0123456789");
}

TEST(TemporaryDirectories, RemovedWhenTheOwnerGoesAway) {
  TempDir tmp;
  ::setenv("TMPDIR", tmp.path().c_str(), 1);
  fs::path path;
  {
    auto dir = TemporaryDirectory::create("hubimg_test_");
    ::unsetenv("TMPDIR");
    ASSERT_TRUE(dir.ok()) << dir.status().to_string();
    path = (*dir)->path();
    EXPECT_EQ(path.parent_path(), tmp.path());
    fs::create_directories(path / "a" / "b");
    write_file(path / "a" / "b" / "f", "x");
    EXPECT_GE(live_temporary_directories(), 1);
  }
  EXPECT_FALSE(fs::exists(path));
}

// In a child: a tree under a temporary folder, then a signal. The handler removes the tree with
// async-signal-safe calls and the child still dies of that signal.
TEST(TemporaryDirectories, RemovedOnSigtermSigintSighupAndSigpipe) {
  for (int signal_number : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) {
    TempDir tmp;
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::setenv("TMPDIR", tmp.path().c_str(), 1);
      auto dir = TemporaryDirectory::create("hubimg_test_");
      if (!dir.ok()) ::_exit(2);
      fs::path p = (*dir)->path();
      for (int i = 0; i < 40; ++i) {
        p /= std::to_string(i);
        fs::create_directories(p);
        for (int k = 0; k < 5; ++k) write_file(p / ("f" + std::to_string(k)), "data");
      }
      if (signal_number == SIGPIPE) {  // a real broken pipe, as `hubimg ... | head` gives
        int fds[2];
        if (::pipe(fds) != 0) ::_exit(4);
        ::close(fds[0]);
        (void)!::write(fds[1], "x", 1);
        ::_exit(5);  // SIGPIPE ignored (inherited from the test's parent) or no handler
      }
      ::raise(signal_number);
      ::_exit(3);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status))
        << strsignal(signal_number) << ": exit code " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), signal_number);
    EXPECT_TRUE(fs::is_empty(tmp.path())) << strsignal(signal_number);
  }
}

TEST(TemporaryDirectories, AHostHandlerIsLeftAlone) {
  TempDir tmp;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGTERM, SIG_IGN);
    ::setenv("TMPDIR", tmp.path().c_str(), 1);
    auto dir = TemporaryDirectory::create("hubimg_test_");
    if (!dir.ok()) ::_exit(2);
    ::raise(SIGTERM);  // ignored, as the host asked
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ArchiveLimits, DefaultsAndEnvironment) {
  ::unsetenv("HUBIMG_ARCHIVE_MAX_BYTES");
  ::unsetenv("HUBIMG_ARCHIVE_MAX_ENTRIES");
  auto defaults = format::archive_limits_from_environment();
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->max_bytes, uint64_t{4} << 30);
  EXPECT_EQ(defaults->max_entries, 100000u);
  ::setenv("HUBIMG_ARCHIVE_MAX_BYTES", "16G", 1);
  ::setenv("HUBIMG_ARCHIVE_MAX_ENTRIES", "12", 1);
  auto set = format::archive_limits_from_environment();
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->max_bytes, uint64_t{16} << 30);
  EXPECT_EQ(set->max_entries, 12u);
  for (const char* bad : {"-1", "0", "12Q", "99999999999999999999", "20000000000T", "G"}) {
    ::setenv("HUBIMG_ARCHIVE_MAX_BYTES", bad, 1);
    auto r = format::archive_limits_from_environment();
    EXPECT_FALSE(r.ok()) << bad;
  }
  ::unsetenv("HUBIMG_ARCHIVE_MAX_BYTES");
  ::unsetenv("HUBIMG_ARCHIVE_MAX_ENTRIES");
}

}  // namespace
}  // namespace hubimg
