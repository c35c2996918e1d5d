// Philox4x32-10 against the Random123 known-answer vectors, and the random ops' conversion of
// Philox words into values, written out by hand from TensorFlow's documented formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "ops/op_registry.h"
#include "ops/op_test_util.h"
#include "ops/philox.h"

namespace hubimg::ops {
namespace {

using philox::Block;

using namespace ::hubimg::ops::testing;  // NOLINT(google-build-using-namespace)

// Random123 kat_vectors, philox4x32 with 10 rounds: counter, key -> output.
struct KnownAnswer {
  philox::Counter counter;
  philox::Key key;
  Block output;
};
constexpr KnownAnswer kZeros = {
    {0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}};
constexpr KnownAnswer kOnes = {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                               {0xffffffff, 0xffffffff},
                               {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}};
constexpr KnownAnswer kPi = {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                             {0xa4093822, 0x299f31d0},
                             {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};

// The V2 ops' key [1] and counter [2] inputs for a Random123 (counter, key) pair.
Tensor key_input(const KnownAnswer& k) {
  return u64({1}, {k.key[0] | (uint64_t{k.key[1]} << 32)});
}
Tensor counter_input(const KnownAnswer& k) {
  return u64({2}, {k.counter[0] | (uint64_t{k.counter[1]} << 32),
                   k.counter[2] | (uint64_t{k.counter[3]} << 32)});
}
Tensor alg(int32_t id) {
  return Tensor::scalar<int32_t>(id);
}

// TensorFlow's uniform float: 23 random mantissa bits under exponent 0, minus 1, i.e. m / 2^23.
float expected_uniform(uint32_t word) {
  return static_cast<float>(word & 0x7fffff) / 8388608.0f;
}
double expected_uniform_double(uint32_t hi, uint32_t lo) {
  return static_cast<double>((uint64_t{hi & 0xfffff} << 32) | lo) / 4503599627370496.0;
}

// ---------------------------------------------------------------------------------------------
// Philox itself.

TEST(Philox, Random123KnownAnswers) {
  for (const KnownAnswer& k : {kZeros, kOnes, kPi}) {
    EXPECT_EQ(philox::philox4x32_10(k.counter, k.key), k.output);
  }
}

TEST(Philox, GeneratorAdvancesThe128BitCounter) {
  philox::Generator gen({0xffffffff, 0xffffffff, 0, 0}, {0, 0});
  gen.next();
  EXPECT_EQ(gen.counter(), (philox::Counter{0, 0, 1, 0}));
  philox::Generator skipping({0xffffffff, 0, 0, 0}, {0, 0});
  skipping.skip((uint64_t{1} << 32) + 1);
  EXPECT_EQ(skipping.counter(), (philox::Counter{0, 2, 0, 0}));
  philox::Generator from_zero({0, 0, 0, 0}, {0, 0});
  EXPECT_EQ(from_zero.next(), kZeros.output);
}

TEST(Philox, SeedsFillKeyAndUpperCounter) {
  const auto gen = philox::Generator::from_seeds(0x1122334455667788, 0x99aabbccddeeff00);
  EXPECT_EQ(gen.key(), (philox::Key{0x55667788, 0x11223344}));
  EXPECT_EQ(gen.counter(), (philox::Counter{0, 0, 0xddeeff00, 0x99aabbcc}));
}

TEST(Philox, SeedScramblingIsOneBlockUnderAFixedKey) {
  // TensorFlow's GenerateKey: block = philox(seed words, {0x3ec8f720, 0x02461e29});
  // key = block[0..1], counter = {0, 0, block[2], block[3]}.
  philox::Key key;
  philox::Counter counter;
  philox::key_counter_from_seed(0x0000000200000001, 0x0000000400000003, key, counter);
  const Block mix = philox::philox4x32_10({1, 2, 3, 4}, {0x3ec8f720, 0x02461e29});
  EXPECT_EQ(key, (philox::Key{mix[0], mix[1]}));
  EXPECT_EQ(counter, (philox::Counter{0, 0, mix[2], mix[3]}));
}

// ---------------------------------------------------------------------------------------------
// StatelessRandom*V2 on known-answer streams.

TEST(StatelessRandomUniformV2, FloatsFromKnownAnswerBlocks) {
  for (const KnownAnswer& k : {kZeros, kOnes, kPi}) {
    const Tensor out = run1("StatelessRandomUniformV2",
                            {i32({2}, {2, 2}), key_input(k), counter_input(k), alg(1)});
    ASSERT_EQ(out.dtype(), DType::kFloat32);
    ASSERT_EQ(out.shape(), (Dims{2, 2}));
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(out.data<float>()[i], expected_uniform(k.output[i])) << i;
    }
  }
}

TEST(StatelessRandomUniformV2, PartialLastBlockIsTruncated) {
  const std::vector<Tensor> base = {key_input(kZeros), counter_input(kZeros), alg(1)};
  auto with_shape = [&](Tensor shape) {
    std::vector<Tensor> inputs = {std::move(shape)};
    inputs.insert(inputs.end(), base.begin(), base.end());
    return run1("StatelessRandomUniformV2", inputs);
  };
  const Tensor five = with_shape(i64({1}, {5}));
  const Tensor eight = with_shape(i32({1}, {8}));
  ASSERT_EQ(five.num_elements(), 5);
  for (int64_t i = 0; i < 5; ++i) EXPECT_EQ(five.data<float>()[i], eight.data<float>()[i]);
  // The fifth value is the first word of the block for counter {1, 0, 0, 0}.
  const Block second = philox::philox4x32_10({1, 0, 0, 0}, {0, 0});
  EXPECT_EQ(five.data<float>()[4], expected_uniform(second[0]));
  EXPECT_EQ(with_shape(i32({2}, {0, 3})).num_elements(), 0);
}

TEST(StatelessRandomUniformV2, DoublesUseTwoWordsEach) {
  const Tensor out = run1("StatelessRandomUniformV2",
                          {i32({1}, {2}), key_input(kOnes), counter_input(kOnes), alg(1)},
                          {{"dtype", DType::kFloat64}});
  ASSERT_EQ(out.dtype(), DType::kFloat64);
  EXPECT_EQ(out.data<double>()[0], expected_uniform_double(kOnes.output[0], kOnes.output[1]));
  EXPECT_EQ(out.data<double>()[1], expected_uniform_double(kOnes.output[2], kOnes.output[3]));
}

TEST(StatelessRandomUniformV2, HalfAndBfloat16UseLowMantissaBits) {
  const std::vector<Tensor> inputs = {i32({1}, {4}), key_input(kPi), counter_input(kPi), alg(1)};
  const Tensor h = run1("StatelessRandomUniformV2", inputs, {{"dtype", DType::kFloat16}});
  const Tensor b = run1("StatelessRandomUniformV2", inputs, {{"dtype", DType::kBFloat16}});
  ASSERT_EQ(h.dtype(), DType::kFloat16);
  ASSERT_EQ(b.dtype(), DType::kBFloat16);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(h.data<Float16>()[i].to_float(), static_cast<float>(kPi.output[i] & 0x3ff) / 1024.0f);
    EXPECT_EQ(b.data<BFloat16>()[i].to_float(), static_cast<float>(kPi.output[i] & 0x7f) / 128.0f);
  }
}

TEST(StatelessRandomUniformV2, AutoSelectIsPhiloxAndOtherAlgorithmsAreRejected) {
  const Tensor philox_out =
      run1("StatelessRandomUniformV2", {i32({1}, {4}), key_input(kPi), counter_input(kPi), alg(1)});
  const Tensor auto_out =
      run1("StatelessRandomUniformV2", {i32({1}, {4}), key_input(kPi), counter_input(kPi), alg(3)});
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(philox_out.data<float>()[i], auto_out.data<float>()[i]);
  auto r = run_op("StatelessRandomUniformV2",
                  std::vector<Tensor>{i32({1}, {4}), key_input(kPi), counter_input(kPi), alg(2)},
                  {}, kNode);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("Unsupported algorithm id: 2"), std::string::npos);
}

