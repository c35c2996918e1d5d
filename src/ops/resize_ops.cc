// ResizeBilinear / ResizeBicubic / ResizeNearestNeighbor / ScaleAndTranslate graph ops, on the
// image module's resize kernels, their gradient ops and gradient rules (TensorFlow's definitions:
// tensorflow/python/ops/image_grad.py).
#include "hubimg/image.h"
#include "ops/cast.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

Expected<std::pair<int64_t, int64_t>> output_size(const KernelContext& ctx, size_t num_inputs = 2) {
  if (ctx.num_inputs() != num_inputs) {
    return ctx.error("expects " + std::to_string(num_inputs) + " inputs, got " +
                     std::to_string(ctx.num_inputs()));
  }
  const Tensor& size = ctx.input(1);
  if (size.dtype() != DType::kInt32 || size.num_elements() != 2) {
    return ctx.error("size must be int32[2], got " + size.description());
  }
  const int32_t* s = size.data<int32_t>();
  if (s[0] <= 0 || s[1] <= 0) {
    return ctx.error("size must be positive, got [" + std::to_string(s[0]) + ", " +
                     std::to_string(s[1]) + "]");
  }
  if (ctx.input(0).rank() != 4) {
    return ctx.error("images must be [batch, height, width, channels], got " +
                     ctx.input(0).description());
  }
  return std::pair<int64_t, int64_t>{s[0], s[1]};
}

Expected<ResizeOpAttrs> resize_attrs(const KernelContext& ctx) {
  ResizeOpAttrs attrs;
  HUBIMG_ASSIGN_OR_RETURN(attrs.align_corners, ctx.attrs().get_bool("align_corners", false));
  HUBIMG_ASSIGN_OR_RETURN(attrs.half_pixel_centers,
                          ctx.attrs().get_bool("half_pixel_centers", false));
  return attrs;
}

using ResizeFunction = Expected<Tensor> (*)(const Tensor&, int64_t, int64_t, ResizeOpAttrs);

// ResizeBilinear, ResizeBicubic or ResizeNearestNeighbor(images, size).
template <ResizeFunction kind>
Status resize(KernelContext& ctx) {
  auto size = output_size(ctx);
  if (!size.ok()) return size.status();
  auto attrs = resize_attrs(ctx);
  if (!attrs.ok()) return ctx.error(attrs.status().message());
  auto out = kind(ctx.input(0), size->first, size->second, *attrs);
  if (!out.ok()) return ctx.error(out.status().message());
  ctx.set_output(0, std::move(out).value());
  return {};
}

// ResizeArea(images, size; align_corners): no half_pixel_centers (TensorFlow's op has none).
Status resize_area(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(auto size, output_size(ctx));
  auto align_corners = ctx.attrs().get_bool("align_corners", false);
  if (!align_corners.ok()) return ctx.error(align_corners.status().message());
  auto out = resize_area_op(ctx.input(0), size.first, size.second, *align_corners);
  if (!out.ok()) return ctx.error(out.status().message());
  ctx.set_output(0, std::move(out).value());
  return {};
}

using ResizeGradFunction = Expected<Tensor> (*)(const Tensor&, const Tensor&, ResizeOpAttrs);

// ResizeBilinearGrad / ResizeBicubicGrad(grads: float32, original_image: T) -> T.
template <ResizeGradFunction kind>
Status resize_grad(KernelContext& ctx) {
  if (ctx.num_inputs() != 2) return ctx.error("expects grads and original_image inputs");
  auto attrs = resize_attrs(ctx);
  if (!attrs.ok()) return ctx.error(attrs.status().message());
  auto out = kind(ctx.input(0), ctx.input(1), *attrs);
  if (!out.ok()) return ctx.error(out.status().message());
  ctx.set_output(0, std::move(out).value());
  return {};
}

// ResizeNearestNeighborGrad(grads: T, size: int32[2]) -> T, size the original images' height
// and width.
Status resize_nearest_neighbor_grad(KernelContext& ctx) {
  if (ctx.num_inputs() != 2) return ctx.error("expects grads and size inputs");
  const Tensor& size = ctx.input(1);
  if (size.dtype() != DType::kInt32 || size.rank() != 1 || size.num_elements() != 2) {
    return ctx.error("size must be int32[2], got " + size.description());
  }
  const int32_t* s = size.data<int32_t>();
  if (s[0] <= 0 || s[1] <= 0) return ctx.error("size's elements must be positive");
  auto attrs = resize_attrs(ctx);
  if (!attrs.ok()) return ctx.error(attrs.status().message());
  auto out = resize_nearest_neighbor_grad_op(ctx.input(0), s[0], s[1], *attrs);
  if (!out.ok()) return ctx.error(out.status().message());
  ctx.set_output(0, std::move(out).value());
  return {};
}

