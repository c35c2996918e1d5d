// The fast kernels on oneDNN: plain NHWC activations, weights reordered once into the format the
// primitive prefers, one primitive per input shape, bias / residual (sum post-op) / activation
// (eltwise post-op; swish as a pass of our own right after, see swish.h) fused into the primitive.
#include "ops/fast/fast_conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <vector>

#include "core/buffer_pool.h"
#include "core/thread_pool.h"
#include "ops/fast/swish.h"

#if HUBIMG_HAVE_DNNL
#include <dnnl.hpp>
#endif

namespace hubimg::ops::fast {
namespace {

std::string layer_prefix(const std::string& name) {
  return "fast kernel '" + (name.empty() ? std::string("<unnamed>") : name) + "': ";
}

Status invalid(const std::string& name, const std::string& message) {
  return invalid_argument(layer_prefix(name) + message);
}
Status unsupported(const std::string& name, const std::string& message) {
  return unimplemented(layer_prefix(name) + message);
}

// TensorFlow's GetWindowedOutputSizeVerbose for one spatial dimension (see ops/nn_util.h).
struct WindowResult {
  int64_t output = 0, pad_before = 0, pad_after = 0;
};
std::optional<WindowResult> resolve_window(PaddingKind padding, int64_t input, int64_t window,
                                           int64_t stride, int64_t dilation, int64_t before,
                                           int64_t after) {
  const int64_t effective = (window - 1) * dilation + 1;
  WindowResult r;
  switch (padding) {
    case PaddingKind::kValid: r.output = (input - effective + stride) / stride; break;
    case PaddingKind::kExplicit:
      r.output = (input + before + after - effective + stride) / stride;
      r.pad_before = before;
      r.pad_after = after;
      break;
    case PaddingKind::kSame: {
      r.output = (input + stride - 1) / stride;
      const int64_t needed = std::max<int64_t>(0, (r.output - 1) * stride + effective - input);
      r.pad_before = needed / 2;
      r.pad_after = needed - r.pad_before;
      break;
    }
  }
  if (r.output < 0) return std::nullopt;
  return r;
}

std::string dims_str(const Dims& d) {
  return dims_to_string(d);
}

// Whether `output` can be written in place: float32 with `shape`, not aliasing `input`.
void prepare_output(const Tensor& input, const Dims& shape, Tensor& output) {
  const bool reusable = output.valid() && output.dtype() == DType::kFloat32 &&
                        output.shape() == shape && !output.shares_buffer_with(input);
  if (!reusable) output = Tensor::uninitialized(DType::kFloat32, shape);
}

Status check_residual(const std::string& name, bool fused, const Tensor* residual,
                      const Dims& out_shape) {
  if (!fused) {
    if (residual) return invalid(name, "a residual was passed but the kernel was created without");
    return {};
  }
  if (!residual) return invalid(name, "the kernel fuses a residual add but none was passed");
  if (residual->dtype() != DType::kFloat32 || residual->shape() != out_shape) {
    return invalid(name, "residual " + residual->description() + " must be float32" +
                             dims_str(out_shape) + " like the output");
  }
  return {};
}

// Copies the residual into the output for the sum post-op (nothing to do when they share it).
void load_residual(const Tensor* residual, Tensor& output) {
  if (!residual || residual->shares_buffer_with(output)) return;
  const auto* src = static_cast<const char*>(residual->raw_data());
  auto* dst = static_cast<char*>(output.raw_mutable_data());
  const size_t bytes = output.byte_size();
  constexpr size_t kChunk = 1 << 20;
  auto& pool = ThreadPool::global();
  pool.parallel_for(static_cast<int64_t>((bytes + kChunk - 1) / kChunk), [&](int64_t chunk) {
    const size_t begin = static_cast<size_t>(chunk) * kChunk;
    std::memcpy(dst + begin, src + begin, std::min(kChunk, bytes - begin));
  });
}

// The activations oneDNN does not run as a post-op (see post_op_attr).
void apply_separate_activation(Activation activation, Tensor& output) {
  if (activation == Activation::kSwish) {
    swish_in_place_parallel(output.mutable_data<float>(), output.num_elements());
  }
}

// apply_separate_activation, and with `spatial_mean` the per-image channel means of the NHWC
// result (float32 [batch, channels]) in the same pass.
void finish_output(Activation activation, Tensor& output, Tensor* spatial_mean) {
  if (spatial_mean == nullptr) {
    apply_separate_activation(activation, output);
    return;
  }
  const Dims& d = output.shape();
  *spatial_mean = Tensor::uninitialized(DType::kFloat32, {d[0], d[3]});
  swish_and_channel_means(output.mutable_data<float>(), d[0], d[1] * d[2], d[3],
                          activation == Activation::kSwish, spatial_mean->mutable_data<float>());
}

Status check_bias(const std::string& name, const Tensor& bias, int64_t out_channels) {
  if (!bias.valid()) return {};
  if (bias.dtype() != DType::kFloat32 || bias.shape() != Dims{out_channels}) {
    return invalid(name, "bias " + bias.description() + " must be float32[" +
                             std::to_string(out_channels) + "]");
  }
  return {};
}

// y[b, :] = act(x[b, :] * w + bias + y[b, :] if accumulate) for a row-major [in, out] `w`, on the
// calling thread. For the squeeze-and-excitation layers (a 1x1 convolution of a 1x1 image) at
// small batches: oneDNN's matmul takes 8-16 us per call there (EfficientNet-B0, 1152 x 48 at
// batch 1), this loop 1-3 us, and a fork to other threads would cost more than the work.
void small_batch_matvec(const float* x, int64_t batch, int64_t in, int64_t out, const float* w,
                        const float* bias, bool accumulate, Activation activation, float* y) {
  for (int64_t b = 0; b < batch; ++b) {
    const float* xb = x + b * in;
    float* __restrict yb = y + b * out;
    for (int64_t o = 0; o < out; ++o) {
      yb[o] = (accumulate ? yb[o] : 0.0f) + (bias ? bias[o] : 0.0f);
    }
    int64_t i = 0;
    for (; i + 4 <= in; i += 4) {  // four rows of w per pass over y
      const float x0 = xb[i], x1 = xb[i + 1], x2 = xb[i + 2], x3 = xb[i + 3];
      const float* __restrict w0 = w + i * out;
      const float* __restrict w1 = w0 + out;
      const float* __restrict w2 = w1 + out;
      const float* __restrict w3 = w2 + out;
      for (int64_t o = 0; o < out; ++o) {
        yb[o] += x0 * w0[o] + x1 * w1[o] + x2 * w2[o] + x3 * w3[o];
      }
    }
    for (; i < in; ++i) {
      const float xi = xb[i];
      const float* __restrict wi = w + i * out;
      for (int64_t o = 0; o < out; ++o) yb[o] += xi * wi[o];
    }
    if (activation == Activation::kRelu || activation == Activation::kRelu6) {
      const float cap = activation == Activation::kRelu6 ? 6.0f : std::numeric_limits<float>::max();
      for (int64_t o = 0; o < out; ++o) yb[o] = std::min(std::max(yb[o], 0.0f), cap);
    }
  }
}

}  // namespace

#if HUBIMG_HAVE_DNNL

bool fast_kernels_available() {
  return true;
}

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

const dnnl::engine& engine() {
  static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// oneDNN calls into an OpenMP runtime whose thread count is per calling thread.
// Inside a parallel region (a chunk of a split batch) the primitive runs on the calling thread
// alone.
void match_thread_count() {
  set_onednn_num_threads(in_parallel_region() ? 1 : ThreadPool::global().num_threads());
}

dnnl::primitive_attr post_op_attr(Activation activation, bool fuse_residual) {
  dnnl::post_ops ops;
  if (fuse_residual) ops.append_sum(1.0f);
  switch (activation) {
    case Activation::kNone: break;
    case Activation::kRelu:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      break;
    case Activation::kRelu6:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, 0.0f, 6.0f);
      break;
    case Activation::kSwish: break;  // swish_in_place_parallel after the primitive (swish.h)
  }
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  // Chunks of a split batch run the same primitives on several threads at once; with the
  // library's scratchpad they would share one buffer. Each execution gets its own.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// Constant weights reordered into each format a primitive asked for, once per format.
class PackedWeights {
 public:
  PackedWeights(Tensor user, memory::desc user_md) : user_(std::move(user)), user_md_(user_md) {}

  memory get(const memory::desc& wanted) {
    for (auto& [md, mem] : packed_) {
      if (md == wanted) return mem;
    }
    // Reorders use the library's scratchpad, which concurrent executions would share.
    static std::mutex packing_mutex;
    std::lock_guard lock(packing_mutex);
    memory user(user_md_, engine(), const_cast<void*>(user_.raw_data()));
    memory packed(wanted, engine());
    dnnl::stream stream(engine());
    match_thread_count();
    dnnl::reorder(user, packed).execute(stream, user, packed);
    stream.wait();
    packed_.emplace_back(wanted, packed);
    return packed;
  }

  // `values` (laid out like the filter) reordered into `wanted`, not cached.
  std::vector<float> pack_other(const Tensor& values, const memory::desc& wanted) const {
    static std::mutex packing_mutex;
    std::lock_guard lock(packing_mutex);
    memory user(user_md_, engine(), const_cast<void*>(values.raw_data()));
    std::vector<float> out(wanted.get_size() / sizeof(float));
    memory packed(wanted, engine(), out.data());
    dnnl::stream stream(engine());
    match_thread_count();
    dnnl::reorder(user, packed).execute(stream, user, packed);
    stream.wait();
    return out;
  }

 private:
  Tensor user_;  // shares the caller's buffer; kept to pack further formats
  memory::desc user_md_;
  std::vector<std::pair<memory::desc, memory>> packed_;
};

// One primitive for one input shape, with the plain layouts it reads and writes.
struct PreparedPrimitive {
  dnnl::primitive primitive;
  memory::desc src_md, dst_md, bias_md;  // bias_md is zero when there is no bias
  memory::desc scratchpad_md;
  memory weights;
  std::string implementation;
  // Winograd convolutions read and write oneDNN's blocked layouts: the input is reordered into
  // `inner_src_md` and the result out of `inner_dst_md` around the primitive.
  std::optional<dnnl::reorder> src_reorder, dst_reorder;
  memory::desc inner_src_md, inner_dst_md;
  // For each element of `weights`, the input channel it multiplies (0 on padding); built on the
  // first run_with_input_gate.
  std::shared_ptr<const std::vector<int32_t>> input_channel_of;
};

std::string short_impl_name(const std::string& impl) {
  return "onednn:" + impl;
}

// Runs the primitive on `src` into `dst` (plain layouts of prepared.src_md / dst_md), with the
// packed filter `weights` when given instead of prepared.weights (same format).
Status execute_raw(const std::string& name, const PreparedPrimitive& prepared, const Tensor& input,
                   const void* src_data, void* dst_data, const Tensor& bias,
                   const void* weights = nullptr) {
  try {
    memory src(prepared.src_md, engine(), const_cast<void*>(src_data));
    memory dst(prepared.dst_md, engine(), dst_data);
    dnnl::stream stream(engine());
    match_thread_count();
    std::shared_ptr<void> inner_src_buffer, inner_dst_buffer;
    memory inner_src = src, inner_dst = dst;
    if (prepared.src_reorder) {
      inner_src_buffer = BufferPool::global().allocate(prepared.inner_src_md.get_size());
      inner_dst_buffer = BufferPool::global().allocate(prepared.inner_dst_md.get_size());
      inner_src = memory(prepared.inner_src_md, engine(), inner_src_buffer.get());
      inner_dst = memory(prepared.inner_dst_md, engine(), inner_dst_buffer.get());
      prepared.src_reorder->execute(stream, src, inner_src);
    }
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, inner_src},
        {DNNL_ARG_WEIGHTS,
         weights ? memory(prepared.weights.get_desc(), engine(), const_cast<void*>(weights))
                 : prepared.weights},
        {DNNL_ARG_DST, inner_dst}};
    if (bias.valid()) {
      args.emplace(DNNL_ARG_BIAS,
                   memory(prepared.bias_md, engine(), const_cast<void*>(bias.raw_data())));
    }
    std::shared_ptr<void> scratchpad;
    if (const size_t bytes = prepared.scratchpad_md.get_size(); bytes > 0) {
      scratchpad = BufferPool::global().allocate(bytes);
      args.emplace(DNNL_ARG_SCRATCHPAD, memory(prepared.scratchpad_md, engine(), scratchpad.get()));
    }
    prepared.primitive.execute(stream, args);
    if (prepared.dst_reorder) prepared.dst_reorder->execute(stream, inner_dst, dst);
    stream.wait();
  } catch (const dnnl::error& e) {
    return internal_error(layer_prefix(name) + "oneDNN failed on input " + input.description() +
                          ": " + e.what());
  }
  return {};
}

