// Elementwise arithmetic, comparisons, selection, reductions, Cast, Range, Cumsum and AddN,
// with the semantics of TensorFlow's CPU kernels (tensorflow/core/kernels/cwise_ops*.h,
// reduction_ops*.h, argmax_op.cc, cast_op.cc, sequence_ops.cc, scan_ops.cc, aggregate_ops.cc).
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

#include "core/thread_pool.h"
#include "ops/array_util.h"
#include "ops/broadcast.h"
#include "ops/cast.h"
#include "ops/fast_paths.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "ops/type_dispatch.h"

namespace hubimg::ops {
namespace {

// ---------------------------------------------------------------------------------------------
// float16 / bfloat16: computed in float32 and rounded back, as Eigen does per operation.

Kernel computed_in_float32(Kernel kernel) {
  return [kernel = std::move(kernel)](KernelContext& ctx) -> Status {
    DType half = DType::kInvalid;
    for (const Tensor& t : ctx.inputs()) {
      if (is_half_precision(t.dtype())) half = t.dtype();
    }
    if (half == DType::kInvalid) return kernel(ctx);
    std::vector<Tensor> inputs;
    for (const Tensor& t : ctx.inputs()) {
      if (!is_half_precision(t.dtype())) {
        inputs.push_back(t);
        continue;
      }
      auto wide = cast_tensor(t, DType::kFloat32);
      if (!wide.ok()) return ctx.error(wide.status().code(), wide.status().message());
      inputs.push_back(std::move(wide).value());
    }
    KernelContext inner(ctx.node_name(), ctx.op(), ctx.attrs(), inputs, ctx.num_outputs());
    HUBIMG_RETURN_IF_ERROR(kernel(inner));
    for (size_t i = 0; i < ctx.num_outputs(); ++i) {
      Tensor& out = inner.outputs()[i];
      if (out.dtype() != DType::kFloat32) {
        ctx.set_output(i, std::move(out));
        continue;
      }
      auto narrow = cast_tensor(out, half);
      if (!narrow.ok()) return ctx.error(narrow.status().code(), narrow.status().message());
      ctx.set_output(i, std::move(narrow).value());
    }
    return {};
  };
}

Status expect_same_dtypes(const KernelContext& ctx) {
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    if (ctx.input(i).dtype() != ctx.input(0).dtype()) {
      return ctx.error("input " + std::to_string(i) + " has dtype " +
                       dtype_name(ctx.input(i).dtype()) + " but input 0 has " +
                       dtype_name(ctx.input(0).dtype()));
    }
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Float32 fast path of the elementwise kernels (see fast_paths.h). The broadcast is collapsed:
// output axes of size 1 are dropped and adjacent axes merge when each operand is broadcast
// along both or along neither, so [N,H,W,C] * [N,1,1,C] becomes [N, H*W, C] * [N, 1, C] and
// [N,224,224,3] - [3] becomes [N*224*224, 3] - [1, 3]. The innermost collapsed axis then runs as a
// contiguous loop (vector-vector, vector-scalar or scalar-vector) that GCC vectorizes.

constexpr int kMaxCollapsedRank = 6;

struct CollapsedBroadcast {
  int rank = 0;
  int64_t dims[kMaxCollapsedRank] = {};
  int64_t a_strides[kMaxCollapsedRank] = {};  // 0 along an axis a is broadcast on
  int64_t b_strides[kMaxCollapsedRank] = {};
};

// nullopt when more than kMaxCollapsedRank axes remain (the reference code runs instead).
std::optional<CollapsedBroadcast> collapse_broadcast(const Dims& a, const Dims& b,
                                                     const Dims& out) {
  CollapsedBroadcast c;
  bool a_bcast[kMaxCollapsedRank] = {};
  bool b_bcast[kMaxCollapsedRank] = {};
  const size_t rank = out.size();
  for (size_t k = 0; k < rank; ++k) {
    if (out[k] == 1) continue;
    const int64_t ad = k + a.size() >= rank ? a[k + a.size() - rank] : 1;
    const int64_t bd = k + b.size() >= rank ? b[k + b.size() - rank] : 1;
    const bool fa = ad == 1, fb = bd == 1;
    if (c.rank > 0 && a_bcast[c.rank - 1] == fa && b_bcast[c.rank - 1] == fb) {
      c.dims[c.rank - 1] *= out[k];
      continue;
    }
    if (c.rank == kMaxCollapsedRank) return std::nullopt;
    c.dims[c.rank] = out[k];
    a_bcast[c.rank] = fa;
    b_bcast[c.rank] = fb;
    ++c.rank;
  }
  int64_t sa = 1, sb = 1;
  for (int k = c.rank - 1; k >= 0; --k) {
    c.a_strides[k] = a_bcast[k] ? 0 : sa;
    c.b_strides[k] = b_bcast[k] ? 0 : sb;
    if (!a_bcast[k]) sa *= c.dims[k];
    if (!b_bcast[k]) sb *= c.dims[k];
  }
  return c;
}

// z[i] = fn(x[i or 0], y[i or 0]) for i < n; z may be x or y (in place).
template <typename R, typename Fn>
inline void binary_row(const float* x, bool x_vector, const float* y, bool y_vector, R* z,
                       int64_t n, const Fn& fn) {
  if (x_vector && y_vector) {
    for (int64_t i = 0; i < n; ++i) z[i] = fn(x[i], y[i]);
  } else if (x_vector) {
    const float s = y[0];
    for (int64_t i = 0; i < n; ++i) z[i] = fn(x[i], s);
  } else {
    const float s = x[0];
    for (int64_t i = 0; i < n; ++i) z[i] = fn(s, y[i]);
  }
}

// Rows shorter than this that repeat one operand's vector ([R, L] op [L]) run over a tile of the
// vector repeated up to this length instead, so the loop is long enough to vectorize.
constexpr int64_t kTileLength = 512;

template <typename R, typename Fn>
void fast_binary(const float* x, const float* y, R* z, const CollapsedBroadcast& c, const Fn& fn) {
  if (c.rank == 0) {
    z[0] = fn(x[0], y[0]);
    return;
  }
  const int last = c.rank - 1;
  const int64_t inner = c.dims[last];
  int64_t rows = 1;
  for (int k = 0; k < last; ++k) rows *= c.dims[k];
  if (rows == 0 || inner == 0) return;
  const bool x_vector = c.a_strides[last] != 0;
  const bool y_vector = c.b_strides[last] != 0;
  // [R, L] op [1, L] (or [1, L] op [R, L]) with a short L: tile the vector.
  if (c.rank == 2 && inner < kTileLength / 2 && x_vector && y_vector &&
      (c.a_strides[0] == 0) != (c.b_strides[0] == 0)) {
    const bool x_repeats = c.a_strides[0] == 0;
    const int64_t copies = kTileLength / inner;
    const int64_t period = copies * inner;
    float tile[kTileLength];
    const float* v = x_repeats ? x : y;
    for (int64_t i = 0; i < period; ++i) tile[i] = v[i % inner];
    const int64_t chunks = (rows + copies - 1) / copies;
    const int64_t total = rows * inner;
    parallel_rows(chunks, period, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const int64_t start = k * period;
        const int64_t n = std::min(period, total - start);
        if (x_repeats) {
          binary_row(tile, true, y + start, true, z + start, n, fn);
        } else {
          binary_row(x + start, true, tile, true, z + start, n, fn);
        }
      }
    });
    return;
  }
  parallel_rows(rows, inner, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      int64_t rest = r, oa = 0, ob = 0;
      for (int k = last - 1; k >= 0; --k) {
        const int64_t i = rest % c.dims[k];
        rest /= c.dims[k];
        oa += i * c.a_strides[k];
        ob += i * c.b_strides[k];
      }
      binary_row(x + oa, x_vector, y + ob, y_vector, z + r * inner, inner, fn);
    }
  });
}

