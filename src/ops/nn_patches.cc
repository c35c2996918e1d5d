// ExtractImagePatches (tf.image.extract_patches: the patch embedding of Keras ViT, Perceiver and
// Involution models) and its adjoint _HubimgExtractImagePatchesGrad, which TensorFlow builds in
// array_grad.py from a second ExtractImagePatches over pixel indices and a sparse matmul.
//
// Shapes: images [batch, rows, cols, depth] -> patches [batch, out_rows, out_cols,
// ksize_rows * ksize_cols * depth]. A patch's values are ordered (patch row, patch column,
// channel), channel fastest. out_rows/out_cols follow the convolution rule with the effective
// window (ksize - 1) * rate + 1 and SAME or VALID padding; cells of a patch in the padding are 0.
#include <algorithm>
#include <optional>
#include <string>

#include "ops/array_util.h"
#include "ops/kernel_util.h"
#include "ops/nn_kernels.h"
#include "ops/nn_util.h"

namespace hubimg::ops::nn {
namespace {

struct PatchGeometry {
  int64_t batch = 0;
  int64_t depth = 0;
  WindowDim rows;
  WindowDim cols;
  int64_t patch_values = 0;  // ksize_rows * ksize_cols * depth

  Dims patches_shape() const { return {batch, rows.output, cols.output, patch_values}; }
};

// The geometry for images shaped `image_shape` from the node's ksizes, strides, rates and
// padding attributes.
Expected<PatchGeometry> patch_geometry(const KernelContext& ctx, const Dims& image_shape) {
  if (image_shape.size() != 4) {
    return ctx.error("images must be 4-D [batch, rows, cols, depth], got shape " +
                     dims_to_string(image_shape));
  }
  HUBIMG_ASSIGN_OR_RETURN(auto ksizes, read_nhwc_window_attr(ctx, "ksizes", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(auto strides, read_nhwc_window_attr(ctx, "strides", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(auto rates, read_nhwc_window_attr(ctx, "rates", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(PaddingSpec padding, read_padding(ctx, /*allow_explicit=*/false));
  PatchGeometry g;
  g.batch = image_shape[0];
  g.depth = image_shape[3];
  g.rows = {
      .input = image_shape[1], .window = ksizes[1], .stride = strides[1], .dilation = rates[1]};
  g.cols = {
      .input = image_shape[2], .window = ksizes[2], .stride = strides[2], .dilation = rates[2]};
  // Attribute values are the model's: keep the window arithmetic below from overflowing.
  int64_t effective = 0, taps = 0;
  for (const WindowDim* d : {&g.rows, &g.cols}) {
    if (__builtin_mul_overflow(d->window - 1, d->dilation, &effective) ||
        effective > (int64_t{1} << 40)) {
      return ctx.error(StatusCode::kOutOfRange, "ksizes " + ints_to_string(ksizes) +
                                                    " with rates " + ints_to_string(rates) +
                                                    " make a window too large");
    }
  }
  if (__builtin_mul_overflow(g.rows.window, g.cols.window, &taps) ||
      __builtin_mul_overflow(taps, g.depth, &g.patch_values)) {
    return ctx.error(StatusCode::kOutOfRange,
                     "ksizes " + ints_to_string(ksizes) + " make patches too large");
  }
  HUBIMG_RETURN_IF_ERROR(resolve_window(ctx, padding.type, "row", g.rows));
  HUBIMG_RETURN_IF_ERROR(resolve_window(ctx, padding.type, "column", g.cols));
  return g;
}

// Calls visit(patch_offset, image_offset) for every patch value that reads an image cell (not
// the padding), offsets in elements.
template <typename Visit>
void for_each_patch_value(const PatchGeometry& g, Visit&& visit) {
  const int64_t image_row = g.cols.input * g.depth;
  for (int64_t b = 0; b < g.batch; ++b) {
    for (int64_t oy = 0; oy < g.rows.output; ++oy) {
      for (int64_t ox = 0; ox < g.cols.output; ++ox) {
        const int64_t patch = ((b * g.rows.output + oy) * g.cols.output + ox) * g.patch_values;
        for (int64_t i = 0; i < g.rows.window; ++i) {
          const int64_t y = input_coord(g.rows, oy, i);
          if (y < 0 || y >= g.rows.input) continue;
          for (int64_t j = 0; j < g.cols.window; ++j) {
            const int64_t x = input_coord(g.cols, ox, j);
            if (x < 0 || x >= g.cols.input) continue;
            visit(patch + (i * g.cols.window + j) * g.depth,
                  (b * g.rows.input + y) * image_row + x * g.depth);
          }
        }
      }
    }
  }
}

// ExtractImagePatches(images; ksizes, strides, rates, padding) -> patches.
Status extract_image_patches(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  const Tensor& images = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(PatchGeometry g, patch_geometry(ctx, images.shape()));
  HUBIMG_RETURN_IF_ERROR(check_remap_size(ctx, images.dtype(), g.patches_shape()));
  return dispatch_by_width(ctx, images.dtype(), [&]<typename U>() -> Status {
    HUBIMG_ASSIGN_OR_RETURN(Tensor patches, allocate(ctx, images.dtype(), g.patches_shape()));
    U* out = mutable_elements<U>(patches);
    std::fill(out, out + patches.num_elements(), U{});
    const U* in = elements<U>(images);
    for_each_patch_value(
        g, [&](int64_t to, int64_t from) { std::copy(in + from, in + from + g.depth, out + to); });
    ctx.set_output(0, std::move(patches));
    return {};
  });
}

// _HubimgExtractImagePatchesGrad(grad, images_shape; ksizes, strides, rates, padding): the
// gradient of ExtractImagePatches w.r.t. its images: every patch value's cotangent added to the
// image cell it copied (cells in overlapping patches sum theirs; padding cells drop theirs).
Status extract_image_patches_grad(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& grad = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(Dims image_shape, shape_from_input(ctx, 1, "images_shape"));
  HUBIMG_ASSIGN_OR_RETURN(PatchGeometry g, patch_geometry(ctx, image_shape));
  if (grad.shape() != g.patches_shape()) {
    return ctx.error("grad " + grad.description() + " is not shaped like the patches " +
                     dims_to_string(g.patches_shape()) + " of images shaped " +
                     dims_to_string(image_shape));
  }
  return dispatch_float(ctx, grad.dtype(), [&]<typename T>() -> Status {
    HUBIMG_ASSIGN_OR_RETURN(Tensor images_grad, allocate(ctx, grad.dtype(), image_shape));
    T* out = images_grad.mutable_data<T>();
    std::fill(out, out + images_grad.num_elements(), T(0));
    const T* in = grad.data<T>();
    for_each_patch_value(g, [&](int64_t from, int64_t to) {
      for (int64_t c = 0; c < g.depth; ++c) out[to + c] += in[from + c];
    });
    ctx.set_output(0, std::move(images_grad));
    return {};
  });
}

}  // namespace

// TensorFlow's OpDef (tensorflow/core/ops/array_ops.cc), attached to its entry.
constexpr char kNnPatchOpDefs[] = R"pb(
  op {
    name: "ExtractImagePatches"
    input_arg { name: "images" type_attr: "T" }
    output_arg { name: "patches" type_attr: "T" }
    attr { name: "ksizes" type: "list(int)" has_minimum: true minimum: 4 }
    attr { name: "strides" type: "list(int)" has_minimum: true minimum: 4 }
    attr { name: "rates" type: "list(int)" has_minimum: true minimum: 4 }
    attr {
      name: "T"
      type: "type"
      allowed_values {
        list {
          type: DT_BFLOAT16
          type: DT_HALF
          type: DT_FLOAT
          type: DT_DOUBLE
          type: DT_INT8
          type: DT_INT16
          type: DT_INT32
          type: DT_INT64
          type: DT_UINT8
          type: DT_UINT16
          type: DT_UINT32
          type: DT_UINT64
          type: DT_COMPLEX64
          type: DT_COMPLEX128
          type: DT_BOOL
        }
      }
    }
    attr {
      name: "padding"
      type: "string"
      allowed_values { list { s: "SAME" s: "VALID" } }
    }
  }
)pb";

void register_patch_ops(OpRegistry& r) {
  r.add({"ExtractImagePatches", {}, extract_image_patches});
  r.add({"_HubimgExtractImagePatchesGrad", {{"output", ""}}, extract_image_patches_grad});
  r.set_row_rule(RowRule::kSpatial, {"ExtractImagePatches"});
  r.set_op_defs(kNnPatchOpDefs);
}

}  // namespace hubimg::ops::nn