Status execute(const std::string& name, const PreparedPrimitive& prepared, const Tensor& input,
               const Tensor& bias, Tensor& output) {
  return execute_raw(name, prepared, input, input.raw_data(), output.raw_mutable_data(), bias);
}

// scaled[j] = packed[j] * gate[channel_of[j]]: a packed filter with each input channel's weights
// multiplied by that channel's gate (conv(x * gate, w) == conv(x, w * gate) for a gate per input
// channel and image; zero padding stays zero).
void scale_packed_filter(const float* packed, const int32_t* channel_of, const float* gate,
                         float* scaled, size_t count) {
  for (size_t j = 0; j < count; ++j) scaled[j] = packed[j] * gate[channel_of[j]];
}

}  // namespace

class FastConvImpl {
 public:
  enum class Kind { kConv, kDepthwise };

  static Expected<std::unique_ptr<FastConvImpl>> create(const ConvParams& p, Kind kind) {
    const std::string& name = p.name;
    const Tensor& f = p.filter;
    if (!f.valid() || f.dtype() != DType::kFloat32 || f.rank() != 4) {
      return unsupported(name, "filter must be float32 of rank 4, got " +
                                   (f.valid() ? f.description() : std::string("none")));
    }
    if (f.num_elements() == 0) return invalid(name, "filter " + f.description() + " is empty");
    for (int i = 0; i < 2; ++i) {
      if (p.strides[i] < 1 || p.dilations[i] < 1) {
        return invalid(name, "strides and dilations must be positive");
      }
    }
    for (int64_t pad : p.explicit_padding) {
      if (pad < 0) return invalid(name, "explicit paddings must be non-negative");
    }
    auto impl = std::unique_ptr<FastConvImpl>(new FastConvImpl(p, kind));
    FastConvImpl& k = *impl;
    const int64_t kh = f.dim(0), kw = f.dim(1);
    memory::dims weight_dims, weight_strides;
    if (kind == Kind::kDepthwise) {
      if (p.input_channels != 0 && p.input_channels != f.dim(2)) {
        return invalid(name, "depthwise filter " + f.description() + " does not fit " +
                                 std::to_string(p.input_channels) + " input channels");
      }
      const int64_t channels = f.dim(2), multiplier = f.dim(3);
      k.in_channels_ = channels;
      k.out_channels_ = channels * multiplier;
      // TensorFlow's [kh, kw, C, M] seen as oneDNN's grouped (g = C, o = M, i = 1, h, w).
      weight_dims = {channels, multiplier, 1, kh, kw};
      weight_strides = {multiplier, 1, 1, kw * channels * multiplier, channels * multiplier};
    } else {
      const int64_t patch_depth = f.dim(2), out = f.dim(3);
      k.in_channels_ = p.input_channels == 0 ? patch_depth : p.input_channels;
      k.out_channels_ = out;
      if (k.in_channels_ % patch_depth != 0) {
        return invalid(name, "input channels " + std::to_string(k.in_channels_) +
                                 " must be a multiple of the filter's input depth (filter " +
                                 f.description() + ")");
      }
      const int64_t groups = k.in_channels_ / patch_depth;
      if (out % groups != 0) {
        return invalid(name, "output channels " + std::to_string(out) +
                                 " must be a multiple of the number of groups " +
                                 std::to_string(groups));
      }
      if (groups == 1) {
        weight_dims = {out, patch_depth, kh, kw};
        weight_strides = {1, out, kw * patch_depth * out, patch_depth * out};
      } else {
        // [kh, kw, I/G, O] with output channel o in group o / (O/G).
        weight_dims = {groups, out / groups, patch_depth, kh, kw};
        weight_strides = {out / groups, 1, out, kw * patch_depth * out, patch_depth * out};
      }
    }
    HUBIMG_RETURN_IF_ERROR(check_bias(name, p.bias, k.out_channels_));
    k.weight_dims_ = weight_dims;
    k.packed_.emplace(f, memory::desc(weight_dims, kF32, weight_strides));
    if (p.bias.valid()) {
      k.bias_md_ = memory::desc({k.out_channels_}, kF32, Tag::a);
    }
    try {
      k.attr_ = post_op_attr(p.activation, p.fuse_residual);
    } catch (const dnnl::error& e) {
      return unsupported(name, std::string("oneDNN rejected the post-ops: ") + e.what());
    }
    Dims nominal = p.expected_input.value_or(
        Dims{1, std::max<int64_t>(32, (kh - 1) * p.dilations[0] + 1),
             std::max<int64_t>(32, (kw - 1) * p.dilations[1] + 1), k.in_channels_});
    if (nominal.size() == 4) nominal[3] = k.in_channels_;
    auto prepared = k.prepare(nominal);
    if (!prepared.ok()) return prepared.status();
    return impl;
  }