// Runs the fast path when it applies; false leaves the kernel to its reference code.
template <typename R, typename Fn>
bool try_fast_binary(KernelContext& ctx, const Dims& shape, const Fn& fn) {
  if (!fast_paths_enabled()) return false;
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dtype() != DType::kFloat32 || !checked_num_elements(shape).ok()) return false;
  const auto c = collapse_broadcast(a.shape(), b.shape(), shape);
  if (!c) return false;
  Tensor out;
  if constexpr (std::is_same_v<R, float>) {
    out = forward_or_allocate(ctx.inputs(), {0, 1}, DType::kFloat32, shape);
  } else {
    out = Tensor::uninitialized(dtype_of<R>(), shape);
  }
  fast_binary<R>(a.data<float>(), b.data<float>(), out.mutable_data<R>(), *c, fn);
  ctx.set_output(0, std::move(out));
  return true;
}

// ---------------------------------------------------------------------------------------------
// Elementwise kernels.

// out[i] = fn(a[ia], b[ib]) over the broadcast of a and b.
template <typename T, typename R, typename Fn>
void apply_binary(const Tensor& a, const Tensor& b, Tensor& out, const Fn& fn) {
  const T* x = typed_data<T>(a);
  const T* y = typed_data<T>(b);
  R* z = typed_mutable_data<R>(out);
  const int64_t n = out.num_elements();
  const bool a_full = a.shape() == out.shape();
  const bool b_full = b.shape() == out.shape();
  if (a_full && b_full) {
    for (int64_t i = 0; i < n; ++i) z[i] = fn(x[i], y[i]);
  } else if (a_full && b.num_elements() == 1) {
    for (int64_t i = 0; i < n; ++i) z[i] = fn(x[i], y[0]);
  } else if (b_full && a.num_elements() == 1) {
    for (int64_t i = 0; i < n; ++i) z[i] = fn(x[0], y[i]);
  } else {
    const auto ia = broadcast_offsets(a.shape(), out.shape());
    const auto ib = broadcast_offsets(b.shape(), out.shape());
    for (int64_t i = 0; i < n; ++i) z[i] = fn(x[ia[i]], y[ib[i]]);
  }
}

// What a binary kernel rejects before computing, on integer operands only.
enum class IntOperandCheck { kNone, kNonZeroDivisor, kNonNegativeExponent };

struct BinaryOptions {
  IntOperandCheck int_check = IntOperandCheck::kNone;
  // Equal/NotEqual: with attr incompatible_shape_error=false, incompatible shapes give a
  // scalar (false for Equal, true for NotEqual) instead of an error.
  bool has_incompatible_shape_attr = false;
  bool incompatible_result = false;
};

template <unsigned Set, typename Fn>
Kernel binary_kernel(Fn fn, BinaryOptions options = {}) {
  return [fn, options](KernelContext& ctx) -> Status {
    HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
    HUBIMG_RETURN_IF_ERROR(expect_same_dtypes(ctx));
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const auto shape = broadcast_shape(a.shape(), b.shape());
    if (!shape) {
      if (options.has_incompatible_shape_attr) {
        HUBIMG_ASSIGN_OR_RETURN(bool error, ctx.attrs().get_bool("incompatible_shape_error", true));
        if (!error) {
          ctx.set_output(0, Tensor::scalar<bool>(options.incompatible_result));
          return {};
        }
      }
      return ctx.error("Incompatible shapes: " + dims_to_string(a.shape()) + " vs. " +
                       dims_to_string(b.shape()));
    }
    // Broadcasting can multiply sizes ([n, 1] + [1, n]); the reference path also keeps an int64
    // offset per output element for each operand.
    const bool a_full = a.shape() == *shape, b_full = b.shape() == *shape;
    const bool offsets = !(a_full && b_full) && !(a_full && b.num_elements() == 1) &&
                         !(b_full && a.num_elements() == 1);
    if (auto size = check_tensor_size(offsets ? DType::kInt64 : a.dtype(), *shape); !size.ok()) {
      return ctx.error(StatusCode::kOutOfRange, "output " + size.message());
    }
    return dispatch_types<Set>(ctx, a.dtype(), [&]<typename T>() -> Status {
      if constexpr (kIsInteger<T>) {
        const T* y = typed_data<T>(b);
        const bool used = b.num_elements() > 0 && a.num_elements() > 0;
        for (int64_t i = 0; used && i < b.num_elements(); ++i) {
          if (options.int_check == IntOperandCheck::kNonZeroDivisor && y[i] == T{0}) {
            return ctx.error("Integer division by zero");
          }
          if constexpr (std::is_signed_v<T>) {
            if (options.int_check == IntOperandCheck::kNonNegativeExponent && y[i] < T{0}) {
              return ctx.error("Integers to negative integer powers are not allowed");
            }
          }
        }
      }
      using R = decltype(fn(std::declval<T>(), std::declval<T>()));
      if constexpr (std::is_same_v<T, float>) {
        if (try_fast_binary<R>(ctx, *shape, fn)) return {};
      }
      HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, dtype_of<R>(), *shape));
      apply_binary<T, R>(a, b, out, fn);
      ctx.set_output(0, std::move(out));
      return {};
    });
  };
}

template <unsigned Set, typename Fn>
Kernel unary_kernel(Fn fn) {
  return [fn](KernelContext& ctx) -> Status {
    HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
    const Tensor& a = ctx.input(0);
    return dispatch_types<Set>(ctx, a.dtype(), [&]<typename T>() -> Status {
      using R = decltype(fn(std::declval<T>()));
      if constexpr (std::is_same_v<T, float>) {
        if (fast_paths_enabled()) {
          Tensor out = std::is_same_v<R, float>
                           ? forward_or_allocate(ctx.inputs(), {0}, DType::kFloat32, a.shape())
                           : Tensor::uninitialized(dtype_of<R>(), a.shape());
          const float* x = a.data<float>();
          R* y = out.mutable_data<R>();
          parallel_rows(a.num_elements(), 1, [x, y, &fn](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) y[i] = fn(x[i]);
          });
          ctx.set_output(0, std::move(out));
          return {};
        }
      }
      HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, dtype_of<R>(), a.shape()));
      const T* x = typed_data<T>(a);
      R* y = typed_mutable_data<R>(out);
      for (int64_t i = 0; i < a.num_elements(); ++i) y[i] = fn(x[i]);
      ctx.set_output(0, std::move(out));
      return {};
    });
  };
}

