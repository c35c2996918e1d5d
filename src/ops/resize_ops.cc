// ResizeBilinear / ResizeBicubic / ResizeNearestNeighbor graph ops, on the image module's resize
// kernels, their gradient ops and gradient rules (TensorFlow's definitions:
// tensorflow/python/ops/image_grad.py).
#include "hubimg/image.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

Expected<std::pair<int64_t, int64_t>> output_size(const KernelContext& ctx) {
  if (ctx.num_inputs() != 2) return ctx.error("expects images and size inputs");
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
  r.set_row_rule(RowRule::kSpatial, {"ResizeBilinear", "ResizeBicubic", "ResizeNearestNeighbor"});
  r.set_gradient("ResizeBilinear", resize_rule("ResizeBilinearGrad"));
  r.set_gradient("ResizeBicubic", resize_rule("ResizeBicubicGrad"));
  r.set_gradient("ResizeNearestNeighbor", resize_nearest_neighbor_rule);
  r.set_op_defs(kResizeOpsOpDefs);
}

}  // namespace hubimg::ops
