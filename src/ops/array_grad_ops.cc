// Backward kernels of array and reduction ops whose gradient is not a composition of forward
// ops: MirrorPadGrad (TensorFlow's op), and hubimg's _HubimgGatherGrad (the scatter-add adjoint
// of GatherV2, which TensorFlow expresses as IndexedSlices / UnsortedSegmentSum) and
// _HubimgProdGrad (Prod's gradient, which TensorFlow builds from exclusive cumulative
// products: every element's cotangent times the product of the other reduced elements).
#include <algorithm>
#include <string>
#include <vector>

#include "ops/array_util.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

// MirrorPadGrad(input, paddings; mode): `input` is the cotangent of MirrorPad's output; every
// padded element is added back to the element it mirrors.
Status mirror_pad_grad_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& grad = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(std::string mode, ctx.attrs().get_string("mode"));
  if (mode != "REFLECT" && mode != "SYMMETRIC") {
    return ctx.error("mode must be REFLECT or SYMMETRIC, got '" + mode + "'");
  }
  const bool reflect = mode == "REFLECT";
  HUBIMG_ASSIGN_OR_RETURN(auto values, int_values(ctx, 1, "paddings"));
  const Tensor& p = ctx.input(1);
  if (p.rank() != 2 || p.dim(0) != grad.rank() || p.dim(1) != 2) {
    return ctx.error("paddings must be a matrix of shape [" + std::to_string(grad.rank()) +
                     ", 2], got " + p.description());
  }
  const size_t rank = static_cast<size_t>(grad.rank());
  Dims out_shape(rank);
  std::vector<std::vector<int64_t>> src(rank);  // per axis: output index of each input index
  for (size_t k = 0; k < rank; ++k) {
    const int64_t before = values[2 * k], after = values[2 * k + 1];
    const int64_t dim = grad.shape()[k] - before - after;
    if (before < 0 || after < 0) {
      return ctx.error("paddings must be non-negative: " + std::to_string(before) + " " +
                       std::to_string(after));
    }
    const int64_t limit = reflect ? dim - 1 : dim;
    if (dim < 0 || before > limit || after > limit) {
      return ctx.error("paddings " + std::to_string(before) + ", " + std::to_string(after) +
                       " do not fit dimension " + std::to_string(k) + " of " + grad.description() +
                       " in " + mode + " mode");
    }
    out_shape[k] = dim;
    for (int64_t j = 0; j < grad.shape()[k]; ++j) {
      int64_t s = j - before;
      if (s < 0) s = reflect ? -s : -s - 1;
      if (s >= dim) s = reflect ? 2 * dim - 2 - s : 2 * dim - 1 - s;
      src[k].push_back(s);
    }
  }
  return dispatch_float(ctx, grad.dtype(), [&]<typename T>() -> Status {
    HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, grad.dtype(), out_shape));
    if (grad.num_elements() == 0 || out.num_elements() == 0) {
      ctx.set_output(0, std::move(out));
      return {};
    }
    std::fill(out.mutable_data<T>(), out.mutable_data<T>() + out.num_elements(), T(0));
    const Dims out_strides = row_major_strides(out_shape);
    const T* g = grad.data<T>();
    T* o = out.mutable_data<T>();
    std::vector<int64_t> index(rank, 0);
    for (int64_t e = 0; e < grad.num_elements(); ++e) {
      int64_t at = 0;
      for (size_t k = 0; k < rank; ++k)
        at += src[k][static_cast<size_t>(index[k])] * out_strides[k];
      o[at] += g[e];
      for (size_t k = rank; k-- > 0;) {
        if (++index[k] < grad.shape()[k]) break;
        index[k] = 0;
      }
    }
    ctx.set_output(0, std::move(out));
    return {};
  });
}

// _HubimgGatherGrad(grad, indices, params_shape, axis; batch_dims): the gradient of
// GatherV2(params, indices, axis, batch_dims) with respect to params, shaped params_shape; the
// cotangent rows are added at the gathered indices (repeated indices add up).
Status gather_grad_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 4));
  const Tensor& grad = ctx.input(0);
  const Tensor& indices_t = ctx.input(1);
  HUBIMG_ASSIGN_OR_RETURN(auto indices, int_values(ctx, 1, "indices"));
  HUBIMG_ASSIGN_OR_RETURN(Dims ps, shape_from_input(ctx, 2, "params_shape"));
  HUBIMG_ASSIGN_OR_RETURN(int64_t axis_value, int_scalar(ctx, 3, "axis"));
  HUBIMG_ASSIGN_OR_RETURN(int64_t batch_dims, ctx.attrs().get_int("batch_dims", 0));
  const int params_rank = static_cast<int>(ps.size());
  if (batch_dims < 0) batch_dims += indices_t.rank();
  if (batch_dims < 0 || batch_dims > indices_t.rank() || batch_dims > params_rank) {
    return ctx.error("batch_dims " + std::to_string(batch_dims) + " is out of range");
  }
  HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, axis_value, params_rank));
  if (axis < batch_dims) return ctx.error("batch_dims must be less than or equal to axis");
  const auto bd = static_cast<size_t>(batch_dims);
  const auto ax = static_cast<size_t>(axis);
  Dims expected(ps.begin(), ps.begin() + axis);
  expected.insert(expected.end(), indices_t.shape().begin() + batch_dims, indices_t.shape().end());
  expected.insert(expected.end(), ps.begin() + axis + 1, ps.end());
  if (grad.shape() != expected) {
    return ctx.error("grad " + grad.description() +
                     " is not shaped like GatherV2's output for these params and indices");
  }
  auto product = [](const Dims& d, size_t from, size_t to) {
    int64_t n = 1;
    for (size_t k = from; k < to; ++k) n *= d[k];
    return n;
  };
  const int64_t batch = product(ps, 0, bd);
  const int64_t outer = product(ps, bd, ax);
  const int64_t axis_size = ps[ax];
  const int64_t inner = product(ps, ax + 1, ps.size());
  const int64_t per_batch =
      product(indices_t.shape(), bd, static_cast<size_t>(indices_t.shape().size()));
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0 || indices[i] >= axis_size) {
      return ctx.error("indices[" + std::to_string(i) + "] = " + std::to_string(indices[i]) +
                       " is not in [0, " + std::to_string(axis_size) + ")");
    }
  }
  return dispatch_float(ctx, grad.dtype(), [&]<typename T>() -> Status {
    HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, grad.dtype(), ps));
    T* dst = out.mutable_data<T>();
    std::fill(dst, dst + out.num_elements(), T(0));
    const T* src = grad.data<T>();
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t k = 0; k < per_batch; ++k) {
          const int64_t index = indices[static_cast<size_t>(b * per_batch + k)];
          T* to = dst + ((b * outer + o) * axis_size + index) * inner;
          for (int64_t i = 0; i < inner; ++i) to[i] += src[i];
          src += inner;
        }
      }
    }
    ctx.set_output(0, std::move(out));
    return {};
  });
}

