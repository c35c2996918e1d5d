// FusedBatchNorm / V2 / V3 (inference and training) and BiasAdd / BiasAddV1.
#include <cmath>
#include <limits>

#include "ops/kernel_util.h"
#include "ops/nn_kernels.h"
#include "ops/nn_util.h"

namespace hubimg::ops::nn {
namespace {

Expected<bool> read_batch_norm_format(const KernelContext& ctx, int rank) {
  HUBIMG_ASSIGN_OR_RETURN(std::string format,
                          attr(ctx, ctx.attrs().get_string("data_format", "NHWC")));
  if ((rank == 4 && format == "NHWC") || (rank == 5 && format == "NDHWC")) return true;
  if ((rank == 4 && format == "NCHW") || (rank == 5 && format == "NCDHW")) return false;
  return ctx.error("data_format '" + format + "' does not fit a rank-" + std::to_string(rank) +
                   " input (expected NHWC or NCHW for rank 4, NDHWC or NCDHW for rank 5)");
}

Status check_channel_vector(const KernelContext& ctx, size_t i, std::string_view name,
                            int64_t channels) {
  const Tensor& v = ctx.input(i);
  if (v.rank() != 1) {
    return ctx.error(std::string(name) + " must be 1-D, got " + v.description());
  }
  if (v.num_elements() != channels) {
    return ctx.error(std::string(name) + " must have one element per channel (" +
                     std::to_string(channels) + "), got " + v.description());
  }
  return {};
}

// TensorFlow's CPU functors (kernels/fused_batch_norm_op.cc):
//   inference: y = (x - mean) * rsqrt(variance + epsilon) * scale + offset;
//              batch_mean/batch_variance pass the inputs through.
//   training:  statistics over every axis but channels, n values per channel;
//              y uses the biased variance (sum / n);
//              batch_variance = biased * n / max(n - 1, 1) (Bessel's correction);
//              with exponential_avg_factor f != 1 the running outputs are
//              (1 - f) * old + f * batch for both mean and corrected variance;
//              reserve_space_1 / _2 hold the batch mean and the *biased* variance.
// V3's reserve_space_3 is a scalar 0 of the parameter dtype (a placeholder on CPU).
template <typename T>
Status fused_batch_norm(KernelContext& ctx, bool has_reserve_space_3) {
  HUBIMG_ASSIGN_OR_RETURN(float epsilon_attr, attr(ctx, ctx.attrs().get_float("epsilon", 1e-4f)));
  HUBIMG_ASSIGN_OR_RETURN(bool is_training, attr(ctx, ctx.attrs().get_bool("is_training", true)));
  HUBIMG_ASSIGN_OR_RETURN(float factor_attr,
                          attr(ctx, ctx.attrs().get_float("exponential_avg_factor", 1.0f)));
  const Tensor& x = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(bool channels_last, read_batch_norm_format(ctx, x.rank()));
  const ChannelLayout layout = channel_layout(x, channels_last);
  const int64_t channels = layout.channels;
  HUBIMG_RETURN_IF_ERROR(check_channel_vector(ctx, 1, "scale", channels));
  HUBIMG_RETURN_IF_ERROR(check_channel_vector(ctx, 2, "offset", channels));
  const bool uses_running_stats = !is_training || factor_attr != 1.0f;
  for (size_t i : {3u, 4u}) {
    const char* name = i == 3 ? "mean" : "variance";
    if (ctx.input(i).rank() != 1) {
      return ctx.error(std::string(name) + " must be 1-D, got " + ctx.input(i).description());
    }
    if (uses_running_stats) HUBIMG_RETURN_IF_ERROR(check_channel_vector(ctx, i, name, channels));
  }

  const T epsilon = static_cast<T>(epsilon_attr);
  const T factor = static_cast<T>(factor_attr);
  const DType dtype = x.dtype();
  Tensor y(dtype, x.shape());
  Tensor out_mean(dtype, {channels});
  Tensor out_variance(dtype, {channels});
  Tensor saved_mean(dtype, {channels});
  Tensor saved_variance(dtype, {channels});

  const T* in = x.data<T>();
  const T* scale = ctx.input(1).data<T>();
  const T* offset = ctx.input(2).data<T>();
  const T* mean_in = ctx.input(3).data<T>();
  const T* variance_in = ctx.input(4).data<T>();
  std::vector<T> mean(static_cast<size_t>(channels));
  std::vector<T> variance(static_cast<size_t>(channels));

  if (x.num_elements() == 0) {
    // TensorFlow reports NaN statistics for an empty batch.
    const T nan = std::numeric_limits<T>::quiet_NaN();
    for (Tensor* t : {&out_mean, &out_variance, &saved_mean, &saved_variance}) {
      for (int64_t c = 0; c < channels; ++c) t->mutable_data<T>()[c] = nan;
    }
  } else if (is_training) {
    const int64_t n = x.num_elements() / channels;
    std::vector<Accumulator<T>> sum(static_cast<size_t>(channels), 0);
    for (int64_t i = 0; i < x.num_elements(); ++i) sum[layout.channel_of(i)] += in[i];
    for (int64_t c = 0; c < channels; ++c) mean[c] = static_cast<T>(sum[c] / n);
    std::vector<Accumulator<T>> squares(static_cast<size_t>(channels), 0);
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      const Accumulator<T> centered = in[i] - mean[layout.channel_of(i)];
      squares[layout.channel_of(i)] += centered * centered;
    }
    for (int64_t c = 0; c < channels; ++c) variance[c] = static_cast<T>(squares[c] / n);
    const T bessel = static_cast<T>(n) / static_cast<T>(n > 1 ? n - 1 : 1);
    for (int64_t c = 0; c < channels; ++c) {
      saved_mean.mutable_data<T>()[c] = mean[c];
      saved_variance.mutable_data<T>()[c] = variance[c];
      if (factor_attr == 1.0f) {
        out_mean.mutable_data<T>()[c] = mean[c];
        out_variance.mutable_data<T>()[c] = variance[c] * bessel;
      } else {
        out_mean.mutable_data<T>()[c] = (T(1) - factor) * mean_in[c] + factor * mean[c];
        out_variance.mutable_data<T>()[c] =
            (T(1) - factor) * variance_in[c] + factor * bessel * variance[c];
      }
    }
  } else {
    for (int64_t c = 0; c < channels; ++c) {
      mean[c] = mean_in[c];
      variance[c] = variance_in[c];
      // TensorFlow leaves the reserve spaces unwritten in inference; we pass the inputs.
      out_mean.mutable_data<T>()[c] = saved_mean.mutable_data<T>()[c] = mean[c];
      out_variance.mutable_data<T>()[c] = saved_variance.mutable_data<T>()[c] = variance[c];
    }
  }