  Expected<ConvGeometry> geometry(const Dims& in) const {
    if (in.size() != 4) {
      return invalid(params_.name, "input must have rank 4 (NHWC), got " + dims_str(in));
    }
    if (in[3] != in_channels_) {
      return invalid(params_.name, "input " + dims_str(in) + " must have " +
                                       std::to_string(in_channels_) + " channels (filter " +
                                       params_.filter.description() + ")");
    }
    const auto& p = params_;
    auto rows = resolve_window(p.padding, in[1], p.filter.dim(0), p.strides[0], p.dilations[0],
                               p.explicit_padding[0], p.explicit_padding[1]);
    auto cols = resolve_window(p.padding, in[2], p.filter.dim(1), p.strides[1], p.dilations[1],
                               p.explicit_padding[2], p.explicit_padding[3]);
    if (!rows || !cols) {
      return invalid(p.name, "input " + dims_str(in) + " is smaller than the filter window " +
                                 p.filter.description());
    }
    return ConvGeometry{.batch = in[0],
                        .in_height = in[1],
                        .in_width = in[2],
                        .in_channels = in[3],
                        .out_height = rows->output,
                        .out_width = cols->output,
                        .out_channels = out_channels_,
                        .pad_top = rows->pad_before,
                        .pad_bottom = rows->pad_after,
                        .pad_left = cols->pad_before,
                        .pad_right = cols->pad_after};
  }

