// Finite-difference checks of the resize gradient rules (src/ops/resize_ops.cc): ResizeBilinear
// through ResizeBilinearGrad, ResizeBicubic through ResizeBicubicGrad, and ResizeNearestNeighbor
// through ResizeNearestNeighborGrad, for upsampling and downsampling, every attribute combination
// TensorFlow allows, batch 1 and 3.
#include <string>
#include <vector>

#include "hubimg/image.h"
#include "ops/grad_check.h"
#include "ops/op_registry.h"
#include "ops/op_test_util.h"

namespace hubimg::ops::testing {
namespace {

struct Geometry {
  Dims in;  // [N, H, W, C]
  int32_t out_h, out_w;
  const char* what;
};

const Geometry kGeometries[] = {
    {{1, 3, 4, 2}, 5, 7, "up"},     {{3, 2, 3, 1}, 4, 6, "up x2"},
    {{1, 5, 6, 2}, 3, 4, "down"},   {{3, 7, 5, 2}, 2, 3, "down"},
    {{1, 4, 3, 1}, 2, 5, "mixed"},  {{3, 1, 1, 2}, 3, 2, "from 1x1"},
    {{1, 3, 3, 1}, 1, 1, "to 1x1"}, {{3, 3, 4, 2}, 3, 4, "same size"},
};

struct AttrChoice {
  bool align_corners, half_pixel_centers;
};
const AttrChoice kAttrs[] = {{false, false}, {true, false}, {false, true}};

std::vector<GradCase> resize_cases(const std::string& op) {
  std::vector<GradCase> cases;
  uint32_t seed = 1;
  for (const auto& g : kGeometries) {
    for (const auto& a : kAttrs) {
      GradCase c;
      c.op = op;
      c.attrs = {{"align_corners", a.align_corners},
                 {"half_pixel_centers", a.half_pixel_centers},
                 {"T", DType::kFloat64}};
      c.inputs = {uniform(g.in, -1, 1, seed++), ints32({2}, {g.out_h, g.out_w})};
      c.label = std::string(g.what) + " [" + std::to_string(g.in[0]) + "," +
                std::to_string(g.in[1]) + "," + std::to_string(g.in[2]) + "," +
                std::to_string(g.in[3]) + "] -> " + std::to_string(g.out_h) + "x" +
                std::to_string(g.out_w) + (a.align_corners ? " align_corners" : "") +
                (a.half_pixel_centers ? " half_pixel_centers" : "");
      // The ops are linear in the images: a large step is exact, and the float32 output of
      // ResizeBilinear and ResizeBicubic would drown a small one in rounding.
      c.step = 0.25;
      c.tolerance = op == "ResizeNearestNeighbor" ? 1e-9 : 1e-5;
      cases.push_back(std::move(c));
    }
  }
  return cases;
}

HUBIMG_GRAD_CASES(ResizeBilinear) {
  return resize_cases("ResizeBilinear");
}
HUBIMG_GRAD_CASES(ResizeBicubic) {
  return resize_cases("ResizeBicubic");
}
HUBIMG_GRAD_CASES(ResizeNearestNeighbor) {
  return resize_cases("ResizeNearestNeighbor");
}

// ScaleAndTranslate (tf.image.resize with antialias, lanczos, gaussian, mitchellcubic): linear
// in the images for fixed scale and translation, fed as float32 as the op requires.
HUBIMG_GRAD_CASES(ScaleAndTranslate) {
  struct Case {
    Dims in;
    int32_t out_h, out_w;
    float scale_y, scale_x, translate_y, translate_x;
    const char* kernel;
    bool antialias;
  };
  const Case kCases[] = {
      {{1, 6, 8, 2}, 3, 4, 0.5f, 0.5f, 0, 0, "lanczos3", true},           // down, widened
      {{2, 4, 5, 1}, 7, 8, 1.75f, 1.6f, 0.3f, -0.2f, "keyscubic", true},  // up, translated
      {{1, 5, 5, 3}, 4, 3, 0.8f, 0.6f, 0, 0, "gaussian", false},
      {{1, 4, 6, 1}, 4, 6, 1.0f, 1.0f, 0.5f, 1.0f, "box", true},  // shift only
      {{1, 7, 4, 2}, 3, 5, 0.43f, 1.25f, 0, 0, "mitchellcubic", true},
  };
  std::vector<GradCase> cases;
  uint32_t seed = 60;
  for (const Case& c : kCases) {
    GradCase g;
    g.op = "ScaleAndTranslate";
    g.attrs = {{"kernel_type", std::string(c.kernel)}, {"antialias", c.antialias}};
    g.inputs = {uniform(c.in, -1, 1, seed++), ints32({2}, {c.out_h, c.out_w}),
                Tensor::from_vector<float>({2}, {c.scale_y, c.scale_x}),
                Tensor::from_vector<float>({2}, {c.translate_y, c.translate_x})};
    g.differentiate = {0};
    g.fixed_dtype_inputs = {2, 3};
    g.label = std::string(c.kernel) + (c.antialias ? " antialias" : "");
    g.step = 0.25;  // linear: a large step is exact, float32 outputs drown a small one
    g.tolerance = 1e-5;
    cases.push_back(std::move(g));
  }
  return cases;
}

Tensor transforms_f32(int64_t rows, std::vector<float> values) {
  Tensor t(DType::kFloat32, {rows, 8});
  for (size_t i = 0; i < values.size(); ++i) t.mutable_data<float>()[i] = values[i];
  return t;
}

// ImageProjectiveTransformV2/V3: linear in the images for fixed transforms (exact with a large
// step); the float32 transforms are fed as they are.
HUBIMG_GRAD_CASES(ImageProjectiveTransform) {
  std::vector<GradCase> cases;
  // A rotation by ~20 degrees about the centre of a 5x6 image, a shear with a projective term,
  // and a per-image pair (batch 2).
  const std::vector<float> rotation = {0.94f, -0.34f, 1.1f, 0.34f, 0.94f, -0.7f, 0, 0};
  const std::vector<float> projective = {1.1f, 0.2f, -0.6f, -0.1f, 0.9f, 0.4f, 0.02f, -0.03f};
  std::vector<float> pair = rotation;
  pair.insert(pair.end(), projective.begin(), projective.end());
  uint32_t seed = 40;
  for (const char* interpolation : {"BILINEAR", "NEAREST"}) {
    for (const char* fill_mode : {"CONSTANT", "REFLECT", "WRAP", "NEAREST"}) {
      for (int variant = 0; variant < 3; ++variant) {
        const int64_t batch = variant == 2 ? 2 : 1;
        GradCase c;
        c.op = "ImageProjectiveTransformV3";
        c.attrs = {{"interpolation", std::string(interpolation)},
                   {"fill_mode", std::string(fill_mode)},
                   {"dtype", DType::kFloat64}};
        c.float_type_attrs = {"dtype"};
        Tensor fill(DType::kFloat32, {});
        *fill.mutable_data<float>() = 0.5f;
        c.inputs = {uniform({batch, 5, 6, 2}, -1, 1, seed++),
                    transforms_f32(variant == 2 ? 2 : 1, variant == 0   ? rotation
                                                         : variant == 1 ? projective
                                                                        : pair),
                    ints32({2}, {variant == 1 ? 4 : 5, variant == 1 ? 7 : 6}), fill};
        c.fixed_dtype_inputs = {1, 3};
        c.step = 0.25;
        c.tolerance = 1e-6;
        c.label =
            std::string(interpolation) + " " + fill_mode + " variant " + std::to_string(variant);
        cases.push_back(std::move(c));
      }
    }
  }
  GradCase v2;
  v2.op = "ImageProjectiveTransformV2";
  v2.attrs = {{"interpolation", std::string("BILINEAR")}, {"dtype", DType::kFloat64}};
  v2.float_type_attrs = {"dtype"};
  v2.inputs = {uniform({1, 4, 5, 1}, -1, 1, 99), transforms_f32(1, rotation), ints32({2}, {4, 5})};
  v2.fixed_dtype_inputs = {1};
  v2.step = 0.25;
  cases.push_back(std::move(v2));
  return cases;
}

// The gradient kernels directly: the adjoint identity <resize(x), g> == <x, grad(g)>.
template <bool kBilinear>
void expect_adjoint(Dims in, int32_t out_h, int32_t out_w, ResizeOpAttrs attrs, DType dtype) {
  Tensor x64 = uniform(in, -1, 1, 7);
  Tensor x(dtype, in);
  for (int64_t i = 0; i < x.num_elements(); ++i) {
    if (dtype == DType::kFloat32) {
      x.mutable_data<float>()[i] = static_cast<float>(x64.data<double>()[i]);
    } else {
      x.mutable_data<double>()[i] = x64.data<double>()[i];
    }
  }
  auto y = kBilinear ? resize_bilinear_op(x, out_h, out_w, attrs)
                     : resize_nearest_neighbor_op(x, out_h, out_w, attrs);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  const DType gtype = kBilinear ? DType::kFloat32 : dtype;
  Tensor g64 = uniform(y->shape(), -1, 1, 8);
  Tensor g(gtype, y->shape());
  for (int64_t i = 0; i < g.num_elements(); ++i) {
    if (gtype == DType::kFloat32) {
      g.mutable_data<float>()[i] = static_cast<float>(g64.data<double>()[i]);
    } else {
      g.mutable_data<double>()[i] = g64.data<double>()[i];
    }
  }
  auto gx = kBilinear ? resize_bilinear_grad_op(g, x, attrs)
                      : resize_nearest_neighbor_grad_op(g, in[1], in[2], attrs);
  ASSERT_TRUE(gx.ok()) << gx.status().to_string();
  ASSERT_EQ(gx->shape(), x.shape());
  ASSERT_EQ(gx->dtype(), dtype);
  auto at = [](const Tensor& t, int64_t i) {
    return t.dtype() == DType::kFloat32 ? static_cast<double>(t.data<float>()[i])
                                        : t.data<double>()[i];
  };
  double lhs = 0, rhs = 0;
  for (int64_t i = 0; i < y->num_elements(); ++i) lhs += at(*y, i) * at(g, i);
  for (int64_t i = 0; i < x.num_elements(); ++i) rhs += at(x, i) * at(*gx, i);
  EXPECT_NEAR(lhs, rhs, 1e-4);
}

TEST(ResizeGradKernels, AdjointOfTheForwardKernels) {
  for (DType t : {DType::kFloat32, DType::kFloat64}) {
    for (const auto& a : kAttrs) {
      const ResizeOpAttrs attrs{a.align_corners, a.half_pixel_centers};
      expect_adjoint<true>({2, 5, 3, 3}, 9, 4, attrs, t);
      expect_adjoint<true>({2, 9, 8, 1}, 4, 3, attrs, t);
      expect_adjoint<false>({2, 5, 3, 3}, 9, 4, attrs, t);
      expect_adjoint<false>({2, 9, 8, 1}, 4, 3, attrs, t);
    }
  }
}

TEST(ResizeGradKernels, ErrorsNameTheNodeAndOp) {
  AttrMap both = {{"align_corners", true}, {"half_pixel_centers", true}};
  std::vector<Tensor> in = {Tensor(DType::kFloat32, {1, 2, 2, 1}),
                            Tensor(DType::kFloat32, {1, 3, 3, 1})};
  auto r = run_op("ResizeBilinearGrad", in, both, "net/resize_grad");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("net/resize_grad"), std::string::npos);
  EXPECT_NE(r.status().message().find("ResizeBilinearGrad"), std::string::npos);
  EXPECT_NE(r.status().message().find("half_pixel_centers"), std::string::npos);

