// ImageProjectiveTransformV2 / V3 and AdjustContrastv2 (the ops behind Keras's random
// augmentation layers).
#include <algorithm>
#include <cmath>
#include <string>

#include "ops/kernel_util.h"
#include "ops/nn_util.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

enum class Interpolation { kNearest, kBilinear };
enum class FillMode { kReflect, kWrap, kConstant, kNearest };

// Maps an input coordinate that may lie outside [0, len - 1] back inside, following
// TensorFlow's kernels/image/image_ops.h (itself after scipy's ndimage): REFLECT mirrors
// [abcd] to dcba|abcd|dcba, WRAP tiles abcd|abcd|abcd, NEAREST clamps and CONSTANT keeps the
// coordinate (the caller then reads fill_value). The float/integer mix is TensorFlow's own.
float map_coordinate(float coord, int64_t len, FillMode mode) {
  const float last = static_cast<float>(len - 1);
  switch (mode) {
    case FillMode::kConstant: return coord;
    case FillMode::kNearest: return std::clamp(coord, 0.0f, last);
    case FillMode::kReflect:
      if (coord < 0) {
        if (len <= 1) {
          coord = 0;
        } else {
          const int64_t twice = 2 * len;
          if (coord < twice) coord = twice * static_cast<int64_t>(-coord / twice) + coord;
          coord = coord < -len ? coord + twice : -coord - 1;
        }
      } else if (coord > last) {
        if (len <= 1) {
          coord = 0;
        } else {
          const int64_t twice = 2 * len;
          coord -= twice * static_cast<int64_t>(coord / twice);
          if (coord >= len) coord = twice - coord - 1;
        }
      }
      return std::clamp(coord, 0.0f, last);
    case FillMode::kWrap:
      if (coord < 0) {
        if (len <= 1) {
          coord = 0;
        } else {
          const int64_t span = len - 1;
          coord += len * (static_cast<int64_t>(-coord / span) + 1);
        }
      } else if (coord > last) {
        if (len <= 1) {
          coord = 0;
        } else {
          const int64_t span = len - 1;
          coord -= len * static_cast<int64_t>(coord / span);
        }
      }
      return std::clamp(coord, 0.0f, last);
  }
  return coord;
}

struct TransformParams {
  Interpolation interpolation = Interpolation::kBilinear;
  FillMode fill_mode = FillMode::kConstant;
  int64_t out_height = 0;
  int64_t out_width = 0;
  float fill_value = 0;
};

template <typename T>
Tensor projective_transform(const Tensor& images, const Tensor& transforms,
                            const TransformParams& p) {
  const int64_t batch = images.dim(0), height = images.dim(1), width = images.dim(2),
                channels = images.dim(3);
  Tensor output(images.dtype(), {batch, p.out_height, p.out_width, channels});
  const T* in = images.data<T>();
  T* out = output.mutable_data<T>();
  const T fill = static_cast<T>(p.fill_value);
  auto read = [&](int64_t b, int64_t y, int64_t x, int64_t c) -> T {
    if (y < 0 || y >= height || x < 0 || x >= width) return fill;
    return in[((b * height + y) * width + x) * channels + c];
  };
  for (int64_t b = 0; b < batch; ++b) {
    // Each row [a0, a1, a2, b0, b1, b2, c0, c1] maps output (x, y) to input
    // ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k) with k = c0 x + c1 y + 1.
    const float* t = transforms.data<float>() + (transforms.dim(0) == 1 ? 0 : b * 8);
    for (int64_t oy = 0; oy < p.out_height; ++oy) {
      for (int64_t ox = 0; ox < p.out_width; ++ox) {
        T* pixel = out + ((b * p.out_height + oy) * p.out_width + ox) * channels;
        const float fx = static_cast<float>(ox), fy = static_cast<float>(oy);
        const float projection = t[6] * fx + t[7] * fy + 1.f;
        if (projection == 0) {
          std::fill(pixel, pixel + channels, fill);
          continue;
        }
        const float x =
            map_coordinate((t[0] * fx + t[1] * fy + t[2]) / projection, width, p.fill_mode);
        const float y =
            map_coordinate((t[3] * fx + t[4] * fy + t[5]) / projection, height, p.fill_mode);
        if (x < 0 || x > static_cast<float>(width - 1) || y < 0 ||
            y > static_cast<float>(height - 1)) {
          std::fill(pixel, pixel + channels, fill);
          continue;
        }
        for (int64_t c = 0; c < channels; ++c) {
          if (p.interpolation == Interpolation::kNearest) {
            pixel[c] = read(b, static_cast<int64_t>(std::round(y)),
                            static_cast<int64_t>(std::round(x)), c);
            continue;
          }
          const float y0 = std::floor(y), x0 = std::floor(x);
          const float y1 = y0 + 1, x1 = x0 + 1;
          const auto yi0 = static_cast<int64_t>(y0), xi0 = static_cast<int64_t>(x0);
          const float top = (x1 - x) * static_cast<float>(read(b, yi0, xi0, c)) +
                            (x - x0) * static_cast<float>(read(b, yi0, xi0 + 1, c));
          const float bottom = (x1 - x) * static_cast<float>(read(b, yi0 + 1, xi0, c)) +
                               (x - x0) * static_cast<float>(read(b, yi0 + 1, xi0 + 1, c));
          pixel[c] = static_cast<T>((y1 - y) * top + (y - y0) * bottom);
        }
      }
    }
  }
  return output;
}