// Integer division helpers; the divisor is non-zero (checked by the kernel). The most negative
// value divided by -1 wraps to itself instead of trapping.
template <typename T>
T truncate_div(T x, T y) {
  if constexpr (std::is_signed_v<T>) {
    if (y == T{-1}) return wrapping_neg(x);
  }
  return static_cast<T>(x / y);
}
template <typename T>
T truncate_mod(T x, T y) {
  if constexpr (std::is_signed_v<T>) {
    if (y == T{-1}) return T{0};
  }
  return static_cast<T>(x % y);
}
template <typename T>
T floor_div(T x, T y) {
  T q = truncate_div(x, y);
  if constexpr (std::is_signed_v<T>) {
    if (truncate_mod(x, y) != T{0} && ((x < T{0}) != (y < T{0}))) q = static_cast<T>(q - 1);
  }
  return q;
}
template <typename T>
T floor_mod(T x, T y) {
  if constexpr (std::is_floating_point_v<T>) {
    const T r = std::fmod(x, y);
    return r != T{0} && ((y < T{0}) != (r < T{0})) ? r + y : r;
  } else {
    const T r = truncate_mod(x, y);
    if constexpr (std::is_signed_v<T>) {
      if (r != T{0} && ((y < T{0}) != (r < T{0}))) return static_cast<T>(r + y);
    }
    return r;
  }
}

template <typename T>
T integer_pow(T base, T exponent) {
  T result = 1;
  while (exponent != T{0}) {
    if ((exponent & T{1}) != T{0}) result = wrapping_mul(result, base);
    exponent = static_cast<T>(exponent >> 1);
    base = wrapping_mul(base, base);
  }
  return result;
}

// Eigen's scalar_round_half_to_even_op (TensorFlow's Round), reproduced operation by
// operation so that inputs like 0.49999997f round exactly as TensorFlow rounds them.
template <typename T>
T round_half_to_even(T x) {
  const T round_val = std::floor(x + T(0.5));
  const T fraction = round_val - x;
  if (fraction == T(0.5)) return T(2) * std::floor(T(0.5) * x + T(0.5));
  return round_val;
}

void register_elementwise(OpRegistry& r) {
  // The output args (x, y -> z; x -> y) come from the ops' OpDefs (kMathOpsOpDefs).
  auto binary = [&](const char* name, Kernel k) {
    add_op(r, {name, {}, computed_in_float32(std::move(k))});
  };
  auto unary = [&](const char* name, Kernel k) {
    add_op(r, {name, {}, computed_in_float32(std::move(k))});
  };

  auto add = [](auto x, auto y) {
    if constexpr (kIsInteger<decltype(x)>) {
      return wrapping_add(x, y);
    } else {
      return x + y;
    }
  };
  binary("Add", binary_kernel<kRealTypes>(add));
  binary("AddV2", binary_kernel<kRealTypes>(add));
  binary("Sub", binary_kernel<kRealTypes>([](auto x, auto y) {
           if constexpr (kIsInteger<decltype(x)>) {
             return wrapping_sub(x, y);
           } else {
             return x - y;
           }
         }));
  binary("Mul", binary_kernel<kRealTypes>([](auto x, auto y) {
           if constexpr (kIsInteger<decltype(x)>) {
             return wrapping_mul(x, y);
           } else {
             return x * y;
           }
         }));
  binary("RealDiv", binary_kernel<kFloatTypes>([](auto x, auto y) { return x / y; }));
  binary("Div", binary_kernel<kRealTypes>(
                    [](auto x, auto y) {
                      if constexpr (kIsInteger<decltype(x)>) {
                        return truncate_div(x, y);
                      } else {
                        return x / y;
                      }
                    },
                    {IntOperandCheck::kNonZeroDivisor}));
  binary("DivNoNan", binary_kernel<kFloatTypes>([](auto x, auto y) {
           using T = decltype(x);
           return y == T{0} ? T{0} : x / y;
         }));
  binary("TruncateDiv", binary_kernel<kIntTypes>([](auto x, auto y) { return truncate_div(x, y); },
                                                 {IntOperandCheck::kNonZeroDivisor}));
  binary("TruncateMod", binary_kernel<kRealTypes>(
                            [](auto x, auto y) {
                              if constexpr (kIsInteger<decltype(x)>) {
                                return truncate_mod(x, y);
                              } else {
                                return std::fmod(x, y);
                              }
                            },
                            {IntOperandCheck::kNonZeroDivisor}));
  binary("FloorDiv", binary_kernel<kRealTypes>(
                         [](auto x, auto y) {
                           if constexpr (kIsInteger<decltype(x)>) {
                             return floor_div(x, y);
                           } else {
                             return std::floor(x / y);
                           }
                         },
                         {IntOperandCheck::kNonZeroDivisor}));
  binary("FloorMod", binary_kernel<kRealTypes>([](auto x, auto y) { return floor_mod(x, y); },
                                               {IntOperandCheck::kNonZeroDivisor}));
  // Maximum/Minimum propagate NaN (TensorFlow >= 2.5 uses Eigen::PropagateNaN).
  binary("Maximum", binary_kernel<kRealTypes>([](auto x, auto y) {
           if constexpr (std::is_floating_point_v<decltype(x)>) {
             if (std::isnan(x)) return x;
             if (std::isnan(y)) return y;
           }
           return x > y ? x : y;
         }));
  binary("Minimum", binary_kernel<kRealTypes>([](auto x, auto y) {
           if constexpr (std::is_floating_point_v<decltype(x)>) {
             if (std::isnan(x)) return x;
             if (std::isnan(y)) return y;
           }
           return x < y ? x : y;
         }));
  binary("SquaredDifference", binary_kernel<kRealTypes>([](auto x, auto y) {
           if constexpr (kIsInteger<decltype(x)>) {
             const auto d = wrapping_sub(x, y);
             return wrapping_mul(d, d);
           } else {
             return (x - y) * (x - y);
           }
         }));
  binary("Pow", binary_kernel<kRealTypes>(
                    [](auto x, auto y) {
                      if constexpr (kIsInteger<decltype(x)>) {
                        return integer_pow(x, y);
                      } else {
                        return std::pow(x, y);
                      }
                    },
                    {IntOperandCheck::kNonNegativeExponent}));

  binary("Less", binary_kernel<kRealTypes>([](auto x, auto y) { return x < y; }));
  binary("LessEqual", binary_kernel<kRealTypes>([](auto x, auto y) { return x <= y; }));
  binary("Greater", binary_kernel<kRealTypes>([](auto x, auto y) { return x > y; }));
  binary("GreaterEqual", binary_kernel<kRealTypes>([](auto x, auto y) { return x >= y; }));
  constexpr unsigned kEqualityTypes = kRealTypes | kBoolType | kStringType;
  binary("Equal", binary_kernel<kEqualityTypes>([](const auto& x, const auto& y) { return x == y; },
                                                {IntOperandCheck::kNone, true, false}));
  binary("NotEqual",
         binary_kernel<kEqualityTypes>([](const auto& x, const auto& y) { return x != y; },
                                       {IntOperandCheck::kNone, true, true}));
  binary("LogicalAnd", binary_kernel<kBoolType>([](bool x, bool y) { return x && y; }));
  binary("LogicalOr", binary_kernel<kBoolType>([](bool x, bool y) { return x || y; }));

  unary("Neg", unary_kernel<kRealTypes>([](auto x) {
          if constexpr (kIsInteger<decltype(x)>) {
            return wrapping_neg(x);
          } else {
            return -x;
          }
        }));
  unary("Abs", unary_kernel<kRealTypes>([](auto x) {
          using T = decltype(x);
          if constexpr (std::is_floating_point_v<T>) {
            return std::abs(x);
          } else if constexpr (std::is_signed_v<T>) {
            return x < T{0} ? wrapping_neg(x) : x;
          } else {
            return x;
          }
        }));
  unary("Square", unary_kernel<kRealTypes>([](auto x) {
          if constexpr (kIsInteger<decltype(x)>) {
            return wrapping_mul(x, x);
          } else {
            return x * x;
          }
        }));
  unary("Sign", unary_kernel<kRealTypes>([](auto x) {
          using T = decltype(x);
          if constexpr (std::is_floating_point_v<T>) {
            if (std::isnan(x)) return x;
          }
          return static_cast<T>(x > T{0} ? 1 : (x < T{0} ? -1 : 0));
        }));
  unary("Exp", unary_kernel<kFloatTypes>([](auto x) { return std::exp(x); }));
  unary("Expm1", unary_kernel<kFloatTypes>([](auto x) { return std::expm1(x); }));
  unary("Log", unary_kernel<kFloatTypes>([](auto x) { return std::log(x); }));
  unary("Log1p", unary_kernel<kFloatTypes>([](auto x) { return std::log1p(x); }));
  unary("Sqrt", unary_kernel<kFloatTypes>([](auto x) { return std::sqrt(x); }));
  unary("Rsqrt", unary_kernel<kFloatTypes>([](auto x) { return decltype(x){1} / std::sqrt(x); }));
  unary("Reciprocal", unary_kernel<kFloatTypes>([](auto x) { return decltype(x){1} / x; }));
  unary("Inv", unary_kernel<kFloatTypes>([](auto x) { return decltype(x){1} / x; }));
  unary("Erf", unary_kernel<kFloatTypes>([](auto x) { return std::erf(x); }));
  unary("Sin", unary_kernel<kFloatTypes>([](auto x) { return std::sin(x); }));
  unary("Cos", unary_kernel<kFloatTypes>([](auto x) { return std::cos(x); }));
  unary("Tan", unary_kernel<kFloatTypes>([](auto x) { return std::tan(x); }));
  unary("Floor", unary_kernel<kFloatTypes>([](auto x) { return std::floor(x); }));
  unary("Ceil", unary_kernel<kFloatTypes>([](auto x) { return std::ceil(x); }));
  unary("Round", unary_kernel<kRealTypes>([](auto x) {
          if constexpr (kIsInteger<decltype(x)>) {
            return x;
          } else {
            return round_half_to_even(x);
          }
        }));
  unary("IsNan", unary_kernel<kFloatTypes>([](auto x) { return std::isnan(x); }));
  unary("IsInf", unary_kernel<kFloatTypes>([](auto x) { return std::isinf(x); }));
  unary("IsFinite", unary_kernel<kFloatTypes>([](auto x) { return std::isfinite(x); }));
  unary("LogicalNot", unary_kernel<kBoolType>([](bool x) { return !x; }));
}

