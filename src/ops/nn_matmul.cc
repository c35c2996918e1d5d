// MatMul, BatchMatMul / V2 / V3 and Einsum. Einsum reduces each operand to the labels it
// needs, permutes both into [batch, free, contracted] order and runs one broadcasting batch
// matmul, then permutes the result into the output order.
#include <algorithm>
#include <map>
#include <set>
#include <type_traits>

#include "ops/array_util.h"
#include "ops/kernel_util.h"
#include "ops/nn_kernels.h"
#include "ops/nn_util.h"

namespace hubimg::ops::nn {
namespace {

// out = op(a) x op(b) for one [m, k] x [k, n] pair; op transposes a stored [k, m] or [n, k].
template <typename T>
void matmul(const T* a, const T* b, const MatMulDims& d, T* out) {
  for (int64_t i = 0; i < d.m; ++i) {
    for (int64_t j = 0; j < d.n; ++j) {
      Accumulator<T> sum = 0;
      for (int64_t p = 0; p < d.k; ++p) {
        const T a_ip = d.transpose_a ? a[p * d.m + i] : a[i * d.k + p];
        const T b_pj = d.transpose_b ? b[j * d.k + p] : b[p * d.n + j];
        sum += static_cast<Accumulator<T>>(a_ip) * b_pj;
      }
      out[i * d.n + j] = static_cast<T>(sum);
    }
  }
}

// Strides over the batch dims of a stack of matrices of `matrix_size` elements; a dim of size 1
// gets stride 0 so it broadcasts.
Dims broadcast_batch_strides(const Dims& batch, int64_t matrix_size) {
  Dims strides = row_major_strides(batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    strides[i] = batch[i] == 1 ? 0 : strides[i] * matrix_size;
  }
  return strides;
}

// a_batch and b_batch have the rank of out_batch; out is [out_batch..., m, n]. Float32 products
// go to `product` when given (the op entries' fast kernels), the others (and those it declines)
// to matmul.
template <typename T>
void batch_matmul(const T* a, const Dims& a_batch, const T* b, const Dims& b_batch,
                  const Dims& out_batch, const MatMulDims& d, T* out, MatrixProduct product) {
  int64_t out_offset = 0;
  walk_strided(
      out_batch, broadcast_batch_strides(a_batch, d.m * d.k),
      broadcast_batch_strides(b_batch, d.k * d.n), [&](int64_t a_offset, int64_t b_offset) {
        bool done = false;
        if constexpr (std::is_same_v<T, float>) {
          done = product != nullptr && product(a + a_offset, b + b_offset, d, out + out_offset);
        }
        if (!done) matmul(a + a_offset, b + b_offset, d, out + out_offset);
        out_offset += d.m * d.n;
      });
}

// NumPy broadcasting of two batch shapes; both are left-padded with 1s to the result's rank.
Expected<Dims> broadcast_batch_dims(const KernelContext& ctx, Dims& a, Dims& b) {
  const size_t rank = std::max(a.size(), b.size());
  a.insert(a.begin(), rank - a.size(), 1);
  b.insert(b.begin(), rank - b.size(), 1);
  Dims out(rank);
  for (size_t i = 0; i < rank; ++i) {
    if (a[i] != b[i] && a[i] != 1 && b[i] != 1) {
      return ctx.error("batch dimensions " + dims_to_string(a) + " and " + dims_to_string(b) +
                       " cannot be broadcast together");
    }
    out[i] = a[i] == 1 ? b[i] : a[i];
  }
  return out;
}

Status mat_mul(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  HUBIMG_RETURN_IF_ERROR(expect_rank(ctx, 0, 2));
  HUBIMG_RETURN_IF_ERROR(expect_rank(ctx, 1, 2));
  HUBIMG_RETURN_IF_ERROR(expect_same_dtype(ctx, 1));
  MatMulDims d;
  HUBIMG_ASSIGN_OR_RETURN(d.transpose_a, attr(ctx, ctx.attrs().get_bool("transpose_a", false)));
  HUBIMG_ASSIGN_OR_RETURN(d.transpose_b, attr(ctx, ctx.attrs().get_bool("transpose_b", false)));
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  d.m = a.dim(d.transpose_a ? 1 : 0);
  d.k = a.dim(d.transpose_a ? 0 : 1);
  d.n = b.dim(d.transpose_b ? 0 : 1);
  if (b.dim(d.transpose_b ? 1 : 0) != d.k) {
    return ctx.error("matrix sizes are incompatible: a " + a.description() +
                     (d.transpose_a ? " (transposed)" : "") + ", b " + b.description() +
                     (d.transpose_b ? " (transposed)" : ""));
  }
  return dispatch_real(ctx, a.dtype(), [&]<typename T>() -> Status {
    Tensor product(a.dtype(), {d.m, d.n});
    matmul(a.data<T>(), b.data<T>(), d, product.mutable_data<T>());
    ctx.set_output(0, std::move(product));
    return {};
  });
}

enum class BatchRule { kSameBatch, kBroadcast };

Status batch_mat_mul(KernelContext& ctx, BatchRule rule, MatrixProduct product) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  HUBIMG_RETURN_IF_ERROR(expect_same_dtype(ctx, 1));
  const Tensor& x = ctx.input(0);
  const Tensor& y = ctx.input(1);
  if (x.rank() < 2 || y.rank() < 2) {
    return ctx.error("inputs must have rank >= 2, got " + x.description() + " and " +
                     y.description());
  }
  MatMulDims d;
  HUBIMG_ASSIGN_OR_RETURN(d.transpose_a, attr(ctx, ctx.attrs().get_bool("adj_x", false)));
  HUBIMG_ASSIGN_OR_RETURN(d.transpose_b, attr(ctx, ctx.attrs().get_bool("adj_y", false)));
  const int xr = x.rank(), yr = y.rank();
  d.m = x.dim(d.transpose_a ? xr - 1 : xr - 2);
  d.k = x.dim(d.transpose_a ? xr - 2 : xr - 1);
  d.n = y.dim(d.transpose_b ? yr - 2 : yr - 1);
  if (y.dim(d.transpose_b ? yr - 1 : yr - 2) != d.k) {
    return ctx.error("matrix sizes are incompatible: x " + x.description() +
                     (d.transpose_a ? " (adjoint)" : "") + ", y " + y.description() +
                     (d.transpose_b ? " (adjoint)" : ""));
  }
  Dims x_batch(x.shape().begin(), x.shape().end() - 2);
  Dims y_batch(y.shape().begin(), y.shape().end() - 2);
  if (rule == BatchRule::kSameBatch && x_batch != y_batch) {
    return ctx.error("batch dimensions must match: " + x.description() + " vs " + y.description());
  }
  HUBIMG_ASSIGN_OR_RETURN(Dims out_batch, broadcast_batch_dims(ctx, x_batch, y_batch));
  Dims out_shape = out_batch;
  out_shape.push_back(d.m);
  out_shape.push_back(d.n);
  return dispatch_real(ctx, x.dtype(), [&]<typename T>() -> Status {
    Tensor output(x.dtype(), out_shape);
    batch_matmul(x.data<T>(), x_batch, y.data<T>(), y_batch, out_batch, d, output.mutable_data<T>(),
                 product);
    ctx.set_output(0, std::move(output));
    return {};
  });
}

Status batch_mat_mul_v3(KernelContext& ctx, MatrixProduct product) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  HUBIMG_ASSIGN_OR_RETURN(DType out_type,
                          attr(ctx, ctx.attrs().get_type("Tout", ctx.input(0).dtype())));
  if (ctx.input(1).dtype() != ctx.input(0).dtype() || out_type != ctx.input(0).dtype()) {
    return ctx.error(StatusCode::kUnimplemented, "mixed dtypes are not supported: x " +
                                                     dtype_name(ctx.input(0).dtype()) + ", y " +
                                                     dtype_name(ctx.input(1).dtype()) + ", Tout " +
                                                     dtype_name(out_type));
  }
  return batch_mat_mul(ctx, BatchRule::kBroadcast, product);
}