// The interpolation and fill_mode attributes of ImageProjectiveTransformV2/V3 (and of their
// gradient op) into `p`.
Status parse_modes(const KernelContext& ctx, TransformParams& p) {
  HUBIMG_ASSIGN_OR_RETURN(std::string interpolation,
                          nn::attr(ctx, ctx.attrs().get_string("interpolation")));
  HUBIMG_ASSIGN_OR_RETURN(std::string fill_mode,
                          nn::attr(ctx, ctx.attrs().get_string("fill_mode", "CONSTANT")));
  if (interpolation == "NEAREST") {
    p.interpolation = Interpolation::kNearest;
  } else if (interpolation == "BILINEAR") {
    p.interpolation = Interpolation::kBilinear;
  } else {
    return ctx.error("invalid interpolation '" + interpolation +
                     "' (expected NEAREST or BILINEAR)");
  }
  if (fill_mode == "REFLECT") {
    p.fill_mode = FillMode::kReflect;
  } else if (fill_mode == "WRAP") {
    p.fill_mode = FillMode::kWrap;
  } else if (fill_mode == "CONSTANT") {
    p.fill_mode = FillMode::kConstant;
  } else if (fill_mode == "NEAREST") {
    p.fill_mode = FillMode::kNearest;
  } else {
    return ctx.error("invalid fill_mode '" + fill_mode +
                     "' (expected REFLECT, WRAP, CONSTANT or NEAREST)");
  }
  return {};
}

// Inputs: images [N, H, W, C], transforms float32 [N or 1, 8], and for V2 / V3 output_shape
// int32 [2]; V3 adds fill_value (float32 scalar). Attributes: interpolation (required),
// fill_mode (default "CONSTANT").
Status image_projective_transform(KernelContext& ctx, size_t num_inputs) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, num_inputs));
  const Tensor& images = ctx.input(0);
  const Tensor& transforms = ctx.input(1);
  const Tensor& output_shape = ctx.input(2);
  if (images.rank() != 4) return ctx.error("images must be 4-D NHWC, got " + images.description());
  if (transforms.dtype() != DType::kFloat32 || transforms.rank() != 2 ||
      (transforms.dim(0) != images.dim(0) && transforms.dim(0) != 1) || transforms.dim(1) != 8) {
    return ctx.error("transforms must be float32 [num_images or 1, 8], got " +
                     transforms.description() + " for images " + images.description());
  }
  if (output_shape.dtype() != DType::kInt32 || output_shape.rank() != 1 ||
      output_shape.num_elements() != 2) {
    return ctx.error("output_shape must be int32 [2], got " + output_shape.description());
  }
  TransformParams p;
  p.out_height = output_shape.data<int32_t>()[0];
  p.out_width = output_shape.data<int32_t>()[1];
  if (p.out_height <= 0 || p.out_width <= 0) {
    return ctx.error("output_shape must be positive, got [" + std::to_string(p.out_height) + ", " +
                     std::to_string(p.out_width) + "]");
  }
  if (num_inputs == 4) {
    const Tensor& fill = ctx.input(3);
    if (fill.dtype() != DType::kFloat32 || fill.rank() != 0) {
      return ctx.error("fill_value must be a float32 scalar, got " + fill.description());
    }
    p.fill_value = *fill.data<float>();
  }
  HUBIMG_RETURN_IF_ERROR(parse_modes(ctx, p));
  auto body = [&]<typename T>() -> Status {
    ctx.set_output(0, projective_transform<T>(images, transforms, p));
    return {};
  };
  switch (images.dtype()) {
    case DType::kFloat32: return body.operator()<float>();
    case DType::kFloat64: return body.operator()<double>();
    case DType::kUInt8: return body.operator()<uint8_t>();
    case DType::kInt32: return body.operator()<int32_t>();
    case DType::kInt64: return body.operator()<int64_t>();
    default:
      return ctx.error(StatusCode::kUnimplemented,
                       "unsupported dtype " + dtype_name(images.dtype()));
  }
}