TEST(StatelessRandomUniformV2, KeyAndCounterShapesAreChecked) {
  expect_error("StatelessRandomUniformV2",
               {i32({1}, {4}), u64({2}, {0, 0}), counter_input(kZeros), alg(1)}, {},
               "key must be uint64 with shape [1]");
  expect_error("StatelessRandomUniformV2",
               {i32({1}, {4}), key_input(kZeros), u64({1}, {0}), alg(1)}, {},
               "counter must be a uint64 vector");
  expect_error("StatelessRandomUniformV2",
               {i32({1}, {-1}), key_input(kZeros), counter_input(kZeros), alg(1)}, {}, "negative");
}

TEST(StatelessRandomUniformFullIntV2, WholeWordsAsIntegers) {
  const std::vector<Tensor> inputs = {i32({1}, {2}), key_input(kZeros), counter_input(kZeros),
                                      alg(1)};
  const Tensor u = run1("StatelessRandomUniformFullIntV2", inputs);  // dtype defaults to uint64
  ASSERT_EQ(u.dtype(), DType::kUInt64);
  EXPECT_EQ(u.data<uint64_t>()[0], 0xe169c58d6627e8d5u);
  EXPECT_EQ(u.data<uint64_t>()[1], 0x9b00dbd8bc57ac4cu);
  const Tensor i = run1("StatelessRandomUniformFullIntV2",
                        {i32({1}, {4}), key_input(kZeros), counter_input(kZeros), alg(1)},
                        {{"dtype", DType::kInt32}});
  ASSERT_EQ(i.dtype(), DType::kInt32);
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(i.data<int32_t>()[k], static_cast<int32_t>(kZeros.output[k]));
  }
}

