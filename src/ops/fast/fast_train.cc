// Fast kernels for the ops a training step runs unfused (training graphs are not rewritten by
// graph::optimize_for_inference): Conv2D, DepthwiseConv2dNative, MatMul and FusedBatchNormV3
// with is_training on oneDNN; and for the ops no inference rewrite touches either, the stacks
// of matrix products (BatchMatMul*, Einsum: attention), whose products go to oneDNN's GEMM. Weights
// change every step, so nothing is cached by value: one primitive per op, shapes and attributes,
// created on first use (thread-safe cache), and the filter reordered into the primitive's format on
// every call.
//
// Each fast kernel takes only the cases it is sure of (float32, NHWC, 2-D MatMul, paddings it
// can express) and runs the op's reference kernel for everything else, so errors and unusual
// inputs keep the reference kernel's behaviour and messages.
#include "ops/fast/fast_train.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/buffer_pool.h"
#include "core/thread_pool.h"
#include "ops/fast_paths.h"
#include "ops/nn_kernels.h"
#include "ops/op_registry.h"

#if HUBIMG_HAVE_DNNL
#include <dnnl.hpp>
#endif

namespace hubimg::ops {
namespace {
std::atomic<int64_t> fast_path_runs{0};
}  // namespace

int64_t fast::training_fast_path_runs() {
  return fast_path_runs.load();
}

#if HUBIMG_HAVE_DNNL
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

const dnnl::engine& engine() {
  static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

void match_thread_count() {
  set_onednn_num_threads(in_parallel_region() ? 1 : ThreadPool::global().num_threads());
}

dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  // Concurrent executions of one primitive (chunks of a split batch) each bring a scratchpad.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// A fast kernel's attempt: nullopt means "not a case for the fast path", and the reference
// kernel runs instead.
using Attempt = std::optional<Status>;
using FastAttempt = std::function<Attempt(KernelContext&)>;

Kernel with_reference_fallback(const OpRegistry& r, std::string_view op, FastAttempt fast) {
  const OpSpec* spec = r.find(op);
  return [reference = spec->kernel, fast = std::move(fast)](KernelContext& ctx) -> Status {
    Attempt attempt;
    try {
      attempt = fast(ctx);
    } catch (const dnnl::error&) {
      attempt.reset();  // oneDNN rejected the case at primitive creation: the reference runs
    }
    if (attempt) {
      fast_path_runs.fetch_add(1, std::memory_order_relaxed);
      return *attempt;
    }
    return reference(ctx);
  };
}

// Cache of prepared primitives keyed by everything that defines one (op kind, shapes, strides,
// paddings, flags), shared by every node and thread.
template <typename Entry>
class PrimitiveCache {
 public:
  template <typename Make>
  std::shared_ptr<const Entry> get(const std::vector<int64_t>& key, Make&& make) {
    {
      std::lock_guard lock(mutex_);
      if (auto it = entries_.find(key); it != entries_.end()) return it->second;
    }
    auto entry = std::make_shared<const Entry>(make());  // may throw dnnl::error
    std::lock_guard lock(mutex_);
    return entries_.emplace(key, std::move(entry)).first->second;
  }

 private:
  std::mutex mutex_;
  std::map<std::vector<int64_t>, std::shared_ptr<const Entry>> entries_;
};

// Scratchpad of `md` from the buffer cache, added to `args` when the primitive needs one.
std::shared_ptr<void> add_scratchpad(const memory::desc& md,
                                     std::unordered_map<int, memory>& args) {
  const size_t bytes = md.get_size();
  if (bytes == 0) return nullptr;
  std::shared_ptr<void> buffer = BufferPool::global().allocate(bytes);
  args.emplace(DNNL_ARG_SCRATCHPAD, memory(md, engine(), buffer.get()));
  return buffer;
}

bool all_float32(const KernelContext& ctx) {
  for (const Tensor& t : ctx.inputs()) {
    if (!t.valid() || t.dtype() != DType::kFloat32) return false;
  }
  return true;
}

void* mutable_ptr(const Tensor& t) {
  return const_cast<void*>(t.raw_data());
}

// ---------------------------------------------------------------------------------------------
// Conv2D and DepthwiseConv2dNative.

// Strides, dilations and paddings of a 2-D NHWC convolution or window op, resolved with
// TensorFlow's rules (SAME: the odd padding cell goes bottom / right).
struct Window2D {
  int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t out_h = 0, out_w = 0;
};

std::optional<std::vector<int64_t>> nhwc_spatial(const AttrMap& attrs, const char* name,
                                                 std::optional<std::vector<int64_t>> fallback) {
  auto values = attrs.get_ints(name, std::move(fallback));
  if (!values.ok() || values->size() != 4 || (*values)[0] != 1 || (*values)[3] != 1 ||
      (*values)[1] < 1 || (*values)[2] < 1) {
    return std::nullopt;
  }
  return *values;
}

bool is_nhwc(const AttrMap& attrs) {
  auto format = attrs.get_string("data_format", "NHWC");
  return format.ok() && *format == "NHWC";
}

// One spatial dimension: false when the window does not fit (the reference kernel reports it).
bool resolve(const std::string& padding, int64_t input, int64_t window, int64_t stride,
             int64_t dilation, int64_t explicit_before, int64_t explicit_after, int64_t& out,
             int64_t& before, int64_t& after) {
  const int64_t effective = (window - 1) * dilation + 1;
  if (padding == "VALID") {
    out = (input - effective + stride) / stride;
    before = after = 0;
  } else if (padding == "EXPLICIT") {
    if (explicit_before < 0 || explicit_after < 0) return false;
    out = (input + explicit_before + explicit_after - effective + stride) / stride;
    before = explicit_before;
    after = explicit_after;
  } else if (padding == "SAME") {
    out = (input + stride - 1) / stride;
    const int64_t needed = std::max<int64_t>(0, (out - 1) * stride + effective - input);
    before = needed / 2;
    after = needed - before;
  } else {
    return false;
  }
  return out > 0;
}

std::optional<Window2D> read_window(const KernelContext& ctx, int64_t in_h, int64_t in_w,
                                    int64_t window_h, int64_t window_w, bool has_dilations) {
  const AttrMap& attrs = ctx.attrs();
  if (!is_nhwc(attrs)) return std::nullopt;
  auto strides = nhwc_spatial(attrs, "strides", std::nullopt);
  auto dilations = has_dilations
                       ? nhwc_spatial(attrs, "dilations", std::vector<int64_t>{1, 1, 1, 1})
                       : std::optional<std::vector<int64_t>>(std::vector<int64_t>{1, 1, 1, 1});
  auto padding = attrs.get_string("padding");
  if (!strides || !dilations || !padding.ok()) return std::nullopt;
  std::vector<int64_t> explicit_paddings(8, 0);
  if (*padding == "EXPLICIT") {
    auto values = attrs.get_ints("explicit_paddings", std::vector<int64_t>{});
    if (!values.ok() || values->size() != 8 || (*values)[0] != 0 || (*values)[1] != 0 ||
        (*values)[6] != 0 || (*values)[7] != 0) {
      return std::nullopt;
    }
    explicit_paddings = *values;
  }
  Window2D w;
  w.stride_h = (*strides)[1];
  w.stride_w = (*strides)[2];
  w.dilation_h = (*dilations)[1];
  w.dilation_w = (*dilations)[2];
  if (!resolve(*padding, in_h, window_h, w.stride_h, w.dilation_h, explicit_paddings[2],
               explicit_paddings[3], w.out_h, w.pad_top, w.pad_bottom) ||
      !resolve(*padding, in_w, window_w, w.stride_w, w.dilation_w, explicit_paddings[4],
               explicit_paddings[5], w.out_w, w.pad_left, w.pad_right)) {
    return std::nullopt;
  }
  return w;
}

// The shapes of one NHWC convolution (Conv2D ungrouped, or depthwise) and its oneDNN
// descriptions; everything a primitive of any direction is keyed by.
struct ConvShape {
  bool depthwise = false;
  int64_t batch = 0, in_h = 0, in_w = 0, channels = 0, kh = 0, kw = 0, filter_out = 0;
  int64_t out_channels = 0;
  Window2D w;
  memory::desc src_md, dst_md, user_weights_md;
  memory::dims weight_dims;

  std::vector<int64_t> key(int64_t direction) const {
    return {direction,    depthwise, batch,        in_h,       in_w,       channels,
            kh,           kw,        filter_out,   w.stride_h, w.stride_w, w.dilation_h,
            w.dilation_w, w.pad_top, w.pad_bottom, w.pad_left, w.pad_right};
  }
  memory::dims strides() const { return {w.stride_h, w.stride_w}; }
  memory::dims dilations() const { return {w.dilation_h - 1, w.dilation_w - 1}; }
  memory::dims pad_l() const { return {w.pad_top, w.pad_left}; }
  memory::dims pad_r() const { return {w.pad_bottom, w.pad_right}; }
  Dims output_shape() const { return {batch, w.out_h, w.out_w, out_channels}; }
};

std::optional<ConvShape> conv_shape(const KernelContext& ctx, const Dims& input, const Dims& filter,
                                    bool depthwise) {
  if (input.size() != 4 || filter.size() != 4) return std::nullopt;
  for (int64_t d : input) {
    if (d <= 0) return std::nullopt;
  }
  for (int64_t d : filter) {
    if (d <= 0) return std::nullopt;
  }
  ConvShape s;
  s.depthwise = depthwise;
  s.batch = input[0];
  s.in_h = input[1];
  s.in_w = input[2];
  s.channels = input[3];
  s.kh = filter[0];
  s.kw = filter[1];
  s.filter_out = filter[3];
  if (filter[2] != s.channels) return std::nullopt;  // grouped Conv2D or a mismatch
  auto w = read_window(ctx, s.in_h, s.in_w, s.kh, s.kw, /*has_dilations=*/true);
  if (!w) return std::nullopt;
  s.w = *w;
  s.out_channels = depthwise ? s.channels * s.filter_out : s.filter_out;
  s.src_md = memory::desc({s.batch, s.channels, s.in_h, s.in_w}, kF32, Tag::nhwc);
  s.dst_md = memory::desc({s.batch, s.out_channels, w->out_h, w->out_w}, kF32, Tag::nhwc);
  memory::dims weight_strides;
  if (depthwise) {
    const int64_t m = s.filter_out, c = s.channels;
    s.weight_dims = {c, m, 1, s.kh, s.kw};
    weight_strides = {m, 1, 1, s.kw * c * m, c * m};
  } else {
    const int64_t o = s.out_channels, c = s.channels;
    s.weight_dims = {o, c, s.kh, s.kw};
    weight_strides = {1, o, s.kw * c * o, c * o};
  }
  s.user_weights_md = memory::desc(s.weight_dims, kF32, weight_strides);
  return s;
}

dnnl::convolution_forward::primitive_desc conv_forward_pd(const ConvShape& s) {
  const memory::desc weights_any(s.weight_dims, kF32, Tag::any);
  dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, s.src_md, weights_any,
      memory::desc(), s.dst_md, s.strides(), s.dilations(), s.pad_l(), s.pad_r());
  return dnnl::convolution_forward::primitive_desc(desc, user_scratchpad_attr(), engine());
}

// A primitive of any direction with the filter's format it uses and the reorder between that
// format and TensorFlow's HWIO layout (to it for forward / backward data, from it for backward
// weights).
struct ConvEntry {
  dnnl::primitive primitive;
  memory::desc weights_md, scratchpad_md;
  std::optional<dnnl::reorder> weights_reorder;
};

PrimitiveCache<ConvEntry>& conv_cache() {
  static PrimitiveCache<ConvEntry> cache;
  return cache;
}

void set_weights_reorder(const ConvShape& s, ConvEntry& e, bool to_user) {
  if (e.weights_md == s.user_weights_md) return;
  e.weights_reorder.emplace(
      to_user ? dnnl::reorder::primitive_desc(engine(), e.weights_md, engine(), s.user_weights_md)
              : dnnl::reorder::primitive_desc(engine(), s.user_weights_md, engine(), e.weights_md));
}

// The filter as the primitive reads it: the user's buffer, or a reordered copy in `packed`.
memory packed_weights(const ConvShape& s, const ConvEntry& e, const Tensor& filter,
                      dnnl::stream& stream, std::shared_ptr<void>& packed) {
  memory user(s.user_weights_md, engine(), mutable_ptr(filter));
  if (!e.weights_reorder) return user;
  packed = BufferPool::global().allocate(e.weights_md.get_size());
  memory weights(e.weights_md, engine(), packed.get());
  e.weights_reorder->execute(stream, user, weights);
  return weights;
}

// Conv2D (ungrouped) or DepthwiseConv2dNative in NHWC on oneDNN.
Attempt conv_forward(KernelContext& ctx, bool depthwise) {
  if (ctx.num_inputs() != 2 || !all_float32(ctx)) return std::nullopt;
  const Tensor& input = ctx.input(0);
  const Tensor& filter = ctx.input(1);
  auto s = conv_shape(ctx, input.shape(), filter.shape(), depthwise);
  if (!s) return std::nullopt;
  auto entry = conv_cache().get(s->key(0), [&] {
    auto pd = conv_forward_pd(*s);
    ConvEntry e{dnnl::convolution_forward(pd), pd.weights_desc(), pd.scratchpad_desc(), {}};
    set_weights_reorder(*s, e, /*to_user=*/false);
    return e;
  });
  Tensor output = Tensor::uninitialized(DType::kFloat32, s->output_shape());
  dnnl::stream stream(engine());
  match_thread_count();
  std::shared_ptr<void> packed;
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, memory(s->src_md, engine(), mutable_ptr(input))},
      {DNNL_ARG_WEIGHTS, packed_weights(*s, *entry, filter, stream, packed)},
      {DNNL_ARG_DST, memory(s->dst_md, engine(), output.raw_mutable_data())}};
  auto scratchpad = add_scratchpad(entry->scratchpad_md, args);
  entry->primitive.execute(stream, args);
  stream.wait();
  ctx.set_output(0, std::move(output));
  return Status();
}