// output = mean + contrast_factor * (x - mean), with the mean of each channel of each image
// taken over its height and width (TensorFlow's CPU kernel is float32 only).
Status adjust_contrast_v2(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& images = ctx.input(0);
  const Tensor& factor = ctx.input(1);
  if (images.rank() < 3) {
    return ctx.error("images must be at least 3-D [..., height, width, channels], got " +
                     images.description());
  }
  if (factor.dtype() != DType::kFloat32 || factor.rank() != 0) {
    return ctx.error("contrast_factor must be a float32 scalar, got " + factor.description());
  }
  if (images.dtype() != DType::kFloat32) {
    return ctx.error(StatusCode::kUnimplemented,
                     "unsupported dtype " + dtype_name(images.dtype()) + " (float32 only)");
  }
  const int r = images.rank();
  const int64_t pixels = images.dim(r - 3) * images.dim(r - 2);
  const int64_t channels = images.dim(r - 1);
  const int64_t image_size = pixels * channels;
  const int64_t num_images = image_size == 0 ? 0 : images.num_elements() / image_size;
  const float f = *factor.data<float>();
  Tensor output(DType::kFloat32, images.shape());
  const float* in = images.data<float>();
  float* out = output.mutable_data<float>();
  for (int64_t i = 0; i < num_images; ++i) {
    for (int64_t c = 0; c < channels; ++c) {
      double sum = 0;
      for (int64_t px = 0; px < pixels; ++px) sum += in[i * image_size + px * channels + c];
      const auto mean = static_cast<float>(sum / static_cast<double>(pixels));
      for (int64_t px = 0; px < pixels; ++px) {
        const int64_t k = i * image_size + px * channels + c;
        out[k] = mean + f * (in[k] - mean);
      }
    }
  }
  ctx.set_output(0, std::move(output));
  return {};
}

// The adjoint of projective_transform with respect to the images (TensorFlow's
// _image_projective_transform_grad_impl in image_grad.py): each output pixel's cotangent is
// added to the input pixels it was read from, with the same interpolation weights; taps that
// read the fill value (outside the image, or a zero projection) carry nothing.
template <typename T>
void projective_transform_grad(const T* grad, const float* transforms, int64_t num_transforms,
                               int64_t batch, int64_t height, int64_t width, int64_t channels,
                               const TransformParams& p, T* out) {
  std::fill(out, out + batch * height * width * channels, T(0));
  auto add = [&](int64_t b, float fy, float fx, float weight, const T* g) {
    const auto y = static_cast<int64_t>(fy), x = static_cast<int64_t>(fx);
    if (fy < 0 || fx < 0 || y >= height || x >= width) return;
    T* dst = out + ((b * height + y) * width + x) * channels;
    for (int64_t c = 0; c < channels; ++c) dst[c] += static_cast<T>(weight) * g[c];
  };
  for (int64_t b = 0; b < batch; ++b) {
    const float* t = transforms + (num_transforms == 1 ? 0 : b * 8);
    for (int64_t oy = 0; oy < p.out_height; ++oy) {
      for (int64_t ox = 0; ox < p.out_width; ++ox) {
        const T* g = grad + ((b * p.out_height + oy) * p.out_width + ox) * channels;
        const float fx = static_cast<float>(ox), fy = static_cast<float>(oy);
        const float projection = t[6] * fx + t[7] * fy + 1.f;
        if (projection == 0) continue;
        const float x =
            map_coordinate((t[0] * fx + t[1] * fy + t[2]) / projection, width, p.fill_mode);
        const float y =
            map_coordinate((t[3] * fx + t[4] * fy + t[5]) / projection, height, p.fill_mode);
        if (x < 0 || x > static_cast<float>(width - 1) || y < 0 ||
            y > static_cast<float>(height - 1)) {
          continue;
        }
        if (p.interpolation == Interpolation::kNearest) {
          add(b, std::round(y), std::round(x), 1.0f, g);
          continue;
        }
        const float y0 = std::floor(y), x0 = std::floor(x);
        const float y1 = y0 + 1, x1 = x0 + 1;
        add(b, y0, x0, (y1 - y) * (x1 - x), g);
        add(b, y0, x1, (y1 - y) * (x - x0), g);
        add(b, y1, x0, (y - y0) * (x1 - x), g);
        add(b, y1, x1, (y - y0) * (x - x0), g);
      }
    }
  }
}