// ---------------------------------------------------------------------------------------------
// Select / SelectV2.

constexpr unsigned kAnyType = kRealTypes | kBoolType | kStringType;

// Half-precision values are moved, not computed, so they are dispatched by width.
template <typename Fn>
Status dispatch_any(const KernelContext& ctx, DType dtype, Fn&& fn) {
  if (is_half_precision(dtype)) return fn.template operator()<uint16_t>();
  return dispatch_types<kAnyType>(ctx, dtype, fn);
}

template <typename T>
const T* raw_typed(const Tensor& t) {
  if constexpr (std::is_same_v<T, std::string>) {
    return t.strings().data();
  } else {
    return static_cast<const T*>(t.raw_data());
  }
}
template <typename T>
T* raw_typed_mutable(Tensor& t) {
  if constexpr (std::is_same_v<T, std::string>) {
    return t.mutable_strings().data();
  } else {
    return static_cast<T*>(t.raw_mutable_data());
  }
}

Status select_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  const Tensor& cond = ctx.input(0);
  const Tensor& then_t = ctx.input(1);
  const Tensor& else_t = ctx.input(2);
  if (cond.dtype() != DType::kBool)
    return ctx.error("condition must be bool, got " + cond.description());
  if (then_t.dtype() != else_t.dtype() || then_t.shape() != else_t.shape()) {
    return ctx.error("'then' and 'else' must have the same shape and dtype, got " +
                     then_t.description() + " and " + else_t.description());
  }
  const bool scalar = cond.rank() == 0;
  const bool same = cond.shape() == then_t.shape();
  const bool rows = cond.rank() == 1 && then_t.rank() >= 1 && cond.dim(0) == then_t.dim(0);
  if (!scalar && !same && !rows) {
    return ctx.error("condition " + cond.description() + " must be a scalar, have the shape of " +
                     "'then' " + then_t.description() + ", or be a vector of its first dimension");
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, then_t.dtype(), then_t.shape()));
  const bool* c = cond.data<bool>();
  const int64_t n = out.num_elements();
  const int64_t row = then_t.rank() >= 1 && then_t.dim(0) > 0 ? n / then_t.dim(0) : 1;
  HUBIMG_RETURN_IF_ERROR(dispatch_any(ctx, then_t.dtype(), [&]<typename T>() -> Status {
    const T* x = raw_typed<T>(then_t);
    const T* y = raw_typed<T>(else_t);
    T* z = raw_typed_mutable<T>(out);
    for (int64_t i = 0; i < n; ++i) {
      const bool pick = scalar ? c[0] : same ? c[i] : c[i / row];
      z[i] = pick ? x[i] : y[i];
    }
    return {};
  }));
  ctx.set_output(0, std::move(out));
  return {};
}

Status select_v2_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  const Tensor& cond = ctx.input(0);
  const Tensor& then_t = ctx.input(1);
  const Tensor& else_t = ctx.input(2);
  if (cond.dtype() != DType::kBool)
    return ctx.error("condition must be bool, got " + cond.description());
  if (then_t.dtype() != else_t.dtype()) {
    return ctx.error("'then' and 'else' must have the same dtype, got " + then_t.description() +
                     " and " + else_t.description());
  }
  const Dims shapes[] = {cond.shape(), then_t.shape(), else_t.shape()};
  const auto shape = broadcast_shape(shapes);
  if (!shape) return ctx.error("Incompatible shapes: " + shapes_description(shapes));
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, then_t.dtype(), *shape));
  const auto ic = broadcast_offsets(cond.shape(), *shape);
  const auto ix = broadcast_offsets(then_t.shape(), *shape);
  const auto iy = broadcast_offsets(else_t.shape(), *shape);
  const bool* c = cond.data<bool>();
  HUBIMG_RETURN_IF_ERROR(dispatch_any(ctx, then_t.dtype(), [&]<typename T>() -> Status {
    const T* x = raw_typed<T>(then_t);
    const T* y = raw_typed<T>(else_t);
    T* z = raw_typed_mutable<T>(out);
    for (size_t i = 0; i < ic.size(); ++i) z[i] = c[ic[i]] ? x[ix[i]] : y[iy[i]];
    return {};
  }));
  ctx.set_output(0, std::move(out));
  return {};
}

// ---------------------------------------------------------------------------------------------
// Reductions.

struct Reduction {
  Dims out_shape;                    // with keep_dims applied
  std::vector<int64_t> out_offsets;  // output slot of every input element
  int64_t out_elements = 0;
  int64_t count = 0;  // input elements per output slot
};

// The reduced axes of input 0 and the output shape (keep_dims applied).
struct ReducedAxes {
  std::vector<bool> reduced;
  Dims out_shape;
};