// A 4-element int32 / int64 shape input (input_sizes, filter_sizes).
std::optional<Dims> shape_input(const Tensor& t) {
  if (t.rank() != 1 || t.num_elements() != 4) return std::nullopt;
  Dims dims(4);
  for (int i = 0; i < 4; ++i) {
    if (t.dtype() == DType::kInt32) {
      dims[i] = t.data<int32_t>()[i];
    } else if (t.dtype() == DType::kInt64) {
      dims[i] = t.data<int64_t>()[i];
    } else {
      return std::nullopt;
    }
  }
  return dims;
}

// Conv2DBackpropInput / DepthwiseConv2dNativeBackpropInput(input_sizes, filter, out_backprop).
Attempt conv_backprop_input(KernelContext& ctx, bool depthwise) {
  if (ctx.num_inputs() != 3) return std::nullopt;
  const Tensor& filter = ctx.input(1);
  const Tensor& out_backprop = ctx.input(2);
  if (filter.dtype() != DType::kFloat32 || out_backprop.dtype() != DType::kFloat32) {
    return std::nullopt;
  }
  auto input_shape = shape_input(ctx.input(0));
  if (!input_shape) return std::nullopt;
  auto s = conv_shape(ctx, *input_shape, filter.shape(), depthwise);
  if (!s || out_backprop.shape() != s->output_shape()) return std::nullopt;
  auto entry = conv_cache().get(s->key(1), [&] {
    const memory::desc weights_any(s->weight_dims, kF32, Tag::any);
    dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, s->src_md,
                                               weights_any, s->dst_md, s->strides(), s->dilations(),
                                               s->pad_l(), s->pad_r());
    dnnl::convolution_backward_data::primitive_desc pd(desc, user_scratchpad_attr(), engine(),
                                                       conv_forward_pd(*s));
    ConvEntry e{dnnl::convolution_backward_data(pd), pd.weights_desc(), pd.scratchpad_desc(), {}};
    set_weights_reorder(*s, e, /*to_user=*/false);
    return e;
  });
  Tensor input_grad = Tensor::uninitialized(DType::kFloat32, *input_shape);
  dnnl::stream stream(engine());
  match_thread_count();
  std::shared_ptr<void> packed;
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_DIFF_DST, memory(s->dst_md, engine(), mutable_ptr(out_backprop))},
      {DNNL_ARG_WEIGHTS, packed_weights(*s, *entry, filter, stream, packed)},
      {DNNL_ARG_DIFF_SRC, memory(s->src_md, engine(), input_grad.raw_mutable_data())}};
  auto scratchpad = add_scratchpad(entry->scratchpad_md, args);
  entry->primitive.execute(stream, args);
  stream.wait();
  ctx.set_output(0, std::move(input_grad));
  return Status();
}