// _HubimgImageProjectiveTransformGrad(grad [N, out_h, out_w, C], transforms float32 [N or 1, 8],
// images_shape int32 [4]; interpolation, fill_mode): the gradient of ImageProjectiveTransformV2/V3
// with respect to the images, shaped images_shape, of grad's dtype (float32 or float64).
Status image_projective_transform_grad(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  const Tensor& grad = ctx.input(0);
  const Tensor& transforms = ctx.input(1);
  const Tensor& shape = ctx.input(2);
  if (grad.rank() != 4) return ctx.error("grad must be 4-D NHWC, got " + grad.description());
  if (shape.dtype() != DType::kInt32 || shape.num_elements() != 4) {
    return ctx.error("images_shape must be int32 [4], got " + shape.description());
  }
  const int32_t* s = shape.data<int32_t>();
  if (s[0] != grad.dim(0) || s[3] != grad.dim(3) || s[1] <= 0 || s[2] <= 0) {
    return ctx.error("images_shape [" + std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " +
                     std::to_string(s[2]) + ", " + std::to_string(s[3]) + "] does not fit grad " +
                     grad.description());
  }
  if (transforms.dtype() != DType::kFloat32 || transforms.rank() != 2 ||
      (transforms.dim(0) != grad.dim(0) && transforms.dim(0) != 1) || transforms.dim(1) != 8) {
    return ctx.error("transforms must be float32 [num_images or 1, 8], got " +
                     transforms.description());
  }
  TransformParams p;
  p.out_height = grad.dim(1);
  p.out_width = grad.dim(2);
  HUBIMG_RETURN_IF_ERROR(parse_modes(ctx, p));
  return dispatch_float(ctx, grad.dtype(), [&]<typename T>() -> Status {
    Tensor out(grad.dtype(), {s[0], s[1], s[2], s[3]});
    projective_transform_grad<T>(grad.data<T>(), transforms.data<float>(), transforms.dim(0), s[0],
                                 s[1], s[2], s[3], p, out.mutable_data<T>());
    ctx.set_output(0, std::move(out));
    return {};
  });
}

// ImageProjectiveTransformV2/V3(images, transforms, output_shape[, fill_value]): the images'
// gradient; transforms, output_shape and fill_value get none, as in TensorFlow.
Expected<std::vector<GradValue>> image_projective_transform_rule(GradientBuilder& b) {
  std::vector<GradValue> out(b.num_inputs());
  if (!b.grad(0).valid() || !b.needs_grad(0)) return out;
  AttrMap attrs;
  HUBIMG_ASSIGN_OR_RETURN(std::string interpolation, b.attrs().get_string("interpolation"));
  HUBIMG_ASSIGN_OR_RETURN(std::string fill_mode, b.attrs().get_string("fill_mode", "CONSTANT"));
  attrs.set("interpolation", interpolation);
  attrs.set("fill_mode", fill_mode);
  HUBIMG_ASSIGN_OR_RETURN(GradValue shape,
                          b.add1("Shape", {b.input(0)}, {{"out_type", DType::kInt32}}));
  HUBIMG_ASSIGN_OR_RETURN(out[0], b.add1("_HubimgImageProjectiveTransformGrad",
                                         {b.grad(0), b.input(1), shape}, std::move(attrs)));
  return out;
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kImageOpsOpDefs[] = R"pb(
  op {
    name: "AdjustContrastv2"
    input_arg { name: "images" type_attr: "T" }
    input_arg { name: "contrast_factor" type: DT_FLOAT }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_FLOAT }
    }
  }
  op {
    name: "ImageProjectiveTransformV2"
    input_arg { name: "images" type_attr: "dtype" }
    input_arg { name: "transforms" type: DT_FLOAT }
    input_arg { name: "output_shape" type: DT_INT32 }
    output_arg { name: "transformed_images" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    attr { name: "interpolation" type: "string" }
    attr {
      name: "fill_mode"
      type: "string"
      default_value { s: "CONSTANT" }
    }
  }
  op {
    name: "ImageProjectiveTransformV3"
    input_arg { name: "images" type_attr: "dtype" }
    input_arg { name: "transforms" type: DT_FLOAT }
    input_arg { name: "output_shape" type: DT_INT32 }
    input_arg { name: "fill_value" type: DT_FLOAT }
    output_arg { name: "transformed_images" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    attr { name: "interpolation" type: "string" }
    attr {
      name: "fill_mode"
      type: "string"
      default_value { s: "CONSTANT" }
    }
  }
)pb";

void register_image_ops(OpRegistry& r) {
  r.add({"ImageProjectiveTransformV2", {}, [](KernelContext& ctx) {
           return image_projective_transform(ctx, 3);
         }});
  r.add({"ImageProjectiveTransformV3", {}, [](KernelContext& ctx) {
           return image_projective_transform(ctx, 4);
         }});
  r.add({"AdjustContrastv2", {}, adjust_contrast_v2});
  r.add({"_HubimgImageProjectiveTransformGrad", nn::output_args({"output"}),
         image_projective_transform_grad});
  r.set_gradient("ImageProjectiveTransformV2", image_projective_transform_rule);
  r.set_gradient("ImageProjectiveTransformV3", image_projective_transform_rule);
  r.set_op_defs(kImageOpsOpDefs);
}

}  // namespace hubimg::ops