  std::vector<Tensor> bad_grads = {Tensor(DType::kFloat64, {1, 2, 2, 1}),
                                   Tensor(DType::kFloat32, {1, 3, 3, 1})};
  r = run_op("ResizeBilinearGrad", bad_grads, {}, "net/resize_grad");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("must be of type float"), std::string::npos);

  std::vector<Tensor> nn = {Tensor(DType::kFloat32, {1, 2, 2, 1}), ints32({2}, {0, 3})};
  r = run_op("ResizeNearestNeighborGrad", nn, {}, "net/nn_grad");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("net/nn_grad"), std::string::npos);
  EXPECT_NE(r.status().message().find("positive"), std::string::npos);
}

TEST(ResizeGradKernels, NearestSumsEveryCopy) {
  // 2x2 -> 4x4 legacy: each source pixel is copied to a 2x2 block, so its gradient is the block's
  // sum.
  Tensor g(DType::kFloat32, {1, 4, 4, 1});
  for (int64_t i = 0; i < 16; ++i) g.mutable_data<float>()[i] = static_cast<float>(i);
  std::vector<Tensor> in = {g, ints32({2}, {2, 2})};
  auto r = run_op("ResizeNearestNeighborGrad", in, {}, "nn");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const float* p = (*r)[0].data<float>();
  EXPECT_EQ(p[0], 0 + 1 + 4 + 5);
  EXPECT_EQ(p[1], 2 + 3 + 6 + 7);
  EXPECT_EQ(p[2], 8 + 9 + 12 + 13);
  EXPECT_EQ(p[3], 10 + 11 + 14 + 15);
}

}  // namespace
}  // namespace hubimg::ops::testing
