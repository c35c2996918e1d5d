#include "format/coding.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace hubimg::format {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

TEST(VarintTest, EncodesKnownValues) {
  std::string out;
  put_varint32(out, 0);
  EXPECT_EQ(out, bytes({0x00}));
  out.clear();
  put_varint32(out, 127);
  EXPECT_EQ(out, bytes({0x7f}));
  out.clear();
  put_varint32(out, 128);
  EXPECT_EQ(out, bytes({0x80, 0x01}));
  out.clear();
  put_varint32(out, 300);
  EXPECT_EQ(out, bytes({0xac, 0x02}));
  out.clear();
  put_varint32(out, 16384);
  EXPECT_EQ(out, bytes({0x80, 0x80, 0x01}));
  out.clear();
  put_varint32(out, 0xffffffffu);
  EXPECT_EQ(out, bytes({0xff, 0xff, 0xff, 0xff, 0x0f}));
  out.clear();
  put_varint64(out, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(out, bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}));
}

TEST(VarintTest, RoundTripsBoundaries32) {
  for (uint32_t v : {0u, 1u, 127u, 128u, 16383u, 16384u, 2097151u, 2097152u, 268435455u, 268435456u,
                     0xffffffffu}) {
    std::string encoded;
    put_varint32(encoded, v);
    EXPECT_EQ(encoded.size(), varint_length(v)) << v;
    std::string_view input = encoded;
    uint32_t decoded = 0;
    ASSERT_TRUE(get_varint32(input, decoded)) << v;
    EXPECT_EQ(decoded, v);
    EXPECT_TRUE(input.empty());
  }
}

TEST(VarintTest, RoundTripsBoundaries64) {
  for (int bits = 0; bits <= 64; ++bits) {
    for (int delta : {-1, 0, 1}) {
      uint64_t v = bits == 64 ? 0 : (uint64_t{1} << bits);
      v += static_cast<uint64_t>(delta);
      std::string encoded = "";
      put_varint64(encoded, v);
      encoded += "tail";
      std::string_view input = encoded;
      uint64_t decoded = 0;
      ASSERT_TRUE(get_varint64(input, decoded)) << v;
      EXPECT_EQ(decoded, v);
      EXPECT_EQ(input, "tail");
    }
  }
}

TEST(VarintTest, RejectsTruncationWithoutConsuming) {
  const std::string truncated = bytes({0x80, 0x80});
  std::string_view input = truncated;
  uint32_t v32 = 77;
  EXPECT_FALSE(get_varint32(input, v32));
  EXPECT_EQ(v32, 77u);
  EXPECT_EQ(input.size(), 2u);
  uint64_t v64 = 77;
  EXPECT_FALSE(get_varint64(input, v64));
  EXPECT_EQ(v64, 77u);
  std::string_view empty;
  EXPECT_FALSE(get_varint32(empty, v32));
  EXPECT_FALSE(get_varint64(empty, v64));
}

TEST(VarintTest, RejectsOverlongAndOverflowingEncodings) {
  uint32_t v32 = 0;
  uint64_t v64 = 0;
  // Six bytes for a varint32.
  std::string six = bytes({0x80, 0x80, 0x80, 0x80, 0x80, 0x00});
  std::string_view input = six;
  EXPECT_FALSE(get_varint32(input, v32));
  // Five bytes whose last group carries bits past 32.
  std::string too_big32 = bytes({0xff, 0xff, 0xff, 0xff, 0x1f});
  input = too_big32;
  EXPECT_FALSE(get_varint32(input, v32));
  // ... but the same bytes are a fine varint64.
  input = too_big32;
  ASSERT_TRUE(get_varint64(input, v64));
  EXPECT_EQ(v64, 0x1ffffffffull);
  // Eleven bytes for a varint64.
  std::string eleven = bytes({0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00});
  input = eleven;
  EXPECT_FALSE(get_varint64(input, v64));
  // Ten bytes with more than one bit in the last group.
  std::string too_big64 = bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02});
  input = too_big64;
  EXPECT_FALSE(get_varint64(input, v64));
}

TEST(VarintTest, AcceptsRedundantZeroGroupsWithinTheLengthLimit) {
  std::string padded = bytes({0x81, 0x80, 0x00});
  std::string_view input = padded;
  uint32_t v = 0;
  ASSERT_TRUE(get_varint32(input, v));
  EXPECT_EQ(v, 1u);
  EXPECT_TRUE(input.empty());
}

TEST(FixedTest, LittleEndianLayout) {
  std::string out;
  put_fixed32(out, 0x04030201u);
  put_fixed64(out, 0x0807060504030201ull);
  EXPECT_EQ(out, bytes({1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(decode_fixed32(out.data()), 0x04030201u);
  EXPECT_EQ(decode_fixed64(out.data() + 4), 0x0807060504030201ull);
  // Unaligned position, high bytes set.
  std::string high = bytes({0, 0xff, 0xfe, 0xfd, 0xfc});
  EXPECT_EQ(decode_fixed32(high.data() + 1), 0xfcfdfeffu);
  std::string_view input = std::string_view(high).substr(1);
  uint32_t v = 0;
  EXPECT_TRUE(get_fixed32(input, v));
  EXPECT_EQ(v, 0xfcfdfeffu);
  EXPECT_FALSE(get_fixed32(input, v));
}

}  // namespace
}  // namespace hubimg::format