TEST(StatelessRandomUniformIntV2, RangeIsMinPlusWordModuloSpan) {
  const Tensor i =
      run1("StatelessRandomUniformIntV2",
           {i32({1}, {4}), key_input(kPi), counter_input(kPi), alg(1), i32({}, {-5}), i32({}, {5})},
           {{"dtype", DType::kInt32}});
  ASSERT_EQ(i.dtype(), DType::kInt32);
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(i.data<int32_t>()[k], -5 + static_cast<int32_t>(kPi.output[k] % 10)) << k;
  }
  const Tensor l =
      run1("StatelessRandomUniformIntV2", {i32({1}, {2}), key_input(kPi), counter_input(kPi),
                                           alg(1), i64({}, {-1000}), i64({}, {1000})});
  ASSERT_EQ(l.dtype(), DType::kInt64);
  const uint64_t bits0 = kPi.output[0] | (uint64_t{kPi.output[1]} << 32);
  const uint64_t bits1 = kPi.output[2] | (uint64_t{kPi.output[3]} << 32);
  EXPECT_EQ(l.data<int64_t>()[0], -1000 + static_cast<int64_t>(bits0 % 2000));
  EXPECT_EQ(l.data<int64_t>()[1], -1000 + static_cast<int64_t>(bits1 % 2000));
}

TEST(StatelessRandomUniformIntV2, EmptyRangeIsAnErrorUnlessNothingIsDrawn) {
  const std::vector<Tensor> kc = {key_input(kPi), counter_input(kPi), alg(1)};
  expect_error("StatelessRandomUniformIntV2",
               {i32({1}, {3}), kc[0], kc[1], kc[2], i32({}, {5}), i32({}, {5})}, {},
               "Need minval < maxval");
  EXPECT_EQ(run1("StatelessRandomUniformIntV2",
                 {i32({1}, {0}), kc[0], kc[1], kc[2], i32({}, {5}), i32({}, {5})})
                .num_elements(),
            0);
}