  Status run(const Tensor& input, const Tensor* residual, Tensor& output, Tensor* spatial_mean) {
    HUBIMG_ASSIGN_OR_RETURN(ConvGeometry g, start_run(input, residual, output));
    if (output.num_elements() == 0) return {};
    if (input.num_elements() == 0) {
      return invalid(params_.name, "input " + input.description() + " is empty");
    }
    if (runs_as_small_matvec(g)) {
      load_residual(residual, output);
      small_batch_matvec(input.data<float>(), g.batch, g.in_channels, g.out_channels,
                         params_.filter.data<float>(),
                         params_.bias.valid() ? params_.bias.data<float>() : nullptr,
                         residual != nullptr, params_.activation, output.mutable_data<float>());
      apply_separate_activation(params_.activation, output);
      std::lock_guard lock(mutex_);
      last_implementation_ = "hubimg:matvec (1x1 on a 1x1 image, small batch)";
      return {};
    }
    HUBIMG_ASSIGN_OR_RETURN(std::shared_ptr<PreparedPrimitive> prepared, prepare(input.shape()));
    load_residual(residual, output);
    HUBIMG_RETURN_IF_ERROR(execute(params_.name, *prepared, input, params_.bias, output));
    finish_output(params_.activation, output, spatial_mean);
    return {};
  }

  std::string implementation() const {
    std::lock_guard lock(mutex_);
    return last_implementation_;
  }

  bool folds_input_gate(const Dims& in, const Dims& gate) const {
    if (kind_ != Kind::kConv || weight_dims_.size() != 4 || in.size() != 4 || gate.size() != 4 ||
        gate != Dims{in[0], 1, 1, in_channels_} || in[3] != in_channels_ || in[0] < 1) {
      return false;
    }
    auto g = geometry({1, in[1], in[2], in[3]});
    if (!g.ok() || winograd_eligible(*g) || is_pointwise_on_single_pixel(*g)) return false;
    // Scaling the filter reads and writes it once per image (gathering the gate); multiplying
    // the input does that for the input. On EfficientNet-B0 at batch 1 folding where the filter
    // is at most a half or a quarter of the input measured the same, at most the input's size
    // or always slower.
    return 2 * params_.filter.num_elements() <= in[1] * in[2] * in[3];
  }

