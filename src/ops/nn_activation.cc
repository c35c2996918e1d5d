// Element-wise activations and the row-wise Softmax / LogSoftmax.
#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/fast_paths.h"
#include "ops/kernel_util.h"
#include "ops/nn_kernels.h"
#include "ops/nn_util.h"

namespace hubimg::ops::nn {
namespace {

// Applies fn element-wise; `kIntegers` also admits TensorFlow's integer types for the op.
template <bool kIntegers, typename Fn>
Status map_elements(KernelContext& ctx, Fn fn) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  const Tensor& x = ctx.input(0);
  if (fast_paths_enabled() && x.dtype() == DType::kFloat32) {
    // Fast path (see fast_paths.h): in place when the input is sole-owned, on the thread pool.
    Tensor y = forward_or_allocate(ctx.inputs(), {0}, DType::kFloat32, x.shape());
    const float* in = x.data<float>();
    float* out = y.mutable_data<float>();
    parallel_rows(x.num_elements(), 1, [in, out, &fn](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) out[i] = fn(in[i]);
    });
    ctx.set_output(0, std::move(y));
    return {};
  }
  auto body = [&]<typename T>() -> Status {
    Tensor y(x.dtype(), x.shape());
    const T* in = x.data<T>();
    T* out = y.mutable_data<T>();
    for (int64_t i = 0; i < x.num_elements(); ++i) out[i] = fn(in[i]);
    ctx.set_output(0, std::move(y));
    return {};
  };
  if constexpr (kIntegers) {
    return dispatch_real(ctx, x.dtype(), body);
  } else {
    return dispatch_float(ctx, x.dtype(), body);
  }
}

Status relu(KernelContext& ctx) {
  return map_elements<true>(ctx, []<typename T>(T x) { return std::max(x, T(0)); });
}

Status relu6(KernelContext& ctx) {
  return map_elements<true>(ctx, []<typename T>(T x) { return std::min(std::max(x, T(0)), T(6)); });
}

Status leaky_relu(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(float alpha, attr(ctx, ctx.attrs().get_float("alpha", 0.2f)));
  // Not max(x, alpha * x): alpha may be above 1 or negative.
  return map_elements<false>(
      ctx, [alpha]<typename T>(T x) { return x > T(0) ? x : x * static_cast<T>(alpha); });
}

Status elu(KernelContext& ctx) {
  return map_elements<false>(ctx, []<typename T>(T x) { return x < T(0) ? std::expm1(x) : x; });
}

Status selu(KernelContext& ctx) {
  return map_elements<false>(ctx, []<typename T>(T x) {
    const T scale = static_cast<T>(1.0507009873554804934193349852946);
    const T alpha = static_cast<T>(1.6732632423543772848170429916717);
    return x < T(0) ? scale * alpha * std::expm1(x) : scale * x;
  });
}

Status sigmoid(KernelContext& ctx) {
  return map_elements<false>(ctx, []<typename T>(T x) { return T(1) / (T(1) + std::exp(-x)); });
}

Status tanh_op(KernelContext& ctx) {
  return map_elements<false>(ctx, []<typename T>(T x) { return std::tanh(x); });
}

Status softplus(KernelContext& ctx) {
  // TensorFlow's softplus_op.h: beyond these thresholds log1p(exp(x)) equals x (large x) or
  // exp(x) (small x) to machine precision, and exp(x) could overflow or underflow.
  return map_elements<false>(ctx, []<typename T>(T x) {
    const T threshold = std::log(std::numeric_limits<T>::epsilon()) + T(2);
    if (x > -threshold) return x;
    if (x < threshold) return std::exp(x);
    return std::log1p(std::exp(x));
  });
}

Status softsign(KernelContext& ctx) {
  return map_elements<false>(ctx, []<typename T>(T x) { return x / (T(1) + std::abs(x)); });
}

// Softmax (or its log) over the last axis, shifted by the row maximum for stability.
template <bool kLog>
Status softmax(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  const Tensor& logits = ctx.input(0);
  if (logits.rank() < 1) {
    return ctx.error("logits must have rank >= 1, got " + logits.description());
  }
  return dispatch_float(ctx, logits.dtype(), [&]<typename T>() -> Status {
    Tensor result(logits.dtype(), logits.shape());
    const int64_t depth = logits.dim(logits.rank() - 1);
    const int64_t rows = depth == 0 ? 0 : logits.num_elements() / depth;
    for (int64_t r = 0; r < rows; ++r) {
      const T* x = logits.data<T>() + r * depth;
      T* y = result.mutable_data<T>() + r * depth;
      const T row_max = *std::max_element(x, x + depth);
      Accumulator<T> sum = 0;
      for (int64_t i = 0; i < depth; ++i) sum += std::exp(x[i] - row_max);
      for (int64_t i = 0; i < depth; ++i) {
        if constexpr (kLog) {
          y[i] = static_cast<T>((x[i] - row_max) - std::log(sum));
        } else {
          y[i] = static_cast<T>(std::exp(x[i] - row_max) / sum);
        }
      }
    }
    ctx.set_output(0, std::move(result));
    return {};
  });
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kNnActivationOpDefs[] = R"pb(
  op {
    name: "Elu"
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "activations" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "LeakyRelu"
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "activations" type_attr: "T" }
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
    name: "LogSoftmax"
    input_arg { name: "logits" type_attr: "T" }
    output_arg { name: "logsoftmax" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Relu"
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "activations" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Relu6"
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "activations" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Selu"
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "activations" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Sigmoid"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Softmax"
    input_arg { name: "logits" type_attr: "T" }
    output_arg { name: "softmax" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Softplus"
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "activations" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Softsign"
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "activations" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Tanh"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
)pb";

void register_activation_ops(OpRegistry& r) {
  r.add({"Relu", {}, relu});
  r.add({"Relu6", {}, relu6});
  r.add({"LeakyRelu", {}, leaky_relu});
  r.add({"Elu", {}, elu});
  r.add({"Selu", {}, selu});
  r.add({"Sigmoid", {}, sigmoid});
  r.add({"Tanh", {}, tanh_op});
  r.add({"Softplus", {}, softplus});
  r.add({"Softsign", {}, softsign});
  r.add({"Softmax", {}, softmax<false>});
  r.add({"LogSoftmax", {}, softmax<true>});
  r.set_row_rule(RowRule::kElementwise, {"Relu", "Relu6", "LeakyRelu", "Elu", "Selu", "Sigmoid",
                                         "Tanh", "Softplus", "Softsign"});
  r.set_row_rule(RowRule::kLastAxis, {"Softmax", "LogSoftmax"});
  r.set_op_defs(kNnActivationOpDefs);
}

}  // namespace hubimg::ops::nn