TEST(StatelessRandomNormalV2, BoxMullerOnWordPairs) {
  const Tensor out =
      run1("StatelessRandomNormalV2", {i32({1}, {4}), key_input(kPi), counter_input(kPi), alg(1)});
  ASSERT_EQ(out.dtype(), DType::kFloat32);
  for (size_t pair = 0; pair < 2; ++pair) {
    // z0 = sin(2 pi u2) sqrt(-2 ln u1), z1 = cos(2 pi u2) sqrt(-2 ln u1).
    const double u1 = std::max(expected_uniform(kPi.output[2 * pair]), 1e-7f);
    const double u2 = expected_uniform(kPi.output[2 * pair + 1]);
    const double radius = std::sqrt(-2.0 * std::log(u1));
    EXPECT_NEAR(out.data<float>()[2 * pair], std::sin(2 * std::numbers::pi * u2) * radius, 2e-6);
    EXPECT_NEAR(out.data<float>()[2 * pair + 1], std::cos(2 * std::numbers::pi * u2) * radius,
                2e-6);
  }
  const Tensor d =
      run1("StatelessRandomNormalV2", {i32({1}, {2}), key_input(kPi), counter_input(kPi), alg(1)},
           {{"dtype", DType::kFloat64}});
  const double u1 = expected_uniform_double(kPi.output[0], kPi.output[1]);
  const double u2 = expected_uniform_double(kPi.output[2], kPi.output[3]);
  const double radius = std::sqrt(-2.0 * std::log(u1));
  EXPECT_NEAR(d.data<double>()[0], std::sin(2 * std::numbers::pi * u2) * radius, 1e-12);
  EXPECT_NEAR(d.data<double>()[1], std::cos(2 * std::numbers::pi * u2) * radius, 1e-12);
}

// ---------------------------------------------------------------------------------------------
// Key/counter derivation and the V1 ops.

TEST(StatelessRandomGetKeyCounter, ScramblesTheSeed) {
  const auto out = run("StatelessRandomGetKeyCounter", {i64({2}, {0x0000000200000001, 3})});
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(out[0].dtype(), DType::kUInt64);
  ASSERT_EQ(out[0].shape(), (Dims{1}));
  ASSERT_EQ(out[1].shape(), (Dims{2}));
  const Block mix = philox::philox4x32_10({1, 2, 3, 0}, {0x3ec8f720, 0x02461e29});
  EXPECT_EQ(out[0].data<uint64_t>()[0], mix[0] | (uint64_t{mix[1]} << 32));
  EXPECT_EQ(out[1].data<uint64_t>()[0], 0u);
  EXPECT_EQ(out[1].data<uint64_t>()[1], mix[2] | (uint64_t{mix[3]} << 32));
  // int32 seeds are widened with sign extension, as TensorFlow copies them into int64.
  const auto narrow = run("StatelessRandomGetKeyCounter", {i32({2}, {-1, 7})});
  const auto wide = run("StatelessRandomGetKeyCounter", {i64({2}, {-1, 7})});
  EXPECT_EQ(narrow[0].data<uint64_t>()[0], wide[0].data<uint64_t>()[0]);
  expect_error("StatelessRandomGetKeyCounter", {i64({3}, {1, 2, 3})}, {},
               "seed must have shape [2]");
}

TEST(StatelessRandomGetKeyCounterAlg, AlsoReturnsPhilox) {
  const auto out = run("StatelessRandomGetKeyCounterAlg", {i32({2}, {1, 2})});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].data<int32_t>()[0], 1);
  EXPECT_EQ(run1("StatelessRandomGetAlg", {}).data<int32_t>()[0], 1);
}

