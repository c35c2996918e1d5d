#include "ops/array_util.h"

#include <algorithm>

namespace hubimg::ops {

Kernel with_node_errors(Kernel kernel) {
  return [kernel = std::move(kernel)](KernelContext& ctx) -> Status {
    Status status = kernel(ctx);
    if (status.ok() || status.message().starts_with("node '")) return status;
    return ctx.error(status.code(), status.message());
  };
}

void add_op(OpRegistry& registry, OpSpec spec) {
  spec.kernel = with_node_errors(std::move(spec.kernel));
  registry.add(std::move(spec));
}

Dims row_major_strides(const Dims& shape) {
  Dims strides(shape.size(), 1);
  for (size_t i = shape.size(); i > 1; --i) strides[i - 2] = strides[i - 1] * shape[i - 1];
  return strides;
}

Expected<std::vector<int64_t>> int_values(const KernelContext& ctx, size_t input,
                                          std::string_view what) {
  if (input >= ctx.num_inputs()) {
    return ctx.error("missing input " + std::to_string(input) + " (" + std::string(what) + ")");
  }
  const Tensor& t = ctx.input(input);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(t.num_elements()));
  if (t.dtype() == DType::kInt32) {
    for (int32_t v : t.values<int32_t>()) out.push_back(v);
  } else if (t.dtype() == DType::kInt64) {
    for (int64_t v : t.values<int64_t>()) out.push_back(v);
  } else {
    return ctx.error(std::string(what) + " must be int32 or int64, got " + t.description());
  }
  return out;
}

Expected<int64_t> int_scalar(const KernelContext& ctx, size_t input, std::string_view what) {
  HUBIMG_ASSIGN_OR_RETURN(auto values, int_values(ctx, input, what));
  const Tensor& t = ctx.input(input);
  if (values.size() != 1 || t.rank() > 1) {
    return ctx.error(std::string(what) + " must be a scalar, got " + t.description());
  }
  return values[0];
}

Expected<std::vector<int64_t>> int_vector(const KernelContext& ctx, size_t input,
                                          std::string_view what) {
  HUBIMG_ASSIGN_OR_RETURN(auto values, int_values(ctx, input, what));
  if (ctx.input(input).rank() != 1) {
    return ctx.error(std::string(what) + " must be a vector, got " +
                     ctx.input(input).description());
  }
  return values;
}

Expected<Dims> shape_from_input(const KernelContext& ctx, size_t input, std::string_view what) {
  HUBIMG_ASSIGN_OR_RETURN(auto dims, int_values(ctx, input, what));
  if (ctx.input(input).rank() > 1) {
    return ctx.error(std::string(what) + " must be a vector, got " +
                     ctx.input(input).description());
  }
  auto n = checked_num_elements(dims);
  if (!n.ok()) return ctx.error(std::string(what) + ": " + n.status().message());
  return dims;
}

Expected<int> canonical_axis(const KernelContext& ctx, int64_t axis, int rank,
                             std::string_view what) {
  if (axis < -rank || axis >= rank) {
    return ctx.error(std::string(what) + " " + std::to_string(axis) + " is out of range [" +
                     std::to_string(-rank) + ", " + std::to_string(rank) + ")");
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

Tensor int_tensor(DType dtype, Dims shape, const std::vector<int64_t>& values) {
  Tensor t(dtype, std::move(shape));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::kInt32) {
      t.mutable_data<int32_t>()[i] = static_cast<int32_t>(values[i]);
    } else {
      t.mutable_data<int64_t>()[i] = values[i];
    }
  }
  return t;
}

Expected<Tensor> allocate(const KernelContext& ctx, DType dtype, Dims shape) {
  auto t = Tensor::create(dtype, std::move(shape));
  if (!t.ok()) return ctx.error(t.status().code(), t.status().message());
  return std::move(t).value();
}