// ---------------------------------------------------------------------------------------------
// Einsum

// Axis labels: letters keep their character code; the dims an ellipsis stands for get
// kFirstBroadcastLabel + (distance from the ellipsis's last dim), so that ellipses of
// different lengths line up from the right, as in NumPy broadcasting.
using Labels = std::vector<int>;
constexpr int kEllipsis = -1;
constexpr int kFirstBroadcastLabel = 1000;

bool contains(const Labels& labels, int label) {
  return std::find(labels.begin(), labels.end(), label) != labels.end();
}

Expected<Labels> parse_subscript(const KernelContext& ctx, std::string_view subscript,
                                 std::string_view equation) {
  Labels labels;
  for (size_t i = 0; i < subscript.size(); ++i) {
    const char c = subscript[i];
    if (c == '.') {
      if (subscript.substr(i, 3) != "..." || contains(labels, kEllipsis)) {
        return ctx.error("malformed ellipsis in einsum equation '" + std::string(equation) + "'");
      }
      labels.push_back(kEllipsis);
      i += 2;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      labels.push_back(c);
    } else {
      return ctx.error("invalid character '" + std::string(1, c) + "' in einsum equation '" +
                       std::string(equation) + "'");
    }
  }
  return labels;
}

// Replaces the ellipsis (if any) by `count` broadcast labels.
Labels expand_ellipsis(const Labels& labels, int64_t count) {
  Labels out;
  for (int label : labels) {
    if (label != kEllipsis) {
      out.push_back(label);
      continue;
    }
    for (int64_t j = count - 1; j >= 0; --j)
      out.push_back(kFirstBroadcastLabel + static_cast<int>(j));
  }
  return out;
}

