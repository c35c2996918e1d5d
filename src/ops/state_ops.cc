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
    default:
      return ctx.error(StatusCode::kUnimplemented, "dtype " + dtype_name(old.dtype()));
  }
  v->assign(std::move(updated));
  return {};
}

Status forward_input(KernelContext& ctx) {
  if (ctx.num_inputs() < 1) return ctx.error("needs an input");
  ctx.set_output(0, ctx.input(0));
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

}  // namespace

void register_state_ops(OpRegistry& r) {
  r.add({"Const", {{"output", ""}}, const_kernel});
  r.add({"ReadVariableOp", {{"value", ""}}, read_variable, true});
  r.add({"AssignVariableOp", {}, [](KernelContext& c) { return assign_variable(c, 0); }, true});
  r.add({"AssignAddVariableOp", {}, [](KernelContext& c) { return assign_variable(c, 1); }, true});
  r.add({"AssignSubVariableOp", {}, [](KernelContext& c) { return assign_variable(c, -1); }, true});
  for (const char* op : {"StopGradient", "PreventGradient", "CheckNumerics"}) {
    r.add({op, {{"output", ""}}, forward_input});
  }
  r.add({"EnsureShape", {{"output", ""}}, ensure_shape});
}

}  // namespace hubimg::ops
