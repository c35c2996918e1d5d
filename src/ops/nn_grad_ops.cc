// Reference kernels of TensorFlow's backward nn ops (tensorflow/core/ops/nn_ops.cc): the
// convolution, pooling, batch-norm and bias backprops and the activation gradients. NHWC,
// float32 and float64; plain loops mirroring the forward kernels in nn_conv.cc, nn_pool.cc,
// nn_norm.cc and nn_activation.cc, with sums accumulated in double.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/kernel_util.h"
#include "ops/nn_util.h"
#include "ops/op_registry.h"

namespace hubimg::ops::nn {
namespace {

// A shape given as an int32 or int64 vector input (input_sizes, filter_sizes,
// orig_input_shape), which must have `rank` non-negative entries.
Expected<Dims> shape_input(const KernelContext& ctx, size_t i, std::string_view name, int rank) {
  const Tensor& t = ctx.input(i);
  if (t.rank() != 1 || t.num_elements() != rank ||
      (t.dtype() != DType::kInt32 && t.dtype() != DType::kInt64)) {
    return ctx.error(std::string(name) + " must be an int32 or int64 vector of " +
                     std::to_string(rank) + " elements, got " + t.description());
  }
  Dims dims;
  for (int64_t k = 0; k < rank; ++k) {
    const int64_t d = t.dtype() == DType::kInt32 ? t.data<int32_t>()[k] : t.data<int64_t>()[k];
    if (d < 0)
      return ctx.error(std::string(name) + " must not be negative, got " + t.description());
    dims.push_back(d);
  }
  return dims;
}

Status expect_shape(const KernelContext& ctx, size_t i, std::string_view name,
                    const Dims& expected) {
  if (ctx.input(i).shape() != expected) {
    return ctx.error(std::string(name) + " must have shape " + ints_to_string(expected) + ", got " +
                     ctx.input(i).description());
  }
  return {};
}

Status expect_float_dtype(const KernelContext& ctx, size_t i, DType dtype) {
  if (ctx.input(i).dtype() != dtype) {
    return ctx.error("input " + std::to_string(i) + " must have dtype " + dtype_name(dtype) +
                     ", got " + ctx.input(i).description());
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Convolution backprops.

struct ConvShapes {
  Dims input;   // [batch, rows, cols, in_depth]
  Dims filter;  // [rows, cols, patch_depth, out_channels or multiplier]
  WindowDim rows;
  WindowDim cols;
  int64_t out_depth = 0;
};

// Resolves the forward convolution's geometry from the input and filter shapes and checks
// out_backprop (input 2) has the forward output's shape.
Expected<ConvShapes> conv_shapes(const KernelContext& ctx, Dims input, Dims filter,
                                 bool depthwise) {
  HUBIMG_RETURN_IF_ERROR(require_nhwc(ctx));
  HUBIMG_ASSIGN_OR_RETURN(auto strides, read_nhwc_window_attr(ctx, "strides", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(
      auto dilations, read_nhwc_window_attr(ctx, "dilations", std::vector<int64_t>{1, 1, 1, 1}));
  HUBIMG_ASSIGN_OR_RETURN(PaddingSpec padding, read_padding(ctx, /*allow_explicit=*/true));
  if (input.size() != 4 || filter.size() != 4) {
    return ctx.error("input and filter must be 4-D, got " + ints_to_string(input) + " and " +
                     ints_to_string(filter));
  }
  for (int64_t d : filter) {
    if (d == 0)
      return ctx.error("filter must not have zero elements, got " + ints_to_string(filter));
  }
  ConvShapes s;
  s.input = std::move(input);
  s.filter = std::move(filter);
  if (depthwise) {
    if (s.filter[2] != s.input[3]) {
      return ctx.error("input depth " + std::to_string(s.input[3]) +
                       " must equal the filter's depth " + std::to_string(s.filter[2]));
    }
    s.out_depth = s.input[3] * s.filter[3];
  } else {
    const int64_t patch_depth = s.filter[2];
    if (s.input[3] % patch_depth != 0) {
      return ctx.error("input depth " + std::to_string(s.input[3]) +
                       " must be a multiple of the filter's input depth " +
                       std::to_string(patch_depth));
    }
    const int64_t groups = s.input[3] / patch_depth;
    if (s.filter[3] % groups != 0) {
      return ctx.error("output depth " + std::to_string(s.filter[3]) +
                       " must be a multiple of the number of groups " + std::to_string(groups));
    }
    s.out_depth = s.filter[3];
  }
  s.rows = {.input = s.input[1],
            .window = s.filter[0],
            .stride = strides[1],
            .dilation = dilations[1],
            .pad_before = padding.top,
            .pad_after = padding.bottom};
  s.cols = {.input = s.input[2],
            .window = s.filter[1],
            .stride = strides[2],
            .dilation = dilations[2],
            .pad_before = padding.left,
            .pad_after = padding.right};
  HUBIMG_RETURN_IF_ERROR(resolve_window(ctx, padding.type, "row", s.rows));
  HUBIMG_RETURN_IF_ERROR(resolve_window(ctx, padding.type, "column", s.cols));
  HUBIMG_RETURN_IF_ERROR(expect_shape(ctx, 2, "out_backprop",
                                      {s.input[0], s.rows.output, s.cols.output, s.out_depth}));
  return s;
}

// Calls visit(input_offset, filter_offset, out_offset) for every (input cell, filter tap,
// output cell) product of the forward convolution: Conv2D with groups, or depthwise.
template <typename Visit>
void for_each_conv_product(const ConvShapes& s, bool depthwise, Visit&& visit) {
  const int64_t in_depth = s.input[3];
  const int64_t patch_depth = s.filter[2];
  const int64_t groups = depthwise ? 1 : in_depth / patch_depth;
  const int64_t out_per_group = depthwise ? 0 : s.out_depth / groups;
  const int64_t multiplier = s.filter[3];
  for (int64_t b = 0; b < s.input[0]; ++b) {
    for (int64_t oy = 0; oy < s.rows.output; ++oy) {
      for (int64_t ox = 0; ox < s.cols.output; ++ox) {
        const int64_t out_base = ((b * s.rows.output + oy) * s.cols.output + ox) * s.out_depth;
        for (int64_t fy = 0; fy < s.rows.window; ++fy) {
          const int64_t iy = input_coord(s.rows, oy, fy);
          if (iy < 0 || iy >= s.rows.input) continue;
          for (int64_t fx = 0; fx < s.cols.window; ++fx) {
            const int64_t ix = input_coord(s.cols, ox, fx);
            if (ix < 0 || ix >= s.cols.input) continue;
            const int64_t in_base = ((b * s.rows.input + iy) * s.cols.input + ix) * in_depth;
            const int64_t tap_base = (fy * s.cols.window + fx) * patch_depth * s.filter[3];
            if (depthwise) {
              for (int64_t c = 0; c < in_depth; ++c) {
                for (int64_t m = 0; m < multiplier; ++m) {
                  visit(in_base + c, tap_base + c * multiplier + m, out_base + c * multiplier + m);
                }
              }
            } else {
              for (int64_t group = 0; group < groups; ++group) {
                for (int64_t ic = 0; ic < patch_depth; ++ic) {
                  for (int64_t k = 0; k < out_per_group; ++k) {
                    const int64_t oc = group * out_per_group + k;
                    visit(in_base + group * patch_depth + ic, tap_base + ic * s.out_depth + oc,
                          out_base + oc);
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

template <typename T>
Tensor from_sums(DType dtype, const Dims& shape, const std::vector<Accumulator<T>>& sums) {
  Tensor t(dtype, shape);
  T* out = t.mutable_data<T>();
  for (size_t i = 0; i < sums.size(); ++i) out[i] = static_cast<T>(sums[i]);
  return t;
}

// Conv2DBackpropInput(input_sizes, filter, out_backprop) and the depthwise version.
Status conv_backprop_input(KernelContext& ctx, bool depthwise) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  HUBIMG_ASSIGN_OR_RETURN(Dims input_shape, shape_input(ctx, 0, "input_sizes", 4));
  HUBIMG_RETURN_IF_ERROR(expect_rank(ctx, 1, 4));
  const DType dtype = ctx.input(1).dtype();
  HUBIMG_RETURN_IF_ERROR(expect_float_dtype(ctx, 2, dtype));
  HUBIMG_ASSIGN_OR_RETURN(ConvShapes s,
                          conv_shapes(ctx, input_shape, ctx.input(1).shape(), depthwise));
  return dispatch_float(ctx, dtype, [&]<typename T>() -> Status {
    std::vector<Accumulator<T>> sums(static_cast<size_t>(Tensor(dtype, s.input).num_elements()), 0);
    const T* w = ctx.input(1).data<T>();
    const T* dy = ctx.input(2).data<T>();
    for_each_conv_product(s, depthwise, [&](int64_t in, int64_t tap, int64_t out) {
      sums[static_cast<size_t>(in)] += static_cast<Accumulator<T>>(w[tap]) * dy[out];
    });
    ctx.set_output(0, from_sums<T>(dtype, s.input, sums));
    return {};
  });
}

// Conv2DBackpropFilter(input, filter_sizes, out_backprop) and the depthwise version.
Status conv_backprop_filter(KernelContext& ctx, bool depthwise) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  HUBIMG_RETURN_IF_ERROR(expect_rank(ctx, 0, 4));
  HUBIMG_ASSIGN_OR_RETURN(Dims filter_shape, shape_input(ctx, 1, "filter_sizes", 4));
  const DType dtype = ctx.input(0).dtype();
  HUBIMG_RETURN_IF_ERROR(expect_float_dtype(ctx, 2, dtype));
  HUBIMG_ASSIGN_OR_RETURN(ConvShapes s,
                          conv_shapes(ctx, ctx.input(0).shape(), filter_shape, depthwise));
  return dispatch_float(ctx, dtype, [&]<typename T>() -> Status {
    std::vector<Accumulator<T>> sums(static_cast<size_t>(Tensor(dtype, s.filter).num_elements()),
                                     0);
    const T* x = ctx.input(0).data<T>();
    const T* dy = ctx.input(2).data<T>();
    for_each_conv_product(s, depthwise, [&](int64_t in, int64_t tap, int64_t out) {
      sums[static_cast<size_t>(tap)] += static_cast<Accumulator<T>>(x[in]) * dy[out];
    });
    ctx.set_output(0, from_sums<T>(dtype, s.filter, sums));
    return {};
  });
}

// ---------------------------------------------------------------------------------------------
// Pooling backprops.

struct PoolShapes {
  Dims input;
  WindowDim rows;
  WindowDim cols;
};

Expected<PoolShapes> pool_shapes(const KernelContext& ctx, Dims input,
                                 const std::vector<int64_t>& ksize,
                                 const std::vector<int64_t>& strides, const PaddingSpec& padding) {
  if (input.size() != 4) return ctx.error("orig_input must be 4-D, got " + ints_to_string(input));
  PoolShapes s;
  s.input = std::move(input);
  s.rows = {.input = s.input[1],
            .window = ksize[1],
            .stride = strides[1],
            .pad_before = padding.top,
            .pad_after = padding.bottom};
  s.cols = {.input = s.input[2],
            .window = ksize[2],
            .stride = strides[2],
            .pad_before = padding.left,
            .pad_after = padding.right};
  HUBIMG_RETURN_IF_ERROR(resolve_window(ctx, padding.type, "row", s.rows));
  HUBIMG_RETURN_IF_ERROR(resolve_window(ctx, padding.type, "column", s.cols));
  return s;
}

Dims pool_output_shape(const PoolShapes& s) {
  return {s.input[0], s.rows.output, s.cols.output, s.input[3]};
}

// Calls visit(out_offset, y_begin, y_end, x_begin, x_end, image_offset, channel) per output
// cell: the window's input rows [y_begin, y_end) and columns [x_begin, x_end), padding excluded.
template <typename Visit>
void for_each_pool_window(const PoolShapes& s, Visit&& visit) {
  const int64_t depth = s.input[3];
  int64_t out = 0;
  for (int64_t b = 0; b < s.input[0]; ++b) {
    for (int64_t oy = 0; oy < s.rows.output; ++oy) {
      const int64_t y0 = oy * s.rows.stride - s.rows.pad_before;
      const int64_t y_begin = std::max<int64_t>(y0, 0);
      const int64_t y_end = std::min(y0 + s.rows.window, s.rows.input);
      for (int64_t ox = 0; ox < s.cols.output; ++ox) {
        const int64_t x0 = ox * s.cols.stride - s.cols.pad_before;
        const int64_t x_begin = std::max<int64_t>(x0, 0);
        const int64_t x_end = std::min(x0 + s.cols.window, s.cols.input);
        for (int64_t c = 0; c < depth; ++c) {
          visit(out++, y_begin, y_end, x_begin, x_end, b * s.rows.input * s.cols.input * depth, c);
        }
      }
    }
  }
}

// MaxPoolGrad(orig_input, orig_output, grad): each output cell's gradient goes to the first
// input cell of its window (row-major) holding the window's maximum, as TensorFlow's CPU kernel
// (SpatialMaxPoolWithArgMaxHelper: a later cell wins only when strictly greater).
Status max_pool_grad_with(KernelContext& ctx, const std::vector<int64_t>& ksize,
                          const std::vector<int64_t>& strides, const PaddingSpec& padding) {
  HUBIMG_RETURN_IF_ERROR(require_nhwc(ctx));
  HUBIMG_RETURN_IF_ERROR(expect_rank(ctx, 0, 4));
  const DType dtype = ctx.input(0).dtype();
  HUBIMG_RETURN_IF_ERROR(expect_float_dtype(ctx, 1, dtype));
  HUBIMG_RETURN_IF_ERROR(expect_float_dtype(ctx, 2, dtype));
  HUBIMG_ASSIGN_OR_RETURN(PoolShapes s,
                          pool_shapes(ctx, ctx.input(0).shape(), ksize, strides, padding));
  HUBIMG_RETURN_IF_ERROR(expect_shape(ctx, 1, "orig_output", pool_output_shape(s)));
  HUBIMG_RETURN_IF_ERROR(expect_shape(ctx, 2, "grad", pool_output_shape(s)));
  return dispatch_float(ctx, dtype, [&]<typename T>() -> Status {
    std::vector<Accumulator<T>> sums(static_cast<size_t>(ctx.input(0).num_elements()), 0);
    const T* in = ctx.input(0).data<T>();
    const T* dy = ctx.input(2).data<T>();
    const int64_t depth = s.input[3];
    for_each_pool_window(s, [&](int64_t out, int64_t y_begin, int64_t y_end, int64_t x_begin,
                                int64_t x_end, int64_t image, int64_t c) {
      int64_t best = -1;
      for (int64_t y = y_begin; y < y_end; ++y) {
        for (int64_t x = x_begin; x < x_end; ++x) {
          const int64_t i = image + (y * s.cols.input + x) * depth + c;
          if (best < 0 || in[i] > in[best]) best = i;
        }
      }
      if (best >= 0) sums[static_cast<size_t>(best)] += dy[out];
    });
    ctx.set_output(0, from_sums<T>(dtype, s.input, sums));
    return {};
  });
}

Status max_pool_grad(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  HUBIMG_ASSIGN_OR_RETURN(auto ksize, read_nhwc_window_attr(ctx, "ksize", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(auto strides, read_nhwc_window_attr(ctx, "strides", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(PaddingSpec padding, read_padding(ctx, /*allow_explicit=*/true));
  return max_pool_grad_with(ctx, ksize, strides, padding);
}

Status max_pool_grad_v2(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 5));
  HUBIMG_ASSIGN_OR_RETURN(auto ksize, read_window_input(ctx, 3, "ksize"));
  HUBIMG_ASSIGN_OR_RETURN(auto strides, read_window_input(ctx, 4, "strides"));
  HUBIMG_ASSIGN_OR_RETURN(PaddingSpec padding, read_padding(ctx, /*allow_explicit=*/false));
  return max_pool_grad_with(ctx, ksize, strides, padding);
}

// AvgPoolGrad(orig_input_shape, grad): each output cell's gradient is spread evenly over the
// input cells of its window, padding excluded (the forward kernel's divisor).
Status avg_pool_grad(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  HUBIMG_RETURN_IF_ERROR(require_nhwc(ctx));
  HUBIMG_ASSIGN_OR_RETURN(auto ksize, read_nhwc_window_attr(ctx, "ksize", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(auto strides, read_nhwc_window_attr(ctx, "strides", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(PaddingSpec padding, read_padding(ctx, /*allow_explicit=*/false));
  HUBIMG_ASSIGN_OR_RETURN(Dims input_shape, shape_input(ctx, 0, "orig_input_shape", 4));
  HUBIMG_ASSIGN_OR_RETURN(PoolShapes s, pool_shapes(ctx, input_shape, ksize, strides, padding));
  HUBIMG_RETURN_IF_ERROR(expect_shape(ctx, 1, "grad", pool_output_shape(s)));
  const DType dtype = ctx.input(1).dtype();
  return dispatch_float(ctx, dtype, [&]<typename T>() -> Status {
    std::vector<Accumulator<T>> sums(static_cast<size_t>(Tensor(dtype, s.input).num_elements()), 0);
    const T* dy = ctx.input(1).data<T>();
    const int64_t depth = s.input[3];
    for_each_pool_window(s, [&](int64_t out, int64_t y_begin, int64_t y_end, int64_t x_begin,
                                int64_t x_end, int64_t image, int64_t c) {
      const int64_t count = (y_end - y_begin) * (x_end - x_begin);
      if (count == 0) return;
      const Accumulator<T> share = static_cast<Accumulator<T>>(dy[out]) / count;
      for (int64_t y = y_begin; y < y_end; ++y) {
        for (int64_t x = x_begin; x < x_end; ++x) {
          sums[static_cast<size_t>(image + (y * s.cols.input + x) * depth + c)] += share;
        }
      }
    });
    ctx.set_output(0, from_sums<T>(dtype, s.input, sums));
    return {};
  });
}

// ---------------------------------------------------------------------------------------------
// Batch norm and bias.

Expected<ChannelLayout> read_channel_layout(const KernelContext& ctx, const Tensor& x,
                                            std::string_view format) {
  const bool channels_last = format == "NHWC" || format == "NDHWC";
  const bool channels_first = format == "NCHW" || format == "NCDHW";
  if (!channels_last && !channels_first) {
    return ctx.error("unsupported data_format '" + std::string(format) + "'");
  }
  if (x.rank() < 2) return ctx.error("input must be at least 2-D, got " + x.description());
  return channel_layout(x, channels_last);
}

// FusedBatchNormGrad / V2 / V3 (TensorFlow's CPU functor, kernels/fused_batch_norm_op.cc):
//   training (reserve_space_1/2 = batch mean and biased variance, n values per channel):
//     x_backprop = scale * rsqrt(var + eps) *
//                  (dy - mean(dy) - (x - mean) * mean(dy * (x - mean)) / (var + eps))
//   inference (reserve_space_1/2 = the population mean and variance):
//     x_backprop = dy * scale * rsqrt(var + eps)
//   both: scale_backprop = sum(dy * (x - mean)) * rsqrt(var + eps), offset_backprop = sum(dy).
// The trailing reserve outputs are empty ([0]) placeholders as on TensorFlow's CPU.
Status fused_batch_norm_grad(KernelContext& ctx, bool v3) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, v3 ? 6 : 5));
  HUBIMG_ASSIGN_OR_RETURN(float epsilon_attr, attr(ctx, ctx.attrs().get_float("epsilon", 1e-4f)));
  HUBIMG_ASSIGN_OR_RETURN(bool is_training, attr(ctx, ctx.attrs().get_bool("is_training", true)));
  HUBIMG_ASSIGN_OR_RETURN(std::string format,
                          attr(ctx, ctx.attrs().get_string("data_format", "NHWC")));
  const Tensor& dy_t = ctx.input(0);
  const Tensor& x_t = ctx.input(1);
  if (x_t.rank() != 4 && x_t.rank() != 5) {
    return ctx.error("x must be 4-D or 5-D, got " + x_t.description());
  }
  HUBIMG_RETURN_IF_ERROR(expect_shape(ctx, 0, "y_backprop", x_t.shape()));
  const DType dtype = x_t.dtype();
  HUBIMG_ASSIGN_OR_RETURN(ChannelLayout layout, read_channel_layout(ctx, x_t, format));
  const int64_t channels = layout.channels;
  const char* names[] = {"y_backprop", "x", "scale", "reserve_space_1", "reserve_space_2"};
  for (size_t i = 0; i < 5; ++i) {
    HUBIMG_RETURN_IF_ERROR(expect_float_dtype(ctx, i, dtype));
    if (i >= 2) HUBIMG_RETURN_IF_ERROR(expect_shape(ctx, i, names[i], {channels}));
  }
  return dispatch_float(ctx, dtype, [&]<typename T>() -> Status {
    using Acc = Accumulator<T>;
    const T* dy = dy_t.data<T>();
    const T* x = x_t.data<T>();
    const T* scale = ctx.input(2).data<T>();
    const T* mean = ctx.input(3).data<T>();
    const T* variance = ctx.input(4).data<T>();
    const int64_t size = x_t.num_elements();
    const int64_t n = channels == 0 ? 0 : size / channels;
    std::vector<Acc> inv_std(static_cast<size_t>(channels));
    for (int64_t c = 0; c < channels; ++c) {
      inv_std[c] = Acc(1) / std::sqrt(static_cast<Acc>(variance[c]) + epsilon_attr);
    }
    std::vector<Acc> sum_dy(static_cast<size_t>(channels), 0);
    std::vector<Acc> sum_dy_centered(static_cast<size_t>(channels), 0);
    for (int64_t i = 0; i < size; ++i) {
      const int64_t c = layout.channel_of(i);
      sum_dy[c] += dy[i];
      sum_dy_centered[c] += static_cast<Acc>(dy[i]) * (static_cast<Acc>(x[i]) - mean[c]);
    }
    Tensor dx(dtype, x_t.shape());
    Tensor dscale(dtype, {channels});
    Tensor doffset(dtype, {channels});
    T* dx_out = dx.mutable_data<T>();
    for (int64_t i = 0; i < size; ++i) {
      const int64_t c = layout.channel_of(i);
      const Acc k = static_cast<Acc>(scale[c]) * inv_std[c];
      if (is_training) {
        const Acc centered = static_cast<Acc>(x[i]) - mean[c];
        const Acc mean_dy = sum_dy[c] / n;
        const Acc mean_dy_centered = sum_dy_centered[c] / n;
        dx_out[i] = static_cast<T>(
            k * (dy[i] - mean_dy - centered * mean_dy_centered * inv_std[c] * inv_std[c]));
      } else {
        dx_out[i] = static_cast<T>(k * dy[i]);
      }
    }
    for (int64_t c = 0; c < channels; ++c) {
      dscale.mutable_data<T>()[c] = static_cast<T>(sum_dy_centered[c] * inv_std[c]);
      doffset.mutable_data<T>()[c] = static_cast<T>(sum_dy[c]);
    }
    ctx.set_output(0, std::move(dx));
    ctx.set_output(1, std::move(dscale));
    ctx.set_output(2, std::move(doffset));
    ctx.set_output(3, Tensor(dtype, {0}));
    ctx.set_output(4, Tensor(dtype, {0}));
    return {};
  });
}

// BiasAddGrad(out_backprop): the sum over every axis but the channel axis.
Status bias_add_grad(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  // Not HUBIMG_ASSIGN_OR_RETURN: GCC 12 reports the moved-out string as maybe uninitialized.
  const auto format = attr(ctx, ctx.attrs().get_string("data_format", "NHWC"));
  if (!format.ok()) return format.status();
  if (*format != "NHWC" && *format != "NCHW") {
    return ctx.error("unsupported data_format '" + *format + "' (expected NHWC or NCHW)");
  }
  const Tensor& dy = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(ChannelLayout layout, read_channel_layout(ctx, dy, *format));
  return dispatch_float(ctx, dy.dtype(), [&]<typename T>() -> Status {
    std::vector<Accumulator<T>> sums(static_cast<size_t>(layout.channels), 0);
    const T* g = dy.data<T>();
    for (int64_t i = 0; i < dy.num_elements(); ++i) sums[layout.channel_of(i)] += g[i];
    ctx.set_output(0, from_sums<T>(dy.dtype(), {layout.channels}, sums));
    return {};
  });
}

// ---------------------------------------------------------------------------------------------
// Activation gradients: out[i] = fn(a[i], b[i]) for two same-shape float inputs.

template <typename Fn>
Status map_pairs(KernelContext& ctx, Fn fn) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  HUBIMG_RETURN_IF_ERROR(expect_float_dtype(ctx, 1, a.dtype()));
  if (a.shape() != b.shape()) {
    return ctx.error("inputs must have the same shape, got " + a.description() + " and " +
                     b.description());
  }
  return dispatch_float(ctx, a.dtype(), [&]<typename T>() -> Status {
    Tensor out(a.dtype(), a.shape());
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.mutable_data<T>();
    for (int64_t i = 0; i < a.num_elements(); ++i) po[i] = fn(pa[i], pb[i]);
    ctx.set_output(0, std::move(out));
    return {};
  });
}

// (gradients, features) ops.
Status relu_grad(KernelContext& ctx) {
  return map_pairs(ctx, []<typename T>(T g, T x) { return x > T(0) ? g : T(0); });
}
Status relu6_grad(KernelContext& ctx) {
  return map_pairs(ctx, []<typename T>(T g, T x) { return x > T(0) && x < T(6) ? g : T(0); });
}
Status leaky_relu_grad(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(float alpha, attr(ctx, ctx.attrs().get_float("alpha", 0.2f)));
  return map_pairs(
      ctx, [alpha]<typename T>(T g, T x) { return x > T(0) ? g : g * static_cast<T>(alpha); });
}
Status softplus_grad(KernelContext& ctx) {
  return map_pairs(ctx, []<typename T>(T g, T x) { return g / (T(1) + std::exp(-x)); });
}
Status softsign_grad(KernelContext& ctx) {
  return map_pairs(ctx, []<typename T>(T g, T x) {
    const T d = T(1) + std::abs(x);
    return g / (d * d);
  });
}
// (gradients, outputs) ops.
Status elu_grad(KernelContext& ctx) {
  return map_pairs(ctx, []<typename T>(T g, T y) { return y < T(0) ? g * (y + T(1)) : g; });
}
Status selu_grad(KernelContext& ctx) {
  return map_pairs(ctx, []<typename T>(T g, T y) {
    const T scale = static_cast<T>(1.0507009873554804934193349852946);
    const T scale_alpha = static_cast<T>(1.7580993408473768599402175208123);
    return y < T(0) ? g * (y + scale_alpha) : g * scale;
  });
}
// (y, dy) ops.
Status sigmoid_grad(KernelContext& ctx) {
  return map_pairs(ctx, []<typename T>(T y, T dy) { return dy * y * (T(1) - y); });
}
Status tanh_grad(KernelContext& ctx) {
  return map_pairs(ctx, []<typename T>(T y, T dy) { return dy * (T(1) - y * y); });
}

}  // namespace
}  // namespace hubimg::ops::nn

namespace hubimg::ops {

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kNnGradOpsOpDefs[] = R"pb(
  op {
    name: "AvgPoolGrad"
    input_arg { name: "orig_input_shape" type: DT_INT32 }
    input_arg { name: "grad" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "ksize" type: "list(int)" has_minimum: true minimum: 4 }
    attr { name: "strides" type: "list(int)" has_minimum: true minimum: 4 }
    attr { name: "padding" type: "string" }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
    attr { name: "T" type: "type" }
  }
  op {
    name: "BiasAddGrad"
    input_arg { name: "out_backprop" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
  }
  op {
    name: "Conv2DBackpropFilter"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "filter_sizes" type: DT_INT32 }
    input_arg { name: "out_backprop" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr { name: "strides" type: "list(int)" }
    attr {
      name: "use_cudnn_on_gpu"
      type: "bool"
      default_value { b: true }
    }
    attr { name: "padding" type: "string" }
    attr {
      name: "explicit_paddings"
      type: "list(int)"
      default_value { list {} }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
    attr {
      name: "dilations"
      type: "list(int)"
      default_value { list { i: 1 i: 1 i: 1 i: 1 } }
    }
  }
  op {
    name: "Conv2DBackpropInput"
    input_arg { name: "input_sizes" type: DT_INT32 }
    input_arg { name: "filter" type_attr: "T" }
    input_arg { name: "out_backprop" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr { name: "strides" type: "list(int)" }
    attr {
      name: "use_cudnn_on_gpu"
      type: "bool"
      default_value { b: true }
    }
    attr { name: "padding" type: "string" }
    attr {
      name: "explicit_paddings"
      type: "list(int)"
      default_value { list {} }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
    attr {
      name: "dilations"
      type: "list(int)"
      default_value { list { i: 1 i: 1 i: 1 i: 1 } }
    }
  }
  op {
    name: "DepthwiseConv2dNativeBackpropFilter"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "filter_sizes" type: DT_INT32 }
    input_arg { name: "out_backprop" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr { name: "strides" type: "list(int)" }
    attr { name: "padding" type: "string" }
    attr {
      name: "explicit_paddings"
      type: "list(int)"
      default_value { list {} }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
    attr {
      name: "dilations"
      type: "list(int)"
      default_value { list { i: 1 i: 1 i: 1 i: 1 } }
    }
  }
  op {
    name: "DepthwiseConv2dNativeBackpropInput"
    input_arg { name: "input_sizes" type: DT_INT32 }
    input_arg { name: "filter" type_attr: "T" }
    input_arg { name: "out_backprop" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr { name: "strides" type: "list(int)" }
    attr { name: "padding" type: "string" }
    attr {
      name: "explicit_paddings"
      type: "list(int)"
      default_value { list {} }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
    attr {
      name: "dilations"
      type: "list(int)"
      default_value { list { i: 1 i: 1 i: 1 i: 1 } }
    }
  }
  op {
    name: "EluGrad"
    input_arg { name: "gradients" type_attr: "T" }
    input_arg { name: "outputs" type_attr: "T" }
    output_arg { name: "backprops" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "FusedBatchNormGrad"
    input_arg { name: "y_backprop" type_attr: "T" }
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "scale" type_attr: "T" }
    input_arg { name: "reserve_space_1" type_attr: "T" }
    input_arg { name: "reserve_space_2" type_attr: "T" }
    output_arg { name: "x_backprop" type_attr: "T" }
    output_arg { name: "scale_backprop" type_attr: "T" }
    output_arg { name: "offset_backprop" type_attr: "T" }
    output_arg { name: "reserve_space_3" type_attr: "T" }
    output_arg { name: "reserve_space_4" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "epsilon"
      type: "float"
      default_value { f: 0.0001 }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
    attr {
      name: "is_training"
      type: "bool"
      default_value { b: true }
    }
  }
  op {
    name: "FusedBatchNormGradV2"
    input_arg { name: "y_backprop" type_attr: "T" }
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "scale" type: DT_FLOAT }
    input_arg { name: "reserve_space_1" type_attr: "U" }
    input_arg { name: "reserve_space_2" type_attr: "U" }
    output_arg { name: "x_backprop" type_attr: "T" }
    output_arg { name: "scale_backprop" type_attr: "U" }
    output_arg { name: "offset_backprop" type_attr: "U" }
    output_arg { name: "reserve_space_3" type_attr: "U" }
    output_arg { name: "reserve_space_4" type_attr: "U" }
    attr { name: "T" type: "type" }
    attr { name: "U" type: "type" }
    attr {
      name: "epsilon"
      type: "float"
      default_value { f: 0.0001 }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
    attr {
      name: "is_training"
      type: "bool"
      default_value { b: true }
    }
  }
  op {
    name: "FusedBatchNormGradV3"
    input_arg { name: "y_backprop" type_attr: "T" }
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "scale" type: DT_FLOAT }
    input_arg { name: "reserve_space_1" type_attr: "U" }
    input_arg { name: "reserve_space_2" type_attr: "U" }
    input_arg { name: "reserve_space_3" type_attr: "U" }
    output_arg { name: "x_backprop" type_attr: "T" }
    output_arg { name: "scale_backprop" type_attr: "U" }
    output_arg { name: "offset_backprop" type_attr: "U" }
    output_arg { name: "reserve_space_4" type_attr: "U" }
    output_arg { name: "reserve_space_5" type_attr: "U" }
    attr { name: "T" type: "type" }
    attr { name: "U" type: "type" }
    attr {
      name: "epsilon"
      type: "float"
      default_value { f: 0.0001 }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
    attr {
      name: "is_training"
      type: "bool"
      default_value { b: true }
    }
  }
  op {
    name: "LeakyReluGrad"
    input_arg { name: "gradients" type_attr: "T" }
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "backprops" type_attr: "T" }
    attr {
      name: "alpha"
      type: "float"
      default_value { f: 0.2 }
    }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_FLOAT }
    }
  }
  op {
    name: "MaxPoolGrad"
    input_arg { name: "orig_input" type_attr: "T" }
    input_arg { name: "orig_output" type_attr: "T" }
    input_arg { name: "grad" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "ksize" type: "list(int)" has_minimum: true minimum: 4 }
    attr { name: "strides" type: "list(int)" has_minimum: true minimum: 4 }
    attr { name: "padding" type: "string" }
    attr {
      name: "explicit_paddings"
      type: "list(int)"
      default_value { list {} }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_FLOAT }
    }
  }
  op {
    name: "MaxPoolGradV2"
    input_arg { name: "orig_input" type_attr: "T" }
    input_arg { name: "orig_output" type_attr: "T" }
    input_arg { name: "grad" type_attr: "T" }
    input_arg { name: "ksize" type: DT_INT32 }
    input_arg { name: "strides" type: DT_INT32 }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "padding" type: "string" }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_FLOAT }
    }
  }
  op {
    name: "Relu6Grad"
    input_arg { name: "gradients" type_attr: "T" }
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "backprops" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "ReluGrad"
    input_arg { name: "gradients" type_attr: "T" }
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "backprops" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "SeluGrad"
    input_arg { name: "gradients" type_attr: "T" }
    input_arg { name: "outputs" type_attr: "T" }
    output_arg { name: "backprops" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "SigmoidGrad"
    input_arg { name: "y" type_attr: "T" }
    input_arg { name: "dy" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "SoftplusGrad"
    input_arg { name: "gradients" type_attr: "T" }
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "backprops" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "SoftsignGrad"
    input_arg { name: "gradients" type_attr: "T" }
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "backprops" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "TanhGrad"
    input_arg { name: "y" type_attr: "T" }
    input_arg { name: "dy" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
)pb";

void register_nn_grad_ops(OpRegistry& r) {
  r.add({"Conv2DBackpropInput", {}, [](KernelContext& ctx) {
           return nn::conv_backprop_input(ctx, false);
         }});
  r.add({"Conv2DBackpropFilter", {}, [](KernelContext& ctx) {
           return nn::conv_backprop_filter(ctx, false);
         }});
  r.add({"DepthwiseConv2dNativeBackpropInput", {}, [](KernelContext& ctx) {
           return nn::conv_backprop_input(ctx, true);
         }});
  r.add({"DepthwiseConv2dNativeBackpropFilter", {}, [](KernelContext& ctx) {
           return nn::conv_backprop_filter(ctx, true);
         }});
  r.add({"MaxPoolGrad", {}, nn::max_pool_grad});
  r.add({"MaxPoolGradV2", {}, nn::max_pool_grad_v2});
  r.add({"AvgPoolGrad", {}, nn::avg_pool_grad});
  r.add({"FusedBatchNormGrad", {}, [](KernelContext& ctx) {
           return nn::fused_batch_norm_grad(ctx, false);
         }});
  r.add({"FusedBatchNormGradV2", {}, [](KernelContext& ctx) {
           return nn::fused_batch_norm_grad(ctx, false);
         }});
  r.add({"FusedBatchNormGradV3", {}, [](KernelContext& ctx) {
           return nn::fused_batch_norm_grad(ctx, true);
         }});
  r.add({"BiasAddGrad", {}, nn::bias_add_grad});
  r.add({"ReluGrad", {}, nn::relu_grad});
  r.add({"Relu6Grad", {}, nn::relu6_grad});
  r.add({"LeakyReluGrad", {}, nn::leaky_relu_grad});
  r.add({"EluGrad", {}, nn::elu_grad});
  r.add({"SeluGrad", {}, nn::selu_grad});
  r.add({"SoftplusGrad", {}, nn::softplus_grad});
  r.add({"SoftsignGrad", {}, nn::softsign_grad});
  r.add({"SigmoidGrad", {}, nn::sigmoid_grad});
  r.add({"TanhGrad", {}, nn::tanh_grad});
  r.set_op_defs(kNnGradOpsOpDefs);
}

}  // namespace hubimg::ops