Expected<ReducedAxes> reduced_axes(const KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(auto axes, int_values(ctx, 1, "reduction_indices"));
  if (ctx.input(1).rank() > 1) {
    return ctx.error("reduction_indices must be a scalar or vector, got " +
                     ctx.input(1).description());
  }
  HUBIMG_ASSIGN_OR_RETURN(bool keep_dims, ctx.attrs().get_bool("keep_dims", false));
  const int rank = input.rank();
  ReducedAxes r;
  r.reduced.assign(static_cast<size_t>(rank), false);
  for (int64_t axis : axes) {
    if (axis < -rank || axis >= rank) {
      return ctx.error("Invalid reduction dimension " + std::to_string(axis) + " for input " +
                       input.description());
    }
    r.reduced[static_cast<size_t>(axis < 0 ? axis + rank : axis)] = true;
  }
  for (int k = 0; k < rank; ++k) {
    const bool red = r.reduced[static_cast<size_t>(k)];
    if (!red || keep_dims) r.out_shape.push_back(red ? 1 : input.dim(k));
  }
  return r;
}

Expected<Reduction> plan_reduction(const KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(ReducedAxes axes, reduced_axes(ctx));
  const Tensor& input = ctx.input(0);
  const int rank = input.rank();
  const std::vector<bool>& reduced = axes.reduced;
  Reduction plan;
  plan.out_shape = std::move(axes.out_shape);
  Dims kept_shape;  // the input shape with reduced axes set to 1
  for (int k = 0; k < rank; ++k) {
    kept_shape.push_back(reduced[static_cast<size_t>(k)] ? 1 : input.dim(k));
  }
  const Dims out_strides = row_major_strides(kept_shape);
  AxisMaps maps(static_cast<size_t>(rank));
  for (int k = 0; k < rank; ++k) {
    auto& map = maps[static_cast<size_t>(k)];
    map.assign(static_cast<size_t>(input.dim(k)), 0);
    if (reduced[static_cast<size_t>(k)]) continue;
    for (int64_t j = 0; j < input.dim(k); ++j) {
      map[static_cast<size_t>(j)] = j * out_strides[static_cast<size_t>(k)];
    }
  }
  plan.out_offsets = source_offsets(input.shape(), maps);
  plan.out_elements = *checked_num_elements(plan.out_shape);
  plan.count = plan.out_elements > 0 ? input.num_elements() / plan.out_elements : 0;
  return plan;
}

enum class ReduceKind { kSum, kMean, kProd, kMax, kMin };

// Float32 fast path of Sum, Mean, Max and Min (see fast_paths.h): when the reduced axes are
// adjacent once size-1 axes are dropped, the input is [outer, middle, inner] and the output
// [outer, inner] (NHWC global average pooling: [N, H*W, C]). Each output element sees the same
// values in the same order as in the reference code, accumulated in the same type (double for
// Sum/Mean), so the results are identical.
struct ReductionView {
  int64_t outer = 1, middle = 1, inner = 1;
};

std::optional<ReductionView> reduction_view(const Dims& shape, const std::vector<bool>& reduced) {
  ReductionView v;
  int phase = 0;  // 0: outer kept axes, 1: reduced axes, 2: inner kept axes
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == 1) continue;
    if (reduced[k]) {
      if (phase == 2) return std::nullopt;
      phase = 1;
      v.middle *= shape[k];
    } else if (phase == 0) {
      v.outer *= shape[k];
    } else {
      phase = 2;
      v.inner *= shape[k];
    }
  }
  return v;
}

// Channels accumulated together by one task.
constexpr int64_t kReduceChunk = 256;

template <ReduceKind Kind>
void fast_reduce(const float* x, float* y, const ReductionView& v) {
  constexpr bool kSumLike = Kind == ReduceKind::kSum || Kind == ReduceKind::kMean;
  constexpr bool kMax = Kind == ReduceKind::kMax;
  using Acc = std::conditional_t<kSumLike, double, float>;
  constexpr Acc kInit = kSumLike ? Acc{0}
                        : kMax   ? -std::numeric_limits<float>::infinity()
                                 : std::numeric_limits<float>::infinity();
  const double count = static_cast<double>(v.middle);
  const auto finish = [=](Acc a) -> float {  // `count` is used by kMean only
    if constexpr (Kind == ReduceKind::kMean) return static_cast<float>(a / count);
    return static_cast<float>(a);
  };
  // The reference code's update, NaN propagation included, written branch-free.
  const auto update = [](Acc a, float value) -> Acc {
    if constexpr (kSumLike) {
      return a + static_cast<double>(value);
    } else {
      return std::isnan(a)                    ? a
             : std::isnan(value)              ? value
             : (kMax ? value > a : value < a) ? value
                                              : a;
    }
  };
  // Narrower chunks when there are fewer tasks than threads (batch 1 squeeze-excite: one image,
  // 32 channels); the middle axis is never split, which would change the summation order.
  int64_t chunk = kReduceChunk;
  const int64_t threads = ThreadPool::global().num_threads();
  if (v.outer < threads && threads > 1) {
    // Split the channels into a multiple of the thread count of near-equal chunks (multiples
    // of 16 floats): 144 channels on 2 threads become 80 + 64, not 128 + 16.
    const int64_t per_outer = (threads + v.outer - 1) / v.outer;
    for (int64_t parts = per_outer;; parts += per_outer) {
      chunk = std::max<int64_t>(16, ((v.inner + parts - 1) / parts + 15) / 16 * 16);
      if (chunk <= kReduceChunk) break;
    }
  }
  const int64_t chunks = (v.inner + chunk - 1) / chunk;
  parallel_rows(v.outer * chunks, v.middle * std::min(v.inner, chunk),
                [&](int64_t begin, int64_t end) {
                  Acc acc[kReduceChunk];
                  for (int64_t task = begin; task < end; ++task) {
                    const int64_t o = task / chunks;
                    const int64_t i0 = (task % chunks) * chunk;
                    const int64_t n = std::min(chunk, v.inner - i0);
                    const float* base = x + o * v.middle * v.inner + i0;
                    if (n == 1) {
                      Acc a = kInit;
                      for (int64_t m = 0; m < v.middle; ++m) a = update(a, base[m * v.inner]);
                      y[o * v.inner + i0] = finish(a);
                      continue;
                    }
                    for (int64_t i = 0; i < n; ++i) acc[i] = kInit;
                    for (int64_t m = 0; m < v.middle; ++m) {
                      const float* row = base + m * v.inner;
                      for (int64_t i = 0; i < n; ++i) acc[i] = update(acc[i], row[i]);
                    }
                    float* out = y + o * v.inner + i0;
                    for (int64_t i = 0; i < n; ++i) out[i] = finish(acc[i]);
                  }
                });
}