Status check_remap_size(const KernelContext& ctx, DType dtype, const Dims& shape) {
  Status size = check_tensor_size(dtype, shape);
  int64_t indices = 0;
  for (int64_t d : shape) {
    if (size.ok() && __builtin_add_overflow(indices, d, &indices)) {
      size = out_of_range("shape " + dims_to_string(shape) + " has too many elements");
    }
  }
  if (size.ok()) size = check_tensor_size(DType::kInt64, {indices});
  if (!size.ok()) return ctx.error(StatusCode::kOutOfRange, "output " + size.message());
  return {};
}

std::vector<int64_t> source_offsets(const Dims& out_shape, const AxisMaps& maps) {
  const auto n = checked_num_elements(out_shape);
  std::vector<int64_t> offsets(n.ok() ? static_cast<size_t>(*n) : 0);
  if (offsets.empty()) return offsets;
  const size_t rank = out_shape.size();
  // Odometer over the output index; partial[k] is the offset summed over axes < k, or kFill.
  std::vector<int64_t> index(rank, 0);
  std::vector<int64_t> partial(rank + 1, 0);
  auto refresh_from = [&](size_t axis) {
    for (size_t k = axis; k < rank; ++k) {
      const int64_t m = maps[k][static_cast<size_t>(index[k])];
      partial[k + 1] = (partial[k] == kFill || m == kFill) ? kFill : partial[k] + m;
    }
  };
  refresh_from(0);
  for (auto& offset : offsets) {
    offset = partial[rank];
    size_t k = rank;
    while (k > 0) {
      --k;
      if (++index[k] < out_shape[k]) {
        refresh_from(k);
        break;
      }
      index[k] = 0;
      if (k == 0) break;
    }
  }
  return offsets;
}

Expected<Tensor> remap(const KernelContext& ctx, const Tensor& src, Dims out_shape,
                       const AxisMaps& maps, const Tensor* fill) {
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, src.dtype(), std::move(out_shape)));
  if (out.num_elements() == 0) return out;
  const Dims& shape = out.shape();
  const size_t rank = shape.size();
  // Odometer over the outer axes; the innermost axis is a plain loop over its map.
  const size_t outer_rank = rank == 0 ? 0 : rank - 1;
  const int64_t inner = rank == 0 ? 1 : shape[rank - 1];
  HUBIMG_RETURN_IF_ERROR(dispatch_by_width(ctx, src.dtype(), [&]<typename U>() -> Status {
    const U* in = elements<U>(src);
    U* dst = mutable_elements<U>(out);
    U fill_value{};
    if (fill != nullptr) fill_value = elements<U>(*fill)[0];
    std::vector<int64_t> index(outer_rank, 0);
    std::vector<int64_t> partial(outer_rank + 1, 0);  // offset summed over axes < k, or kFill
    auto refresh_from = [&](size_t axis) {
      for (size_t k = axis; k < outer_rank; ++k) {
        const int64_t m = maps[k][static_cast<size_t>(index[k])];
        partial[k + 1] = (partial[k] == kFill || m == kFill) ? kFill : partial[k] + m;
      }
    };
    refresh_from(0);
    // An innermost map that reads consecutive elements (pads and slices of outer axes) copies
    // whole rows.
    bool inner_consecutive = rank > 0;
    for (int64_t j = 0; inner_consecutive && j < inner; ++j) {
      const int64_t m = maps[rank - 1][static_cast<size_t>(j)];
      inner_consecutive = m != kFill && m == maps[rank - 1][0] + j;
    }
    const int64_t rows = out.num_elements() / inner;
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t base = partial[outer_rank];
      if (inner_consecutive) {
        if (base == kFill) {
          std::fill_n(dst, inner, fill_value);
        } else {
          std::copy_n(in + base + maps[rank - 1][0], inner, dst);
        }
        dst += inner;
      } else {
        for (int64_t j = 0; j < inner; ++j) {
          const int64_t m = rank == 0 ? 0 : maps[rank - 1][static_cast<size_t>(j)];
          *dst++ = (base == kFill || m == kFill) ? fill_value : in[base + m];
        }
      }
      for (size_t k = outer_rank; k > 0;) {
        --k;
        if (++index[k] < shape[k]) {
          refresh_from(k);
          break;
        }
        index[k] = 0;
      }
    }
    return {};
  }));
  return out;
}

}  // namespace hubimg::ops
