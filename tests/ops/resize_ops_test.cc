#include <gtest/gtest.h>

#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

// A 1x1x2x1 image [0, 4] widened to 4 columns; expected values worked out by hand from
// TensorFlow's mapping of output to input coordinates.
std::vector<float> widen(AttrMap attrs) {
  Tensor image = Tensor::from_vector<float>({1, 1, 2, 1}, {0.f, 4.f});
  Tensor size = Tensor::from_vector<int32_t>({2}, {1, 4});
  std::vector<Tensor> in{image, size};
  auto out = run_op("ResizeBilinear", in, attrs);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  if (!out.ok()) return {};
  EXPECT_EQ((*out)[0].shape(), (Dims{1, 1, 4, 1}));
  auto v = (*out)[0].values<float>();
  return {v.begin(), v.end()};
}

TEST(ResizeBilinearOp, HalfPixelCenters) {
  // in = (x + 0.5) * 0.5 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped lerps
  EXPECT_EQ(widen({{"half_pixel_centers", true}}), (std::vector<float>{0, 1, 3, 4}));
}

TEST(ResizeBilinearOp, LegacyAndAlignCorners) {
  // legacy: in = x * 0.5 = 0, 0.5, 1, 1.5 (upper index clamped to 1)
  EXPECT_EQ(widen({}), (std::vector<float>{0, 2, 4, 4}));
  // align_corners: in = x * (2 - 1) / (4 - 1)
  auto v = widen({{"align_corners", true}});
  ASSERT_EQ(v.size(), 4u);
  EXPECT_FLOAT_EQ(v[1], 4.f / 3.f);
  EXPECT_FLOAT_EQ(v[2], 8.f / 3.f);
  EXPECT_FLOAT_EQ(v[3], 4.f);
}

TEST(ResizeNearestNeighborOp, HalfPixelCenters) {
  Tensor image = Tensor::from_vector<float>({1, 1, 2, 1}, {1.f, 2.f});
  Tensor size = Tensor::from_vector<int32_t>({2}, {1, 4});
  std::vector<Tensor> in{image, size};
  auto out = run_op("ResizeNearestNeighbor", in, {{"half_pixel_centers", true}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  auto v = (*out)[0].values<float>();
  // (x + 0.5) * 0.5 = 0.25, 0.75, 1.25, 1.75 -> floor: 0, 0, 1, 1
  EXPECT_EQ(std::vector<float>(v.begin(), v.end()), (std::vector<float>{1, 1, 2, 2}));
}

TEST(ResizeBilinearOp, BadSizeNamesTheNode) {
  Tensor image(DType::kFloat32, {1, 2, 2, 1});
  Tensor size = Tensor::from_vector<int32_t>({2}, {0, 3});
  std::vector<Tensor> in{image, size};
  auto out = run_op("ResizeBilinear", in, {}, "model/resize");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("node 'model/resize' (ResizeBilinear)"), std::string::npos)
      << out.status().message();
  Tensor rank3(DType::kFloat32, {2, 2, 1});
  std::vector<Tensor> in3{rank3, Tensor::from_vector<int32_t>({2}, {2, 2})};
  EXPECT_FALSE(run_op("ResizeBilinear", in3, {}).ok());
}

}  // namespace
}  // namespace hubimg::ops
