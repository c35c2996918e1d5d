#include "train/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>

#include "format/crc32c.h"
#include "util/test_util.h"

namespace hubimg::train {
namespace {

std::map<std::string, Tensor> sample(float scale) {
  std::vector<float> big(100000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = scale * static_cast<float>(i);
  return {{"var/dense/kernel", Tensor::from_vector<float>({1000, 100}, big)},
          {"meta/epoch", Tensor::scalar<int64_t>(3)},
          {"opt/x/m", Tensor::from_vector<double>({2}, std::vector<double>{1.5, -2})}};
}

TEST(Checkpoint, RoundTrip) {
  testing::TempDir dir;
  const auto path = dir.path() / "checkpoint.bin";
  ASSERT_TRUE(write_checkpoint(path, sample(1)).ok());
  auto back = read_checkpoint(path);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->size(), 3u);
  EXPECT_EQ(back->at("meta/epoch").data<int64_t>()[0], 3);
  EXPECT_EQ(back->at("var/dense/kernel").shape(), (Dims{1000, 100}));
  EXPECT_EQ(back->at("var/dense/kernel").data<float>()[99999], 99999.0f);
  EXPECT_EQ(back->at("opt/x/m").data<double>()[1], -2.0);
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
}

TEST(Checkpoint, CorruptionIsDetected) {
  testing::TempDir dir;
  const auto path = dir.path() / "checkpoint.bin";
  ASSERT_TRUE(write_checkpoint(path, sample(1)).ok());
  std::string bytes = testing::read_file(path);
  bytes[bytes.size() / 2] ^= 0x10;
  testing::write_file(path, bytes);
  auto flipped = read_checkpoint(path);
  ASSERT_FALSE(flipped.ok());
  EXPECT_NE(flipped.status().message().find("checksum"), std::string::npos);
  testing::write_file(path, bytes.substr(0, 100));
  EXPECT_FALSE(read_checkpoint(path).ok());
  testing::write_file(path, "");
  EXPECT_FALSE(read_checkpoint(path).ok());
}

// A damaged header that declares a huge tensor is refused from the bytes left, before anything
// is allocated; a FIFO in the checkpoint's place is refused without blocking.
TEST(Checkpoint, HugeDeclaredTensorAndFifoAreRefused) {
  testing::TempDir dir;
  const auto path = dir.path() / "checkpoint.bin";
  std::string body = "HUBIMG-CKPT-1\n";
  auto put = [&body](auto v) { body.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  put(uint64_t{1});
  put(uint32_t{1});
  body += "w";
  put(int32_t{1});  // float32
  put(uint32_t{2});
  put(int64_t{1} << 14);
  put(int64_t{1} << 14);  // 1 GiB of float32, with no data behind it
  put(format::crc32c_mask(
      format::crc32c(reinterpret_cast<const uint8_t*>(body.data()), body.size())));
  testing::write_file(path, body);
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  auto huge = read_checkpoint(path);
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("truncated data of 'w'"), std::string::npos)
      << huge.status().message();
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024);  // KiB: nothing near 1 GiB touched

  const auto fifo = dir.path() / "fifo.bin";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto refused = read_checkpoint(fifo);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("not a regular file"), std::string::npos)
      << refused.status().message();
}

// A full disk while writing (simulated with a file-size limit: write() fails with EFBIG) leaves
// the previous checkpoint readable and unchanged.
TEST(Checkpoint, FailedWriteKeepsThePreviousCheckpoint) {
  testing::TempDir dir;
  const auto path = dir.path() / "checkpoint.bin";
  ASSERT_TRUE(write_checkpoint(path, sample(1)).ok());
  const std::string before = testing::read_file(path);

  rlimit old_limit{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  Status s = write_checkpoint(path, sample(2));
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("previous checkpoint is kept"), std::string::npos) << s.message();
  EXPECT_EQ(testing::read_file(path), before);
  EXPECT_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  auto back = read_checkpoint(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->at("var/dense/kernel").data<float>()[10], 10.0f);
}

}  // namespace
}  // namespace hubimg::train
