#include <gtest/gtest.h>

#include "hubimg/image.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

TEST(WritePng, RoundTripsThroughTheDecoderWithinQuantisation) {
  hubimg::testing::TempDir tmp;
  Tensor image(DType::kFloat32, {5, 7, 3});
  float* p = image.mutable_data<float>();
  for (int64_t i = 0; i < image.num_elements(); ++i) p[i] = static_cast<float>(i % 11) / 10.0f;
  auto path = tmp.path() / "x.png";
  ASSERT_TRUE(write_png(path, image).ok());
  auto back = decode_image_file(path);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->shape(), image.shape());
  for (int64_t i = 0; i < image.num_elements(); ++i) {
    EXPECT_NEAR(back->data<float>()[i], p[i], 0.5f / 255.0f + 1e-6f) << i;
  }
}

TEST(WritePng, RejectsWhatItCannotWrite) {
  hubimg::testing::TempDir tmp;
  EXPECT_FALSE(write_png(tmp.path() / "a.png", Tensor(DType::kFloat32, {4, 4, 2})).ok());
  EXPECT_FALSE(write_png(tmp.path() / "b.png", Tensor(DType::kInt32, {4, 4, 3})).ok());
  auto s = write_png(tmp.path() / "no" / "dir.png", Tensor(DType::kFloat32, {4, 4, 3}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("dir.png"), std::string::npos);
}

}  // namespace
}  // namespace hubimg
