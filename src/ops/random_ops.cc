// Random number ops on TensorFlow's Philox4x32-10 stream: the stateless V1/V2 ops (which are
// pure functions of their seed or key/counter) and the stateful RandomUniform family.
//
// TensorFlow fills an output of n elements from consecutive Philox blocks: 4 floats, halfs,
// bfloat16s or 32-bit integers per block, 2 doubles or 64-bit integers per block, with a
// partial last block truncated (random_op_cpu.h, FillPhiloxRandom).
#include <array>
#include <type_traits>

#include "ops/array_util.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"
#include "ops/philox.h"
#include "ops/type_dispatch.h"

namespace hubimg::ops {
namespace {

using philox::Block;
using philox::Generator;

// out[i] for i in [0, n) from `convert`, which turns one Philox block into PerBlock values.
template <typename T, size_t PerBlock, typename Convert>
void fill_blocks(T* out, int64_t n, Generator gen, Convert convert) {
  for (int64_t i = 0; i < n; i += static_cast<int64_t>(PerBlock)) {
    const std::array<T, PerBlock> values = convert(gen.next());
    for (size_t k = 0; k < PerBlock && i + static_cast<int64_t>(k) < n; ++k) {
      out[i + static_cast<int64_t>(k)] = values[k];
    }
  }
}

Status fill_uniform(const KernelContext& ctx, Tensor& out, Generator gen) {
  const int64_t n = out.num_elements();
  switch (out.dtype()) {
    case DType::kFloat32:
      fill_blocks<float, 4>(out.mutable_data<float>(), n, gen, [](const Block& b) {
        return std::array<float, 4>{philox::uint32_to_float(b[0]), philox::uint32_to_float(b[1]),
                                    philox::uint32_to_float(b[2]), philox::uint32_to_float(b[3])};
      });
      return {};
    case DType::kFloat64:
      fill_blocks<double, 2>(out.mutable_data<double>(), n, gen, [](const Block& b) {
        return std::array<double, 2>{philox::uint64_to_double(b[0], b[1]),
                                     philox::uint64_to_double(b[2], b[3])};
      });
      return {};
    case DType::kFloat16:
      fill_blocks<Float16, 4>(out.mutable_data<Float16>(), n, gen, [](const Block& b) {
        std::array<Float16, 4> v;
        for (size_t k = 0; k < 4; ++k) {
          v[k].bits = philox::uint16_to_half_bits(static_cast<uint16_t>(b[k]));
        }
        return v;
      });
      return {};
    case DType::kBFloat16:
      fill_blocks<BFloat16, 4>(out.mutable_data<BFloat16>(), n, gen, [](const Block& b) {
        std::array<BFloat16, 4> v;
        for (size_t k = 0; k < 4; ++k) {
          v[k].bits = philox::uint16_to_bfloat16_bits(static_cast<uint16_t>(b[k]));
        }
        return v;
      });
      return {};
    default:
      return ctx.error(StatusCode::kUnimplemented,
                       "unsupported dtype " + dtype_name(out.dtype()) + " for uniform floats");
  }
}

Status fill_normal(const KernelContext& ctx, Tensor& out, Generator gen) {
  const int64_t n = out.num_elements();
  auto four_floats = [](const Block& b) {
    std::array<float, 4> v;
    philox::box_muller_float(b[0], b[1], v[0], v[1]);
    philox::box_muller_float(b[2], b[3], v[2], v[3]);
    return v;
  };
  switch (out.dtype()) {
    case DType::kFloat32:
      fill_blocks<float, 4>(out.mutable_data<float>(), n, gen, four_floats);
      return {};
    case DType::kFloat64:
      fill_blocks<double, 2>(out.mutable_data<double>(), n, gen, [](const Block& b) {
        std::array<double, 2> v;
        philox::box_muller_double(b[0], b[1], b[2], b[3], v[0], v[1]);
        return v;
      });
      return {};
    case DType::kFloat16:
      fill_blocks<Float16, 4>(out.mutable_data<Float16>(), n, gen, [&](const Block& b) {
        const auto f = four_floats(b);
        return std::array<Float16, 4>{Float16::from_float(f[0]), Float16::from_float(f[1]),
                                      Float16::from_float(f[2]), Float16::from_float(f[3])};
      });
      return {};
    case DType::kBFloat16:
      fill_blocks<BFloat16, 4>(out.mutable_data<BFloat16>(), n, gen, [&](const Block& b) {
        const auto f = four_floats(b);
        return std::array<BFloat16, 4>{BFloat16::from_float(f[0]), BFloat16::from_float(f[1]),
                                       BFloat16::from_float(f[2]), BFloat16::from_float(f[3])};
      });
      return {};
    default:
      return ctx.error(StatusCode::kUnimplemented,
                       "unsupported dtype " + dtype_name(out.dtype()) + " for normal floats");
  }
}

// Integers over the whole range of the type: one word per 32-bit value, two (low word first)
// per 64-bit value.
template <typename T>
void fill_full_int(Tensor& out, Generator gen) {
  T* data = out.mutable_data<T>();
  if constexpr (sizeof(T) == 4) {
    fill_blocks<T, 4>(data, out.num_elements(), gen, [](const Block& b) {
      return std::array<T, 4>{static_cast<T>(b[0]), static_cast<T>(b[1]), static_cast<T>(b[2]),
                              static_cast<T>(b[3])};
    });
  } else {
    fill_blocks<T, 2>(data, out.num_elements(), gen, [](const Block& b) {
      return std::array<T, 2>{static_cast<T>(b[0] | (uint64_t{b[1]} << 32)),
                              static_cast<T>(b[2] | (uint64_t{b[3]} << 32))};
    });
  }
}

// Integers in [lo, hi): lo + bits % (hi - lo), the range computed in unsigned arithmetic.
template <typename T>
void fill_uniform_int(Tensor& out, Generator gen, T lo, T hi) {
  using U = std::make_unsigned_t<T>;
  const U range = static_cast<U>(static_cast<U>(hi) - static_cast<U>(lo));
  const auto value = [&](uint64_t bits) {
    return static_cast<T>(static_cast<U>(lo) + static_cast<U>(bits % range));
  };
  T* data = out.mutable_data<T>();
  if constexpr (sizeof(T) == 4) {
    fill_blocks<T, 4>(data, out.num_elements(), gen, [&](const Block& b) {
      return std::array<T, 4>{value(b[0]), value(b[1]), value(b[2]), value(b[3])};
    });
  } else {
    fill_blocks<T, 2>(data, out.num_elements(), gen, [&](const Block& b) {
      return std::array<T, 2>{value(b[0] | (uint64_t{b[1]} << 32)),
                              value(b[2] | (uint64_t{b[3]} << 32))};
    });
  }
}

template <typename Fn>
Status dispatch_random_int(const KernelContext& ctx, DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kInt32: return fn.template operator()<int32_t>();
    case DType::kInt64: return fn.template operator()<int64_t>();
    case DType::kUInt32: return fn.template operator()<uint32_t>();
    case DType::kUInt64: return fn.template operator()<uint64_t>();
    default:
      return ctx.error(StatusCode::kUnimplemented,
                       "unsupported dtype " + dtype_name(dtype) + " for random integers");
  }
}

// ---------------------------------------------------------------------------------------------
// Where the Philox stream comes from.

Expected<std::array<uint64_t, 2>> read_seed(const KernelContext& ctx, size_t input) {
  const Tensor& seed = ctx.input(input);
  if (seed.rank() != 1 || seed.dim(0) != 2) {
    return ctx.error("seed must have shape [2], not " + dims_to_string(seed.shape()));
  }
  HUBIMG_ASSIGN_OR_RETURN(auto values, int_values(ctx, input, "seed"));
  return std::array<uint64_t, 2>{static_cast<uint64_t>(values[0]),
                                 static_cast<uint64_t>(values[1])};
}

Expected<Generator> generator_from_seed(const KernelContext& ctx, size_t input) {
  HUBIMG_ASSIGN_OR_RETURN(auto seed, read_seed(ctx, input));
  philox::Key key;
  philox::Counter counter;
  philox::key_counter_from_seed(seed[0], seed[1], key, counter);
  return Generator(counter, key);
}

constexpr int32_t kAlgPhilox = 1;
constexpr int32_t kAlgAutoSelect = 3;

// The V2 ops' (key [1], counter [2], alg) inputs; alg 3 (auto-select) is Philox on CPU.
Expected<Generator> generator_from_key_counter(const KernelContext& ctx, size_t key_input) {
  const Tensor& key = ctx.input(key_input);
  const Tensor& counter = ctx.input(key_input + 1);
  const Tensor& alg = ctx.input(key_input + 2);
  if (alg.rank() != 0 || alg.dtype() != DType::kInt32) {
    return ctx.error("alg must be an int32 scalar, got " + alg.description());
  }
  const int32_t alg_id = alg.data<int32_t>()[0];
  if (alg_id != kAlgPhilox && alg_id != kAlgAutoSelect) {
    return ctx.error(StatusCode::kUnimplemented,
                     "Unsupported algorithm id: " + std::to_string(alg_id));
  }
  if (key.dtype() != DType::kUInt64 || key.rank() != 1 || key.dim(0) != 1) {
    return ctx.error("key must be uint64 with shape [1], got " + key.description());
  }
  if (counter.dtype() != DType::kUInt64 || counter.rank() != 1 || counter.dim(0) < 2) {
    return ctx.error("counter must be a uint64 vector with length at least 2, got " +
                     counter.description());
  }
  const uint64_t* c = counter.data<uint64_t>();
  return Generator(philox::counter_from_u64(c[0], c[1]),
                   philox::key_from_u64(key.data<uint64_t>()[0]));
}

// Stateful ops: attrs seed/seed2; both 0 means "random", which here is the executor's seed
// counter. TensorFlow keeps one stream per kernel instance and advances it on every run; this
// kernel restarts the stream on every run, so it reproduces TensorFlow's first run only.
Expected<Generator> generator_from_attrs(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(int64_t seed, ctx.attrs().get_int("seed", 0));
  HUBIMG_ASSIGN_OR_RETURN(int64_t seed2, ctx.attrs().get_int("seed2", 0));
  if (seed == 0 && seed2 == 0) {
    seed = static_cast<int64_t>(ctx.next_random_seed());
    seed2 = static_cast<int64_t>(ctx.next_random_seed());
  }
  return Generator::from_seeds(static_cast<uint64_t>(seed), static_cast<uint64_t>(seed2));
}

// ---------------------------------------------------------------------------------------------
// Kernels.

enum class Draw { kUniform, kNormal, kFullInt };

template <Draw D>
Status draw(KernelContext& ctx, Generator gen, DType dtype) {
  HUBIMG_ASSIGN_OR_RETURN(Dims shape, shape_from_input(ctx, 0, "shape"));
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, dtype, std::move(shape)));
  if constexpr (D == Draw::kUniform) {
    HUBIMG_RETURN_IF_ERROR(fill_uniform(ctx, out, gen));
  } else if constexpr (D == Draw::kNormal) {
    HUBIMG_RETURN_IF_ERROR(fill_normal(ctx, out, gen));
  } else {
    HUBIMG_RETURN_IF_ERROR(dispatch_random_int(ctx, dtype, [&]<typename T>() -> Status {
      fill_full_int<T>(out, gen);
      return {};
    }));
  }
  ctx.set_output(0, std::move(out));
  return {};
}