struct LabeledArray {
  Dims dims;
  Labels labels;
};

// Sums `input` into an array whose axes carry `keep` in that order: labels not in `keep` are
// summed over, and a label repeated within `labels` reads the diagonal (its axes' strides add).
template <typename T>
std::vector<T> relabel(const T* input, const LabeledArray& in, const Labels& keep, Dims& out_dims) {
  const Dims in_strides = row_major_strides(in.dims);
  auto label_size_and_stride = [&](int label) {
    int64_t size = 0, stride = 0;
    for (size_t a = 0; a < in.labels.size(); ++a) {
      if (in.labels[a] != label) continue;
      size = in.dims[a];
      stride += in_strides[a];
    }
    return std::pair{size, stride};
  };
  Labels walk_labels = keep;
  for (int label : in.labels) {
    if (!contains(walk_labels, label)) walk_labels.push_back(label);
  }
  Dims walk_dims, read_strides;
  for (int label : walk_labels) {
    auto [size, stride] = label_size_and_stride(label);
    walk_dims.push_back(size);
    read_strides.push_back(stride);
  }
  out_dims.assign(walk_dims.begin(), walk_dims.begin() + static_cast<int64_t>(keep.size()));
  Dims write_strides = row_major_strides(out_dims);
  write_strides.resize(walk_dims.size(), 0);

  int64_t out_count = 1;
  for (int64_t d : out_dims) out_count *= d;
  std::vector<Accumulator<T>> sums(static_cast<size_t>(out_count), 0);
  walk_strided(walk_dims, read_strides, write_strides,
               [&](int64_t read, int64_t write) { sums[write] += input[read]; });
  return std::vector<T>(sums.begin(), sums.end());
}

int64_t product_of(const Dims& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= dims[i];
  return p;
}

// `source` (axes labeled as `in`) with its axes in `keep` order: `source` itself when they
// already are (the common case of a matrix-product einsum, whose weights are then not copied),
// permuted row by row when only the order differs, else through relabel (sums, diagonals).
// Scratch tensors come from the buffer pool, uninitialized: every element is written.
template <typename T>
Tensor relabeled(const Tensor& source, const LabeledArray& in, const Labels& keep) {
  if (in.labels == keep) return source;
  const T* input = source.data<T>();
  if (!std::is_permutation(in.labels.begin(), in.labels.end(), keep.begin(), keep.end())) {
    Dims dims;
    std::vector<T> values = relabel(input, in, keep, dims);
    Tensor out = Tensor::uninitialized(source.dtype(), dims);
    std::copy(values.begin(), values.end(), out.mutable_data<T>());
    return out;
  }
  const Dims in_strides = row_major_strides(in.dims);
  Dims out_dims, read_strides;
  for (int label : keep) {
    const auto axis = static_cast<size_t>(std::find(in.labels.begin(), in.labels.end(), label) -
                                          in.labels.begin());
    out_dims.push_back(in.dims[axis]);
    read_strides.push_back(in_strides[axis]);
  }
  // keep is not empty here: two empty label lists are equal.
  Tensor out = Tensor::uninitialized(source.dtype(), out_dims);
  if (out.num_elements() == 0) return out;
  const int64_t row = out_dims.back(), row_stride = read_strides.back();
  const Dims outer(out_dims.begin(), out_dims.end() - 1);
  const Dims outer_strides(read_strides.begin(), read_strides.end() - 1);
  T* dst = out.mutable_data<T>();
  walk_strided(outer, outer_strides, Dims(outer.size(), 0), [&](int64_t offset, int64_t) {
    const T* src = input + offset;
    for (int64_t j = 0; j < row; ++j) dst[j] = src[j * row_stride];
    dst += row;
  });
  return out;
}