  if (x.num_elements() > 0) {
    std::vector<T> multiplier(static_cast<size_t>(channels));
    for (int64_t c = 0; c < channels; ++c) {
      multiplier[c] = scale[c] / std::sqrt(variance[c] + epsilon);
    }
    T* out = y.mutable_data<T>();
    for (int64_t i = 0; i < x.num_elements(); ++i) {
      const int64_t c = layout.channel_of(i);
      out[i] = (in[i] - mean[c]) * multiplier[c] + offset[c];
    }
  }

  ctx.set_output(0, std::move(y));
  ctx.set_output(1, std::move(out_mean));
  ctx.set_output(2, std::move(out_variance));
  ctx.set_output(3, std::move(saved_mean));
  ctx.set_output(4, std::move(saved_variance));
  if (has_reserve_space_3) ctx.set_output(5, Tensor(dtype, {}));
  return {};
}

Status fused_batch_norm_op(KernelContext& ctx, bool has_reserve_space_3) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 5));
  const Tensor& x = ctx.input(0);
  if (x.rank() != 4 && x.rank() != 5) {
    return ctx.error("x must be 4-D or 5-D, got " + x.description());
  }
  for (size_t i = 1; i < 5; ++i) {
    // Parameters have dtype U; we run U == T (float32, or float64).
    if (ctx.input(i).dtype() != x.dtype()) {
      return ctx.error(StatusCode::kUnimplemented, "input " + std::to_string(i) + " has dtype " +
                                                       dtype_name(ctx.input(i).dtype()) +
                                                       "; only parameters of x's dtype " +
                                                       dtype_name(x.dtype()) + " are supported");
    }
  }
  return dispatch_float(
      ctx, x.dtype(), [&]<typename T>() { return fused_batch_norm<T>(ctx, has_reserve_space_3); });
}

