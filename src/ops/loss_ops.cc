// Losses a training step appends to a model's graph: SparseSoftmaxCrossEntropyWithLogits, with
// TensorFlow's kernel semantics (tensorflow/core/kernels/sparse_xent_op.h).
#include <cmath>

#include "ops/kernel_util.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

// logits [batch, classes] float, labels [batch] int32/int64 ->
// loss [batch] = logsumexp(logits) - logits[label], backprop [batch, classes] = softmax - onehot.
// A label outside [0, classes) is an error (TF's CPU kernel reports it too).
template <typename T, typename L>
Status sparse_xent(KernelContext& ctx) {
  const Tensor& logits = ctx.input(0);
  const Tensor& labels = ctx.input(1);
  const int64_t batch = logits.dim(0);
  const int64_t classes = logits.dim(1);
  Tensor loss = Tensor::uninitialized(logits.dtype(), {batch});
  Tensor backprop = Tensor::uninitialized(logits.dtype(), {batch, classes});
  const T* x = logits.data<T>();
  const L* y = labels.data<L>();
  T* out_loss = loss.mutable_data<T>();
  T* out_bp = backprop.mutable_data<T>();
  for (int64_t b = 0; b < batch; ++b) {
    const T* row = x + b * classes;
    T* bp = out_bp + b * classes;
    const int64_t label = static_cast<int64_t>(y[b]);
    if (label < 0 || label >= classes) {
      return ctx.error("label " + std::to_string(label) + " of row " + std::to_string(b) +
                       " is outside [0, " + std::to_string(classes) + ")");
    }
    T max = row[0];
    for (int64_t c = 1; c < classes; ++c) max = std::max(max, row[c]);
    T sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(row[c] - max);
    const T log_sum = std::log(sum);
    for (int64_t c = 0; c < classes; ++c) {
      bp[c] = std::exp(row[c] - max) / sum - (c == label ? T(1) : T(0));
    }
    out_loss[b] = log_sum - (row[label] - max);
  }
  ctx.set_output(0, std::move(loss));
  ctx.set_output(1, std::move(backprop));
  return {};
}

Status sparse_xent_kernel(KernelContext& ctx) {
  if (ctx.num_inputs() != 2) return ctx.error("expects 2 inputs (logits, labels)");
  const Tensor& logits = ctx.input(0);
  const Tensor& labels = ctx.input(1);
  if (logits.rank() != 2 || labels.rank() != 1 || labels.dim(0) != logits.dim(0)) {
    return ctx.error("wants logits [batch, classes] and labels [batch], got " +
                     logits.description() + " and " + labels.description());
  }
  if (logits.dim(1) == 0 && logits.dim(0) > 0) return ctx.error("logits have no classes");
  const bool wide = labels.dtype() == DType::kInt64;
  if (!wide && labels.dtype() != DType::kInt32) {
    return ctx.error("labels must be int32 or int64, got " + labels.description());
  }
  switch (logits.dtype()) {
    case DType::kFloat32:
      return wide ? sparse_xent<float, int64_t>(ctx) : sparse_xent<float, int32_t>(ctx);
    case DType::kFloat64:
      return wide ? sparse_xent<double, int64_t>(ctx) : sparse_xent<double, int32_t>(ctx);
    default: return ctx.error("logits must be float32 or float64, got " + logits.description());
  }
}

// d logits = grad_loss[:, None] * backprop (the second-order term for a cotangent on
// `backprop` is not supported: nothing in a training step differentiates it).
Expected<std::vector<GradValue>> sparse_xent_gradient(GradientBuilder& b) {
  if (b.grad(1).valid()) return b.error("a gradient through the backprop output is not supported");
  if (!b.grad(0).valid()) return std::vector<GradValue>{};
  HUBIMG_ASSIGN_OR_RETURN(GradValue axis, b.constant(Tensor::scalar<int32_t>(-1)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue column, b.add1("ExpandDims", {b.grad(0), axis}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue dx, b.add1("Mul", {column, b.output(1)}));
  return std::vector<GradValue>{dx, {}};
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kLossOpsOpDefs[] = R"pb(
  op {
    name: "SparseSoftmaxCrossEntropyWithLogits"
    input_arg { name: "features" type_attr: "T" }
    input_arg { name: "labels" type_attr: "Tlabels" }
    output_arg { name: "loss" type_attr: "T" }
    output_arg { name: "backprop" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tlabels"
      type: "type"
      default_value { type: DT_INT64 }
    }
  }
)pb";

void register_loss_ops(OpRegistry& r) {
  OpSpec spec{"SparseSoftmaxCrossEntropyWithLogits", {}, sparse_xent_kernel};
  spec.gradient = sparse_xent_gradient;
  r.add(std::move(spec));
  r.set_op_defs(kLossOpsOpDefs);
}

}  // namespace hubimg::ops
