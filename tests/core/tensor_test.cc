#include "hubimg/tensor.h"

#include <gtest/gtest.h>

#include <cmath>

namespace hubimg {
namespace {

TEST(DType, NamesRoundTrip) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kUInt8, DType::kInt16,
                  DType::kInt8, DType::kString, DType::kInt64, DType::kBool, DType::kBFloat16,
                  DType::kUInt16, DType::kFloat16, DType::kUInt32, DType::kUInt64}) {
    auto back = dtype_from_name(dtype_name(d));
    ASSERT_TRUE(back.ok()) << dtype_name(d);
    EXPECT_EQ(*back, d);
  }
  EXPECT_EQ(dtype_name(DType::kFloat32), "float32");
  EXPECT_EQ(dtype_name(DType::kInt64), "int64");
  EXPECT_FALSE(dtype_from_name("float31").ok());
}

TEST(DType, ProtoNumbersIncludingReferenceTypes) {
  EXPECT_EQ(*dtype_from_proto(1), DType::kFloat32);
  EXPECT_EQ(*dtype_from_proto(101), DType::kFloat32);
  EXPECT_EQ(*dtype_from_proto(23), DType::kUInt64);
  EXPECT_FALSE(dtype_from_proto(99).ok());
  EXPECT_FALSE(dtype_from_proto(-3).ok());
}

TEST(Float16, KnownValues) {
  EXPECT_EQ(Float16{0x3c00}.to_float(), 1.0f);
  EXPECT_EQ(Float16{0xc000}.to_float(), -2.0f);
  EXPECT_EQ(Float16{0x7bff}.to_float(), 65504.0f);
  EXPECT_EQ(Float16{0x0001}.to_float(), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_TRUE(std::isinf(Float16{0x7c00}.to_float()));
  EXPECT_EQ(Float16::from_float(1.0f).bits, 0x3c00);
  EXPECT_EQ(Float16::from_float(65504.0f).bits, 0x7bff);
  EXPECT_EQ(Float16::from_float(1e6f).bits, 0x7c00);
  EXPECT_EQ(Float16::from_float(std::ldexp(1.0f, -24)).bits, 0x0001);
  // 1 + 2^-11 is halfway between 1 and the next half; ties go to even (1.0).
  EXPECT_EQ(Float16::from_float(1.0f + std::ldexp(1.0f, -11)).bits, 0x3c00);
}

TEST(BFloat16, KnownValues) {
  EXPECT_EQ(BFloat16{0x3f80}.to_float(), 1.0f);
  EXPECT_EQ(BFloat16::from_float(1.0f).bits, 0x3f80);
  EXPECT_EQ(BFloat16::from_float(-2.5f).bits, 0xc020);
  // 1 + 2^-8 is a tie between 0x3f80 and 0x3f81: round to even.
  EXPECT_EQ(BFloat16::from_float(1.0f + std::ldexp(1.0f, -8)).bits, 0x3f80);
}

TEST(Shape, CheckedNumElements) {
  EXPECT_EQ(*checked_num_elements({2, 3, 4}), 24);
  EXPECT_EQ(*checked_num_elements({}), 1);
  EXPECT_EQ(*checked_num_elements({0, 1'000'000'000'000}), 0);
  EXPECT_FALSE(checked_num_elements({2, -1}).ok());
  EXPECT_FALSE(checked_num_elements({1 << 30, 1 << 30, 1 << 30}).ok());
}

TEST(PartialShape, Compatibility) {
  auto s = PartialShape::known({-1, 224, 224, 3});
  EXPECT_TRUE(s.is_compatible_with({7, 224, 224, 3}));
  EXPECT_FALSE(s.is_compatible_with({7, 225, 224, 3}));
  EXPECT_FALSE(s.is_compatible_with({224, 224, 3}));
  EXPECT_FALSE(s.is_fully_defined());
  EXPECT_TRUE(PartialShape::unknown().is_compatible_with({1, 2, 3}));
  EXPECT_EQ(s.to_string(), "[-1, 224, 224, 3]");
}

TEST(Tensor, OwnsZeroedAlignedMemory) {
  Tensor t(DType::kFloat32, {3, 5});
  EXPECT_EQ(t.num_elements(), 15);
  EXPECT_EQ(t.byte_size(), 60u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u);
  for (float v : t.values<float>()) EXPECT_EQ(v, 0.0f);
}

TEST(Tensor, WrapDoesNotCopyAndCloneDoes) {
  std::vector<float> mine = {1, 2, 3, 4};
  Tensor view = Tensor::wrap(DType::kFloat32, {2, 2}, mine.data(), nullptr);
  EXPECT_EQ(view.raw_data(), mine.data());
  Tensor copy = view.clone();
  EXPECT_NE(copy.raw_data(), mine.data());
  mine[0] = 42;
  EXPECT_EQ(view.data<float>()[0], 42);
  EXPECT_EQ(copy.data<float>()[0], 1);
}

TEST(Tensor, ReshapeSharesBufferAndChecksCount) {
  Tensor t = Tensor::from_vector<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  auto r = t.reshaped({3, 2});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->shares_buffer_with(t));
  EXPECT_FALSE(t.reshaped({4, 2}).ok());
}

TEST(Tensor, CreateRejectsAbsurdShapes) {
  EXPECT_FALSE(Tensor::create(DType::kFloat32, {-1}).ok());
  EXPECT_FALSE(Tensor::create(DType::kFloat32, {1 << 20, 1 << 20, 1 << 10}).ok());
  EXPECT_FALSE(Tensor::create(DType::kResource, {1}).ok());
  EXPECT_TRUE(Tensor::create(DType::kString, {2}).ok());
}

TEST(Tensor, Strings) {
  Tensor t = Tensor::from_strings({2}, {"a", "bc"});
  EXPECT_EQ(t.strings()[1], "bc");
  Tensor c = t.clone();
  c.mutable_strings()[0] = "z";
  EXPECT_EQ(t.strings()[0], "a");
}

// A value count that is not the shape's is a programming error: it stops the process with a
// message instead of reading past the values (or leaving elements unset).
TEST(TensorDeathTest, FromVectorWithAnotherCountAborts) {
  EXPECT_DEATH(Tensor::from_vector<float>({2}, std::vector<float>{1.0f}),
               "tensor float32\\[2\\] made from 1 values");
  EXPECT_DEATH(Tensor::from_vector<int32_t>({1}, std::vector<int32_t>{1, 2}),
               "tensor int32\\[1\\] made from 2 values");
  EXPECT_EQ(Tensor::from_vector<float>({0, 3}, std::vector<float>{}).num_elements(), 0);
}

}  // namespace
}  // namespace hubimg