// Conv2DBackpropFilter / DepthwiseConv2dNativeBackpropFilter(input, filter_sizes, out_backprop).
Attempt conv_backprop_filter(KernelContext& ctx, bool depthwise) {
  if (ctx.num_inputs() != 3) return std::nullopt;
  const Tensor& input = ctx.input(0);
  const Tensor& out_backprop = ctx.input(2);
  if (input.dtype() != DType::kFloat32 || out_backprop.dtype() != DType::kFloat32) {
    return std::nullopt;
  }
  auto filter_shape = shape_input(ctx.input(1));
  if (!filter_shape) return std::nullopt;
  auto s = conv_shape(ctx, input.shape(), *filter_shape, depthwise);
  if (!s || out_backprop.shape() != s->output_shape()) return std::nullopt;
  auto entry = conv_cache().get(s->key(2), [&] {
    const memory::desc weights_any(s->weight_dims, kF32, Tag::any);
    dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, s->src_md,
                                                  weights_any, s->dst_md, s->strides(),
                                                  s->dilations(), s->pad_l(), s->pad_r());
    dnnl::convolution_backward_weights::primitive_desc pd(desc, user_scratchpad_attr(), engine(),
                                                          conv_forward_pd(*s));
    ConvEntry e{
        dnnl::convolution_backward_weights(pd), pd.diff_weights_desc(), pd.scratchpad_desc(), {}};
    set_weights_reorder(*s, e, /*to_user=*/true);
    return e;
  });
  Tensor filter_grad = Tensor::uninitialized(DType::kFloat32, *filter_shape);
  dnnl::stream stream(engine());
  match_thread_count();
  memory user(s->user_weights_md, engine(), filter_grad.raw_mutable_data());
  memory diff_weights = user;
  std::shared_ptr<void> packed;
  if (entry->weights_reorder) {
    packed = BufferPool::global().allocate(entry->weights_md.get_size());
    diff_weights = memory(entry->weights_md, engine(), packed.get());
  }
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, memory(s->src_md, engine(), mutable_ptr(input))},
      {DNNL_ARG_DIFF_DST, memory(s->dst_md, engine(), mutable_ptr(out_backprop))},
      {DNNL_ARG_DIFF_WEIGHTS, diff_weights}};
  auto scratchpad = add_scratchpad(entry->scratchpad_md, args);
  entry->primitive.execute(stream, args);
  if (entry->weights_reorder) entry->weights_reorder->execute(stream, diff_weights, user);
  stream.wait();
  ctx.set_output(0, std::move(filter_grad));
  return Status();
}

