// Plumbing ops the executor needs: constants, variables and shape assertions.
#include "ops/op_registry.h"
#include "ops/variable.h"

namespace hubimg::ops {
namespace {

Status const_kernel(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(Tensor value, ctx.attrs().get_tensor("value"));
  ctx.set_output(0, std::move(value));
  return {};
}

Variable* single_variable(KernelContext& ctx) {
  return ctx.variables().size() == 1 ? ctx.variables()[0] : nullptr;
}

Status read_variable(KernelContext& ctx) {
  Variable* v = single_variable(ctx);
  if (v == nullptr) return ctx.error("needs exactly one variable handle");
  if (!v->value().valid()) return ctx.error("variable '" + v->name() + "' has no value");
  ctx.set_output(0, v->value());
  return {};
}

// AssignVariableOp, AssignAddVariableOp (sign +1), AssignSubVariableOp (sign -1).
Status assign_variable(KernelContext& ctx, int sign) {
  Variable* v = single_variable(ctx);
  if (v == nullptr || ctx.num_inputs() != 1) return ctx.error("needs a variable and a value");
  const Tensor& value = ctx.input(0);
  if (sign == 0) {
    if (v->value().valid() && (value.dtype() != v->value().dtype())) {
      return ctx.error("assigns " + value.description() + " to variable '" + v->name() + "' of " +
                       v->value().description());
    }
    v->assign(value);
    return {};
  }
  const Tensor& old = v->value();
  if (old.dtype() != value.dtype() || old.shape() != value.shape()) {
    return ctx.error("updates variable '" + v->name() + "' " + old.description() + " with " +
                     value.description());
  }
  Tensor updated(old.dtype(), old.shape());
  const int64_t n = old.num_elements();
  switch (old.dtype()) {
    case DType::kFloat32: {
      const float* a = old.data<float>();
      const float* b = value.data<float>();
      float* o = updated.mutable_data<float>();
      for (int64_t i = 0; i < n; ++i) o[i] = a[i] + static_cast<float>(sign) * b[i];
      break;
    }
    case DType::kInt64: {
      const int64_t* a = old.data<int64_t>();
      const int64_t* b = value.data<int64_t>();
      int64_t* o = updated.mutable_data<int64_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = a[i] + sign * b[i];
      break;
    }
    case DType::kInt32: {
      const int32_t* a = old.data<int32_t>();
      const int32_t* b = value.data<int32_t>();
      int32_t* o = updated.mutable_data<int32_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = a[i] + sign * b[i];
      break;
    }
    default: return ctx.error(StatusCode::kUnimplemented, "dtype " + dtype_name(old.dtype()));
  }
  v->assign(std::move(updated));
  return {};
}

Status forward_input(KernelContext& ctx) {
  if (ctx.num_inputs() < 1) return ctx.error("needs an input");
  ctx.set_output(0, ctx.input(0));
  return {};
}

Status forward_inputs(KernelContext& ctx) {
  if (ctx.num_inputs() != ctx.num_outputs()) {
    return ctx.error(std::to_string(ctx.num_inputs()) + " inputs for " +
                     std::to_string(ctx.num_outputs()) + " outputs");
  }
  for (size_t i = 0; i < ctx.num_inputs(); ++i) ctx.set_output(i, ctx.input(i));
  return {};
}

Status ensure_shape(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(PartialShape shape, ctx.attrs().get_shape("shape"));
  if (!shape.is_compatible_with(ctx.input(0).shape())) {
    return ctx.error("shape " + dims_to_string(ctx.input(0).shape()) + " is not compatible with " +
                     shape.to_string());
  }
  ctx.set_output(0, ctx.input(0));
  return {};
}

// var -= alpha * delta (plain SGD, as Keras optimizers trace it into a `train` signature).
Status apply_gradient_descent(KernelContext& ctx) {
  Variable* v = single_variable(ctx);
  if (v == nullptr || ctx.num_inputs() != 2) return ctx.error("needs a variable, alpha and delta");
  const Tensor& alpha = ctx.input(0);
  const Tensor& delta = ctx.input(1);
  const Tensor& old = v->value();
  if (old.dtype() != DType::kFloat32 || alpha.dtype() != DType::kFloat32 ||
      alpha.num_elements() != 1 || delta.dtype() != DType::kFloat32 ||
      delta.shape() != old.shape()) {
    return ctx.error(
        "wants float32 variable, scalar alpha and delta of the variable's shape; got " +
        old.description() + ", " + alpha.description() + ", " + delta.description());
  }
  Tensor updated(DType::kFloat32, old.shape());
  const float a = alpha.data<float>()[0];
  for (int64_t i = 0; i < old.num_elements(); ++i) {
    updated.mutable_data<float>()[i] = old.data<float>()[i] - a * delta.data<float>()[i];
  }
  v->assign(std::move(updated));
  return {};
}

// Reduction indices for the gradients of a broadcasting binary op (TensorFlow's BCast): input
// k is summed over every output dimension where its right-aligned, 1-padded size is 1.
Status broadcast_gradient_args(KernelContext& ctx) {
  if (ctx.num_inputs() != 2) return ctx.error("expects two shape vectors");
  const DType dtype = ctx.input(0).dtype();
  std::vector<std::vector<int64_t>> shapes;
  for (size_t k = 0; k < 2; ++k) {
    const Tensor& s = ctx.input(k);
    if (s.rank() != 1 || s.dtype() != dtype || (dtype != DType::kInt32 && dtype != DType::kInt64)) {
      return ctx.error("shapes must be int32 or int64 vectors of one dtype, got " +
                       s.description());
    }
    std::vector<int64_t> dims;
    for (int64_t i = 0; i < s.num_elements(); ++i)
      dims.push_back(static_cast<int64_t>(element_as_double(s, i)));
    shapes.push_back(std::move(dims));
  }
  const size_t rank = std::max(shapes[0].size(), shapes[1].size());
  std::vector<std::vector<int64_t>> reduce(2);
  for (size_t j = 0; j < rank; ++j) {
    int64_t d[2];
    for (size_t k = 0; k < 2; ++k) {
      size_t pad = rank - shapes[k].size();
      d[k] = j < pad ? 1 : shapes[k][j - pad];
    }
    if (d[0] != d[1] && d[0] != 1 && d[1] != 1) {
      return ctx.error("incompatible shapes for broadcasting: " + dims_to_string(shapes[0]) +
                       " and " + dims_to_string(shapes[1]));
    }
    for (size_t k = 0; k < 2; ++k) {
      if (d[k] == 1) reduce[k].push_back(static_cast<int64_t>(j));
    }
  }
  for (size_t k = 0; k < 2; ++k) {
    Tensor out(dtype, {static_cast<int64_t>(reduce[k].size())});
    for (size_t i = 0; i < reduce[k].size(); ++i) {
      if (dtype == DType::kInt32) {
        out.mutable_data<int32_t>()[i] = static_cast<int32_t>(reduce[k][i]);
      } else {
        out.mutable_data<int64_t>()[i] = reduce[k][i];
      }
    }
    ctx.set_output(k, std::move(out));
  }
  return {};
}

// Stateful RNG bookkeeping (tf.random.Generator, Keras random layers): returns the variable's
// int64[3] state [counter_lo, counter_hi, key] and advances the 128-bit Philox counter by
// `delta`, the same as drawing that many 128-bit Philox blocks.
Status rng_read_and_skip(KernelContext& ctx) {
  Variable* v = single_variable(ctx);
  if (v == nullptr || ctx.num_inputs() != 2)
    return ctx.error("needs a state variable, alg and delta");
  const Tensor& state = v->value();
  if (state.dtype() != DType::kInt64 || state.num_elements() < 2) {
    return ctx.error("state variable '" + v->name() +
                     "' must be int64 with at least 2 elements, is " + state.description());
  }
  const Tensor& alg = ctx.input(0);
  if (alg.num_elements() != 1 || element_as_double(alg, 0) != 1) {
    return ctx.error(StatusCode::kUnimplemented, "only the Philox algorithm (1) is supported");
  }
  const Tensor& delta = ctx.input(1);
  if (delta.num_elements() != 1) return ctx.error("delta must be a scalar");
  uint64_t skip = delta.dtype() == DType::kUInt64
                      ? delta.data<uint64_t>()[0]
                      : static_cast<uint64_t>(element_as_double(delta, 0));
  Tensor old(DType::kInt64, {3});
  for (int64_t i = 0; i < std::min<int64_t>(3, state.num_elements()); ++i) {
    old.mutable_data<int64_t>()[i] = state.data<int64_t>()[i];
  }
  Tensor next = state.clone();
  auto* words = reinterpret_cast<uint64_t*>(next.mutable_data<int64_t>());
  const uint64_t before = words[0];
  words[0] += skip;
  if (words[0] < before) ++words[1];
  v->assign(std::move(next));
  ctx.set_output(0, std::move(old));
  return {};
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kStateOpsOpDefs[] = R"pb(
  op {
    name: "AssignAddVariableOp"
    input_arg { name: "resource" type: DT_RESOURCE }
    input_arg { name: "value" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    is_stateful: true
  }
  op {
    name: "AssignSubVariableOp"
    input_arg { name: "resource" type: DT_RESOURCE }
    input_arg { name: "value" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    is_stateful: true
  }
  op {
    name: "AssignVariableOp"
    input_arg { name: "resource" type: DT_RESOURCE }
    input_arg { name: "value" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    attr {
      name: "validate_shape"
      type: "bool"
      default_value { b: false }
    }
    is_stateful: true
  }
  op {
    name: "BroadcastGradientArgs"
    input_arg { name: "s0" type_attr: "T" }
    input_arg { name: "s1" type_attr: "T" }
    output_arg { name: "r0" type_attr: "T" }
    output_arg { name: "r1" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "Case"
    input_arg { name: "branch_index" type: DT_INT32 }
    input_arg { name: "input" type_list_attr: "Tin" }
    output_arg { name: "output" type_list_attr: "Tout" }
    attr { name: "Tin" type: "list(type)" has_minimum: true }
    attr { name: "Tout" type: "list(type)" has_minimum: true }
    attr { name: "branches" type: "list(func)" has_minimum: true minimum: 1 }
    attr {
      name: "output_shapes"
      type: "list(shape)"
      default_value { list {} }
    }
    is_stateful: true
  }
  op {
    name: "CheckNumerics"
    input_arg { name: "tensor" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr { name: "message" type: "string" }
    is_stateful: true
  }
  op {
    name: "Const"
    output_arg { name: "output" type_attr: "dtype" }
    attr { name: "value" type: "tensor" }
    attr { name: "dtype" type: "type" }
  }
  op {
    name: "EnsureShape"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "shape" type: "shape" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Identity"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "IdentityN"
    input_arg { name: "input" type_list_attr: "T" }
    output_arg { name: "output" type_list_attr: "T" }
    attr { name: "T" type: "list(type)" has_minimum: true minimum: 1 }
  }
  op {
    name: "If"
    input_arg { name: "cond" type_attr: "Tcond" }
    input_arg { name: "input" type_list_attr: "Tin" }
    output_arg { name: "output" type_list_attr: "Tout" }
    attr { name: "Tcond" type: "type" }
    attr { name: "Tin" type: "list(type)" has_minimum: true }
    attr { name: "Tout" type: "list(type)" has_minimum: true }
    attr { name: "then_branch" type: "func" }
    attr { name: "else_branch" type: "func" }
    attr {
      name: "output_shapes"
      type: "list(shape)"
      default_value { list {} }
    }
    is_stateful: true
  }
  op {
    name: "PreventGradient"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "message"
      type: "string"
      default_value { s: "" }
    }
  }
  op {
    name: "ReadVariableOp"
    input_arg { name: "resource" type: DT_RESOURCE }
    output_arg { name: "value" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    is_stateful: true
  }
  op {
    name: "ResourceApplyGradientDescent"
    input_arg { name: "var" type: DT_RESOURCE }
    input_arg { name: "alpha" type_attr: "T" }
    input_arg { name: "delta" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      allowed_values {
        list {
          type: DT_FLOAT
          type: DT_DOUBLE
          type: DT_INT32
          type: DT_UINT8
          type: DT_INT16
          type: DT_INT8
          type: DT_COMPLEX64
          type: DT_INT64
          type: DT_QINT8
          type: DT_QUINT8
          type: DT_QINT32
          type: DT_BFLOAT16
          type: DT_UINT16
          type: DT_COMPLEX128
          type: DT_HALF
          type: DT_UINT32
          type: DT_UINT64
        }
      }
    }
    attr {
      name: "use_locking"
      type: "bool"
      default_value { b: false }
    }
    is_stateful: true
  }
  op {
    name: "RngReadAndSkip"
    input_arg { name: "resource" type: DT_RESOURCE }
    input_arg { name: "alg" type: DT_INT32 }
    input_arg { name: "delta" type: DT_UINT64 }
    output_arg { name: "value" type: DT_INT64 }
    is_stateful: true
  }
  op {
    name: "Snapshot"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "StatelessCase"
    input_arg { name: "branch_index" type: DT_INT32 }
    input_arg { name: "input" type_list_attr: "Tin" }
    output_arg { name: "output" type_list_attr: "Tout" }
    attr { name: "Tin" type: "list(type)" has_minimum: true }
    attr { name: "Tout" type: "list(type)" has_minimum: true }
    attr { name: "branches" type: "list(func)" has_minimum: true minimum: 1 }
    attr {
      name: "output_shapes"
      type: "list(shape)"
      default_value { list {} }
    }
  }
  op {
    name: "StatelessIf"
    input_arg { name: "cond" type_attr: "Tcond" }
    input_arg { name: "input" type_list_attr: "Tin" }
    output_arg { name: "output" type_list_attr: "Tout" }
    attr { name: "Tcond" type: "type" }
    attr { name: "Tin" type: "list(type)" has_minimum: true }
    attr { name: "Tout" type: "list(type)" has_minimum: true }
    attr { name: "then_branch" type: "func" }
    attr { name: "else_branch" type: "func" }
    attr {
      name: "output_shapes"
      type: "list(shape)"
      default_value { list {} }
    }
  }
  op {
    name: "StopGradient"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
)pb";

void register_state_ops(OpRegistry& r) {
  r.add({"Const", {}, const_kernel});
  r.add({"ReadVariableOp", {}, read_variable, true});
  r.add({"AssignVariableOp", {}, [](KernelContext& c) { return assign_variable(c, 0); }, true});
  r.add({"AssignAddVariableOp", {}, [](KernelContext& c) { return assign_variable(c, 1); }, true});
  r.add({"AssignSubVariableOp", {}, [](KernelContext& c) { return assign_variable(c, -1); }, true});
  for (const char* op : {"StopGradient", "PreventGradient", "CheckNumerics"}) {
    r.add({op, {}, forward_input});
  }
  r.add({"EnsureShape", {}, ensure_shape});
  r.add({"ResourceApplyGradientDescent", {}, apply_gradient_descent, true});
  // The executor runs If/Case nodes itself (their branches are graphs); the kernel is only
  // reached through run_op, which has no branches to run.
  for (const char* op : {"If", "StatelessIf", "Case", "StatelessCase"}) {
    r.add({op, {}, [](KernelContext& c) {
             return c.error(StatusCode::kFailedPrecondition, "runs only inside a graph");
           }});
  }
  r.add({"RngReadAndSkip", {}, rng_read_and_skip, true});
  r.add({"BroadcastGradientArgs", {}, broadcast_gradient_args});
  r.set_writes_variable({"AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
                         "ResourceApplyGradientDescent", "RngReadAndSkip"});

  r.add({"Identity", {}, forward_input});
  r.add({"Snapshot", {}, forward_input});
  r.add({"IdentityN", {}, forward_inputs});
  r.set_identity_like({"Identity", "Snapshot", "IdentityN"});
  r.set_row_rule(RowRule::kElementwise, {"Identity", "Snapshot", "StopGradient", "CheckNumerics"});
  r.set_op_defs(kStateOpsOpDefs);
}

}  // namespace hubimg::ops
