// AvgPool, MaxPool and MaxPoolV2 over NHWC rows and columns. Padded cells never take part:
// AvgPool divides by the number of input cells inside each window, MaxPool ignores the rest.
#include <algorithm>
#include <limits>

#include "ops/fast_paths.h"
#include "ops/kernel_util.h"
#include "ops/nn_kernels.h"
#include "ops/nn_util.h"

namespace hubimg::ops::nn {
namespace {

enum class PoolKind { kAverage, kMax };

struct PoolGeometry {
  int64_t batch = 0;
  int64_t depth = 0;
  WindowDim rows;
  WindowDim cols;
};

Expected<PoolGeometry> pool_geometry(const KernelContext& ctx, const std::vector<int64_t>& ksize,
                                     const std::vector<int64_t>& strides,
                                     const PaddingSpec& padding) {
  const Tensor& input = ctx.input(0);
  PoolGeometry g;
  g.batch = input.dim(0);
  g.depth = input.dim(3);
  g.rows = {.input = input.dim(1),
            .window = ksize[1],
            .stride = strides[1],
            .pad_before = padding.top,
            .pad_after = padding.bottom};
  g.cols = {.input = input.dim(2),
            .window = ksize[2],
            .stride = strides[2],
            .pad_before = padding.left,
            .pad_after = padding.right};
  HUBIMG_RETURN_IF_ERROR(resolve_window(ctx, padding.type, "row", g.rows));
  HUBIMG_RETURN_IF_ERROR(resolve_window(ctx, padding.type, "column", g.cols));
  return g;
}

template <typename T, PoolKind kKind>
void pool_nhwc(const Tensor& input, const PoolGeometry& g, Tensor& output) {
  const T* in = input.data<T>();
  T* out = output.mutable_data<T>();
  for (int64_t b = 0; b < g.batch; ++b) {
    for (int64_t oy = 0; oy < g.rows.output; ++oy) {
      const int64_t y_begin = std::max<int64_t>(oy * g.rows.stride - g.rows.pad_before, 0);
      const int64_t y_end =
          std::min(oy * g.rows.stride - g.rows.pad_before + g.rows.window, g.rows.input);
      for (int64_t ox = 0; ox < g.cols.output; ++ox) {
        const int64_t x_begin = std::max<int64_t>(ox * g.cols.stride - g.cols.pad_before, 0);
        const int64_t x_end =
            std::min(ox * g.cols.stride - g.cols.pad_before + g.cols.window, g.cols.input);
        for (int64_t c = 0; c < g.depth; ++c) {
          Accumulator<T> sum = 0;
          T max_value = std::numeric_limits<T>::lowest();
          for (int64_t y = y_begin; y < y_end; ++y) {
            for (int64_t x = x_begin; x < x_end; ++x) {
              const T value = in[((b * g.rows.input + y) * g.cols.input + x) * g.depth + c];
              sum += value;
              max_value = std::max(max_value, value);
            }
          }
          if constexpr (kKind == PoolKind::kAverage) {
            const int64_t count = (y_end - y_begin) * (x_end - x_begin);
            *out++ = static_cast<T>(sum / static_cast<Accumulator<T>>(count));
          } else {
            *out++ = max_value;
          }
        }
      }
    }
  }
}

// Float32 fast path (see fast_paths.h): one task per (batch, output row); for each output
// column the window's input cells are visited in the reference order, each a contiguous run of
// `depth` channels that the channel loop vectorizes over. AvgPool sums in double like the
// reference, so both give identical results.
template <PoolKind kKind>
void fast_pool_nhwc(const float* in, const PoolGeometry& g, float* out) {
  constexpr int64_t kChunk = 256;  // channels accumulated together
  const int64_t depth = g.depth;
  parallel_rows(g.batch * g.rows.output, g.cols.output * depth * g.rows.window * g.cols.window,
                [&](int64_t begin, int64_t end) {
                  double sum[kChunk];
                  for (int64_t task = begin; task < end; ++task) {
                    const int64_t b = task / g.rows.output;
                    const int64_t oy = task % g.rows.output;
                    const int64_t y0 = oy * g.rows.stride - g.rows.pad_before;
                    const int64_t y_begin = std::max<int64_t>(y0, 0);
                    const int64_t y_end = std::min(y0 + g.rows.window, g.rows.input);
                    const float* image = in + b * g.rows.input * g.cols.input * depth;
                    float* out_row = out + task * g.cols.output * depth;
                    for (int64_t ox = 0; ox < g.cols.output; ++ox) {
                      const int64_t x0 = ox * g.cols.stride - g.cols.pad_before;
                      const int64_t x_begin = std::max<int64_t>(x0, 0);
                      const int64_t x_end = std::min(x0 + g.cols.window, g.cols.input);
                      float* o = out_row + ox * depth;
                      if constexpr (kKind == PoolKind::kMax) {
                        for (int64_t c = 0; c < depth; ++c) {
                          o[c] = std::numeric_limits<float>::lowest();
                        }
                        for (int64_t y = y_begin; y < y_end; ++y) {
                          for (int64_t x = x_begin; x < x_end; ++x) {
                            const float* cell = image + (y * g.cols.input + x) * depth;
                            for (int64_t c = 0; c < depth; ++c) {
                              o[c] = o[c] < cell[c] ? cell[c] : o[c];  // std::max
                            }
                          }
                        }
                      } else {
                        const double count =
                            static_cast<double>((y_end - y_begin) * (x_end - x_begin));
                        for (int64_t c0 = 0; c0 < depth; c0 += kChunk) {
                          const int64_t n = std::min(kChunk, depth - c0);
                          for (int64_t c = 0; c < n; ++c) sum[c] = 0;
                          for (int64_t y = y_begin; y < y_end; ++y) {
                            for (int64_t x = x_begin; x < x_end; ++x) {
                              const float* cell = image + (y * g.cols.input + x) * depth + c0;
                              for (int64_t c = 0; c < n; ++c) sum[c] += cell[c];
                            }
                          }
                          for (int64_t c = 0; c < n; ++c) {
                            o[c0 + c] = static_cast<float>(sum[c] / count);
                          }
                        }
                      }
                    }
                  }
                });
}

template <PoolKind kKind>
Status run_pool(KernelContext& ctx, const std::vector<int64_t>& ksize,
                const std::vector<int64_t>& strides, const PaddingSpec& padding) {
  HUBIMG_RETURN_IF_ERROR(require_nhwc(ctx));
  HUBIMG_RETURN_IF_ERROR(expect_rank(ctx, 0, 4));
  HUBIMG_ASSIGN_OR_RETURN(PoolGeometry g, pool_geometry(ctx, ksize, strides, padding));
  const Tensor& input = ctx.input(0);
  if (fast_paths_enabled() && input.dtype() == DType::kFloat32) {
    Tensor output =
        Tensor::uninitialized(DType::kFloat32, {g.batch, g.rows.output, g.cols.output, g.depth});
    if (output.num_elements() > 0) {
      fast_pool_nhwc<kKind>(input.data<float>(), g, output.mutable_data<float>());
    }
    ctx.set_output(0, std::move(output));
    return {};
  }
  auto body = [&]<typename T>() -> Status {
    Tensor output(input.dtype(), {g.batch, g.rows.output, g.cols.output, g.depth});
    pool_nhwc<T, kKind>(input, g, output);
    ctx.set_output(0, std::move(output));
    return {};
  };
  if constexpr (kKind == PoolKind::kAverage) {
    return dispatch_float(ctx, input.dtype(), body);
  } else {
    return dispatch_real(ctx, input.dtype(), body);
  }
}

Status avg_pool(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  HUBIMG_ASSIGN_OR_RETURN(auto ksize, read_nhwc_window_attr(ctx, "ksize", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(auto strides, read_nhwc_window_attr(ctx, "strides", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(PaddingSpec padding, read_padding(ctx, /*allow_explicit=*/false));
  return run_pool<PoolKind::kAverage>(ctx, ksize, strides, padding);
}

Status max_pool(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  HUBIMG_ASSIGN_OR_RETURN(auto ksize, read_nhwc_window_attr(ctx, "ksize", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(auto strides, read_nhwc_window_attr(ctx, "strides", std::nullopt));
  HUBIMG_ASSIGN_OR_RETURN(PaddingSpec padding, read_padding(ctx, /*allow_explicit=*/true));
  return run_pool<PoolKind::kMax>(ctx, ksize, strides, padding);
}

Status max_pool_v2(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  HUBIMG_ASSIGN_OR_RETURN(auto ksize, read_window_input(ctx, 1, "ksize"));
  HUBIMG_ASSIGN_OR_RETURN(auto strides, read_window_input(ctx, 2, "strides"));
  HUBIMG_ASSIGN_OR_RETURN(PaddingSpec padding, read_padding(ctx, /*allow_explicit=*/false));
  return run_pool<PoolKind::kMax>(ctx, ksize, strides, padding);
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kNnPoolOpDefs[] = R"pb(
  op {
    name: "AvgPool"
    input_arg { name: "value" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "ksize" type: "list(int)" has_minimum: true minimum: 4 }
    attr { name: "strides" type: "list(int)" has_minimum: true minimum: 4 }
    attr {
      name: "padding"
      type: "string"
      allowed_values { list { s: "SAME" s: "VALID" } }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
      allowed_values { list { s: "NHWC" s: "NCHW" } }
    }
    attr { name: "T" type: "type" }
  }
  op {
    name: "MaxPool"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_FLOAT }
    }
    attr { name: "ksize" type: "list(int)" has_minimum: true minimum: 4 }
    attr { name: "strides" type: "list(int)" has_minimum: true minimum: 4 }
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
      allowed_values { list { s: "NHWC" s: "NCHW" s: "NCHW_VECT_C" } }
    }
  }
  op {
    name: "MaxPoolV2"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "ksize" type: DT_INT32 }
    input_arg { name: "strides" type: DT_INT32 }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_FLOAT }
    }
    attr { name: "padding" type: "string" }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
  }
)pb";

void register_pool_ops(OpRegistry& r) {
  r.add({"AvgPool", {}, avg_pool});
  r.add({"MaxPool", {}, max_pool});
  r.add({"MaxPoolV2", {}, max_pool_v2});
  r.set_row_rule(RowRule::kSpatial, {"AvgPool", "MaxPool"});
  r.set_op_defs(kNnPoolOpDefs);
}

}  // namespace hubimg::ops::nn