// ---------------------------------------------------------------------------------------------
// MatMul (rank 2, transpose_a / transpose_b).

struct MatMulEntry {
  dnnl::matmul primitive;
  memory::desc a_md, b_md, out_md, scratchpad_md;
};

PrimitiveCache<MatMulEntry>& matmul_cache() {
  static PrimitiveCache<MatMulEntry> cache;
  return cache;
}

Attempt matmul(KernelContext& ctx) {
  if (ctx.num_inputs() != 2 || !all_float32(ctx)) return std::nullopt;
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  auto transpose_a = ctx.attrs().get_bool("transpose_a", false);
  auto transpose_b = ctx.attrs().get_bool("transpose_b", false);
  if (!transpose_a.ok() || !transpose_b.ok() || a.rank() != 2 || b.rank() != 2) {
    return std::nullopt;
  }
  const int64_t m = a.dim(*transpose_a ? 1 : 0), k = a.dim(*transpose_a ? 0 : 1);
  const int64_t n = b.dim(*transpose_b ? 0 : 1);
  if (b.dim(*transpose_b ? 1 : 0) != k || m == 0 || n == 0 || k == 0) return std::nullopt;
  const std::vector<int64_t> key = {m, k, n, *transpose_a, *transpose_b};
  auto entry = matmul_cache().get(key, [&] {
    MatMulEntry e;
    e.a_md = memory::desc({m, k}, kF32, *transpose_a ? Tag::ba : Tag::ab);
    e.b_md = memory::desc({k, n}, kF32, *transpose_b ? Tag::ba : Tag::ab);
    e.out_md = memory::desc({m, n}, kF32, Tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(e.a_md, e.b_md, e.out_md),
                                    user_scratchpad_attr(), engine());
    e.primitive = dnnl::matmul(pd);
    e.scratchpad_md = pd.scratchpad_desc();
    return e;
  });
  Tensor output = Tensor::uninitialized(DType::kFloat32, {m, n});
  dnnl::stream stream(engine());
  match_thread_count();
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, memory(entry->a_md, engine(), mutable_ptr(a))},
      {DNNL_ARG_WEIGHTS, memory(entry->b_md, engine(), mutable_ptr(b))},
      {DNNL_ARG_DST, memory(entry->out_md, engine(), output.raw_mutable_data())}};
  auto scratchpad = add_scratchpad(entry->scratchpad_md, args);
  entry->primitive.execute(stream, args);
  stream.wait();
  ctx.set_output(0, std::move(output));
  return Status();
}

// ---------------------------------------------------------------------------------------------
// The matrix products of BatchMatMul* and Einsum (the reference kernels' plans around them).

bool gemm_product(const float* a, const float* b, const nn::MatMulDims& d, float* out) {
  if (d.m == 0 || d.n == 0 || d.k == 0) return false;
  match_thread_count();
  if (dnnl_sgemm(d.transpose_a ? 'T' : 'N', d.transpose_b ? 'T' : 'N', d.m, d.n, d.k, 1.0f, a,
                 d.transpose_a ? d.m : d.k, b, d.transpose_b ? d.k : d.n, 0.0f, out,
                 d.n) != dnnl_success) {
    return false;
  }
  fast_path_runs.fetch_add(1, std::memory_order_relaxed);
  return true;
}

// ---------------------------------------------------------------------------------------------
// FusedBatchNormV3, training (batch statistics), NHWC.

struct BatchNormEntry {
  dnnl::batch_normalization_forward primitive;
  memory::desc data_md, stats_md, scratchpad_md;
};

PrimitiveCache<BatchNormEntry>& batch_norm_cache() {
  static PrimitiveCache<BatchNormEntry> cache;
  return cache;
}

// The data of a training batch norm: rank 4, not empty, NHWC or NCHW (Keras 2's
// LayerNormalization runs as this op on [1, rows, features, 1], NCHW); nothing otherwise.
struct BatchNormData {
  const Tensor* x;
  bool nhwc;
  int64_t channels;