template <Draw D>
Expected<DType> draw_dtype(const KernelContext& ctx) {
  return ctx.attrs().get_type("dtype", D == Draw::kFullInt ? DType::kUInt64 : DType::kFloat32);
}

template <Draw D>
Status stateless_v2_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 4));
  HUBIMG_ASSIGN_OR_RETURN(Generator gen, generator_from_key_counter(ctx, 1));
  HUBIMG_ASSIGN_OR_RETURN(DType dtype, draw_dtype<D>(ctx));
  return draw<D>(ctx, gen, dtype);
}

template <Draw D>
Status stateless_v1_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 2));
  HUBIMG_ASSIGN_OR_RETURN(Generator gen, generator_from_seed(ctx, 1));
  HUBIMG_ASSIGN_OR_RETURN(DType dtype, draw_dtype<D>(ctx));
  return draw<D>(ctx, gen, dtype);
}

template <Draw D>
Status stateful_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  HUBIMG_ASSIGN_OR_RETURN(Generator gen, generator_from_attrs(ctx));
  HUBIMG_ASSIGN_OR_RETURN(DType dtype, ctx.attrs().get_type("dtype"));
  return draw<D>(ctx, gen, dtype);
}

// Uniform integers in [minval, maxval) with the bounds at inputs `bounds`, `bounds + 1`.
Status draw_uniform_int(KernelContext& ctx, Generator gen, size_t bounds) {
  HUBIMG_ASSIGN_OR_RETURN(Dims shape, shape_from_input(ctx, 0, "shape"));
  const Tensor& minval = ctx.input(bounds);
  const Tensor& maxval = ctx.input(bounds + 1);
  if (minval.rank() != 0 || maxval.rank() != 0 || minval.dtype() != maxval.dtype()) {
    return ctx.error("minval and maxval must be scalars of one dtype, got " + minval.description() +
                     " and " + maxval.description());
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, minval.dtype(), std::move(shape)));
  HUBIMG_RETURN_IF_ERROR(dispatch_random_int(ctx, minval.dtype(), [&]<typename T>() -> Status {
    if (out.num_elements() == 0) return {};
    const T lo = minval.data<T>()[0];
    const T hi = maxval.data<T>()[0];
    if (!(lo < hi)) {
      return ctx.error("Need minval < maxval, got " + std::to_string(lo) +
                       " >= " + std::to_string(hi));
    }
    fill_uniform_int<T>(out, gen, lo, hi);
    return {};
  }));
  ctx.set_output(0, std::move(out));
  return {};
}