  Status run_with_input_gate(const Tensor& input, const Tensor& gate, const Tensor* residual,
                             Tensor& output) {
    if (gate.dtype() != DType::kFloat32) {
      return invalid(params_.name, "gate must be float32, got " + gate.description());
    }
    if (!folds_input_gate(input.shape(), gate.shape())) {
      return invalid(params_.name, "gate " + gate.description() + " cannot be folded for input " +
                                       input.description());
    }
    HUBIMG_ASSIGN_OR_RETURN(ConvGeometry g, start_run(input, residual, output));
    if (output.num_elements() == 0) return {};
    HUBIMG_ASSIGN_OR_RETURN(std::shared_ptr<PreparedPrimitive> prepared,
                            prepare({1, g.in_height, g.in_width, g.in_channels}));
    HUBIMG_ASSIGN_OR_RETURN(std::shared_ptr<const std::vector<int32_t>> channel_of,
                            input_channel_map(*prepared));
    load_residual(residual, output);
    const size_t count = channel_of->size();
    std::shared_ptr<void> scaled = BufferPool::global().allocate(count * sizeof(float));
    const auto* packed = static_cast<const float*>(prepared->weights.get_data_handle());
    const int64_t in_image = g.in_height * g.in_width * g.in_channels;
    const int64_t out_image = g.out_height * g.out_width * g.out_channels;
    for (int64_t n = 0; n < g.batch; ++n) {
      scale_packed_filter(packed, channel_of->data(), gate.data<float>() + n * g.in_channels,
                          static_cast<float*>(scaled.get()), count);
      HUBIMG_RETURN_IF_ERROR(
          execute_raw(params_.name, *prepared, input, input.data<float>() + n * in_image,
                      output.mutable_data<float>() + n * out_image, params_.bias, scaled.get()));
    }
    apply_separate_activation(params_.activation, output);
    return {};
  }

 private:
  FastConvImpl(const ConvParams& p, Kind kind) : params_(p), kind_(kind) {}

  // What every run starts with: the input's dtype and geometry checked, the residual's shape
  // checked, and `output` made ready (reused or replaced).
  Expected<ConvGeometry> start_run(const Tensor& input, const Tensor* residual, Tensor& output) {
    if (input.dtype() != DType::kFloat32) {
      return invalid(params_.name, "input must be float32, got " + input.description());
    }
    HUBIMG_ASSIGN_OR_RETURN(ConvGeometry g, geometry(input.shape()));
    const Dims out_shape = {g.batch, g.out_height, g.out_width, g.out_channels};
    HUBIMG_RETURN_IF_ERROR(
        check_residual(params_.name, params_.fuse_residual, residual, out_shape));
    prepare_output(input, out_shape, output);
    return g;
  }

  Expected<std::shared_ptr<const std::vector<int32_t>>> input_channel_map(
      PreparedPrimitive& prepared) {
    std::lock_guard lock(mutex_);
    if (prepared.input_channel_of) return prepared.input_channel_of;
    // The filter's layout (HWIO) with each element replaced by its input channel, packed the
    // way the primitive's weights are.
    const Tensor& f = params_.filter;
    Tensor channels = Tensor::uninitialized(DType::kFloat32, f.shape());
    float* c = channels.mutable_data<float>();
    const int64_t in = f.dim(2), out = f.dim(3);
    for (int64_t k = 0; k < f.dim(0) * f.dim(1); ++k) {
      for (int64_t i = 0; i < in; ++i) {
        std::fill_n(c + (k * in + i) * out, out, static_cast<float>(i));
      }
    }
    try {
      const std::vector<float> packed = packed_->pack_other(channels, prepared.weights.get_desc());
      auto map = std::make_shared<std::vector<int32_t>>(packed.size());
      for (size_t j = 0; j < packed.size(); ++j) (*map)[j] = static_cast<int32_t>(packed[j]);
      prepared.input_channel_of = map;
      return prepared.input_channel_of;
    } catch (const dnnl::error& e) {
      return unsupported(params_.name, std::string("packing the channel map failed: ") + e.what());
    }
  }

