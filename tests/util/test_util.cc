#include "util/test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

namespace hubimg::testing {

std::filesystem::path shared_dir() {
  std::filesystem::path p = HUBIMG_SHARED_DIR;
  if (std::filesystem::exists(p / "fixtures" / "real")) return p;
  return {};
}

std::filesystem::path real_fixture(const std::string& relative) {
  return shared_dir() / "fixtures" / "real" / relative;
}

std::filesystem::path golden_dir() {
  return shared_dir() / "fixtures" / "golden";
}
std::filesystem::path cli_path() {
  return HUBIMG_CLI_PATH;
}
std::filesystem::path source_dir() {
  return HUBIMG_SOURCE_DIR;
}

TempDir::TempDir() {
  std::random_device rd;
  auto base = std::filesystem::temp_directory_path();
  for (;;) {
    path_ = base / ("hubimg_test_" + std::to_string(rd()));
    if (std::filesystem::create_directory(path_)) break;
  }
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

CommandResult run_command(const std::string& command) {
  CommandResult result;
  std::string full = command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) result.out.append(buf.data(), n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

const std::vector<std::string>& runnable_fixtures() {
  static const std::vector<std::string> fixtures = {
      "emoji_mobilenet025_gray_tf282",
      "intel_cnn_keras3_tf218",
      "mnist_cnn_tf231",
      "potato_cnn_aug_tf25",
      "rps_cnn_tf231",
      "tm_mobilenetv2_035_tf115",
      "tf_testdata/java_saved_model_using_python",
      "tf_testdata/rust_regression_savedmodel",
      "tf_testdata/serving_half_plus_two_tf2_cpu",
      "tf_testdata/tfjs_node_model_multi_output",
      "tf_testdata/tfjs_node_module_with_multiple_signatures",
      "tf_testdata/tfjs_node_times_three_float",
      "tf_testdata/tfjs_node_uint8_multiply",
      "tf_testdata/tfnet_simple_model_from_auto_compile",
  };
  return fixtures;
}

std::filesystem::path copy_fixture_model(const std::string& fixture, const TempDir& dir) {
  auto dst = dir.path() / "model";
  std::filesystem::copy(real_fixture(fixture) / "saved_model", dst,
                        std::filesystem::copy_options::recursive);
  for (auto& e : std::filesystem::recursive_directory_iterator(dst)) {
    std::filesystem::permissions(e.path(), std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add);
  }
  return dst;
}

std::string shell_quote(const std::filesystem::path& path) {
  std::string out = "'";
  for (char c : path.string()) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

Tensor random_images(int64_t batch, int64_t size, uint64_t seed) {
  Tensor t(DType::kFloat32, {batch, size, size, 3});
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.mutable_data<float>()[i] = u(rng);
  return t;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  out.close();
  if (!out) ADD_FAILURE() << "could not write " << path;
}

std::vector<ArchiveFile> archive_files_below(const std::filesystem::path& dir,
                                             const std::string& prefix) {
  std::vector<ArchiveFile> files;
  for (const auto& item : std::filesystem::recursive_directory_iterator(dir)) {
    if (!item.is_regular_file()) continue;
    files.push_back(
        {prefix + item.path().lexically_relative(dir).string(), read_file(item.path())});
  }
  std::sort(files.begin(), files.end(),
            [](const ArchiveFile& a, const ArchiveFile& b) { return a.name < b.name; });
  return files;
}

void write_zip(const std::filesystem::path& path, const std::vector<ArchiveFile>& files) {
  archive* a = archive_write_new();
  ASSERT_EQ(archive_write_set_format_zip(a), ARCHIVE_OK);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const auto& file : files) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, file.name.c_str());
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    archive_entry_set_size(entry, static_cast<la_int64_t>(file.content.size()));
    ASSERT_EQ(archive_write_header(a, entry), ARCHIVE_OK) << file.name;
    ASSERT_EQ(archive_write_data(a, file.content.data(), file.content.size()),
              static_cast<la_ssize_t>(file.content.size()));
    archive_entry_free(entry);
  }
  ASSERT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

}  // namespace hubimg::testing