// ScaleAndTranslate's float32 [2] scale or translation input (rows, columns).
Expected<std::pair<float, float>> float_pair(const KernelContext& ctx, size_t i, const char* what) {
  const Tensor& t = ctx.input(i);
  if (t.dtype() != DType::kFloat32 || t.rank() != 1 || t.num_elements() != 2) {
    return ctx.error(std::string(what) + " must be float32[2], got " + t.description());
  }
  return std::pair<float, float>{t.data<float>()[0], t.data<float>()[1]};
}

struct SamplingAttrs {
  SamplingKernel kernel = SamplingKernel::kLanczos3;
  bool antialias = true;
};
Expected<SamplingAttrs> sampling_attrs(const KernelContext& ctx) {
  SamplingAttrs a;
  auto name = ctx.attrs().get_string("kernel_type", std::string("lanczos3"));
  if (!name.ok()) return ctx.error(name.status().message());
  auto kernel = sampling_kernel_from_name(*name);
  if (!kernel.ok()) return ctx.error(kernel.status().message());
  a.kernel = *kernel;
  auto antialias = ctx.attrs().get_bool("antialias", true);
  if (!antialias.ok()) return ctx.error(antialias.status().message());
  a.antialias = *antialias;
  return a;
}

// ScaleAndTranslate(images, size, scale, translation; kernel_type, antialias) -> float32
// (tf.image.resize with antialias or the lanczos, gaussian and mitchellcubic methods).
Status scale_and_translate_op(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(auto size, output_size(ctx, 4));
  HUBIMG_ASSIGN_OR_RETURN(auto scale, float_pair(ctx, 2, "scale"));
  HUBIMG_ASSIGN_OR_RETURN(auto translation, float_pair(ctx, 3, "translation"));
  HUBIMG_ASSIGN_OR_RETURN(SamplingAttrs a, sampling_attrs(ctx));
  auto out = scale_and_translate(ctx.input(0), size.first, size.second, scale.first, scale.second,
                                 translation.first, translation.second, a.kernel, a.antialias);
  if (!out.ok()) return ctx.error(out.status().message());
  ctx.set_output(0, std::move(out).value());
  return {};
}

// ScaleAndTranslateGrad(grads, original_image, scale, translation) -> shaped like original_image
// and of its dtype: float32 as in TensorFlow, or float64 (computed in float32).
Status scale_and_translate_grad_op(KernelContext& ctx) {
  if (ctx.num_inputs() != 4) return ctx.error("expects 4 inputs");
  const Tensor& original = ctx.input(1);
  if (original.rank() != 4 ||
      (original.dtype() != DType::kFloat32 && original.dtype() != DType::kFloat64)) {
    return ctx.error("original_image must be float32 or float64 [N, H, W, C], got " +
                     original.description());
  }
  const Tensor& grads = ctx.input(0);
  if (grads.rank() == 4 && (grads.dim(0) != original.dim(0) || grads.dim(3) != original.dim(3))) {
    return ctx.error("grads " + grads.description() + " and original_image " +
                     original.description() + " differ in batch or channels");
  }
  HUBIMG_ASSIGN_OR_RETURN(auto scale, float_pair(ctx, 2, "scale"));
  HUBIMG_ASSIGN_OR_RETURN(auto translation, float_pair(ctx, 3, "translation"));
  HUBIMG_ASSIGN_OR_RETURN(SamplingAttrs a, sampling_attrs(ctx));
  Expected<Tensor> out = grads;
  if (grads.dtype() == DType::kFloat64) out = cast_tensor(grads, DType::kFloat32);
  if (out.ok()) {
    out =
        scale_and_translate_grad(*out, original.dim(1), original.dim(2), scale.first, scale.second,
                                 translation.first, translation.second, a.kernel, a.antialias);
  }
  if (out.ok() && original.dtype() == DType::kFloat64) out = cast_tensor(*out, DType::kFloat64);
  if (!out.ok()) return ctx.error(out.status().message());
  ctx.set_output(0, std::move(out).value());
  return {};
}