Status stateless_uniform_int_v2_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 6));
  HUBIMG_ASSIGN_OR_RETURN(Generator gen, generator_from_key_counter(ctx, 1));
  return draw_uniform_int(ctx, gen, 4);
}

Status stateless_uniform_int_v1_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 4));
  HUBIMG_ASSIGN_OR_RETURN(Generator gen, generator_from_seed(ctx, 1));
  return draw_uniform_int(ctx, gen, 2);
}

Status random_uniform_int_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  HUBIMG_ASSIGN_OR_RETURN(Generator gen, generator_from_attrs(ctx));
  return draw_uniform_int(ctx, gen, 1);
}

void set_key_counter(KernelContext& ctx, const philox::Key& key, const philox::Counter& counter) {
  ctx.set_output(0, Tensor::from_vector<uint64_t>({1}, {philox::key_to_u64(key)}));
  const auto c = philox::counter_to_u64(counter);
  ctx.set_output(1, Tensor::from_vector<uint64_t>({2}, {c[0], c[1]}));
}

Status get_key_counter_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  HUBIMG_ASSIGN_OR_RETURN(auto seed, read_seed(ctx, 0));
  philox::Key key;
  philox::Counter counter;
  philox::key_counter_from_seed(seed[0], seed[1], key, counter);
  set_key_counter(ctx, key, counter);
  return {};
}

