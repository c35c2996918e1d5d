// TopKV2 and TopK (tf.math.top_k: the top classes a serving signature returns), with the
// semantics of TensorFlow's CPU kernel (tensorflow/core/kernels/topk_op.cc).
//
// Shapes: input [..., n], k a scalar 0 <= k <= n -> values [..., k] (input's dtype) and indices
// [..., k] (index_type, default int32), the k largest entries of each last-axis row in
// descending order. Equal values keep their order: the lower index comes first. NaN ranks above
// every number (TensorFlow leaves its order unspecified; this is the order of a descending
// sort that puts NaN first, as torch.topk does).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/array_util.h"
#include "ops/kernel_util.h"
#include "ops/nn_kernels.h"
#include "ops/nn_util.h"

namespace hubimg::ops::nn {
namespace {

template <typename T>
bool ranks_above(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a)) return !std::isnan(b);
    if (std::isnan(b)) return false;
  }
  return a > b;
}

Status top_k(KernelContext& ctx, int64_t k) {
  const Tensor& input = ctx.input(0);
  if (input.rank() < 1) {
    return ctx.error("input must be >= 1-D, got " + input.description());
  }
  if (k < 0) return ctx.error("Need k >= 0, got " + std::to_string(k));
  const int64_t n = input.dim(input.rank() - 1);
  if (n < k) {
    return ctx.error("input must have at least k columns. Had " + std::to_string(n) + ", needed " +
                     std::to_string(k));
  }
  HUBIMG_ASSIGN_OR_RETURN(DType index_type,
                          attr(ctx, ctx.attrs().get_type("index_type", DType::kInt32)));
  if (index_type != DType::kInt32 && index_type != DType::kInt64 && index_type != DType::kInt16) {
    return ctx.error(StatusCode::kUnimplemented,
                     "index_type must be int16, int32 or int64, got " + dtype_name(index_type));
  }
  if (index_type == DType::kInt16 && n > 32768) {
    return ctx.error("rows of " + std::to_string(n) + " entries do not fit int16 indices");
  }
  Dims out_shape = input.shape();
  out_shape.back() = k;
  const int64_t rows = n == 0 ? 0 : input.num_elements() / n;
  return dispatch_real(ctx, input.dtype(), [&]<typename T>() -> Status {
    HUBIMG_ASSIGN_OR_RETURN(Tensor values, allocate(ctx, input.dtype(), out_shape));
    HUBIMG_ASSIGN_OR_RETURN(Tensor indices, allocate(ctx, index_type, out_shape));
    const T* in = input.data<T>();
    T* out = values.mutable_data<T>();
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = in + r * n;
      std::iota(order.begin(), order.end(), int64_t{0});
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [row](int64_t a, int64_t b) {
        if (ranks_above(row[a], row[b])) return true;
        if (ranks_above(row[b], row[a])) return false;
        return a < b;
      });
      for (int64_t j = 0; j < k; ++j) {
        const int64_t index = order[static_cast<size_t>(j)];
        out[r * k + j] = row[index];
        switch (index_type) {
          case DType::kInt16:
            indices.mutable_data<int16_t>()[r * k + j] = static_cast<int16_t>(index);
            break;
          case DType::kInt32:
            indices.mutable_data<int32_t>()[r * k + j] = static_cast<int32_t>(index);
            break;
          default: indices.mutable_data<int64_t>()[r * k + j] = index; break;
        }
      }
    }
    ctx.set_output(0, std::move(values));
    ctx.set_output(1, std::move(indices));
    return {};
  });
}

// TopKV2(input, k; sorted, index_type): k is an input.
Status top_k_v2(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  if (ctx.input(1).rank() != 0) {
    return ctx.error("k must be 0-D, got shape " + dims_to_string(ctx.input(1).shape()));
  }
  HUBIMG_ASSIGN_OR_RETURN(int64_t k, int_scalar(ctx, 1, "k"));
  return top_k(ctx, k);
}

// TopK(input; k, sorted): TensorFlow 1's form, k an attribute.
Status top_k_v1(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  HUBIMG_ASSIGN_OR_RETURN(int64_t k, attr(ctx, ctx.attrs().get_int("k")));
  return top_k(ctx, k);
}

}  // namespace

// TensorFlow's OpDefs (tensorflow/core/ops/nn_ops.cc), attached to their entries.
constexpr char kTopKOpDefs[] = R"pb(
  op {
    name: "TopKV2"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "k" type_attr: "Tk" }
    output_arg { name: "values" type_attr: "T" }
    output_arg { name: "indices" type_attr: "index_type" }
    attr {
      name: "sorted"
      type: "bool"
      default_value { b: true }
    }
    attr { name: "T" type: "type" }
    attr {
      name: "Tk"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT16 type: DT_INT32 type: DT_INT64 } }
    }
    attr {
      name: "index_type"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT16 type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "TopK"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "values" type_attr: "T" }
    output_arg { name: "indices" type: DT_INT32 }
    attr { name: "k" type: "int" has_minimum: true }
    attr {
      name: "sorted"
      type: "bool"
      default_value { b: true }
    }
    attr { name: "T" type: "type" }
  }
)pb";

void register_top_k_ops(OpRegistry& r) {
  r.add({"TopKV2", {}, top_k_v2});
  r.add({"TopK", {}, top_k_v1});
  r.set_op_defs(kTopKOpDefs);
}

}  // namespace hubimg::ops::nn