// _HubimgProdGrad(x, reduction_indices, grad): dx[i] = grad[group(i)] * the product of the other
// elements of i's group (the elements Prod multiplied into one output), exact with zeros.
Status prod_grad_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  const Tensor& x = ctx.input(0);
  const Tensor& grad = ctx.input(2);
  HUBIMG_ASSIGN_OR_RETURN(auto axes, int_values(ctx, 1, "reduction_indices"));
  const int rank = x.rank();
  std::vector<char> reduced(static_cast<size_t>(rank), 0);
  for (int64_t a : axes) {
    HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, a, rank, "reduction index"));
    reduced[static_cast<size_t>(axis)] = 1;
  }
  // Group of each element: its index over the kept axes; position in the group: over the
  // reduced axes.
  int64_t groups = 1, group_size = 1;
  for (int k = 0; k < rank; ++k)
    (reduced[static_cast<size_t>(k)] ? group_size : groups) *= x.dim(k);
  if (grad.num_elements() != groups) {
    return ctx.error("grad " + grad.description() + " does not have one element per output of " +
                     "Prod over " + x.description());
  }
  if (grad.dtype() != x.dtype()) {
    return ctx.error("grad " + grad.description() + " and x " + x.description() +
                     " differ in dtype");
  }
  return dispatch_float(ctx, x.dtype(), [&]<typename T>() -> Status {
    HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, x.dtype(), x.shape()));
    const int64_t n = x.num_elements();
    std::vector<int64_t> members(static_cast<size_t>(n));  // element ids sorted by group
    std::vector<int64_t> fill(static_cast<size_t>(groups), 0);
    std::vector<int64_t> index(static_cast<size_t>(rank), 0);
    for (int64_t e = 0; e < n; ++e) {
      int64_t group = 0;
      for (int k = 0; k < rank; ++k) {
        if (!reduced[static_cast<size_t>(k)])
          group = group * x.dim(k) + index[static_cast<size_t>(k)];
      }
      members[static_cast<size_t>(group * group_size + fill[static_cast<size_t>(group)]++)] = e;
      for (int k = rank; k-- > 0;) {
        if (++index[static_cast<size_t>(k)] < x.dim(k)) break;
        index[static_cast<size_t>(k)] = 0;
      }
    }
    const T* xs = x.data<T>();
    const T* g = grad.data<T>();
    T* dx = out.mutable_data<T>();
    std::vector<T> left(static_cast<size_t>(group_size));
    for (int64_t group = 0; group < groups; ++group) {
      const int64_t* m = members.data() + group * group_size;
      T acc(1);
      for (int64_t j = 0; j < group_size; ++j) {
        left[static_cast<size_t>(j)] = acc;  // exclusive product from the left
        acc *= xs[m[j]];
      }
      acc = T(1);
      for (int64_t j = group_size; j-- > 0;) {
        dx[m[j]] = g[group] * left[static_cast<size_t>(j)] * acc;
        acc *= xs[m[j]];
      }
    }
    ctx.set_output(0, std::move(out));
    return {};
  });
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kArrayGradOpsOpDefs[] = R"pb(
  op {
    name: "MirrorPadGrad"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "paddings" type_attr: "Tpaddings" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tpaddings"
      type: "type"
      default_value { type: DT_INT32 }
    }
    attr { name: "mode" type: "string" }
  }
)pb";

void register_array_grad_ops(OpRegistry& r) {
  add_op(r, {"MirrorPadGrad", {}, mirror_pad_grad_kernel});
  add_op(r, {"_HubimgGatherGrad", {{"output", ""}}, gather_grad_kernel});
  add_op(r, {"_HubimgProdGrad", {{"output", ""}}, prod_grad_kernel});
  r.set_op_defs(kArrayGradOpsOpDefs);
}

}  // namespace hubimg::ops
