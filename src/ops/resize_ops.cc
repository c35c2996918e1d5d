// ResizeBilinear / ResizeNearestNeighbor graph ops, on the image module's resize kernels.
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

template <bool kBilinear>
Status resize(KernelContext& ctx) {
  auto size = output_size(ctx);
  if (!size.ok()) return size.status();
  auto attrs = resize_attrs(ctx);
  if (!attrs.ok()) return ctx.error(attrs.status().message());
  auto out = kBilinear
                 ? resize_bilinear_op(ctx.input(0), size->first, size->second, *attrs)
                 : resize_nearest_neighbor_op(ctx.input(0), size->first, size->second, *attrs);
  if (!out.ok()) return ctx.error(out.status().message());
  ctx.set_output(0, std::move(out).value());
  return {};
}

}  // namespace

void register_resize_ops(OpRegistry& r) {
  r.add({"ResizeBilinear", {{"resized_images", ""}}, resize<true>});
  r.add({"ResizeNearestNeighbor", {{"resized_images", ""}}, resize<false>});
  r.set_row_rule(RowRule::kSpatial, {"ResizeBilinear", "ResizeNearestNeighbor"});
}

}  // namespace hubimg::ops