  memory::desc md() const {
    return nhwc ? memory::desc({x->dim(0), channels, x->dim(1), x->dim(2)}, kF32, Tag::nhwc)
                : memory::desc({x->dim(0), channels, x->dim(2), x->dim(3)}, kF32, Tag::nchw);
  }
  std::vector<int64_t> cache_key(float epsilon) const {
    return {x->dim(0), x->dim(1), x->dim(2),
            x->dim(3), nhwc,      static_cast<int64_t>(std::bit_cast<uint32_t>(epsilon))};
  }
};

std::optional<BatchNormData> batch_norm_data(const AttrMap& attrs, const Tensor& x) {
  auto format = attrs.get_string("data_format", "NHWC");
  if (!format.ok() || (*format != "NHWC" && *format != "NCHW") || x.rank() != 4 ||
      x.num_elements() == 0) {
    return std::nullopt;
  }
  const bool nhwc = *format == "NHWC";
  return BatchNormData{&x, nhwc, x.dim(nhwc ? 3 : 1)};
}

// The reference kernel's semantics (src/ops/nn_norm.cc): y from the biased batch variance;
// batch_variance Bessel-corrected; with exponential_avg_factor f != 1 the running outputs are
// (1 - f) * old + f * batch; reserve spaces hold the batch mean and biased variance.
Attempt batch_norm_training(KernelContext& ctx) {
  if (ctx.num_inputs() != 5 || !all_float32(ctx)) return std::nullopt;
  auto is_training = ctx.attrs().get_bool("is_training", true);
  auto epsilon = ctx.attrs().get_float("epsilon", 1e-4f);
  auto factor = ctx.attrs().get_float("exponential_avg_factor", 1.0f);
  if (!is_training.ok() || !*is_training || !epsilon.ok() || !factor.ok()) return std::nullopt;
  const Tensor& x = ctx.input(0);
  const auto data = batch_norm_data(ctx.attrs(), x);
  if (!data) return std::nullopt;
  const int64_t channels = data->channels;
  for (size_t i = 1; i < 5; ++i) {
    const bool needed = i < 3 || *factor != 1.0f;
    if (ctx.input(i).rank() != 1 || (needed && ctx.input(i).dim(0) != channels)) {
      return std::nullopt;
    }
  }
  const int64_t rows = x.num_elements() / channels;
  auto entry = batch_norm_cache().get(data->cache_key(*epsilon), [&] {
    BatchNormEntry e;
    e.data_md = data->md();
    e.stats_md = memory::desc({channels}, kF32, Tag::a);
    const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    dnnl::batch_normalization_forward::desc desc(dnnl::prop_kind::forward_training, e.data_md,
                                                 *epsilon, flags);
    dnnl::batch_normalization_forward::primitive_desc pd(desc, user_scratchpad_attr(), engine());
    e.primitive = dnnl::batch_normalization_forward(pd);
    e.scratchpad_md = pd.scratchpad_desc();
    return e;
  });
  Tensor y = Tensor::uninitialized(DType::kFloat32, x.shape());
  Tensor saved_mean(DType::kFloat32, {channels});
  Tensor saved_variance(DType::kFloat32, {channels});
  dnnl::stream stream(engine());
  match_thread_count();
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, memory(entry->data_md, engine(), mutable_ptr(x))},
      {DNNL_ARG_DST, memory(entry->data_md, engine(), y.raw_mutable_data())},
      {DNNL_ARG_SCALE, memory(entry->stats_md, engine(), mutable_ptr(ctx.input(1)))},
      {DNNL_ARG_SHIFT, memory(entry->stats_md, engine(), mutable_ptr(ctx.input(2)))},
      {DNNL_ARG_MEAN, memory(entry->stats_md, engine(), saved_mean.raw_mutable_data())},
      {DNNL_ARG_VARIANCE, memory(entry->stats_md, engine(), saved_variance.raw_mutable_data())}};
  auto scratchpad = add_scratchpad(entry->scratchpad_md, args);
  entry->primitive.execute(stream, args);
  stream.wait();

  Tensor out_mean(DType::kFloat32, {channels});
  Tensor out_variance(DType::kFloat32, {channels});
  const float f = *factor;
  const float bessel = static_cast<float>(rows) / static_cast<float>(rows > 1 ? rows - 1 : 1);
  const float* mean = saved_mean.data<float>();
  const float* variance = saved_variance.data<float>();
  float* running_mean = out_mean.mutable_data<float>();
  float* running_variance = out_variance.mutable_data<float>();
  for (int64_t c = 0; c < channels; ++c) {
    if (f == 1.0f) {
      running_mean[c] = mean[c];
      running_variance[c] = variance[c] * bessel;
    } else {
      running_mean[c] = (1.0f - f) * ctx.input(3).data<float>()[c] + f * mean[c];
      running_variance[c] = (1.0f - f) * ctx.input(4).data<float>()[c] + f * bessel * variance[c];
    }
  }
  ctx.set_output(0, std::move(y));
  ctx.set_output(1, std::move(out_mean));
  ctx.set_output(2, std::move(out_variance));
  ctx.set_output(3, std::move(saved_mean));
  ctx.set_output(4, std::move(saved_variance));
  if (ctx.num_outputs() > 5) ctx.set_output(5, Tensor(DType::kFloat32, {}));
  return Status();
}

// ---------------------------------------------------------------------------------------------
// FusedBatchNormGradV3, training (reserve_space_1 / 2 = batch mean and biased variance), NHWC.

struct BatchNormGradEntry {
  dnnl::batch_normalization_backward primitive;
  memory::desc data_md, stats_md, scratchpad_md;
};

PrimitiveCache<BatchNormGradEntry>& batch_norm_grad_cache() {
  static PrimitiveCache<BatchNormGradEntry> cache;
  return cache;
}