struct EinsumPlan {
  std::vector<LabeledArray> inputs;
  Labels output;
  Dims output_dims;
};

Expected<EinsumPlan> plan_einsum(const KernelContext& ctx, const std::string& equation) {
  const size_t arrow = equation.find("->");
  if (arrow == std::string::npos || equation.find("->", arrow + 1) != std::string::npos) {
    return ctx.error("expecting exactly one '->' in einsum equation '" + equation + "'");
  }
  std::vector<std::string_view> subscripts;
  std::string_view lhs = std::string_view(equation).substr(0, arrow);
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    subscripts.push_back(lhs.substr(start, comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (subscripts.size() != ctx.num_inputs()) {
    return ctx.error("einsum equation '" + equation + "' names " +
                     std::to_string(subscripts.size()) + " inputs but the node has " +
                     std::to_string(ctx.num_inputs()));
  }
  if (subscripts.size() != 1 && subscripts.size() != 2) {
    return ctx.error("einsum supports 1 or 2 inputs, equation '" + equation + "' has " +
                     std::to_string(subscripts.size()));
  }

  EinsumPlan plan;
  std::map<int, int64_t> named_sizes;
  std::map<int, int64_t> broadcast_sizes;
  int64_t max_broadcast_rank = 0;
  for (size_t i = 0; i < subscripts.size(); ++i) {
    HUBIMG_ASSIGN_OR_RETURN(Labels labels, parse_subscript(ctx, subscripts[i], equation));
    const Tensor& t = ctx.input(i);
    const bool has_ellipsis = contains(labels, kEllipsis);
    const int64_t named = static_cast<int64_t>(labels.size()) - (has_ellipsis ? 1 : 0);
    if (has_ellipsis ? t.rank() < named : t.rank() != named) {
      return ctx.error("input " + std::to_string(i) + " " + t.description() +
                       " does not fit subscript '" + std::string(subscripts[i]) +
                       "' of einsum equation '" + equation + "'");
    }
    const int64_t broadcast_rank = t.rank() - named;
    max_broadcast_rank = std::max(max_broadcast_rank, broadcast_rank);
    LabeledArray array{t.shape(), expand_ellipsis(labels, broadcast_rank)};
    for (size_t a = 0; a < array.labels.size(); ++a) {
      const int label = array.labels[a];
      const int64_t size = array.dims[a];
      if (label >= kFirstBroadcastLabel) {
        int64_t& known = broadcast_sizes.try_emplace(label, 1).first->second;
        if (size != 1 && known != 1 && size != known) {
          return ctx.error(
              "ellipsis dimensions of the inputs cannot be broadcast together in "
              "einsum equation '" +
              equation + "'");
        }
        if (size != 1) known = size;
      } else {
        auto [it, inserted] = named_sizes.try_emplace(label, size);
        if (!inserted && it->second != size) {
          return ctx.error("label '" + std::string(1, static_cast<char>(label)) + "' has sizes " +
                           std::to_string(it->second) + " and " + std::to_string(size) +
                           " in einsum equation '" + equation + "'");
        }
      }
    }
    plan.inputs.push_back(std::move(array));
  }

  HUBIMG_ASSIGN_OR_RETURN(
      Labels output, parse_subscript(ctx, std::string_view(equation).substr(arrow + 2), equation));
  if (!contains(output, kEllipsis) && max_broadcast_rank > 0) {
    return ctx.error("einsum equation '" + equation +
                     "' has ellipsis dimensions in the inputs but no '...' in the output");
  }
  plan.output = expand_ellipsis(output, max_broadcast_rank);
  for (size_t i = 0; i < plan.output.size(); ++i) {
    const int label = plan.output[i];
    if (std::count(plan.output.begin(), plan.output.end(), label) > 1) {
      return ctx.error(
          StatusCode::kUnimplemented,
          "repeated output labels are not supported in einsum equation '" + equation + "'");
    }
    if (label >= kFirstBroadcastLabel) {
      plan.output_dims.push_back(broadcast_sizes[label]);
    } else if (named_sizes.count(label) == 0) {
      return ctx.error("output label '" + std::string(1, static_cast<char>(label)) +
                       "' does not appear in the inputs of einsum equation '" + equation + "'");
    } else {
      plan.output_dims.push_back(named_sizes[label]);
    }
  }
  return plan;
}

template <typename T>
Tensor run_einsum(const KernelContext& ctx, const EinsumPlan& plan, MatrixProduct product) {
  if (plan.inputs.size() == 1) return relabeled<T>(ctx.input(0), plan.inputs[0], plan.output);

  const LabeledArray& lhs = plan.inputs[0];
  const LabeledArray& rhs = plan.inputs[1];
  Labels batch, lhs_free, rhs_free, contracted;
  for (int label : plan.output) {
    if (contains(lhs.labels, label) && contains(rhs.labels, label)) batch.push_back(label);
  }
  for (int label : lhs.labels) {
    if (contains(lhs_free, label) || contains(contracted, label)) continue;
    const bool in_rhs = contains(rhs.labels, label);
    const bool in_output = contains(plan.output, label);
    if (in_output && !in_rhs) lhs_free.push_back(label);
    if (!in_output && in_rhs) contracted.push_back(label);
  }
  for (int label : rhs.labels) {
    if (contains(plan.output, label) && !contains(lhs.labels, label) &&
        !contains(rhs_free, label)) {
      rhs_free.push_back(label);
    }
  }
  // Labels found in one operand only and absent from the output are summed away by relabel.
  Labels lhs_order = batch, rhs_order = batch;
  lhs_order.insert(lhs_order.end(), lhs_free.begin(), lhs_free.end());
  lhs_order.insert(lhs_order.end(), contracted.begin(), contracted.end());
  rhs_order.insert(rhs_order.end(), contracted.begin(), contracted.end());
  rhs_order.insert(rhs_order.end(), rhs_free.begin(), rhs_free.end());
  const Tensor lhs_values = relabeled<T>(ctx.input(0), lhs, lhs_order);
  const Tensor rhs_values = relabeled<T>(ctx.input(1), rhs, rhs_order);
  const Dims& lhs_dims = lhs_values.shape();
  const Dims& rhs_dims = rhs_values.shape();

  const size_t nb = batch.size();
  MatMulDims d;
  d.m = product_of(lhs_dims, nb, nb + lhs_free.size());
  d.k = product_of(lhs_dims, nb + lhs_free.size(), lhs_dims.size());
  d.n = product_of(rhs_dims, nb + contracted.size(), rhs_dims.size());
  const Dims lhs_batch(lhs_dims.begin(), lhs_dims.begin() + static_cast<int64_t>(nb));
  const Dims rhs_batch(rhs_dims.begin(), rhs_dims.begin() + static_cast<int64_t>(nb));
  Dims result_dims;
  for (size_t i = 0; i < nb; ++i) result_dims.push_back(std::max(lhs_batch[i], rhs_batch[i]));
  const Dims result_batch = result_dims;
  result_dims.insert(result_dims.end(), lhs_dims.begin() + static_cast<int64_t>(nb),
                     lhs_dims.begin() + static_cast<int64_t>(nb + lhs_free.size()));
  result_dims.insert(result_dims.end(),
                     rhs_dims.begin() + static_cast<int64_t>(nb + contracted.size()),
                     rhs_dims.end());
  Tensor result = Tensor::uninitialized(ctx.input(0).dtype(), result_dims);
  batch_matmul(lhs_values.data<T>(), lhs_batch, rhs_values.data<T>(), rhs_batch, result_batch, d,
               result.mutable_data<T>(), product);

  LabeledArray result_array{result_dims, batch};
  result_array.labels.insert(result_array.labels.end(), lhs_free.begin(), lhs_free.end());
  result_array.labels.insert(result_array.labels.end(), rhs_free.begin(), rhs_free.end());
  return relabeled<T>(result, result_array, plan.output);
}

Status einsum(KernelContext& ctx, MatrixProduct product) {
  HUBIMG_ASSIGN_OR_RETURN(std::string equation, attr(ctx, ctx.attrs().get_string("equation")));
  if (ctx.num_inputs() == 2) HUBIMG_RETURN_IF_ERROR(expect_same_dtype(ctx, 1));
  if (ctx.num_inputs() == 0) return ctx.error("einsum needs 1 or 2 inputs, got none");
  HUBIMG_ASSIGN_OR_RETURN(EinsumPlan plan, plan_einsum(ctx, equation));
  return dispatch_real(ctx, ctx.input(0).dtype(), [&]<typename T>() -> Status {
    ctx.set_output(0, run_einsum<T>(ctx, plan, product));
    return {};
  });
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kNnMatmulOpDefs[] = R"pb(
  op {
    name: "BatchMatMul"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "adj_x"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "adj_y"
      type: "bool"
      default_value { b: false }
    }
  }
  op {
    name: "BatchMatMulV2"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "adj_x"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "adj_y"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "grad_x"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "grad_y"
      type: "bool"
      default_value { b: false }
    }
  }
  op {
    name: "BatchMatMulV3"
    input_arg { name: "x" type_attr: "Ta" }
    input_arg { name: "y" type_attr: "Tb" }
    output_arg { name: "output" type_attr: "Tout" }
    attr { name: "Ta" type: "type" }
    attr { name: "Tb" type: "type" }
    attr { name: "Tout" type: "type" }
    attr {
      name: "adj_x"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "adj_y"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "grad_x"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "grad_y"
      type: "bool"
      default_value { b: false }
    }
  }
  op {
    name: "Einsum"
    input_arg { name: "inputs" type_attr: "T" number_attr: "N" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "equation" type: "string" }
    attr { name: "N" type: "int" has_minimum: true minimum: 1 }
    attr { name: "T" type: "type" }
  }
  op {
    name: "MatMul"
    input_arg { name: "a" type_attr: "T" }
    input_arg { name: "b" type_attr: "T" }
    output_arg { name: "product" type_attr: "T" }
    attr {
      name: "transpose_a"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "transpose_b"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "T"
      type: "type"
      allowed_values {
        list {
          type: DT_BFLOAT16
          type: DT_HALF
          type: DT_FLOAT
          type: DT_DOUBLE
          type: DT_INT32
          type: DT_INT64
          type: DT_UINT8
          type: DT_UINT16
          type: DT_UINT32
          type: DT_UINT64
          type: DT_COMPLEX64
          type: DT_COMPLEX128
        }
      }
    }
    attr {
      name: "grad_a"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "grad_b"
      type: "bool"
      default_value { b: false }
    }
  }
)pb";

Expected<Kernel> batched_matmul_kernel(std::string_view op, MatrixProduct product) {
  if (op == "BatchMatMul") {
    return Kernel([product](KernelContext& ctx) {
      return batch_mat_mul(ctx, BatchRule::kSameBatch, product);
    });
  }
  if (op == "BatchMatMulV2") {
    return Kernel([product](KernelContext& ctx) {
      return batch_mat_mul(ctx, BatchRule::kBroadcast, product);
    });
  }
  if (op == "BatchMatMulV3") {
    return Kernel([product](KernelContext& ctx) { return batch_mat_mul_v3(ctx, product); });
  }
  if (op == "Einsum") {
    return Kernel([product](KernelContext& ctx) { return einsum(ctx, product); });
  }
  return invalid_argument(std::string(op) + " is not a batched matrix product op");
}

void register_matmul_ops(OpRegistry& r) {
  r.add({"MatMul", {}, mat_mul});
  for (const char* op : kBatchedMatMulOps) r.add({op, {}, *batched_matmul_kernel(op, nullptr)});
  r.set_row_rule(RowRule::kMatMul, {"MatMul"});
  r.set_op_defs(kNnMatmulOpDefs);
}

}  // namespace hubimg::ops::nn
