#include "format/crc32c.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace hubimg::format {
namespace {

using CrcFunction = std::function<uint32_t(uint32_t, const void*, size_t)>;

struct Implementation {
  const char* name;
  CrcFunction extend;
};

std::vector<Implementation> implementations() {
  std::vector<Implementation> result{{"portable", detail::crc32c_extend_portable},
                                     {"dispatch", crc32c_extend}};
  if (detail::crc32c_cpu_has_sse42()) result.push_back({"sse42", detail::crc32c_extend_sse42});
  return result;
}

uint32_t crc_of(const Implementation& impl, const std::vector<uint8_t>& bytes) {
  return impl.extend(0, bytes.data(), bytes.size());
}

// RFC 3720 appendix B.4 and the usual check value.
TEST(Crc32cTest, KnownVectorsOnEveryImplementation) {
  std::vector<uint8_t> zeros(32, 0x00), ones(32, 0xff), ascending(32), descending(32);
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<uint8_t>(i);
    descending[i] = static_cast<uint8_t>(31 - i);
  }
  const std::vector<uint8_t> iscsi_read_pdu = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  const std::string check = "123456789";
  const std::vector<uint8_t> check_bytes(check.begin(), check.end());

  if (!detail::crc32c_cpu_has_sse42()) std::printf("note: no SSE4.2; only the table path runs\n");
  for (const auto& impl : implementations()) {
    SCOPED_TRACE(impl.name);
    EXPECT_EQ(crc_of(impl, zeros), 0x8a9136aau);
    EXPECT_EQ(crc_of(impl, ones), 0x62a8ab43u);
    EXPECT_EQ(crc_of(impl, ascending), 0x46dd794eu);
    EXPECT_EQ(crc_of(impl, descending), 0x113fdb5cu);
    EXPECT_EQ(crc_of(impl, iscsi_read_pdu), 0xd9963a56u);
    EXPECT_EQ(crc_of(impl, check_bytes), 0xe3069283u);
    EXPECT_EQ(impl.extend(0, nullptr, 0), 0u);
  }
}

TEST(Crc32cTest, ExtendEqualsCrcOfConcatenation) {
  const std::string hello = "hello ", world = "world", both = "hello world";
  for (const auto& impl : implementations()) {
    SCOPED_TRACE(impl.name);
    const uint32_t first = impl.extend(0, hello.data(), hello.size());
    EXPECT_EQ(impl.extend(first, world.data(), world.size()),
              impl.extend(0, both.data(), both.size()));
  }
}

TEST(Crc32cTest, ImplementationsAgreeOnRandomDataAtEveryAlignmentAndLength) {
  std::mt19937 rng(1234);
  std::vector<uint8_t> buffer(1100);
  for (auto& b : buffer) b = static_cast<uint8_t>(rng());
  for (size_t start = 0; start < 9; ++start) {
    for (size_t length : {0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 1024}) {
      const uint32_t portable =
          detail::crc32c_extend_portable(0x12345678u, buffer.data() + start, length);
      EXPECT_EQ(crc32c_extend(0x12345678u, buffer.data() + start, length), portable)
          << "start " << start << " length " << length;
      if (detail::crc32c_cpu_has_sse42()) {
        EXPECT_EQ(detail::crc32c_extend_sse42(0x12345678u, buffer.data() + start, length), portable)
            << "start " << start << " length " << length;
      }
    }
  }
}

TEST(Crc32cTest, ByteAtATimeExtendMatchesOneShot) {
  const std::string text = "The quick brown fox jumps over the lazy dog";
  uint32_t crc = 0;
  for (char c : text) crc = crc32c_extend(crc, &c, 1);
  EXPECT_EQ(crc, crc32c(text.data(), text.size()));
}

TEST(Crc32cTest, MaskRoundTripsAndChangesTheValue) {
  const std::string text = "foo";
  const uint32_t crc = crc32c(text.data(), text.size());
  EXPECT_NE(crc, crc32c_mask(crc));
  EXPECT_NE(crc, crc32c_mask(crc32c_mask(crc)));
  EXPECT_EQ(crc, crc32c_unmask(crc32c_mask(crc)));
  EXPECT_EQ(crc, crc32c_unmask(crc32c_unmask(crc32c_mask(crc32c_mask(crc)))));
  // mask(0) is the delta itself: rotating zero gives zero.
  EXPECT_EQ(crc32c_mask(0), kCrc32cMaskDelta);
  // Rotate right by 15 then add the delta, written out for one value.
  EXPECT_EQ(crc32c_mask(0x00008000u), 0x00000001u + kCrc32cMaskDelta);
  for (uint32_t v : {0u, 1u, 0xffffffffu, 0x80000000u, 0xdeadbeefu}) {
    EXPECT_EQ(crc32c_unmask(crc32c_mask(v)), v);
  }
}

}  // namespace
}  // namespace hubimg::format
