// A small seeded generator whose stream is fixed by (seed, stream) alone, so that shuffling,
// dropout masks and augmentation are reproducible across runs, threads and resumed trainings.
#pragma once

#include <cstdint>

namespace hubimg::train {

// SplitMix64 (Steele, Lea, Flood 2014).
class Random {
 public:
  Random(uint64_t seed, uint64_t stream)
      : state_(mix(seed ^ mix(stream + 0x632be59bd9b4e019ULL))) {}
  uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix(state_);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n) (n > 0), by rejection (no modulo bias).
  uint64_t below(uint64_t n) {
    const uint64_t limit = ~uint64_t{0} - (~uint64_t{0} % n);
    uint64_t x;
    do {
      x = next();
    } while (x >= limit);
    return x % n;
  }

 private:
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

}  // namespace hubimg::train
