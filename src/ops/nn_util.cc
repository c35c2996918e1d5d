#include "ops/nn_util.h"

#include <algorithm>

namespace hubimg::ops::nn {

std::string ints_to_string(const std::vector<int64_t>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(values[i]);
  }
  return out + "]";
}

Status resolve_window(const KernelContext& ctx, Padding padding, std::string_view dim_name,
                      WindowDim& dim) {
  if (dim.stride <= 0) {
    return ctx.error(std::string(dim_name) + " stride must be > 0, got " +
                     std::to_string(dim.stride));
  }
  if (dim.dilation < 1) {
    return ctx.error(std::string(dim_name) + " dilation must be >= 1, got " +
                     std::to_string(dim.dilation));
  }
  const int64_t effective = (dim.window - 1) * dim.dilation + 1;
  switch (padding) {
    case Padding::kValid:
      dim.pad_before = dim.pad_after = 0;
      dim.output = (dim.input - effective + dim.stride) / dim.stride;
      break;
    case Padding::kExplicit:
      dim.output =
          (dim.input + dim.pad_before + dim.pad_after - effective + dim.stride) / dim.stride;
      break;
    case Padding::kSame: {
      dim.output = (dim.input + dim.stride - 1) / dim.stride;
      const int64_t needed =
          std::max<int64_t>(0, (dim.output - 1) * dim.stride + effective - dim.input);
      dim.pad_before = needed / 2;
      dim.pad_after = needed - dim.pad_before;
      break;
    }
  }
  // Integer division truncates toward zero here exactly as in TensorFlow, so a window slightly
  // larger than the input yields an empty output rather than an error, as it does there.
  if (dim.output < 0) {
    return ctx.error("computed " + std::string(dim_name) +
                     " output size would be negative: " + std::to_string(dim.output) + " (input " +
                     std::to_string(dim.input) + ", effective window " + std::to_string(effective) +
                     ", stride " + std::to_string(dim.stride) + ")");
  }
  return {};
}

Expected<PaddingSpec> read_padding(const KernelContext& ctx, bool allow_explicit) {
  HUBIMG_ASSIGN_OR_RETURN(std::string name, attr(ctx, ctx.attrs().get_string("padding")));
  HUBIMG_ASSIGN_OR_RETURN(
      auto explicit_paddings,
      attr(ctx, ctx.attrs().get_ints("explicit_paddings", std::vector<int64_t>{})));
  PaddingSpec spec;
  if (name == "SAME") {
    spec.type = Padding::kSame;
  } else if (name == "VALID") {
    spec.type = Padding::kValid;
  } else if (name == "EXPLICIT" && allow_explicit) {
    spec.type = Padding::kExplicit;
  } else {
    return ctx.error("unsupported padding '" + name + "' (expected " +
                     (allow_explicit ? "SAME, VALID or EXPLICIT)" : "SAME or VALID)"));
  }
  if (spec.type != Padding::kExplicit) {
    if (!explicit_paddings.empty()) {
      return ctx.error("explicit_paddings must be empty unless padding is EXPLICIT, got " +
                       ints_to_string(explicit_paddings));
    }
    return spec;
  }
  if (explicit_paddings.size() != 8) {
    return ctx.error(
        "EXPLICIT padding needs 8 explicit_paddings values (before/after per NHWC "
        "dimension), got " +
        ints_to_string(explicit_paddings));
  }
  for (int64_t p : explicit_paddings) {
    if (p < 0)
      return ctx.error("explicit_paddings must be >= 0, got " + ints_to_string(explicit_paddings));
  }
  if (explicit_paddings[0] != 0 || explicit_paddings[1] != 0 || explicit_paddings[6] != 0 ||
      explicit_paddings[7] != 0) {
    return ctx.error("explicit_paddings cannot pad the batch or depth dimension, got " +
                     ints_to_string(explicit_paddings));
  }
  spec.top = explicit_paddings[2];
  spec.bottom = explicit_paddings[3];
  spec.left = explicit_paddings[4];
  spec.right = explicit_paddings[5];
  return spec;
}

Status require_nhwc(const KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(std::string format,
                          attr(ctx, ctx.attrs().get_string("data_format", "NHWC")));
  if (format == "NHWC") return {};
  if (format == "NCHW" || format == "NCHW_VECT_C") {
    return ctx.error(
        StatusCode::kUnimplemented,
        "data_format " + format + " is not supported; only NHWC runs on CPU (as in TensorFlow)");
  }
  return ctx.error("invalid data_format '" + format + "'");
}

Expected<std::vector<int64_t>> read_nhwc_window_attr(const KernelContext& ctx,
                                                     std::string_view name,
                                                     std::optional<std::vector<int64_t>> fallback) {
  HUBIMG_ASSIGN_OR_RETURN(auto values, attr(ctx, ctx.attrs().get_ints(name, std::move(fallback))));
  const std::string what(name);
  if (values.size() != 4) {
    return ctx.error(what + " must have 4 entries (NHWC), got " + ints_to_string(values));
  }
  if (values[0] != 1 || values[3] != 1) {
    return ctx.error(what + " in the batch and depth dimensions must be 1, got " +
                     ints_to_string(values));
  }
  if (values[1] <= 0 || values[2] <= 0) {
    return ctx.error(what + " must be positive, got " + ints_to_string(values));
  }
  return values;
}

Expected<std::vector<int64_t>> read_window_input(const KernelContext& ctx, size_t i,
                                                 std::string_view name) {
  const Tensor& t = ctx.input(i);
  if (t.dtype() != DType::kInt32 || t.rank() != 1 || t.num_elements() != 4) {
    return ctx.error(std::string(name) + " must be int32 [4], got " + t.description());
  }
  std::vector<int64_t> values(t.values<int32_t>().begin(), t.values<int32_t>().end());
  if (values[0] != 1 || values[3] != 1 || values[1] <= 0 || values[2] <= 0) {
    return ctx.error(std::string(name) +
                     " must be 1 in the batch and depth dimensions and positive elsewhere, got " +
                     ints_to_string(values));
  }
  return values;
}

ChannelLayout channel_layout(const Tensor& x, bool channels_last) {
  const int axis = channels_last ? x.rank() - 1 : 1;
  ChannelLayout layout;
  layout.channels = x.dim(axis);
  for (int i = 0; i < axis; ++i) layout.outer *= x.dim(i);
  for (int i = axis + 1; i < x.rank(); ++i) layout.inner *= x.dim(i);
  return layout;
}

Status expect_same_dtype(const KernelContext& ctx, size_t i) {
  if (ctx.input(i).dtype() != ctx.input(0).dtype()) {
    return ctx.error("input " + std::to_string(i) + " has dtype " +
                     dtype_name(ctx.input(i).dtype()) + " but input 0 has " +
                     dtype_name(ctx.input(0).dtype()));
  }
  return {};
}

}  // namespace hubimg::ops::nn
