#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "hubimg/tensor.h"

// AddressSanitizer: GCC defines __SANITIZE_ADDRESS__, clang answers __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define HUBIMG_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HUBIMG_TEST_ASAN 1
#endif
#endif

namespace hubimg::testing {

#if defined(HUBIMG_TEST_ASAN)
inline constexpr bool kUnderAddressSanitizer = true;
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif

// Peak RSS allowed for a CLI run that must fail before allocating anything large (the CLI and
// a model take ~100 MB; AddressSanitizer's shadow memory and quarantine add more).
inline constexpr long kFailingCliRssLimitKb = (kUnderAddressSanitizer ? 1200 : 400) * 1024;

// `path` as one single-quoted POSIX shell word (embedded quotes escaped).
std::string shell_quote(const std::filesystem::path& path);

// ../shared (HUBIMG_SHARED_DIR); empty when absent, for a user's fresh clone.
std::filesystem::path shared_dir();
std::filesystem::path real_fixture(const std::string& relative);  // fixtures/real/<relative>
std::filesystem::path golden_dir();                               // fixtures/golden
std::filesystem::path cli_path();                                 // the built `hubimg`
std::filesystem::path source_dir();

// A fresh temporary directory removed when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr, interleaved
};
CommandResult run_command(const std::string& command);

// The fixtures under fixtures/real with something to run (all but the negative one).
const std::vector<std::string>& runnable_fixtures();
// Copies fixtures/real/<fixture>/saved_model into `dir`/model, writable, for tests that damage it.
std::filesystem::path copy_fixture_model(const std::string& fixture, const TempDir& dir);

// Float32 images [batch, size, size, 3], uniform in [0, 1), from a seeded mt19937_64.
Tensor random_images(int64_t batch, int64_t size, uint64_t seed);

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, const std::string& bytes);

struct ArchiveFile {
  std::string name;
  std::string content;
};
// Every regular file below `dir`, named `prefix` + its path relative to `dir`, in name order.
std::vector<ArchiveFile> archive_files_below(const std::filesystem::path& dir,
                                             const std::string& prefix);
// A zip written with libarchive, as `zip -r` writes one (deflated entries, a central directory).
void write_zip(const std::filesystem::path& path, const std::vector<ArchiveFile>& files);

}  // namespace hubimg::testing

// Skips the test, with a message saying why, when ../shared is not beside the checkout.
#define HUBIMG_REQUIRE_SHARED()                                                   \
  do {                                                                            \
    if (::hubimg::testing::shared_dir().empty())                                  \
      GTEST_SKIP() << "shared fixtures not found (set -DHUBIMG_SHARED_DIR=...); " \
                      "this test needs ../shared/fixtures";                       \
  } while (0)