  // The primitive for input shape `in` (NHWC), created and its weights packed on first use.
  Expected<std::shared_ptr<PreparedPrimitive>> prepare(const Dims& in) {
    HUBIMG_ASSIGN_OR_RETURN(ConvGeometry g, geometry(in));
    const std::array<int64_t, 3> key = {g.batch, g.in_height, g.in_width};
    std::lock_guard lock(mutex_);
    if (auto it = primitives_.find(key); it != primitives_.end()) return it->second;
    try {
      auto prepared = std::make_shared<PreparedPrimitive>();
      if (is_pointwise_on_single_pixel(g)) {
        // A 1x1 convolution of a 1x1 image (squeeze-and-excitation) is a [batch, in] x
        // [in, out] product, where oneDNN's matmul is several times faster than its conv.
        prepared->src_md = memory::desc({g.batch, g.in_channels}, kF32, Tag::ab);
        prepared->dst_md = memory::desc({g.batch, g.out_channels}, kF32, Tag::ab);
        if (params_.bias.valid()) {
          prepared->bias_md = memory::desc({1, g.out_channels}, kF32, Tag::ab);
        }
        dnnl::matmul::desc desc(prepared->src_md,
                                memory::desc({g.in_channels, g.out_channels}, kF32, Tag::any),
                                prepared->bias_md, prepared->dst_md);
        dnnl::matmul::primitive_desc pd(desc, attr_, engine());
        prepared->primitive = dnnl::matmul(pd);
        if (!packed_as_matrix_) {
          packed_as_matrix_.emplace(params_.filter,
                                    memory::desc({g.in_channels, g.out_channels}, kF32, Tag::ab));
        }
        prepared->weights = packed_as_matrix_->get(pd.weights_desc());
        prepared->scratchpad_md = pd.scratchpad_desc();
        prepared->implementation = short_impl_name(pd.impl_info_str()) + " (as matmul)";
      } else {
        prepared->src_md =
            memory::desc({g.batch, g.in_channels, g.in_height, g.in_width}, kF32, Tag::nhwc);
        prepared->dst_md =
            memory::desc({g.batch, g.out_channels, g.out_height, g.out_width}, kF32, Tag::nhwc);
        prepared->bias_md = bias_md_;
        const memory::desc weights_any(weight_dims_, kF32, Tag::any);
        const memory::dims strides = {params_.strides[0], params_.strides[1]};
        const memory::dims dilations = {params_.dilations[0] - 1, params_.dilations[1] - 1};
        const memory::dims pad_l = {g.pad_top, g.pad_left};
        const memory::dims pad_r = {g.pad_bottom, g.pad_right};
        auto adopt = [&](const dnnl::convolution_forward::primitive_desc& pd) {
          prepared->primitive = dnnl::convolution_forward(pd);
          prepared->weights = packed_->get(pd.weights_desc());
          prepared->scratchpad_md = pd.scratchpad_desc();
          prepared->implementation = short_impl_name(pd.impl_info_str());
        };
        if (winograd_eligible(g)) {
          // oneDNN's Winograd kernel (blocked layouts only) does a 3x3 convolution with about
          // half the multiplications: ~1.9x the direct kernel on ResNet's shapes, reorders
          // included. Its rounding differs from direct summation by ~1e-6 relative.
          try {
            const memory::desc src_any({g.batch, g.in_channels, g.in_height, g.in_width}, kF32,
                                       Tag::any);
            const memory::desc dst_any({g.batch, g.out_channels, g.out_height, g.out_width}, kF32,
                                       Tag::any);
            dnnl::convolution_forward::desc desc(
                dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_winograd, src_any,
                weights_any, bias_md_, dst_any, strides, dilations, pad_l, pad_r);
            dnnl::convolution_forward::primitive_desc pd(desc, attr_, engine());
            prepared->inner_src_md = pd.src_desc();
            prepared->inner_dst_md = pd.dst_desc();
            prepared->src_reorder.emplace(dnnl::reorder::primitive_desc(
                engine(), prepared->src_md, engine(), prepared->inner_src_md));
            prepared->dst_reorder.emplace(dnnl::reorder::primitive_desc(
                engine(), prepared->inner_dst_md, engine(), prepared->dst_md));
            adopt(pd);
          } catch (const dnnl::error&) {
            prepared->src_reorder.reset();  // no Winograd kernel here: the direct one below
            prepared->dst_reorder.reset();
          }
        }
        if (!prepared->src_reorder) {
          dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                               dnnl::algorithm::convolution_direct,
                                               prepared->src_md, weights_any, bias_md_,
                                               prepared->dst_md, strides, dilations, pad_l, pad_r);
          adopt(dnnl::convolution_forward::primitive_desc(desc, attr_, engine()));
        }
      }
      last_implementation_ = prepared->implementation;
      primitives_.emplace(key, prepared);
      return prepared;
    } catch (const dnnl::error& e) {
      return unsupported(params_.name, "oneDNN has no convolution for input " + dims_str(in) +
                                           ", filter " + params_.filter.description() + ": " +
                                           e.what());
    }
  }

  // 3x3, stride 1, undilated, ungrouped, no residual, channels in multiples of 16 from 64 up
  // (where it measured faster), unless HUBIMG_WINOGRAD=0.
  bool winograd_eligible(const ConvGeometry& g) const {
    static const bool enabled = [] {
      const char* env = std::getenv("HUBIMG_WINOGRAD");
      return env == nullptr || std::string(env) != "0";
    }();
    const auto& p = params_;
    return enabled && kind_ == Kind::kConv && weight_dims_.size() == 4 && p.filter.dim(0) == 3 &&
           p.filter.dim(1) == 3 && p.strides == std::array<int64_t, 2>{1, 1} &&
           p.dilations == std::array<int64_t, 2>{1, 1} && !p.fuse_residual && g.in_channels >= 64 &&
           g.out_channels >= 64 && g.in_channels % 16 == 0 && g.out_channels % 16 == 0;
  }

  bool runs_as_small_matvec(const ConvGeometry& g) const {
    constexpr int64_t kMaxBatch = 8;
    return g.batch <= kMaxBatch && is_pointwise_on_single_pixel(g) &&
           params_.filter.dim(2) == g.in_channels;  // ungrouped: the filter is [in, out]
  }

  bool is_pointwise_on_single_pixel(const ConvGeometry& g) const {
    return kind_ == Kind::kConv && weight_dims_.size() == 4 && params_.filter.dim(0) == 1 &&
           params_.filter.dim(1) == 1 && g.in_height == 1 && g.in_width == 1 && g.out_height == 1 &&
           g.out_width == 1 && g.pad_top == 0 && g.pad_bottom == 0 && g.pad_left == 0 &&
           g.pad_right == 0;
  }
  ConvParams params_;
  Kind kind_;
  int64_t in_channels_ = 0, out_channels_ = 0;
  memory::dims weight_dims_;
  memory::desc bias_md_;
  dnnl::primitive_attr attr_;
  mutable std::mutex mutex_;
  std::optional<PackedWeights> packed_;
  std::optional<PackedWeights> packed_as_matrix_;  // [in, out], for the matmul route
  std::map<std::array<int64_t, 3>, std::shared_ptr<PreparedPrimitive>> primitives_;
  std::string last_implementation_;
};