template <ReduceKind Kind>
Status reduce_kernel(KernelContext& ctx) {
  if constexpr (Kind != ReduceKind::kProd) {
    if (fast_paths_enabled() && ctx.num_inputs() == 2 && ctx.input(0).dtype() == DType::kFloat32) {
      HUBIMG_ASSIGN_OR_RETURN(ReducedAxes axes, reduced_axes(ctx));
      if (auto view = reduction_view(ctx.input(0).shape(), axes.reduced)) {
        Tensor out = Tensor::uninitialized(DType::kFloat32, axes.out_shape);
        if (out.num_elements() > 0)
          fast_reduce<Kind>(ctx.input(0).data<float>(), out.mutable_data<float>(), *view);
        ctx.set_output(0, std::move(out));
        return {};
      }
    }
  }
  HUBIMG_ASSIGN_OR_RETURN(Reduction plan, plan_reduction(ctx));
  const Tensor& input = ctx.input(0);
  return dispatch_types<kRealTypes>(ctx, input.dtype(), [&]<typename T>() -> Status {
    HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, input.dtype(), plan.out_shape));
    const T* x = input.data<T>();
    T* y = out.mutable_data<T>();
    const auto n = static_cast<size_t>(plan.out_elements);
    if constexpr (Kind == ReduceKind::kMax || Kind == ReduceKind::kMin) {
      // Empty reductions give the identity: -inf/lowest for Max, +inf/max for Min.
      constexpr bool kMax = Kind == ReduceKind::kMax;
      T init;
      if constexpr (std::is_floating_point_v<T>) {
        init = kMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
      } else {
        init = kMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
      }
      std::fill(y, y + n, init);
      for (size_t i = 0; i < plan.out_offsets.size(); ++i) {
        T& acc = y[plan.out_offsets[i]];
        const T v = x[i];
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(acc)) continue;  // NaN propagates (TensorFlow >= 2.4)
          if (std::isnan(v)) {
            acc = v;
            continue;
          }
        }
        if (kMax ? v > acc : v < acc) acc = v;
      }
    } else if constexpr (std::is_floating_point_v<T>) {
      // Sum, Mean and Prod accumulate in double, then round once.
      std::vector<double> acc(n, Kind == ReduceKind::kProd ? 1.0 : 0.0);
      for (size_t i = 0; i < plan.out_offsets.size(); ++i) {
        double& a = acc[static_cast<size_t>(plan.out_offsets[i])];
        if constexpr (Kind == ReduceKind::kProd) {
          a *= static_cast<double>(x[i]);
        } else {
          a += static_cast<double>(x[i]);
        }
      }
      for (size_t j = 0; j < n; ++j) {
        if constexpr (Kind == ReduceKind::kMean) acc[j] /= static_cast<double>(plan.count);
        y[j] = static_cast<T>(acc[j]);
      }
    } else {
      // Integers wrap on overflow; Mean divides the wrapped sum with truncation.
      if (Kind == ReduceKind::kMean && plan.count == 0 && n > 0) {
        return ctx.error("Mean of an empty integer reduction divides by zero");
      }
      std::fill(y, y + n, Kind == ReduceKind::kProd ? T{1} : T{0});
      for (size_t i = 0; i < plan.out_offsets.size(); ++i) {
        T& a = y[plan.out_offsets[i]];
        a = Kind == ReduceKind::kProd ? wrapping_mul(a, x[i]) : wrapping_add(a, x[i]);
      }
      if constexpr (Kind == ReduceKind::kMean) {
        for (size_t j = 0; j < n; ++j) {
          if constexpr (std::is_signed_v<T>) {
            y[j] = static_cast<T>(static_cast<int64_t>(y[j]) / plan.count);
          } else {
            y[j] = static_cast<T>(static_cast<uint64_t>(y[j]) / static_cast<uint64_t>(plan.count));
          }
        }
      }
    }
    ctx.set_output(0, std::move(out));
    return {};
  });
}

template <bool kAll>
Status bool_reduce_kernel(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(Reduction plan, plan_reduction(ctx));
  const Tensor& input = ctx.input(0);
  if (input.dtype() != DType::kBool)
    return ctx.error("input must be bool, got " + input.description());
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, DType::kBool, plan.out_shape));
  bool* y = out.mutable_data<bool>();
  std::fill(y, y + plan.out_elements, kAll);
  const bool* x = input.data<bool>();
  for (size_t i = 0; i < plan.out_offsets.size(); ++i) {
    bool& a = y[plan.out_offsets[i]];
    a = kAll ? (a && x[i]) : (a || x[i]);
  }
  ctx.set_output(0, std::move(out));
  return {};
}

// ArgMax/ArgMin: the first index of the extreme value along one axis.
template <bool kMax>
Status arg_reduce_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(int64_t dimension, int_scalar(ctx, 1, "dimension"));
  HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, dimension, input.rank(), "dimension"));
  HUBIMG_ASSIGN_OR_RETURN(DType out_type, ctx.attrs().get_type("output_type", DType::kInt64));
  if (out_type != DType::kInt32 && out_type != DType::kInt64) {
    return ctx.error("output_type must be int32 or int64, got " + dtype_name(out_type));
  }
  const int64_t axis_size = input.dim(axis);
  if (axis_size == 0) {
    return ctx.error("Reduction axis " + std::to_string(axis) + " is empty in shape " +
                     dims_to_string(input.shape()));
  }
  Dims out_shape = input.shape();
  out_shape.erase(out_shape.begin() + axis);
  int64_t outer = 1;
  for (int k = 0; k < axis; ++k) outer *= input.dim(k);
  const int64_t inner = input.num_elements() / std::max<int64_t>(outer * axis_size, 1);
  std::vector<int64_t> result(static_cast<size_t>(outer * inner));
  HUBIMG_RETURN_IF_ERROR(
      dispatch_types<kRealTypes>(ctx, input.dtype(), [&]<typename T>() -> Status {
        const T* x = input.data<T>();
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t i = 0; i < inner; ++i) {
            const T* base = x + o * axis_size * inner + i;
            int64_t best = 0;
            for (int64_t j = 1; j < axis_size; ++j) {
              const T v = base[j * inner];
              if (kMax ? v > base[best * inner] : v < base[best * inner]) best = j;
            }
            result[static_cast<size_t>(o * inner + i)] = best;
          }
        }
        return {};
      }));
  ctx.set_output(0, int_tensor(out_type, std::move(out_shape), result));
  return {};
}

void register_reductions(OpRegistry& r) {
  add_op(r, {"Sum", {}, computed_in_float32(reduce_kernel<ReduceKind::kSum>)});
  add_op(r, {"Mean", {}, computed_in_float32(reduce_kernel<ReduceKind::kMean>)});
  add_op(r, {"Prod", {}, computed_in_float32(reduce_kernel<ReduceKind::kProd>)});
  add_op(r, {"Max", {}, computed_in_float32(reduce_kernel<ReduceKind::kMax>)});
  add_op(r, {"Min", {}, computed_in_float32(reduce_kernel<ReduceKind::kMin>)});
  add_op(r, {"All", {}, bool_reduce_kernel<true>});
  add_op(r, {"Any", {}, bool_reduce_kernel<false>});
  add_op(r, {"ArgMax", {}, computed_in_float32(arg_reduce_kernel<true>)});
  add_op(r, {"ArgMin", {}, computed_in_float32(arg_reduce_kernel<false>)});
}

// ---------------------------------------------------------------------------------------------
// Cast, AddN, Range, Cumsum.

Status cast_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  HUBIMG_ASSIGN_OR_RETURN(DType dst, ctx.attrs().get_type("DstT"));
  HUBIMG_ASSIGN_OR_RETURN(bool truncate, ctx.attrs().get_bool("Truncate", false));
  auto out = cast_tensor(ctx.input(0), dst, truncate);
  if (!out.ok()) return ctx.error(out.status().code(), out.status().message());
  ctx.set_output(0, std::move(out).value());
  return {};
}