// The reference kernel's semantics (src/ops/nn_grad_ops.cc, TensorFlow's CPU functor):
// x_backprop = scale * rsqrt(var + eps) * (dy - mean(dy) - (x - mean) * mean(dy * (x - mean)) /
// (var + eps)), scale_backprop = sum(dy * (x - mean)) * rsqrt(var + eps), offset_backprop =
// sum(dy) — oneDNN's backward batch normalization with scale and shift.
Attempt batch_norm_grad_training(KernelContext& ctx) {
  if (ctx.num_inputs() != 6) return std::nullopt;
  for (size_t i = 0; i < 5; ++i) {
    if (ctx.input(i).dtype() != DType::kFloat32) return std::nullopt;
  }
  auto is_training = ctx.attrs().get_bool("is_training", true);
  auto epsilon = ctx.attrs().get_float("epsilon", 1e-4f);
  if (!is_training.ok() || !*is_training || !epsilon.ok()) return std::nullopt;
  const Tensor& dy = ctx.input(0);
  const Tensor& x = ctx.input(1);
  const auto data = batch_norm_data(ctx.attrs(), x);
  if (!data || dy.shape() != x.shape()) return std::nullopt;
  const int64_t channels = data->channels;
  for (size_t i = 2; i < 5; ++i) {
    if (ctx.input(i).shape() != Dims{channels}) return std::nullopt;
  }
  auto entry = batch_norm_grad_cache().get(data->cache_key(*epsilon), [&] {
    BatchNormGradEntry e;
    e.data_md = data->md();
    e.stats_md = memory::desc({channels}, kF32, Tag::a);
    const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    dnnl::batch_normalization_forward::primitive_desc forward(
        dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, e.data_md,
                                                *epsilon, flags),
        engine());
    dnnl::batch_normalization_backward::desc desc(dnnl::prop_kind::backward, e.data_md, e.data_md,
                                                  *epsilon, flags);
    dnnl::batch_normalization_backward::primitive_desc pd(desc, user_scratchpad_attr(), engine(),
                                                          forward);
    e.primitive = dnnl::batch_normalization_backward(pd);
    e.scratchpad_md = pd.scratchpad_desc();
    return e;
  });
  Tensor dx = Tensor::uninitialized(DType::kFloat32, x.shape());
  // oneDNN's backward pass with use_shift takes the shift as an argument it does not need for
  // the gradients; TensorFlow's op has no offset input.
  Tensor unused_shift(DType::kFloat32, {channels});
  Tensor dscale(DType::kFloat32, {channels});
  Tensor doffset(DType::kFloat32, {channels});
  dnnl::stream stream(engine());
  match_thread_count();
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC, memory(entry->data_md, engine(), mutable_ptr(x))},
      {DNNL_ARG_DIFF_DST, memory(entry->data_md, engine(), mutable_ptr(dy))},
      {DNNL_ARG_SCALE, memory(entry->stats_md, engine(), mutable_ptr(ctx.input(2)))},
      {DNNL_ARG_MEAN, memory(entry->stats_md, engine(), mutable_ptr(ctx.input(3)))},
      {DNNL_ARG_SHIFT, memory(entry->stats_md, engine(), unused_shift.raw_mutable_data())},
      {DNNL_ARG_VARIANCE, memory(entry->stats_md, engine(), mutable_ptr(ctx.input(4)))},
      {DNNL_ARG_DIFF_SRC, memory(entry->data_md, engine(), dx.raw_mutable_data())},
      {DNNL_ARG_DIFF_SCALE, memory(entry->stats_md, engine(), dscale.raw_mutable_data())},
      {DNNL_ARG_DIFF_SHIFT, memory(entry->stats_md, engine(), doffset.raw_mutable_data())}};
  auto scratchpad = add_scratchpad(entry->scratchpad_md, args);
  entry->primitive.execute(stream, args);
  stream.wait();
  ctx.set_output(0, std::move(dx));
  ctx.set_output(1, std::move(dscale));
  ctx.set_output(2, std::move(doffset));
  ctx.set_output(3, Tensor(DType::kFloat32, {0}));
  ctx.set_output(4, Tensor(DType::kFloat32, {0}));
  return Status();
}

// ---------------------------------------------------------------------------------------------
// MaxPoolGrad and AvgPoolGrad: loops of our own over NHWC, vectorized over channels and run
// in parallel over images. oneDNN's max pooling backward routes through a workspace of its own
// forward pass; TensorFlow's rule (the first maximal cell of a window, row-major, wins; NaN
// never replaces a maximum) is easier to keep exactly here.

struct PoolShape {
  int64_t batch = 0, in_h = 0, in_w = 0, channels = 0, window_h = 0, window_w = 0;
  Window2D w;
  Dims output_shape() const { return {batch, w.out_h, w.out_w, channels}; }
};

std::optional<PoolShape> pool_shape(const KernelContext& ctx, const Dims& input,
                                    bool allow_explicit) {
  if (input.size() != 4) return std::nullopt;
  for (int64_t d : input) {
    if (d <= 0) return std::nullopt;
  }
  auto ksize = nhwc_spatial(ctx.attrs(), "ksize", std::nullopt);
  auto padding = ctx.attrs().get_string("padding");
  if (!ksize || !padding.ok() || (!allow_explicit && *padding == "EXPLICIT")) return std::nullopt;
  PoolShape s{input[0], input[1], input[2], input[3], (*ksize)[1], (*ksize)[2], {}};
  auto w = read_window(ctx, s.in_h, s.in_w, s.window_h, s.window_w, /*has_dilations=*/false);
  if (!w) return std::nullopt;
  s.w = *w;
  return s;
}