TEST(StatelessRandomV1, MatchesV2WithTheDerivedKeyAndCounter) {
  const Tensor seed = i64({2}, {42, -7});
  const Tensor shape = i32({2}, {3, 3});
  const auto kc = run("StatelessRandomGetKeyCounter", {seed});
  ASSERT_EQ(kc.size(), 2u);
  const std::vector<std::pair<const char*, const char*>> pairs = {
      {"StatelessRandomUniform", "StatelessRandomUniformV2"},
      {"StatelessRandomNormal", "StatelessRandomNormalV2"}};
  for (const auto& [v1, v2] : pairs) {
    SCOPED_TRACE(v1);
    const Tensor a = run1(v1, {shape, seed});
    const Tensor b = run1(v2, {shape, kc[0], kc[1], alg(1)});
    ASSERT_EQ(a.shape(), (Dims{3, 3}));
    for (int64_t i = 0; i < 9; ++i) EXPECT_EQ(a.data<float>()[i], b.data<float>()[i]);
  }
  const Tensor a = run1("StatelessRandomUniformInt", {shape, seed, i32({}, {0}), i32({}, {7})});
  const Tensor b = run1("StatelessRandomUniformIntV2",
                        {shape, kc[0], kc[1], alg(1), i32({}, {0}), i32({}, {7})});
  for (int64_t i = 0; i < 9; ++i) EXPECT_EQ(a.data<int32_t>()[i], b.data<int32_t>()[i]);
}

// ---------------------------------------------------------------------------------------------
// Stateful ops.

TEST(RandomUniform, SeedsAreKeyAndUpperCounter) {
  // seed -> key, seed2 -> counter words 2..3: the same stream as key 1, counter {0, 2}.
  const Tensor stateful = run1("RandomUniform", {i32({1}, {6})},
                               {{"seed", int64_t{1}},
                                {"seed2", int64_t{2}},
                                {"dtype", DType::kFloat32},
                                {"T", DType::kInt32}});
  const Tensor stateless =
      run1("StatelessRandomUniformV2", {i32({1}, {6}), u64({1}, {1}), u64({2}, {0, 2}), alg(1)});
  ASSERT_EQ(stateful.shape(), (Dims{6}));
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_EQ(stateful.data<float>()[i], stateless.data<float>()[i]);
  }
  const Block first = philox::philox4x32_10({0, 0, 2, 0}, {1, 0});
  EXPECT_EQ(stateful.data<float>()[0], expected_uniform(first[0]));
}

TEST(RandomUniform, IsRegisteredStateful) {
  for (const char* op : {"RandomUniform", "RandomStandardNormal", "RandomUniformInt"}) {
    const OpSpec* spec = OpRegistry::global().find(op);
    ASSERT_NE(spec, nullptr) << op;
    EXPECT_TRUE(spec->stateful) << op;
  }
  EXPECT_FALSE(OpRegistry::global().find("StatelessRandomUniformV2")->stateful);
}

TEST(RandomUniform, UnseededDrawsStayInRangeWithPlausibleMean) {
  const Tensor out = run1("RandomUniform", {i64({1}, {40000})}, {{"dtype", DType::kFloat32}});
  ASSERT_EQ(out.num_elements(), 40000);
  double sum = 0;
  for (float v : out.values<float>()) {
    ASSERT_GE(v, 0.0f);
    ASSERT_LT(v, 1.0f);
    sum += v;
  }
  EXPECT_NEAR(sum / 40000, 0.5, 0.01);
}

TEST(RandomStandardNormal, MomentsArePlausible) {
  const Tensor out = run1("RandomStandardNormal", {i32({2}, {200, 200})},
                          {{"seed", int64_t{5}}, {"dtype", DType::kFloat32}});
  double sum = 0;
  double squares = 0;
  for (float v : out.values<float>()) {
    sum += v;
    squares += static_cast<double>(v) * v;
  }
  const double mean = sum / 40000;
  EXPECT_NEAR(mean, 0.0, 0.03);
  EXPECT_NEAR(squares / 40000 - mean * mean, 1.0, 0.04);
}

TEST(RandomUniformInt, DrawsWithinBounds) {
  const Tensor out = run1("RandomUniformInt", {i32({1}, {1000}), i64({}, {-3}), i64({}, {4})},
                          {{"seed", int64_t{9}}, {"seed2", int64_t{1}}});
  ASSERT_EQ(out.dtype(), DType::kInt64);
  for (int64_t v : out.values<int64_t>()) {
    ASSERT_GE(v, -3);
    ASSERT_LT(v, 4);
  }
  expect_error("RandomUniform", {i32({1}, {3})}, {}, "dtype");
}

}  // namespace
}  // namespace hubimg::ops