// ScaleAndTranslate(images, size, scale, translation): ScaleAndTranslateGrad(grad, images, scale,
// translation) (TensorFlow's rule); the other inputs get none.
Expected<std::vector<GradValue>> scale_and_translate_rule(GradientBuilder& b) {
  std::vector<GradValue> out(b.num_inputs());
  if (!b.grad(0).valid() || !b.needs_grad(0)) return out;
  AttrMap attrs;
  for (const char* name : {"kernel_type", "antialias"}) {
    if (const auto* v = b.attrs().find(name)) attrs.set(name, *v);
  }
  if (const auto* t = b.attrs().find("T")) attrs.set("T", *t);
  HUBIMG_ASSIGN_OR_RETURN(
      out[0], b.add1("ScaleAndTranslateGrad", {b.grad(0), b.input(0), b.input(2), b.input(3)},
                     std::move(attrs)));
  return out;
}

// The forward node's align_corners / half_pixel_centers (and T) for its gradient op.
Expected<AttrMap> grad_attrs(GradientBuilder& b) {
  AttrMap attrs;
  HUBIMG_ASSIGN_OR_RETURN(bool align_corners, b.attrs().get_bool("align_corners", false));
  HUBIMG_ASSIGN_OR_RETURN(bool half_pixel_centers, b.attrs().get_bool("half_pixel_centers", false));
  attrs.set("align_corners", align_corners);
  attrs.set("half_pixel_centers", half_pixel_centers);
  if (const auto* t = b.attrs().find("T")) attrs.set("T", *t);
  return attrs;
}

// ResizeBilinear / ResizeBicubic(images, size): ResizeBilinearGrad / ResizeBicubicGrad(grad,
// images); size gets none.
GradientRule resize_rule(const char* grad_op) {
  return [grad_op](GradientBuilder& b) -> Expected<std::vector<GradValue>> {
    std::vector<GradValue> out(b.num_inputs());
    if (!b.grad(0).valid() || !b.needs_grad(0)) return out;
    HUBIMG_ASSIGN_OR_RETURN(AttrMap attrs, grad_attrs(b));
    HUBIMG_ASSIGN_OR_RETURN(out[0], b.add1(grad_op, {b.grad(0), b.input(0)}, std::move(attrs)));
    return out;
  };
}