// Calls visit(out_cell, y_begin, y_end, x_begin, x_end) for each output cell of image-local
// index out_cell, with the window's input rows and columns clipped to the image.
template <typename Visit>
void for_each_window(const PoolShape& s, Visit&& visit) {
  int64_t cell = 0;
  for (int64_t oy = 0; oy < s.w.out_h; ++oy) {
    const int64_t y0 = oy * s.w.stride_h - s.w.pad_top;
    const int64_t y_begin = std::max<int64_t>(y0, 0), y_end = std::min(y0 + s.window_h, s.in_h);
    for (int64_t ox = 0; ox < s.w.out_w; ++ox, ++cell) {
      const int64_t x0 = ox * s.w.stride_w - s.w.pad_left;
      const int64_t x_begin = std::max<int64_t>(x0, 0), x_end = std::min(x0 + s.window_w, s.in_w);
      visit(cell, y_begin, y_end, x_begin, x_end);
    }
  }
}

// MaxPoolGrad(orig_input, orig_output, grad).
Attempt max_pool_grad(KernelContext& ctx) {
  if (ctx.num_inputs() != 3 || !all_float32(ctx)) return std::nullopt;
  const Tensor& input = ctx.input(0);
  auto s = pool_shape(ctx, input.shape(), /*allow_explicit=*/true);
  if (!s || ctx.input(1).shape() != s->output_shape() ||
      ctx.input(2).shape() != s->output_shape()) {
    return std::nullopt;
  }
  Tensor dx(DType::kFloat32, input.shape());  // zeros
  const int64_t c_count = s->channels;
  const int64_t image_in = s->in_h * s->in_w * c_count;
  const int64_t image_out = s->w.out_h * s->w.out_w * c_count;
  const float* in_all = input.data<float>();
  const float* grad_all = ctx.input(2).data<float>();
  float* dx_all = dx.mutable_data<float>();
  parallel_rows(s->batch, image_out * s->window_h * s->window_w, [&](int64_t begin, int64_t end) {
    std::vector<float> best(static_cast<size_t>(c_count));
    std::vector<int64_t> best_at(static_cast<size_t>(c_count));
    for (int64_t b = begin; b < end; ++b) {
      const float* in = in_all + b * image_in;
      const float* grad = grad_all + b * image_out;
      float* dxb = dx_all + b * image_in;
      for_each_window(
          *s, [&](int64_t cell, int64_t y_begin, int64_t y_end, int64_t x_begin, int64_t x_end) {
            if (y_begin >= y_end || x_begin >= x_end) return;
            const int64_t first = (y_begin * s->in_w + x_begin) * c_count;
            for (int64_t c = 0; c < c_count; ++c) {
              best[c] = in[first + c];
              best_at[c] = first + c;
            }
            for (int64_t y = y_begin; y < y_end; ++y) {
              for (int64_t x = (y == y_begin ? x_begin + 1 : x_begin); x < x_end; ++x) {
                const int64_t at = (y * s->in_w + x) * c_count;
                for (int64_t c = 0; c < c_count; ++c) {
                  const float v = in[at + c];
                  const bool greater = v > best[c];
                  best[c] = greater ? v : best[c];
                  best_at[c] = greater ? at + c : best_at[c];
                }
              }
            }
            const float* g = grad + cell * c_count;
            for (int64_t c = 0; c < c_count; ++c) dxb[best_at[c]] += g[c];
          });
    }
  });
  ctx.set_output(0, std::move(dx));
  return Status();
}

// AvgPoolGrad(orig_input_shape, grad): each output cell's gradient spread evenly over its
// window's input cells, padding excluded.
Attempt avg_pool_grad(KernelContext& ctx) {
  if (ctx.num_inputs() != 2 || ctx.input(1).dtype() != DType::kFloat32) return std::nullopt;
  auto input_shape = shape_input(ctx.input(0));
  if (!input_shape) return std::nullopt;
  auto s = pool_shape(ctx, *input_shape, /*allow_explicit=*/false);
  if (!s || ctx.input(1).shape() != s->output_shape()) return std::nullopt;
  Tensor dx(DType::kFloat32, *input_shape);  // zeros
  const int64_t c_count = s->channels;
  const int64_t image_in = s->in_h * s->in_w * c_count;
  const int64_t image_out = s->w.out_h * s->w.out_w * c_count;
  const float* grad_all = ctx.input(1).data<float>();
  float* dx_all = dx.mutable_data<float>();
  parallel_rows(s->batch, image_out * s->window_h * s->window_w, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const float* grad = grad_all + b * image_out;
      float* dxb = dx_all + b * image_in;
      for_each_window(
          *s, [&](int64_t cell, int64_t y_begin, int64_t y_end, int64_t x_begin, int64_t x_end) {
            const int64_t count = (y_end - y_begin) * (x_end - x_begin);
            if (count <= 0) return;
            const float* g = grad + cell * c_count;
            const float inverse = 1.0f / static_cast<float>(count);
            for (int64_t y = y_begin; y < y_end; ++y) {
              for (int64_t x = x_begin; x < x_end; ++x) {
                float* __restrict d = dxb + (y * s->in_w + x) * c_count;
                for (int64_t c = 0; c < c_count; ++c) d[c] += g[c] * inverse;
              }
            }
          });
    }
  });
  ctx.set_output(0, std::move(dx));
  return Status();
}

// ---------------------------------------------------------------------------------------------
// BiasAddGrad (channels last) and ReluGrad / Relu6Grad.

Attempt bias_add_grad(KernelContext& ctx) {
  if (ctx.num_inputs() != 1 || !all_float32(ctx) || !is_nhwc(ctx.attrs())) return std::nullopt;
  const Tensor& dy = ctx.input(0);
  if (dy.rank() < 2 || dy.num_elements() == 0) return std::nullopt;
  const int64_t channels = dy.dim(dy.rank() - 1);
  const int64_t rows = dy.num_elements() / channels;
  // Partial sums of blocks of rows in parallel, then added up in double.
  const int64_t blocks = std::min<int64_t>(rows, 64);
  std::vector<float> partial(static_cast<size_t>(blocks * channels), 0.0f);
  const float* g = dy.data<float>();
  parallel_rows(blocks, rows / blocks * channels, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; ++block) {
      float* __restrict sum = partial.data() + block * channels;
      const int64_t row_end = (block + 1) * rows / blocks;
      for (int64_t row = block * rows / blocks; row < row_end; ++row) {
        const float* __restrict r = g + row * channels;
        for (int64_t c = 0; c < channels; ++c) sum[c] += r[c];
      }
    }
  });
  std::vector<double> total(static_cast<size_t>(channels), 0.0);
  for (int64_t block = 0; block < blocks; ++block) {
    for (int64_t c = 0; c < channels; ++c) total[c] += partial[block * channels + c];
  }
  Tensor out(DType::kFloat32, {channels});
  for (int64_t c = 0; c < channels; ++c)
    out.mutable_data<float>()[c] = static_cast<float>(total[c]);
  ctx.set_output(0, std::move(out));
  return Status();
}

