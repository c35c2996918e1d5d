#include "ops/philox.h"

#include <bit>
#include <cmath>
#include <numbers>

#include "hubimg/tensor.h"

namespace hubimg::ops::philox {
namespace {

constexpr uint32_t kRoundMultiplier0 = 0xD2511F53;
constexpr uint32_t kRoundMultiplier1 = 0xCD9E8D57;
constexpr uint32_t kKeyIncrement0 = 0x9E3779B9;  // golden ratio
constexpr uint32_t kKeyIncrement1 = 0xBB67AE85;  // sqrt(3) - 1

Counter round(const Counter& c, const Key& k) {
  const uint64_t product0 = uint64_t{kRoundMultiplier0} * c[0];
  const uint64_t product1 = uint64_t{kRoundMultiplier1} * c[2];
  const auto hi0 = static_cast<uint32_t>(product0 >> 32);
  const auto lo0 = static_cast<uint32_t>(product0);
  const auto hi1 = static_cast<uint32_t>(product1 >> 32);
  const auto lo1 = static_cast<uint32_t>(product1);
  return {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
}

}  // namespace

Block philox4x32_10(Counter counter, Key key) {
  for (int i = 0; i < 10; ++i) {
    if (i > 0) {
      key[0] += kKeyIncrement0;
      key[1] += kKeyIncrement1;
    }
    counter = round(counter, key);
  }
  return counter;
}

Generator Generator::from_seeds(uint64_t seed_lo, uint64_t seed_hi) {
  return Generator({0, 0, static_cast<uint32_t>(seed_hi), static_cast<uint32_t>(seed_hi >> 32)},
                   {static_cast<uint32_t>(seed_lo), static_cast<uint32_t>(seed_lo >> 32)});
}

Block Generator::next() {
  const Block block = philox4x32_10(counter_, key_);
  skip(1);
  return block;
}

void Generator::skip(uint64_t blocks) {
  const auto lo = static_cast<uint32_t>(blocks);
  auto hi = static_cast<uint32_t>(blocks >> 32);
  counter_[0] += lo;
  if (counter_[0] < lo) ++hi;  // carry; hi cannot overflow as blocks >> 32 < 2^32
  counter_[1] += hi;
  if (counter_[1] < hi) {
    if (++counter_[2] == 0) ++counter_[3];
  }
}

void key_counter_from_seed(uint64_t seed0, uint64_t seed1, Key& key, Counter& counter) {
  const Counter seed_counter = {static_cast<uint32_t>(seed0), static_cast<uint32_t>(seed0 >> 32),
                                static_cast<uint32_t>(seed1), static_cast<uint32_t>(seed1 >> 32)};
  const Block mix = philox4x32_10(seed_counter, {0x3ec8f720, 0x02461e29});
  key = {mix[0], mix[1]};
  counter = {0, 0, mix[2], mix[3]};
}

uint64_t key_to_u64(const Key& key) {
  return key[0] | (uint64_t{key[1]} << 32);
}

Key key_from_u64(uint64_t value) {
  return {static_cast<uint32_t>(value), static_cast<uint32_t>(value >> 32)};
}

std::array<uint64_t, 2> counter_to_u64(const Counter& counter) {
  return {counter[0] | (uint64_t{counter[1]} << 32), counter[2] | (uint64_t{counter[3]} << 32)};
}

Counter counter_from_u64(uint64_t lo, uint64_t hi) {
  return {static_cast<uint32_t>(lo), static_cast<uint32_t>(lo >> 32), static_cast<uint32_t>(hi),
          static_cast<uint32_t>(hi >> 32)};
}

float uint32_to_float(uint32_t x) {
  return std::bit_cast<float>((uint32_t{127} << 23) | (x & 0x7fffffu)) - 1.0f;
}

double uint64_to_double(uint32_t hi_bits, uint32_t lo_bits) {
  const uint64_t mantissa = (uint64_t{hi_bits & 0xfffffu} << 32) | lo_bits;
  return std::bit_cast<double>((uint64_t{1023} << 52) | mantissa) - 1.0;
}

uint16_t uint16_to_half_bits(uint16_t x) {
  // (1 + m/1024) - 1 is exact in half precision, so the result is m/1024.
  return Float16::from_float(static_cast<float>(x & 0x3ffu) / 1024.0f).bits;
}

uint16_t uint16_to_bfloat16_bits(uint16_t x) {
  return BFloat16::from_float(static_cast<float>(x & 0x7fu) / 128.0f).bits;
}

void box_muller_float(uint32_t x0, uint32_t x1, float& f0, float& f1) {
  constexpr float kEpsilon = 1.0e-7f;
  float u1 = uint32_to_float(x0);
  if (u1 < kEpsilon) u1 = kEpsilon;
  // TensorFlow multiplies in double (2.0f * M_PI is a double) and rounds v1 to float.
  const auto v1 = static_cast<float>(2.0f * std::numbers::pi * uint32_to_float(x1));
  const float u2 = std::sqrt(-2.0f * std::log(u1));
  f0 = std::sin(v1) * u2;
  f1 = std::cos(v1) * u2;
}

void box_muller_double(uint32_t x0, uint32_t x1, uint32_t x2, uint32_t x3, double& d0, double& d1) {
  constexpr double kEpsilon = 1.0e-7;
  double u1 = uint64_to_double(x0, x1);
  if (u1 < kEpsilon) u1 = kEpsilon;
  const double v1 = 2 * std::numbers::pi * uint64_to_double(x2, x3);
  const double u2 = std::sqrt(-2.0 * std::log(u1));
  d0 = std::sin(v1) * u2;
  d1 = std::cos(v1) * u2;
}

}  // namespace hubimg::ops::philox