Status add_n_kernel(KernelContext& ctx) {
  if (ctx.num_inputs() == 0) return ctx.error("AddN needs at least one input");
  HUBIMG_RETURN_IF_ERROR(expect_same_dtypes(ctx));
  const Tensor& first = ctx.input(0);
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    if (ctx.input(i).shape() != first.shape()) {
      return ctx.error("inputs must have the same shape, got " + first.description() + " and " +
                       ctx.input(i).description());
    }
  }
  return dispatch_types<kRealTypes>(ctx, first.dtype(), [&]<typename T>() -> Status {
    Tensor out = first.clone();
    T* y = out.mutable_data<T>();
    for (size_t i = 1; i < ctx.num_inputs(); ++i) {
      const T* x = ctx.input(i).data<T>();
      for (int64_t j = 0; j < out.num_elements(); ++j) {
        if constexpr (kIsInteger<T>) {
          y[j] = wrapping_add(y[j], x[j]);
        } else {
          y[j] += x[j];
        }
      }
    }
    ctx.set_output(0, std::move(out));
    return {};
  });
}

// L2Loss: sum(x^2) / 2 as a scalar (tensorflow/core/kernels/l2loss_op.h), accumulated in T.
Status l2_loss_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  return dispatch_types<kFloatTypes>(ctx, ctx.input(0).dtype(), [&]<typename T>() -> Status {
    const T* x = ctx.input(0).data<T>();
    T sum = 0;
    for (int64_t i = 0; i < ctx.input(0).num_elements(); ++i) sum += x[i] * x[i];
    ctx.set_output(0, Tensor::scalar<T>(sum / T(2)));
    return {};
  });
}

// Range: TensorFlow's element count formula, and values accumulated by repeated addition.
Status range_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  HUBIMG_RETURN_IF_ERROR(expect_same_dtypes(ctx));
  for (size_t i = 0; i < 3; ++i) {
    const Tensor& t = ctx.input(i);
    if (t.num_elements() != 1 || t.rank() > 1) {
      static constexpr const char* kNames[] = {"start", "limit", "delta"};
      return ctx.error(std::string(kNames[i]) + " must be a scalar, got " + t.description());
    }
  }
  constexpr unsigned kRangeTypes = kFloatTypes | kSignedIntTypes;
  return dispatch_types<kRangeTypes>(ctx, ctx.input(0).dtype(), [&]<typename T>() -> Status {
    const T start = ctx.input(0).data<T>()[0];
    const T limit = ctx.input(1).data<T>()[0];
    const T delta = ctx.input(2).data<T>()[0];
    if (delta == T{0}) return ctx.error("Requires delta != 0");
    if (delta > T{0} ? start > limit : start < limit) {
      return ctx.error(std::string("Requires start ") + (delta > T{0} ? "<=" : ">=") +
                       " limit when delta " + (delta > T{0} ? "> 0" : "< 0") + ": " +
                       std::to_string(start) + "/" + std::to_string(limit));
    }
    int64_t size = 0;
    if constexpr (kIsInteger<T>) {
      // |limit - start| and |delta| as unsigned 64-bit values cannot overflow.
      const auto magnitude = [](int64_t v) {
        return v < 0 ? uint64_t{0} - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
      };
      const uint64_t span = delta > T{0}
                                ? static_cast<uint64_t>(limit) - static_cast<uint64_t>(start)
                                : static_cast<uint64_t>(start) - static_cast<uint64_t>(limit);
      const uint64_t step = magnitude(delta);
      const uint64_t count = span / step + (span % step != 0 ? 1 : 0);
      if (count > (uint64_t{1} << 48)) return ctx.error("Range has too many elements");
      size = static_cast<int64_t>(count);
    } else {
      const T count = std::ceil(std::abs((limit - start) / delta));
      if (!(count <= static_cast<T>(uint64_t{1} << 48))) {
        return ctx.error("Range has too many elements");
      }
      size = static_cast<int64_t>(count);
    }
    HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, dtype_of<T>(), {size}));
    T* y = out.mutable_data<T>();
    T value = start;
    for (int64_t i = 0; i < size; ++i) {
      y[i] = value;
      if constexpr (kIsInteger<T>) {
        value = wrapping_add(value, delta);
      } else {
        value += delta;
      }
    }
    ctx.set_output(0, std::move(out));
    return {};
  });
}