// out[i] = keep(x[i]) ? g[i] : 0 over [begin, end), branch-free so it vectorizes: both values
// are loaded unconditionally and selected with a mask (a branch on random signs mispredicts half
// the time, which made this loop 8x slower than the reference). `out` may be `g` itself (the
// output forwarded into the gradients' buffer); element i reads and writes only index i, so the
// loop carries no dependency and ivdep lets the compiler skip its overlap checks.
#if defined(__clang__)
// At -O1 (the sanitizer build) clang does not vectorize and says so for the pragma below.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpass-failed"
#endif
template <bool kRelu6>
void masked_gradient(const float* g, const float* x, float* out, int64_t begin, int64_t end) {
#if defined(__clang__)
#pragma clang loop vectorize(assume_safety)
#elif defined(__GNUC__)
#pragma GCC ivdep
#endif
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i], xi = x[i];
    const bool keep = kRelu6 ? (xi > 0.0f) & (xi < 6.0f) : xi > 0.0f;
    out[i] = keep ? gi : 0.0f;
  }
}
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

// (gradients, features) -> gradients where 0 < features (and features < 6 for Relu6Grad), else 0.
Attempt relu_grad(KernelContext& ctx, bool relu6) {
  if (ctx.num_inputs() != 2 || !all_float32(ctx)) return std::nullopt;
  const Tensor& g = ctx.input(0);
  const Tensor& x = ctx.input(1);
  if (g.shape() != x.shape()) return std::nullopt;
  Tensor out = forward_or_allocate(ctx.inputs(), {0}, DType::kFloat32, g.shape());
  const float* pg = g.data<float>();
  const float* px = x.data<float>();
  float* po = out.mutable_data<float>();
  constexpr int64_t kBlock = 16384;
  const int64_t size = g.num_elements();
  parallel_rows((size + kBlock - 1) / kBlock, kBlock, [&](int64_t begin, int64_t end) {
    const int64_t stop = std::min(end * kBlock, size);
    if (relu6) {
      masked_gradient<true>(pg, px, po, begin * kBlock, stop);
    } else {
      masked_gradient<false>(pg, px, po, begin * kBlock, stop);
    }
  });
  ctx.set_output(0, std::move(out));
  return Status();
}

// The fast attempt of each op that has one.
const std::map<std::string, FastAttempt, std::less<>>& attempts() {
  static const auto* table = new std::map<std::string, FastAttempt, std::less<>>{
      {"Conv2D", [](KernelContext& ctx) { return conv_forward(ctx, /*depthwise=*/false); }},
      {"DepthwiseConv2dNative", [](KernelContext& ctx) { return conv_forward(ctx, true); }},
      {"Conv2DBackpropInput", [](KernelContext& ctx) { return conv_backprop_input(ctx, false); }},
      {"Conv2DBackpropFilter", [](KernelContext& ctx) { return conv_backprop_filter(ctx, false); }},
      {"DepthwiseConv2dNativeBackpropInput",
       [](KernelContext& ctx) { return conv_backprop_input(ctx, true); }},
      {"DepthwiseConv2dNativeBackpropFilter",
       [](KernelContext& ctx) { return conv_backprop_filter(ctx, true); }},
      {"MatMul", matmul},
      {"FusedBatchNormV3", batch_norm_training},
      {"FusedBatchNormGradV3", batch_norm_grad_training},
      {"MaxPoolGrad", max_pool_grad},
      {"AvgPoolGrad", avg_pool_grad},
      {"BiasAddGrad", bias_add_grad},
      {"ReluGrad", [](KernelContext& ctx) { return relu_grad(ctx, /*relu6=*/false); }},
      {"Relu6Grad", [](KernelContext& ctx) { return relu_grad(ctx, /*relu6=*/true); }},
  };
  return *table;
}

}  // namespace

Status fast::run_training_fast_path(std::string_view op, KernelContext& ctx) {
  auto it = attempts().find(op);
  if (it == attempts().end())
    return unimplemented("no training fast kernel for " + std::string(op));
  try {
    Attempt attempt = it->second(ctx);
    if (attempt) return *attempt;
  } catch (const dnnl::error& e) {
    return unimplemented(std::string("oneDNN: ") + e.what());
  }
  return unimplemented("the fast path does not take this case");
}

void register_fast_training_kernels(OpRegistry& r) {
  // The backward ops' reference kernels come with the gradient work (nn_grad_ops.cc); each one
  // registered before this gets its fast kernel.
  for (const auto& [op, attempt] : attempts()) {
    if (r.find(op) != nullptr) r.set_fast_kernel(op, with_reference_fallback(r, op, attempt));
  }
  for (const char* op : nn::kBatchedMatMulOps) {
    r.set_fast_kernel(op, *nn::batched_matmul_kernel(op, gemm_product));
  }
}

#else  // !HUBIMG_HAVE_DNNL

Status fast::run_training_fast_path(std::string_view op, KernelContext&) {
  return unimplemented("hubimg was built without oneDNN: no fast kernel for " + std::string(op));
}
void register_fast_training_kernels(OpRegistry&) {}

#endif

}  // namespace hubimg::ops
