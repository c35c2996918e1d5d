// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) and the
// conversions TensorFlow applies to its output, so that seeded random ops reproduce
// TensorFlow's numbers bit for bit (tensorflow/core/lib/random/philox_random.h,
// random_distributions.h, kernels/stateless_random_ops.cc).
#pragma once

#include <array>
#include <cstdint>

namespace hubimg::ops::philox {

using Counter = std::array<uint32_t, 4>;
using Key = std::array<uint32_t, 2>;
using Block = std::array<uint32_t, 4>;

// The 10-round block function on one counter.
Block philox4x32_10(Counter counter, Key key);

// A Philox stream: each call to next() returns the block for the current counter and then
// increments the 128-bit counter, as TensorFlow's PhiloxRandom::operator() does.
class Generator {
 public:
  Generator(Counter counter, Key key) : counter_(counter), key_(key) {}
  // TensorFlow's PhiloxRandom(seed_lo, seed_hi): key from seed_lo, counter[2..3] from seed_hi.
  static Generator from_seeds(uint64_t seed_lo, uint64_t seed_hi);

  Block next();
  void skip(uint64_t blocks);
  const Counter& counter() const { return counter_; }
  const Key& key() const { return key_; }

 private:
  Counter counter_;
  Key key_;
};

// TensorFlow's GenerateKey: scrambles a [2] seed into a Philox key and counter (the key and
// counter of StatelessRandomGetKeyCounter and of the V1 stateless random ops).
void key_counter_from_seed(uint64_t seed0, uint64_t seed1, Key& key, Counter& counter);

// The uint64 encodings used by the V2 stateless ops' key [1] and counter [2] tensors.
uint64_t key_to_u64(const Key& key);
Key key_from_u64(uint64_t value);
std::array<uint64_t, 2> counter_to_u64(const Counter& counter);
Counter counter_from_u64(uint64_t lo, uint64_t hi);

// Uniform [0, 1) from random bits: 23 (float) or 52 (double) mantissa bits under exponent 0.
float uint32_to_float(uint32_t x);
double uint64_to_double(uint32_t hi_bits, uint32_t lo_bits);
// Uniform [0, 1) for float16 (10 mantissa bits) and bfloat16 (7 bits), as IEEE bit patterns.
uint16_t uint16_to_half_bits(uint16_t x);
uint16_t uint16_to_bfloat16_bits(uint16_t x);

// Box-Muller: two uniform words -> two standard normal floats; four words -> two doubles.
void box_muller_float(uint32_t x0, uint32_t x1, float& f0, float& f1);
void box_muller_double(uint32_t x0, uint32_t x1, uint32_t x2, uint32_t x3, double& d0, double& d1);

}  // namespace hubimg::ops::philox