class FastMatMulImpl {
 public:
  static Expected<std::unique_ptr<FastMatMulImpl>> create(const MatMulParams& p) {
    const Tensor& w = p.weights;
    if (!w.valid() || w.dtype() != DType::kFloat32 || w.rank() != 2) {
      return unsupported(p.name, "weights must be float32 of rank 2, got " +
                                     (w.valid() ? w.description() : std::string("none")));
    }
    if (w.num_elements() == 0) return invalid(p.name, "weights " + w.description() + " are empty");
    if (p.expected_batch < 1) return invalid(p.name, "expected_batch must be positive");
    auto impl = std::unique_ptr<FastMatMulImpl>(new FastMatMulImpl(p));
    FastMatMulImpl& k = *impl;
    k.in_features_ = w.dim(p.transpose_weights ? 1 : 0);
    k.out_features_ = w.dim(p.transpose_weights ? 0 : 1);
    HUBIMG_RETURN_IF_ERROR(check_bias(p.name, p.bias, k.out_features_));
    k.packed_.emplace(w, memory::desc({k.in_features_, k.out_features_}, kF32,
                                      p.transpose_weights ? Tag::ba : Tag::ab));
    if (p.bias.valid()) k.bias_md_ = memory::desc({1, k.out_features_}, kF32, Tag::ab);
    try {
      k.attr_ = post_op_attr(p.activation, p.fuse_residual);
    } catch (const dnnl::error& e) {
      return unsupported(p.name, std::string("oneDNN rejected the post-ops: ") + e.what());
    }
    auto prepared = k.prepare(p.expected_batch);
    if (!prepared.ok()) return prepared.status();
    return impl;
  }

  Status run(const Tensor& input, const Tensor* residual, Tensor& output) {
    if (input.dtype() != DType::kFloat32 || input.rank() != 2 || input.dim(1) != in_features_) {
      return invalid(params_.name, "input " + input.description() + " must be float32[batch, " +
                                       std::to_string(in_features_) + "] (weights " +
                                       params_.weights.description() + ")");
    }
    const int64_t batch = input.dim(0);
    const Dims out_shape = {batch, out_features_};
    HUBIMG_RETURN_IF_ERROR(
        check_residual(params_.name, params_.fuse_residual, residual, out_shape));
    prepare_output(input, out_shape, output);
    if (batch == 0) return {};
    HUBIMG_ASSIGN_OR_RETURN(std::shared_ptr<PreparedPrimitive> prepared, prepare(batch));
    load_residual(residual, output);
    HUBIMG_RETURN_IF_ERROR(execute(params_.name, *prepared, input, params_.bias, output));
    apply_separate_activation(params_.activation, output);
    return {};
  }

  std::string implementation() const {
    std::lock_guard lock(mutex_);
    return last_implementation_;
  }

 private:
  explicit FastMatMulImpl(const MatMulParams& p) : params_(p) {}

  Expected<std::shared_ptr<PreparedPrimitive>> prepare(int64_t batch) {
    std::lock_guard lock(mutex_);
    if (auto it = primitives_.find(batch); it != primitives_.end()) return it->second;
    try {
      dnnl::matmul::desc desc(memory::desc({batch, in_features_}, kF32, Tag::ab),
                              memory::desc({in_features_, out_features_}, kF32, Tag::any), bias_md_,
                              memory::desc({batch, out_features_}, kF32, Tag::ab));
      dnnl::matmul::primitive_desc pd(desc, attr_, engine());
      auto prepared = std::make_shared<PreparedPrimitive>();
      prepared->primitive = dnnl::matmul(pd);
      prepared->src_md = pd.src_desc();
      prepared->dst_md = pd.dst_desc();
      prepared->bias_md = bias_md_;
      prepared->weights = packed_->get(pd.weights_desc());
      prepared->scratchpad_md = pd.scratchpad_desc();
      prepared->implementation = short_impl_name(pd.impl_info_str());
      last_implementation_ = prepared->implementation;
      primitives_.emplace(batch, prepared);
      return prepared;
    } catch (const dnnl::error& e) {
      return unsupported(params_.name, "oneDNN has no matmul for batch " + std::to_string(batch) +
                                           ", weights " + params_.weights.description() + ": " +
                                           e.what());
    }
  }