Status cumsum_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(int64_t axis_value, int_scalar(ctx, 1, "axis"));
  HUBIMG_ASSIGN_OR_RETURN(int axis, canonical_axis(ctx, axis_value, input.rank()));
  HUBIMG_ASSIGN_OR_RETURN(bool exclusive, ctx.attrs().get_bool("exclusive", false));
  HUBIMG_ASSIGN_OR_RETURN(bool reverse, ctx.attrs().get_bool("reverse", false));
  const int64_t axis_size = input.dim(axis);
  int64_t outer = 1;
  for (int k = 0; k < axis; ++k) outer *= input.dim(k);
  const int64_t inner = input.num_elements() / std::max<int64_t>(outer * axis_size, 1);
  return dispatch_types<kRealTypes>(ctx, input.dtype(), [&]<typename T>() -> Status {
    HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, input.dtype(), input.shape()));
    const T* x = input.data<T>();
    T* y = out.mutable_data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        T acc{0};
        for (int64_t step = 0; step < axis_size; ++step) {
          const int64_t j = reverse ? axis_size - 1 - step : step;
          const int64_t at = (o * axis_size + j) * inner + i;
          if (exclusive) y[at] = acc;
          if constexpr (kIsInteger<T>) {
            acc = wrapping_add(acc, x[at]);
          } else {
            acc += x[at];
          }
          if (!exclusive) y[at] = acc;
        }
      }
    }
    ctx.set_output(0, std::move(out));
    return {};
  });
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kMathOpsOpDefs[] = R"pb(
  op {
    name: "Abs"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Add"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      allowed_values {
        list {
          type: DT_BFLOAT16
          type: DT_HALF
          type: DT_FLOAT
          type: DT_DOUBLE
          type: DT_UINT8
          type: DT_INT8
          type: DT_INT16
          type: DT_INT32
          type: DT_INT64
          type: DT_COMPLEX64
          type: DT_COMPLEX128
          type: DT_STRING
        }
      }
    }
  }
  op {
    name: "AddN"
    input_arg { name: "inputs" type_attr: "T" number_attr: "N" }
    output_arg { name: "sum" type_attr: "T" }
    attr { name: "N" type: "int" has_minimum: true minimum: 1 }
    attr { name: "T" type: "type" }
    is_aggregate: true
    is_commutative: true
  }
  op {
    name: "AddV2"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
    is_commutative: true
    is_aggregate: true
  }
  op {
    name: "All"
    input_arg { name: "input" type: DT_BOOL }
    input_arg { name: "reduction_indices" type_attr: "Tidx" }
    output_arg { name: "output" type: DT_BOOL }
    attr {
      name: "keep_dims"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "Any"
    input_arg { name: "input" type: DT_BOOL }
    input_arg { name: "reduction_indices" type_attr: "Tidx" }
    output_arg { name: "output" type: DT_BOOL }
    attr {
      name: "keep_dims"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "ArgMax"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "dimension" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "output_type" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
    }
    attr {
      name: "output_type"
      type: "type"
      default_value { type: DT_INT64 }
    }
  }
  op {
    name: "ArgMin"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "dimension" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "output_type" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
    }
    attr {
      name: "output_type"
      type: "type"
      default_value { type: DT_INT64 }
    }
  }
  op {
    name: "Cast"
    input_arg { name: "x" type_attr: "SrcT" }
    output_arg { name: "y" type_attr: "DstT" }
    attr { name: "SrcT" type: "type" }
    attr { name: "DstT" type: "type" }
    attr {
      name: "Truncate"
      type: "bool"
      default_value { b: false }
    }
  }
  op {
    name: "Ceil"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Cos"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Cumsum"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "axis" type_attr: "Tidx" }
    output_arg { name: "out" type_attr: "T" }
    attr {
      name: "exclusive"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "reverse"
      type: "bool"
      default_value { b: false }
    }
    attr { name: "T" type: "type" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "Div"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "DivNoNan"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Equal"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type: DT_BOOL }
    attr { name: "T" type: "type" }
    attr {
      name: "incompatible_shape_error"
      type: "bool"
      default_value { b: true }
    }
    is_commutative: true
  }
  op {
    name: "Erf"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Exp"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Expm1"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Floor"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "FloorDiv"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      allowed_values {
        list {
          type: DT_BFLOAT16
          type: DT_HALF
          type: DT_FLOAT
          type: DT_DOUBLE
          type: DT_UINT8
          type: DT_INT8
          type: DT_UINT16
          type: DT_INT16
          type: DT_INT32
          type: DT_UINT32
          type: DT_UINT64
          type: DT_INT64
          type: DT_COMPLEX64
          type: DT_COMPLEX128
        }
      }
    }
  }
  op {
    name: "FloorMod"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Greater"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type: DT_BOOL }
    attr { name: "T" type: "type" }
  }
  op {
    name: "GreaterEqual"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type: DT_BOOL }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Inv"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "IsFinite"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type: DT_BOOL }
    attr { name: "T" type: "type" }
  }
  op {
    name: "IsInf"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type: DT_BOOL }
    attr { name: "T" type: "type" }
  }
  op {
    name: "IsNan"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type: DT_BOOL }
    attr { name: "T" type: "type" }
  }
  op {
    name: "L2Loss"
    input_arg { name: "t" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Less"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type: DT_BOOL }
    attr { name: "T" type: "type" }
  }
  op {
    name: "LessEqual"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type: DT_BOOL }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Log"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Log1p"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "LogicalAnd"
    input_arg { name: "x" type: DT_BOOL }
    input_arg { name: "y" type: DT_BOOL }
    output_arg { name: "z" type: DT_BOOL }
    is_commutative: true
  }
  op {
    name: "LogicalNot"
    input_arg { name: "x" type: DT_BOOL }
    output_arg { name: "y" type: DT_BOOL }
  }
  op {
    name: "LogicalOr"
    input_arg { name: "x" type: DT_BOOL }
    input_arg { name: "y" type: DT_BOOL }
    output_arg { name: "z" type: DT_BOOL }
    is_commutative: true
  }
  op {
    name: "Max"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "reduction_indices" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "keep_dims"
      type: "bool"
      default_value { b: false }
    }
    attr { name: "T" type: "type" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "Maximum"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      allowed_values {
        list {
          type: DT_BFLOAT16
          type: DT_HALF
          type: DT_FLOAT
          type: DT_DOUBLE
          type: DT_INT8
          type: DT_INT16
          type: DT_INT32
          type: DT_INT64
          type: DT_UINT8
          type: DT_UINT16
          type: DT_UINT32
          type: DT_UINT64
        }
      }
    }
  }
  op {
    name: "Mean"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "reduction_indices" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "keep_dims"
      type: "bool"
      default_value { b: false }
    }
    attr { name: "T" type: "type" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "Min"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "reduction_indices" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "keep_dims"
      type: "bool"
      default_value { b: false }
    }
    attr { name: "T" type: "type" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "Minimum"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      allowed_values {
        list {
          type: DT_BFLOAT16
          type: DT_HALF
          type: DT_FLOAT
          type: DT_DOUBLE
          type: DT_INT8
          type: DT_UINT8
          type: DT_INT16
          type: DT_UINT16
          type: DT_INT32
          type: DT_UINT32
          type: DT_INT64
          type: DT_UINT64
        }
      }
    }
  }
  op {
    name: "Mul"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
    is_commutative: true
  }
  op {
    name: "Neg"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "NotEqual"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type: DT_BOOL }
    attr { name: "T" type: "type" }
    attr {
      name: "incompatible_shape_error"
      type: "bool"
      default_value { b: true }
    }
    is_commutative: true
  }
  op {
    name: "Pow"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Prod"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "reduction_indices" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "keep_dims"
      type: "bool"
      default_value { b: false }
    }
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
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "Range"
    input_arg { name: "start" type_attr: "Tidx" }
    input_arg { name: "limit" type_attr: "Tidx" }
    input_arg { name: "delta" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "Tidx" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "RealDiv"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Reciprocal"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Round"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Rsqrt"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      allowed_values {
        list {
          type: DT_BFLOAT16
          type: DT_HALF
          type: DT_FLOAT
          type: DT_DOUBLE
          type: DT_COMPLEX64
          type: DT_COMPLEX128
        }
      }
    }
  }
  op {
    name: "Select"
    input_arg { name: "condition" type: DT_BOOL }
    input_arg { name: "t" type_attr: "T" }
    input_arg { name: "e" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "SelectV2"
    input_arg { name: "condition" type: DT_BOOL }
    input_arg { name: "t" type_attr: "T" }
    input_arg { name: "e" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Sign"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Sin"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Sqrt"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Square"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "SquaredDifference"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
    is_commutative: true
  }
  op {
    name: "Sub"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Sum"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "reduction_indices" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "keep_dims"
      type: "bool"
      default_value { b: false }
    }
    attr { name: "T" type: "type" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "Tan"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "TruncateDiv"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "TruncateMod"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
)pb";

void register_math_ops(OpRegistry& r) {
  register_elementwise(r);
  add_op(r, {"Select", {}, select_kernel});
  add_op(r, {"SelectV2", {}, select_v2_kernel});
  register_reductions(r);
  add_op(r, {"Cast", {}, cast_kernel});
  add_op(r, {"AddN", {}, computed_in_float32(add_n_kernel)});
  add_op(r, {"L2Loss", {}, computed_in_float32(l2_loss_kernel)});
  add_op(r, {"Range", {}, range_kernel});
  add_op(r, {"Cumsum", {}, computed_in_float32(cumsum_kernel)});

  r.set_row_rule(RowRule::kElementwise,
                 {"Exp",  "Expm1",      "Log", "Log1p", "Sqrt",  "Rsqrt",    "Square",    "Neg",
                  "Abs",  "Reciprocal", "Inv", "Floor", "Ceil",  "Round",    "Sign",      "Erf",
                  "Cast", "Sin",        "Cos", "IsNan", "IsInf", "IsFinite", "LogicalNot"});
  r.set_row_rule(RowRule::kBroadcastBinary,
                 {"Add",      "AddV2",      "Sub",          "Mul",  "RealDiv",           "Div",
                  "DivNoNan", "Maximum",    "Minimum",      "Pow",  "SquaredDifference", "FloorDiv",
                  "FloorMod", "Greater",    "GreaterEqual", "Less", "LessEqual",         "Equal",
                  "NotEqual", "LogicalAnd", "LogicalOr"});
  r.set_row_rule(RowRule::kReduction, {"Mean", "Sum", "Max", "Min", "Prod", "All", "Any"});
  r.set_op_defs(kMathOpsOpDefs);
}

}  // namespace hubimg::ops