Status bias_add(KernelContext& ctx, bool read_data_format) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  HUBIMG_RETURN_IF_ERROR(expect_same_dtype(ctx, 1));
  std::string format = "NHWC";
  if (read_data_format) {
    HUBIMG_ASSIGN_OR_RETURN(format, attr(ctx, ctx.attrs().get_string("data_format", "NHWC")));
  }
  if (format != "NHWC" && format != "NCHW") {
    return ctx.error("unsupported data_format '" + format + "' (expected NHWC or NCHW)");
  }
  const Tensor& value = ctx.input(0);
  const Tensor& bias = ctx.input(1);
  if (value.rank() < 2) return ctx.error("value must be at least 2-D, got " + value.description());
  if (bias.rank() != 1) return ctx.error("bias must be 1-D, got " + bias.description());
  const ChannelLayout layout = channel_layout(value, format == "NHWC");
  if (bias.num_elements() != layout.channels) {
    return ctx.error("bias " + bias.description() + " must match the " + format +
                     " channel dimension of value " + value.description());
  }
  return dispatch_real(ctx, value.dtype(), [&]<typename T>() -> Status {
    Tensor output(value.dtype(), value.shape());
    const T* in = value.data<T>();
    const T* b = bias.data<T>();
    T* out = output.mutable_data<T>();
    for (int64_t i = 0; i < value.num_elements(); ++i) out[i] = in[i] + b[layout.channel_of(i)];
    ctx.set_output(0, std::move(output));
    return {};
  });
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kNnNormOpDefs[] = R"pb(
  op {
    name: "BiasAdd"
    input_arg { name: "value" type_attr: "T" }
    input_arg { name: "bias" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
      allowed_values { list { s: "NHWC" s: "NCHW" } }
    }
  }
  op {
    name: "BiasAddV1"
    input_arg { name: "value" type_attr: "T" }
    input_arg { name: "bias" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "FusedBatchNorm"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "scale" type_attr: "T" }
    input_arg { name: "offset" type_attr: "T" }
    input_arg { name: "mean" type_attr: "T" }
    input_arg { name: "variance" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    output_arg { name: "batch_mean" type_attr: "T" }
    output_arg { name: "batch_variance" type_attr: "T" }
    output_arg { name: "reserve_space_1" type_attr: "T" }
    output_arg { name: "reserve_space_2" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "epsilon"
      type: "float"
      default_value { f: 0.0001 }
    }
    attr {
      name: "exponential_avg_factor"
      type: "float"
      default_value { f: 1.0 }
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
    name: "FusedBatchNormV2"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "scale" type_attr: "U" }
    input_arg { name: "offset" type_attr: "U" }
    input_arg { name: "mean" type_attr: "U" }
    input_arg { name: "variance" type_attr: "U" }
    output_arg { name: "y" type_attr: "T" }
    output_arg { name: "batch_mean" type_attr: "U" }
    output_arg { name: "batch_variance" type_attr: "U" }
    output_arg { name: "reserve_space_1" type_attr: "U" }
    output_arg { name: "reserve_space_2" type_attr: "U" }
    attr { name: "T" type: "type" }
    attr { name: "U" type: "type" }
    attr {
      name: "epsilon"
      type: "float"
      default_value { f: 0.0001 }
    }
    attr {
      name: "exponential_avg_factor"
      type: "float"
      default_value { f: 1.0 }
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
    name: "FusedBatchNormV3"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "scale" type_attr: "U" }
    input_arg { name: "offset" type_attr: "U" }
    input_arg { name: "mean" type_attr: "U" }
    input_arg { name: "variance" type_attr: "U" }
    output_arg { name: "y" type_attr: "T" }
    output_arg { name: "batch_mean" type_attr: "U" }
    output_arg { name: "batch_variance" type_attr: "U" }
    output_arg { name: "reserve_space_1" type_attr: "U" }
    output_arg { name: "reserve_space_2" type_attr: "U" }
    output_arg { name: "reserve_space_3" type_attr: "U" }
    attr {
      name: "T"
      type: "type"
      allowed_values { list { type: DT_HALF type: DT_BFLOAT16 type: DT_FLOAT } }
    }
    attr {
      name: "U"
      type: "type"
      allowed_values { list { type: DT_BFLOAT16 type: DT_FLOAT } }
    }
    attr {
      name: "epsilon"
      type: "float"
      default_value { f: 0.0001 }
    }
    attr {
      name: "exponential_avg_factor"
      type: "float"
      default_value { f: 1 }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
      allowed_values { list { s: "NHWC" s: "NCHW" s: "NDHWC" s: "NCDHW" } }
    }
    attr {
      name: "is_training"
      type: "bool"
      default_value { b: true }
    }
  }
)pb";

void register_norm_ops(OpRegistry& r) {
  r.add({"FusedBatchNorm", {}, [](KernelContext& ctx) { return fused_batch_norm_op(ctx, false); }});
  r.add(
      {"FusedBatchNormV2", {}, [](KernelContext& ctx) { return fused_batch_norm_op(ctx, false); }});
  r.add(
      {"FusedBatchNormV3", {}, [](KernelContext& ctx) { return fused_batch_norm_op(ctx, true); }});
  r.add({"BiasAdd", {}, [](KernelContext& ctx) { return bias_add(ctx, true); }});
  r.add({"BiasAddV1", {}, [](KernelContext& ctx) { return bias_add(ctx, false); }});
  r.set_row_rule(RowRule::kBatchNorm, {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"});
  r.set_row_rule(RowRule::kBroadcastBinary, {"BiasAdd"});
  r.set_op_defs(kNnNormOpDefs);
}

}  // namespace hubimg::ops::nn