  MatMulParams params_;
  int64_t in_features_ = 0, out_features_ = 0;
  memory::desc bias_md_;
  dnnl::primitive_attr attr_;
  mutable std::mutex mutex_;
  std::optional<PackedWeights> packed_;
  std::map<int64_t, std::shared_ptr<PreparedPrimitive>> primitives_;
  std::string last_implementation_;
};

#else  // !HUBIMG_HAVE_DNNL

bool fast_kernels_available() {
  return false;
}

class FastConvImpl {
 public:
  enum class Kind { kConv, kDepthwise };
  static Expected<std::unique_ptr<FastConvImpl>> create(const ConvParams& p, Kind) {
    return unsupported(p.name, "hubimg was built without oneDNN");
  }
  Expected<ConvGeometry> geometry(const Dims&) const { return unimplemented("no oneDNN"); }
  Status run(const Tensor&, const Tensor*, Tensor&, Tensor*) { return unimplemented("no oneDNN"); }
  bool folds_input_gate(const Dims&, const Dims&) const { return false; }
  Status run_with_input_gate(const Tensor&, const Tensor&, const Tensor*, Tensor&) {
    return unimplemented("no oneDNN");
  }
  std::string implementation() const { return "none"; }
};
class FastMatMulImpl {
 public:
  static Expected<std::unique_ptr<FastMatMulImpl>> create(const MatMulParams& p) {
    return unsupported(p.name, "hubimg was built without oneDNN");
  }
  Status run(const Tensor&, const Tensor*, Tensor&) { return unimplemented("no oneDNN"); }
  std::string implementation() const { return "none"; }
};

#endif

// ---------------------------------------------------------------------------------------------
// Public wrappers.

Expected<FastConv2D> FastConv2D::create(const ConvParams& params) {
  HUBIMG_ASSIGN_OR_RETURN(auto impl, FastConvImpl::create(params, FastConvImpl::Kind::kConv));
  return FastConv2D(std::move(impl));
}
FastConv2D::FastConv2D(std::unique_ptr<FastConvImpl> impl) : impl_(std::move(impl)) {}
FastConv2D::FastConv2D(FastConv2D&&) noexcept = default;
FastConv2D& FastConv2D::operator=(FastConv2D&&) noexcept = default;
FastConv2D::~FastConv2D() = default;
bool FastConv2D::folds_input_gate(const Dims& input_shape, const Dims& gate_shape) const {
  return impl_->folds_input_gate(input_shape, gate_shape);
}

Status FastConv2D::run_with_input_gate(const Tensor& input, const Tensor& gate,
                                       const Tensor* residual, Tensor& output) const {
  return impl_->run_with_input_gate(input, gate, residual, output);
}

Status FastConv2D::run(const Tensor& input, const Tensor* residual, Tensor& output,
                       Tensor* spatial_mean) const {
  return impl_->run(input, residual, output, spatial_mean);
}
Expected<ConvGeometry> FastConv2D::geometry(const Dims& input_shape) const {
  return impl_->geometry(input_shape);
}
std::string FastConv2D::implementation() const {
  return impl_->implementation();
}

Expected<FastDepthwiseConv2D> FastDepthwiseConv2D::create(const ConvParams& params) {
  HUBIMG_ASSIGN_OR_RETURN(auto impl, FastConvImpl::create(params, FastConvImpl::Kind::kDepthwise));
  return FastDepthwiseConv2D(std::move(impl));
}
FastDepthwiseConv2D::FastDepthwiseConv2D(std::unique_ptr<FastConvImpl> impl)
    : impl_(std::move(impl)) {}
FastDepthwiseConv2D::FastDepthwiseConv2D(FastDepthwiseConv2D&&) noexcept = default;
FastDepthwiseConv2D& FastDepthwiseConv2D::operator=(FastDepthwiseConv2D&&) noexcept = default;
FastDepthwiseConv2D::~FastDepthwiseConv2D() = default;
Status FastDepthwiseConv2D::run(const Tensor& input, const Tensor* residual, Tensor& output,
                                Tensor* spatial_mean) const {
  return impl_->run(input, residual, output, spatial_mean);
}
Expected<ConvGeometry> FastDepthwiseConv2D::geometry(const Dims& input_shape) const {
  return impl_->geometry(input_shape);
}
std::string FastDepthwiseConv2D::implementation() const {
  return impl_->implementation();
}

Expected<FastMatMul> FastMatMul::create(const MatMulParams& params) {
  HUBIMG_ASSIGN_OR_RETURN(auto impl, FastMatMulImpl::create(params));
  return FastMatMul(std::move(impl));
}
FastMatMul::FastMatMul(std::unique_ptr<FastMatMulImpl> impl) : impl_(std::move(impl)) {}
FastMatMul::FastMatMul(FastMatMul&&) noexcept = default;
FastMatMul& FastMatMul::operator=(FastMatMul&&) noexcept = default;
FastMatMul::~FastMatMul() = default;
Status FastMatMul::run(const Tensor& input, const Tensor* residual, Tensor& output) const {
  return impl_->run(input, residual, output);
}
std::string FastMatMul::implementation() const {
  return impl_->implementation();
}

}  // namespace hubimg::ops::fast