Status get_key_counter_alg_kernel(KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(get_key_counter_kernel(ctx));
  ctx.set_output(2, Tensor::scalar<int32_t>(kAlgPhilox));
  return {};
}

Status get_alg_kernel(KernelContext& ctx) {
  ctx.set_output(0, Tensor::scalar<int32_t>(kAlgPhilox));
  return {};
}

}  // namespace

// TensorFlow's OpDefs of this file's ops (tensorflow/core/ops/*.cc), attached to their entries.
constexpr char kRandomOpsOpDefs[] = R"pb(
  op {
    name: "RandomStandardNormal"
    input_arg { name: "shape" type_attr: "T" }
    output_arg { name: "output" type_attr: "dtype" }
    attr {
      name: "seed"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "seed2"
      type: "int"
      default_value { i: 0 }
    }
    attr { name: "dtype" type: "type" }
    attr { name: "T" type: "type" }
    is_stateful: true
  }
  op {
    name: "RandomUniform"
    input_arg { name: "shape" type_attr: "T" }
    output_arg { name: "output" type_attr: "dtype" }
    attr {
      name: "seed"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "seed2"
      type: "int"
      default_value { i: 0 }
    }
    attr { name: "dtype" type: "type" }
    attr { name: "T" type: "type" }
    is_stateful: true
  }
  op {
    name: "RandomUniformInt"
    input_arg { name: "shape" type_attr: "T" }
    input_arg { name: "minval" type_attr: "Tout" }
    input_arg { name: "maxval" type_attr: "Tout" }
    output_arg { name: "output" type_attr: "Tout" }
    attr {
      name: "seed"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "seed2"
      type: "int"
      default_value { i: 0 }
    }
    attr { name: "Tout" type: "type" }
    attr { name: "T" type: "type" }
    is_stateful: true
  }
  op {
    name: "StatelessRandomGetAlg"
    output_arg { name: "alg" type: DT_INT32 }
    is_stateful: true
  }
  op {
    name: "StatelessRandomGetKeyCounter"
    input_arg { name: "seed" type_attr: "Tseed" }
    output_arg { name: "key" type: DT_UINT64 }
    output_arg { name: "counter" type: DT_UINT64 }
    attr {
      name: "Tseed"
      type: "type"
      default_value { type: DT_INT64 }
    }
  }
  op {
    name: "StatelessRandomGetKeyCounterAlg"
    input_arg { name: "seed" type_attr: "Tseed" }
    output_arg { name: "key" type: DT_UINT64 }
    output_arg { name: "counter" type: DT_UINT64 }
    output_arg { name: "alg" type: DT_INT32 }
    attr {
      name: "Tseed"
      type: "type"
      default_value { type: DT_INT64 }
    }
    is_stateful: true
  }
  op {
    name: "StatelessRandomNormal"
    input_arg { name: "shape" type_attr: "T" }
    input_arg { name: "seed" type_attr: "Tseed" }
    output_arg { name: "output" type_attr: "dtype" }
    attr {
      name: "dtype"
      type: "type"
      default_value { type: DT_FLOAT }
    }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_INT32 }
    }
    attr {
      name: "Tseed"
      type: "type"
      default_value { type: DT_INT64 }
    }
  }
  op {
    name: "StatelessRandomNormalV2"
    input_arg { name: "shape" type_attr: "Tshape" }
    input_arg { name: "key" type: DT_UINT64 }
    input_arg { name: "counter" type: DT_UINT64 }
    input_arg { name: "alg" type: DT_INT32 }
    output_arg { name: "output" type_attr: "dtype" }
    attr {
      name: "dtype"
      type: "type"
      default_value { type: DT_FLOAT }
    }
    attr {
      name: "Tshape"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "StatelessRandomUniform"
    input_arg { name: "shape" type_attr: "T" }
    input_arg { name: "seed" type_attr: "Tseed" }
    output_arg { name: "output" type_attr: "dtype" }
    attr {
      name: "dtype"
      type: "type"
      default_value { type: DT_FLOAT }
    }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_INT32 }
    }
    attr {
      name: "Tseed"
      type: "type"
      default_value { type: DT_INT64 }
    }
  }
  op {
    name: "StatelessRandomUniformFullInt"
    input_arg { name: "shape" type_attr: "T" }
    input_arg { name: "seed" type_attr: "Tseed" }
    output_arg { name: "output" type_attr: "dtype" }
    attr {
      name: "dtype"
      type: "type"
      default_value { type: DT_UINT64 }
    }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_INT32 }
    }
    attr {
      name: "Tseed"
      type: "type"
      default_value { type: DT_INT64 }
    }
  }
  op {
    name: "StatelessRandomUniformFullIntV2"
    input_arg { name: "shape" type_attr: "Tshape" }
    input_arg { name: "key" type: DT_UINT64 }
    input_arg { name: "counter" type: DT_UINT64 }
    input_arg { name: "alg" type: DT_INT32 }
    output_arg { name: "output" type_attr: "dtype" }
    attr {
      name: "dtype"
      type: "type"
      default_value { type: DT_UINT64 }
    }
    attr {
      name: "Tshape"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "StatelessRandomUniformInt"
    input_arg { name: "shape" type_attr: "T" }
    input_arg { name: "seed" type_attr: "Tseed" }
    input_arg { name: "minval" type_attr: "dtype" }
    input_arg { name: "maxval" type_attr: "dtype" }
    output_arg { name: "output" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tseed"
      type: "type"
      default_value { type: DT_INT64 }
    }
  }
  op {
    name: "StatelessRandomUniformIntV2"
    input_arg { name: "shape" type_attr: "Tshape" }
    input_arg { name: "key" type: DT_UINT64 }
    input_arg { name: "counter" type: DT_UINT64 }
    input_arg { name: "alg" type: DT_INT32 }
    input_arg { name: "minval" type_attr: "dtype" }
    input_arg { name: "maxval" type_attr: "dtype" }
    output_arg { name: "output" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    attr {
      name: "Tshape"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "StatelessRandomUniformV2"
    input_arg { name: "shape" type_attr: "Tshape" }
    input_arg { name: "key" type: DT_UINT64 }
    input_arg { name: "counter" type: DT_UINT64 }
    input_arg { name: "alg" type: DT_INT32 }
    output_arg { name: "output" type_attr: "dtype" }
    attr {
      name: "dtype"
      type: "type"
      default_value { type: DT_FLOAT }
    }
    attr {
      name: "Tshape"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
)pb";

void register_random_ops(OpRegistry& r) {
  add_op(r, {"StatelessRandomGetKeyCounter", {}, get_key_counter_kernel});
  add_op(r, {"StatelessRandomGetKeyCounterAlg", {}, get_key_counter_alg_kernel});
  add_op(r, {"StatelessRandomGetAlg", {}, get_alg_kernel});
  add_op(r, {"StatelessRandomUniformV2", {}, stateless_v2_kernel<Draw::kUniform>});
  add_op(r, {"StatelessRandomNormalV2", {}, stateless_v2_kernel<Draw::kNormal>});
  add_op(r, {"StatelessRandomUniformFullIntV2", {}, stateless_v2_kernel<Draw::kFullInt>});
  add_op(r, {"StatelessRandomUniformIntV2", {}, stateless_uniform_int_v2_kernel});
  add_op(r, {"StatelessRandomUniform", {}, stateless_v1_kernel<Draw::kUniform>});
  add_op(r, {"StatelessRandomNormal", {}, stateless_v1_kernel<Draw::kNormal>});
  add_op(r, {"StatelessRandomUniformFullInt", {}, stateless_v1_kernel<Draw::kFullInt>});
  add_op(r, {"StatelessRandomUniformInt", {}, stateless_uniform_int_v1_kernel});
  add_op(r, {"RandomUniform", {}, stateful_kernel<Draw::kUniform>, true});
  add_op(r, {"RandomStandardNormal", {}, stateful_kernel<Draw::kNormal>, true});
  add_op(r, {"RandomUniformInt", {}, random_uniform_int_kernel, true});
  r.set_op_defs(kRandomOpsOpDefs);
}

}  // namespace hubimg::ops
