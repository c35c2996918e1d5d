// LRN (tf.nn.local_response_normalization: AlexNet- and GoogLeNet-style models) and LRNGrad,
// with the semantics of TensorFlow's CPU kernels (tensorflow/core/kernels/lrn_op.cc).
//
// Shapes: input [batch, rows, cols, depth] -> output of the same shape. Along the last axis,
//   sqr_sum[..., d] = sum(input[..., d - depth_radius : d + depth_radius + 1] ** 2)
//   output = input / (bias + alpha * sqr_sum) ** beta
// the window clipped to the channels there are. LRNGrad(grads, input, output) is its adjoint:
// d input[k] += grads[j] * ((k == j) * norm_j ** -beta - 2 alpha beta input[k] output[j] / norm_j)
// for every k in j's window, norm_j = bias + alpha * sqr_sum[j].
#include <algorithm>
#include <cmath>
#include <string>

#include "ops/kernel_util.h"
#include "ops/nn_kernels.h"
#include "ops/nn_util.h"

namespace hubimg::ops::nn {
namespace {

struct LrnParams {
  int64_t depth_radius = 5;
  double bias = 1.0, alpha = 1.0, beta = 0.5;
};

Expected<LrnParams> lrn_params(const KernelContext& ctx) {
  LrnParams p;
  HUBIMG_ASSIGN_OR_RETURN(p.depth_radius, attr(ctx, ctx.attrs().get_int("depth_radius", 5)));
  HUBIMG_ASSIGN_OR_RETURN(float bias, attr(ctx, ctx.attrs().get_float("bias", 1.0f)));
  HUBIMG_ASSIGN_OR_RETURN(float alpha, attr(ctx, ctx.attrs().get_float("alpha", 1.0f)));
  HUBIMG_ASSIGN_OR_RETURN(float beta, attr(ctx, ctx.attrs().get_float("beta", 0.5f)));
  if (p.depth_radius < 0 || p.depth_radius > (int64_t{1} << 30)) {
    return ctx.error("depth_radius = " + std::to_string(p.depth_radius) + " is not in [0, 2^30]");
  }
  p.bias = bias;
  p.alpha = alpha;
  p.beta = beta;
  return p;
}

// The channel window [begin, end) of channel j.
inline std::pair<int64_t, int64_t> window(int64_t j, int64_t depth, int64_t radius) {
  return {std::max<int64_t>(0, j - radius), std::min(depth, j + radius + 1)};
}

Status lrn(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  HUBIMG_RETURN_IF_ERROR(expect_rank(ctx, 0, 4));
  HUBIMG_ASSIGN_OR_RETURN(LrnParams p, lrn_params(ctx));
  const Tensor& input = ctx.input(0);
  return dispatch_float(ctx, input.dtype(), [&]<typename T>() -> Status {
    Tensor output(input.dtype(), input.shape());
    const int64_t depth = input.dim(3);
    const int64_t rows = depth == 0 ? 0 : input.num_elements() / depth;
    const T* in = input.data<T>();
    T* out = output.mutable_data<T>();
    for (int64_t r = 0; r < rows; ++r) {
      const T* x = in + r * depth;
      for (int64_t j = 0; j < depth; ++j) {
        const auto [begin, end] = window(j, depth, p.depth_radius);
        double sqr_sum = 0;
        for (int64_t k = begin; k < end; ++k) sqr_sum += static_cast<double>(x[k]) * x[k];
        out[r * depth + j] = static_cast<T>(x[j] / std::pow(p.bias + p.alpha * sqr_sum, p.beta));
      }
    }
    ctx.set_output(0, std::move(output));
    return {};
  });
}

Status lrn_grad(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  for (size_t i = 0; i < 3; ++i) HUBIMG_RETURN_IF_ERROR(expect_rank(ctx, i, 4));
  const Tensor& grads = ctx.input(0);
  const Tensor& input = ctx.input(1);
  const Tensor& output = ctx.input(2);
  if (grads.shape() != input.shape() || output.shape() != input.shape() ||
      grads.dtype() != input.dtype() || output.dtype() != input.dtype()) {
    return ctx.error("input_grads " + grads.description() + ", input_image " + input.description() +
                     " and output_image " + output.description() +
                     " must have the same shape and dtype");
  }
  HUBIMG_ASSIGN_OR_RETURN(LrnParams p, lrn_params(ctx));
  return dispatch_float(ctx, input.dtype(), [&]<typename T>() -> Status {
    Tensor result(input.dtype(), input.shape());  // zeros
    const int64_t depth = input.dim(3);
    const int64_t rows = depth == 0 ? 0 : input.num_elements() / depth;
    for (int64_t r = 0; r < rows; ++r) {
      const T* x = input.data<T>() + r * depth;
      const T* y = output.data<T>() + r * depth;
      const T* g = grads.data<T>() + r * depth;
      T* dx = result.mutable_data<T>() + r * depth;
      for (int64_t j = 0; j < depth; ++j) {
        const auto [begin, end] = window(j, depth, p.depth_radius);
        double sqr_sum = 0;
        for (int64_t k = begin; k < end; ++k) sqr_sum += static_cast<double>(x[k]) * x[k];
        const double norm = p.bias + p.alpha * sqr_sum;
        for (int64_t k = begin; k < end; ++k) {
          double d = -2.0 * p.alpha * p.beta * x[k] * y[j] / norm;
          if (k == j) d += std::pow(norm, -p.beta);
          dx[k] = static_cast<T>(dx[k] + d * g[j]);
        }
      }
    }
    ctx.set_output(0, std::move(result));
    return {};
  });
}

}  // namespace

// TensorFlow's OpDefs (tensorflow/core/ops/nn_ops.cc), attached to their entries.
constexpr char kLrnOpDefs[] = R"pb(
  op {
    name: "LRN"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "depth_radius"
      type: "int"
      default_value { i: 5 }
    }
    attr {
      name: "bias"
      type: "float"
      default_value { f: 1 }
    }
    attr {
      name: "alpha"
      type: "float"
      default_value { f: 1 }
    }
    attr {
      name: "beta"
      type: "float"
      default_value { f: 0.5 }
    }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_FLOAT }
      allowed_values { list { type: DT_HALF type: DT_BFLOAT16 type: DT_FLOAT } }
    }
  }
  op {
    name: "LRNGrad"
    input_arg { name: "input_grads" type_attr: "T" }
    input_arg { name: "input_image" type_attr: "T" }
    input_arg { name: "output_image" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "depth_radius"
      type: "int"
      default_value { i: 5 }
    }
    attr {
      name: "bias"
      type: "float"
      default_value { f: 1 }
    }
    attr {
      name: "alpha"
      type: "float"
      default_value { f: 1 }
    }
    attr {
      name: "beta"
      type: "float"
      default_value { f: 0.5 }
    }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_FLOAT }
      allowed_values { list { type: DT_HALF type: DT_BFLOAT16 type: DT_FLOAT } }
    }
  }
)pb";

void register_lrn_ops(OpRegistry& r) {
  r.add({"LRN", {}, lrn});
  r.add({"LRNGrad", {}, lrn_grad});
  r.set_row_rule(RowRule::kElementwise, {"LRN"});
  r.set_op_defs(kLrnOpDefs);
}

}  // namespace hubimg::ops::nn