// ResizeNearestNeighbor(images, size): ResizeNearestNeighborGrad(grad, shape(images)[1:3]).
Expected<std::vector<GradValue>> resize_nearest_neighbor_rule(GradientBuilder& b) {
  std::vector<GradValue> out(b.num_inputs());
  if (!b.grad(0).valid() || !b.needs_grad(0)) return out;
  HUBIMG_ASSIGN_OR_RETURN(AttrMap attrs, grad_attrs(b));
  HUBIMG_ASSIGN_OR_RETURN(GradValue shape,
                          b.add1("Shape", {b.input(0)}, {{"out_type", DType::kInt32}}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue begin,
                          b.constant(Tensor::from_vector<int32_t>({1}, std::vector<int32_t>{1})));
  HUBIMG_ASSIGN_OR_RETURN(GradValue size,
                          b.constant(Tensor::from_vector<int32_t>({1}, std::vector<int32_t>{2})));
  HUBIMG_ASSIGN_OR_RETURN(GradValue hw, b.add1("Slice", {shape, begin, size}));
  HUBIMG_ASSIGN_OR_RETURN(out[0],
                          b.add1("ResizeNearestNeighborGrad", {b.grad(0), hw}, std::move(attrs)));
  return out;
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kResizeOpsOpDefs[] = R"pb(
  op {
    name: "ResizeBilinear"
    input_arg { name: "images" type_attr: "T" }
    input_arg { name: "size" type: DT_INT32 }
    output_arg { name: "resized_images" type: DT_FLOAT }
    attr {
      name: "T"
      type: "type"
      allowed_values {
        list {
          type: DT_INT8
          type: DT_UINT8
          type: DT_INT16
          type: DT_UINT16
          type: DT_INT32
          type: DT_INT64
          type: DT_BFLOAT16
          type: DT_HALF
          type: DT_FLOAT
          type: DT_DOUBLE
          type: DT_BFLOAT16
        }
      }
    }
    attr {
      name: "align_corners"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "half_pixel_centers"
      type: "bool"
      default_value { b: false }
    }
  }
  op {
    name: "ResizeBilinearGrad"
    input_arg { name: "grads" type: DT_FLOAT }
    input_arg { name: "original_image" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "align_corners"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "half_pixel_centers"
      type: "bool"
      default_value { b: false }
    }
  }
  op {
    name: "ResizeBicubic"
    input_arg { name: "images" type_attr: "T" }
    input_arg { name: "size" type: DT_INT32 }
    output_arg { name: "resized_images" type: DT_FLOAT }
    attr { name: "T" type: "type" }
    attr {
      name: "align_corners"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "half_pixel_centers"
      type: "bool"
      default_value { b: false }
    }
  }
  op {
    name: "ResizeBicubicGrad"
    input_arg { name: "grads" type: DT_FLOAT }
    input_arg { name: "original_image" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      allowed_values { list { type: DT_FLOAT type: DT_DOUBLE } }
    }
    attr {
      name: "align_corners"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "half_pixel_centers"
      type: "bool"
      default_value { b: false }
    }
  }
  op {
    name: "ScaleAndTranslate"
    input_arg { name: "images" type_attr: "T" }
    input_arg { name: "size" type: DT_INT32 }
    input_arg { name: "scale" type: DT_FLOAT }
    input_arg { name: "translation" type: DT_FLOAT }
    output_arg { name: "resized_images" type: DT_FLOAT }
    attr { name: "T" type: "type" }
    attr {
      name: "kernel_type"
      type: "string"
      default_value { s: "lanczos3" }
    }
    attr {
      name: "antialias"
      type: "bool"
      default_value { b: true }
    }
  }
  op {
    name: "ScaleAndTranslateGrad"
    input_arg { name: "grads" type_attr: "T" }
    input_arg { name: "original_image" type_attr: "T" }
    input_arg { name: "scale" type: DT_FLOAT }
    input_arg { name: "translation" type: DT_FLOAT }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      allowed_values { list { type: DT_FLOAT } }
    }
    attr {
      name: "kernel_type"
      type: "string"
      default_value { s: "lanczos3" }
    }
    attr {
      name: "antialias"
      type: "bool"
      default_value { b: true }
    }
  }
  op {
    name: "ResizeArea"
    input_arg { name: "images" type_attr: "T" }
    input_arg { name: "size" type: DT_INT32 }
    output_arg { name: "resized_images" type: DT_FLOAT }
    attr { name: "T" type: "type" }
    attr {
      name: "align_corners"
      type: "bool"
      default_value { b: false }
    }
  }
  op {
    name: "ResizeNearestNeighbor"
    input_arg { name: "images" type_attr: "T" }
    input_arg { name: "size" type: DT_INT32 }
    output_arg { name: "resized_images" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "align_corners"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "half_pixel_centers"
      type: "bool"
      default_value { b: false }
    }
  }
  op {
    name: "ResizeNearestNeighborGrad"
    input_arg { name: "grads" type_attr: "T" }
    input_arg { name: "size" type: DT_INT32 }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "align_corners"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "half_pixel_centers"
      type: "bool"
      default_value { b: false }
    }
  }
)pb";

void register_resize_ops(OpRegistry& r) {
  r.add({"ResizeBilinear", {}, resize<resize_bilinear_op>});
  r.add({"ResizeBicubic", {}, resize<resize_bicubic_op>});
  r.add({"ResizeNearestNeighbor", {}, resize<resize_nearest_neighbor_op>});
  r.add({"ResizeBilinearGrad", {}, resize_grad<resize_bilinear_grad_op>});
  r.add({"ResizeBicubicGrad", {}, resize_grad<resize_bicubic_grad_op>});
  r.add({"ResizeNearestNeighborGrad", {}, resize_nearest_neighbor_grad});
  r.add({"ResizeArea", {}, resize_area});
  r.add({"ScaleAndTranslate", {}, scale_and_translate_op});
  r.add({"ScaleAndTranslateGrad", {}, scale_and_translate_grad_op});
  r.set_gradient("ScaleAndTranslate", scale_and_translate_rule);
  r.set_row_rule(RowRule::kSpatial, {"ResizeBilinear", "ResizeBicubic", "ResizeNearestNeighbor",
                                     "ResizeArea", "ScaleAndTranslate"});
  r.set_gradient("ResizeBilinear", resize_rule("ResizeBilinearGrad"));
  r.set_gradient("ResizeBicubic", resize_rule("ResizeBicubicGrad"));
  r.set_gradient("ResizeNearestNeighbor", resize_nearest_neighbor_rule);
  r.set_op_defs(kResizeOpsOpDefs);
}

}  // namespace hubimg::ops
