// Conv2D (with grouped filters, as TensorFlow's CPU kernel allows) and DepthwiseConv2dNative,
// NHWC only, written as direct loops over the output.
#include <algorithm>
#include <vector>

#include "ops/kernel_util.h"
#include "ops/nn_kernels.h"
#include "ops/nn_util.h"

namespace hubimg::ops::nn {
namespace {

struct ConvGeometry {
  int64_t batch = 0;
  int64_t in_depth = 0;
  int64_t out_depth = 0;
  WindowDim rows;
  WindowDim cols;
};

// The parts Conv2D and DepthwiseConv2dNative share: input checks, attributes and the output
// size of both spatial dimensions.
Expected<ConvGeometry> conv_geometry(const KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  HUBIMG_RETURN_IF_ERROR(require_nhwc(ctx));
  HUBIMG_RETURN_IF_ERROR(expect_rank(ctx, 0, 4));
  HUBIMG_RETURN_IF_ERROR(expect_rank(ctx, 1, 4));
  HUBIMG_RETURN_IF_ERROR(expect_same_dtype(ctx, 1));
  HUBIMG_ASSIGN_OR_RETURN(auto strides, read_nhwc_window_attr(ctx, "strides", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(
      auto dilations, read_nhwc_window_attr(ctx, "dilations", std::vector<int64_t>{1, 1, 1, 1}));
  HUBIMG_ASSIGN_OR_RETURN(PaddingSpec padding, read_padding(ctx, /*allow_explicit=*/true));

  const Tensor& input = ctx.input(0);
  const Tensor& filter = ctx.input(1);
  if (filter.num_elements() == 0) {
    return ctx.error("filter must not have zero elements, got " + filter.description());
  }
  ConvGeometry g;
  g.batch = input.dim(0);
  g.in_depth = input.dim(3);
  g.rows = {.input = input.dim(1),
            .window = filter.dim(0),
            .stride = strides[1],
            .dilation = dilations[1],
            .pad_before = padding.top,
            .pad_after = padding.bottom};
  g.cols = {.input = input.dim(2),
            .window = filter.dim(1),
            .stride = strides[2],
            .dilation = dilations[2],
            .pad_before = padding.left,
            .pad_after = padding.right};
  HUBIMG_RETURN_IF_ERROR(resolve_window(ctx, padding.type, "row", g.rows));
  HUBIMG_RETURN_IF_ERROR(resolve_window(ctx, padding.type, "column", g.cols));
  return g;
}

// output[b, oy, ox, oc] = sum over fy, fx, ic of
//   input[b, oy*sy - pad_top + fy*dy, ox*sx - pad_left + fx*dx, group(oc)*patch_depth + ic]
//   * filter[fy, fx, ic, oc], with cells outside the input contributing zero.
template <typename T>
void conv2d_nhwc(const Tensor& input, const Tensor& filter, const ConvGeometry& g, Tensor& output) {
  const int64_t patch_depth = filter.dim(2);
  const int64_t groups = g.in_depth / patch_depth;
  const int64_t out_per_group = g.out_depth / groups;
  const T* in = input.data<T>();
  const T* w = filter.data<T>();
  T* out = output.mutable_data<T>();
  // One output pixel at a time, all its output channels together: the innermost loop walks
  // the filter's contiguous output-channel axis.
  std::vector<Accumulator<T>> sums(static_cast<size_t>(g.out_depth));
  for (int64_t b = 0; b < g.batch; ++b) {
    for (int64_t oy = 0; oy < g.rows.output; ++oy) {
      for (int64_t ox = 0; ox < g.cols.output; ++ox) {
        std::fill(sums.begin(), sums.end(), Accumulator<T>(0));
        for (int64_t fy = 0; fy < g.rows.window; ++fy) {
          const int64_t iy = input_coord(g.rows, oy, fy);
          if (iy < 0 || iy >= g.rows.input) continue;
          for (int64_t fx = 0; fx < g.cols.window; ++fx) {
            const int64_t ix = input_coord(g.cols, ox, fx);
            if (ix < 0 || ix >= g.cols.input) continue;
            const T* pixel = in + ((b * g.rows.input + iy) * g.cols.input + ix) * g.in_depth;
            const T* taps = w + (fy * g.cols.window + fx) * patch_depth * g.out_depth;
            for (int64_t group = 0; group < groups; ++group) {
              Accumulator<T>* acc = sums.data() + group * out_per_group;
              for (int64_t ic = 0; ic < patch_depth; ++ic) {
                const Accumulator<T> x = pixel[group * patch_depth + ic];
                const T* row = taps + ic * g.out_depth + group * out_per_group;
                for (int64_t k = 0; k < out_per_group; ++k) acc[k] += x * row[k];
              }
            }
          }
        }
        for (int64_t oc = 0; oc < g.out_depth; ++oc)
          *out++ = static_cast<T>(sums[static_cast<size_t>(oc)]);
      }
    }
  }
}

Status conv2d(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(ConvGeometry g, conv_geometry(ctx));
  const Tensor& input = ctx.input(0);
  const Tensor& filter = ctx.input(1);
  const int64_t patch_depth = filter.dim(2);
  g.out_depth = filter.dim(3);
  if (g.in_depth % patch_depth != 0) {
    return ctx.error("input depth " + std::to_string(g.in_depth) +
                     " must be a multiple of the filter's input depth " +
                     std::to_string(patch_depth) + " (input " + input.description() + ", filter " +
                     filter.description() + ")");
  }
  const int64_t groups = g.in_depth / patch_depth;
  if (g.out_depth % groups != 0) {
    return ctx.error("output depth " + std::to_string(g.out_depth) +
                     " must be a multiple of the number of groups " + std::to_string(groups));
  }
  return dispatch_float(ctx, input.dtype(), [&]<typename T>() -> Status {
    Tensor output(input.dtype(), {g.batch, g.rows.output, g.cols.output, g.out_depth});
    conv2d_nhwc<T>(input, filter, g, output);
    ctx.set_output(0, std::move(output));
    return {};
  });
}

// output[b, oy, ox, c * multiplier + m] = sum over fy, fx of
//   input[b, oy*sy - pad_top + fy*dy, ox*sx - pad_left + fx*dx, c] * filter[fy, fx, c, m].
template <typename T>
void depthwise_conv2d_nhwc(const Tensor& input, const Tensor& filter, const ConvGeometry& g,
                           Tensor& output) {
  const int64_t multiplier = filter.dim(3);
  const T* in = input.data<T>();
  const T* w = filter.data<T>();
  T* out = output.mutable_data<T>();
  for (int64_t b = 0; b < g.batch; ++b) {
    for (int64_t oy = 0; oy < g.rows.output; ++oy) {
      for (int64_t ox = 0; ox < g.cols.output; ++ox) {
        for (int64_t c = 0; c < g.in_depth; ++c) {
          for (int64_t m = 0; m < multiplier; ++m) {
            Accumulator<T> sum = 0;
            for (int64_t fy = 0; fy < g.rows.window; ++fy) {
              const int64_t iy = input_coord(g.rows, oy, fy);
              if (iy < 0 || iy >= g.rows.input) continue;
              for (int64_t fx = 0; fx < g.cols.window; ++fx) {
                const int64_t ix = input_coord(g.cols, ox, fx);
                if (ix < 0 || ix >= g.cols.input) continue;
                const T value = in[((b * g.rows.input + iy) * g.cols.input + ix) * g.in_depth + c];
                const T tap = w[((fy * g.cols.window + fx) * g.in_depth + c) * multiplier + m];
                sum += static_cast<Accumulator<T>>(value) * tap;
              }
            }
            *out++ = static_cast<T>(sum);
          }
        }
      }
    }
  }
}

Status depthwise_conv2d(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(ConvGeometry g, conv_geometry(ctx));
  const Tensor& input = ctx.input(0);
  const Tensor& filter = ctx.input(1);
  if (filter.dim(2) != g.in_depth) {
    return ctx.error("input and filter must have the same depth: input " + input.description() +
                     ", filter " + filter.description());
  }
  g.out_depth = g.in_depth * filter.dim(3);
  return dispatch_float(ctx, input.dtype(), [&]<typename T>() -> Status {
    Tensor output(input.dtype(), {g.batch, g.rows.output, g.cols.output, g.out_depth});
    depthwise_conv2d_nhwc<T>(input, filter, g, output);
    ctx.set_output(0, std::move(output));
    return {};
  });
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kNnConvOpDefs[] = R"pb(
  op {
    name: "Conv2D"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "filter" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      allowed_values {
        list { type: DT_HALF type: DT_BFLOAT16 type: DT_FLOAT type: DT_DOUBLE type: DT_INT32 }
      }
    }
    attr { name: "strides" type: "list(int)" }
    attr {
      name: "use_cudnn_on_gpu"
      type: "bool"
      default_value { b: true }
    }
    attr {
      name: "padding"
      type: "string"
      allowed_values { list { s: "SAME" s: "VALID" s: "EXPLICIT" } }
    }
    attr {
      name: "explicit_paddings"
      type: "list(int)"
      default_value { list {} }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
      allowed_values { list { s: "NHWC" s: "NCHW" } }
    }
    attr {
      name: "dilations"
      type: "list(int)"
      default_value { list { i: 1 i: 1 i: 1 i: 1 } }
    }
  }
  op {
    name: "DepthwiseConv2dNative"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "filter" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      allowed_values { list { type: DT_HALF type: DT_BFLOAT16 type: DT_FLOAT type: DT_DOUBLE } }
    }
    attr { name: "strides" type: "list(int)" }
    attr {
      name: "padding"
      type: "string"
      allowed_values { list { s: "SAME" s: "VALID" s: "EXPLICIT" } }
    }
    attr {
      name: "explicit_paddings"
      type: "list(int)"
      default_value { list {} }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
      allowed_values { list { s: "NHWC" s: "NCHW" } }
    }
    attr {
      name: "dilations"
      type: "list(int)"
      default_value { list { i: 1 i: 1 i: 1 i: 1 } }
    }
  }
)pb";

void register_conv_ops(OpRegistry& r) {
  r.add({"Conv2D", {}, conv2d});
  r.add({"DepthwiseConv2dNative", {}, depthwise_conv2d});
  r.set_row_rule(RowRule::kSpatial, {"Conv2D", "DepthwiseConv2dNative"});
  r.set_op_defs(kNnConvOpDefs);
}

}  // namespace hubimg::ops::nn
