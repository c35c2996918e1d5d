// Times every distinct Conv2D / DepthwiseConv2dNative shape and the final MatMul of the bench
// networks (MobileNetV2, EfficientNet-B0, ResNet-50) with oneDNN, XNNPACK, hubimg's fast
// kernels and the reference kernels, at batch 1 and 32.
//
//   kernel_compare [--models=DIR] [--threads=N] [--reference] [--fused] [google benchmark flags]
//
// DIR holds <model>/weights_manifest.json as written by make_bench_models (default /tmp/bm;
// the models are generated there when absent). Every benchmark reports the counter GFLOPS
// (2 * multiply-adds per second), `count` (how often the shape occurs in its network) and
// `gflop` (work of one call). bench/summarize_kernel_compare.py turns the JSON output into the
// tables of bench/README.md. --reference adds the (slow) reference kernels at batch 1.
// --fused[=both|swish|residual] adds hubimg_fused: the fast kernel with swish and/or a
// residual add fused in.
// --threads=N sizes every library's threads (default: the machine's). With N = 1 the benchmarks
// time the calling thread's CPU time, which stays meaningful on a machine shared with other
// work; otherwise wall-clock time.
#include <benchmark/benchmark.h>
#include <pthreadpool.h>
#include <xnnpack.h>

#include <cmath>
#include <cstring>
#include <dnnl.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "ops/fast/fast_conv.h"
#include "ops/op_registry.h"
#include "zoo/zoo.h"

namespace {

using hubimg::Dims;
using hubimg::DType;
using hubimg::Tensor;

enum class LayerKind { kConv, kDepthwise, kMatMul };

struct LayerShape {
  std::string network;
  LayerKind kind = LayerKind::kConv;
  std::string example_layer;  // first layer of the network with this shape
  int64_t height = 1, width = 1, in_channels = 0;
  int64_t out_channels = 0;  // conv: filters; depthwise: multiplier * channels; matmul: units
  int64_t kernel = 1, stride = 1;
  std::string padding;  // SAME or VALID
  int count = 0;

  int64_t out_size(int64_t in) const {
    return padding == "SAME" ? (in + stride - 1) / stride : (in - kernel) / stride + 1;
  }
  int64_t out_height() const { return out_size(height); }
  int64_t out_width() const { return out_size(width); }
  double flops(int64_t batch) const {
    if (kind == LayerKind::kMatMul) return 2.0 * batch * in_channels * out_channels;
    const double taps =
        kind == LayerKind::kDepthwise ? kernel * kernel : kernel * kernel * double(in_channels);
    return 2.0 * batch * out_height() * out_width() * out_channels * taps;
  }
  std::string key() const {
    const char* k = kind == LayerKind::kConv ? "conv" : kind == LayerKind::kDepthwise ? "dw" : "mm";
    return std::string(k) + "_" + std::to_string(height) + "x" + std::to_string(width) + "x" +
           std::to_string(in_channels) + "_k" + std::to_string(kernel) + "s" +
           std::to_string(stride) + "_" + padding + "_o" + std::to_string(out_channels);
  }
};

// Input height, width, channels of every layer, from the manifest's output_shape ([H, W, C] or
// [C]) of the layer that feeds it.
std::vector<LayerShape> read_layer_shapes(const std::filesystem::path& manifest_path) {
  std::ifstream file(manifest_path);
  const auto manifest = nlohmann::json::parse(file);
  const std::string network = manifest["model"];
  std::map<std::string, std::vector<int64_t>> output_shapes;
  const auto& input_shape = manifest["input"]["shape"];
  output_shapes["input_1"] = {input_shape[1], input_shape[2], input_shape[3]};
  std::map<std::string, LayerShape> by_key;
  std::vector<std::string> order;
  for (const auto& layer : manifest["layers"]) {
    const std::string type = layer["type"];
    const std::vector<int64_t> in = output_shapes.at(layer["inputs"][0].get<std::string>());
    output_shapes[layer["name"]] = layer["output_shape"].get<std::vector<int64_t>>();
    LayerShape s;
    s.network = network;
    s.example_layer = layer["name"];
    if (type == "Conv2D" || type == "DepthwiseConv2D") {
      s.kind = type == "Conv2D" ? LayerKind::kConv : LayerKind::kDepthwise;
      s.height = in[0];
      s.width = in[1];
      s.in_channels = in[2];
      s.out_channels = output_shapes[layer["name"]].back();
      s.kernel = layer["kernel_size"];
      s.stride = layer["strides"];
      s.padding = layer["padding"];
    } else if (type == "Dense") {
      s.kind = LayerKind::kMatMul;
      s.in_channels = in.back();
      s.out_channels = layer["units"];
      s.padding = "-";
    } else {
      continue;
    }
    auto [it, inserted] = by_key.try_emplace(s.key(), s);
    if (inserted) order.push_back(s.key());
    ++it->second.count;
  }
  std::vector<LayerShape> shapes;
  for (const auto& key : order) shapes.push_back(by_key[key]);
  return shapes;
}

// Uniform in [-scale, scale) from a 32-bit LCG: fast enough for batch-32 activations.
std::vector<float> random_values(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  uint32_t state = seed * 747796405u + 2891336453u;
  for (auto& x : v) {
    state = state * 1664525u + 1013904223u;
    x = scale * (static_cast<float>(state >> 8) * (2.0f / 16777216.0f) - 1.0f);
  }
  return v;
}

Tensor random_tensor(Dims shape, uint32_t seed, float scale = 1.0f) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return Tensor::from_vector<float>(std::move(shape), random_values(n, seed, scale));
}

Dims filter_shape(const LayerShape& s) {
  if (s.kind == LayerKind::kMatMul) return {s.in_channels, s.out_channels};
  if (s.kind == LayerKind::kDepthwise) {
    return {s.kernel, s.kernel, s.in_channels, s.out_channels / s.in_channels};
  }
  return {s.kernel, s.kernel, s.in_channels, s.out_channels};
}

Dims input_shape(const LayerShape& s, int64_t batch) {
  if (s.kind == LayerKind::kMatMul) return {batch, s.in_channels};
  return {batch, s.height, s.width, s.in_channels};
}

void set_counters(benchmark::State& state, const LayerShape& s, int64_t batch) {
  const double flops = s.flops(batch);
  state.counters["GFLOPS"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["gflop"] = flops * 1e-9;
  state.counters["count"] = s.count;
  state.counters["batch"] = static_cast<double>(batch);
}

// ---------------------------------------------------------------------------------------------
// oneDNN, straight from its API: src/dst in plain NHWC ("nhwc") or, for the blocked-layout
// comparison, in the formats the primitive prefers ("any"; the reorders into and out of them
// are not timed). Weights always in the primitive's preferred format, reordered once.

const dnnl::engine& onednn_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

void bench_onednn(benchmark::State& state, const LayerShape& s, int64_t batch, bool blocked) {
  using dnnl::memory;
  using tag = memory::format_tag;
  const auto f32 = memory::data_type::f32;
  const dnnl::engine& engine = onednn_engine();
  dnnl::stream stream(engine);
  hubimg::set_onednn_num_threads(hubimg::ThreadPool::default_num_threads());

  const Tensor filter = random_tensor(filter_shape(s), 2, 0.1f);
  const std::vector<float> bias = random_values(s.out_channels, 3);
  const Tensor input = random_tensor(input_shape(s, batch), 1);
  memory::desc bias_md({s.out_channels}, f32, tag::a);
  dnnl::primitive primitive;
  memory::desc src_md, weights_md, dst_md;
  memory::desc user_weights_md;
  memory::desc user_src_md;
  if (s.kind == LayerKind::kMatMul) {
    user_src_md = memory::desc({batch, s.in_channels}, f32, tag::ab);
    user_weights_md = memory::desc({s.in_channels, s.out_channels}, f32, tag::ab);
    dnnl::matmul::desc desc(user_src_md,
                            memory::desc({s.in_channels, s.out_channels}, f32, tag::any),
                            memory::desc({1, s.out_channels}, f32, tag::ab),
                            memory::desc({batch, s.out_channels}, f32, tag::ab));
    dnnl::matmul::primitive_desc pd(desc, engine);
    state.SetLabel(pd.impl_info_str());
    primitive = dnnl::matmul(pd);
    src_md = pd.src_desc();
    weights_md = pd.weights_desc();
    dst_md = pd.dst_desc();
    bias_md = memory::desc({1, s.out_channels}, f32, tag::ab);
  } else {
    const int64_t oh = s.out_height(), ow = s.out_width();
    const int64_t pad_h = std::max<int64_t>(0, (oh - 1) * s.stride + s.kernel - s.height);
    const int64_t pad_w = std::max<int64_t>(0, (ow - 1) * s.stride + s.kernel - s.width);
    const memory::dims pad_l = {pad_h / 2, pad_w / 2};
    const memory::dims pad_r = {pad_h - pad_h / 2, pad_w - pad_w / 2};
    user_src_md = memory::desc({batch, s.in_channels, s.height, s.width}, f32, tag::nhwc);
    memory::desc any_weights;
    if (s.kind == LayerKind::kDepthwise) {
      const int64_t m = s.out_channels / s.in_channels;
      const memory::dims dims = {s.in_channels, m, 1, s.kernel, s.kernel};
      // TF [kh, kw, C, M] as (g, o, i, h, w) strides.
      user_weights_md = memory::desc(
          dims, f32, memory::dims{m, 1, 1, s.kernel * s.in_channels * m, s.in_channels * m});
      any_weights = memory::desc(dims, f32, tag::any);
    } else {
      const memory::dims dims = {s.out_channels, s.in_channels, s.kernel, s.kernel};
      user_weights_md = memory::desc(dims, f32, tag::hwio);
      any_weights = memory::desc(dims, f32, tag::any);
    }
    const tag act = blocked ? tag::any : tag::nhwc;
    dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
        memory::desc({batch, s.in_channels, s.height, s.width}, f32, act), any_weights, bias_md,
        memory::desc({batch, s.out_channels, oh, ow}, f32, act), {s.stride, s.stride}, pad_l,
        pad_r);
    dnnl::convolution_forward::primitive_desc pd(desc, engine);
    state.SetLabel(pd.impl_info_str());
    primitive = dnnl::convolution_forward(pd);
    src_md = pd.src_desc();
    weights_md = pd.weights_desc();
    dst_md = pd.dst_desc();
  }
  memory user_weights(user_weights_md, engine, const_cast<float*>(filter.data<float>()));
  memory weights(weights_md, engine);
  dnnl::reorder(user_weights, weights).execute(stream, user_weights, weights);
  memory user_src(user_src_md, engine, const_cast<float*>(input.data<float>()));
  memory src(src_md, engine);
  dnnl::reorder(user_src, src).execute(stream, user_src, src);
  memory bias_mem(bias_md, engine, const_cast<float*>(bias.data()));
  memory dst(dst_md, engine);
  stream.wait();
  const std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src},
                                                {DNNL_ARG_WEIGHTS, weights},
                                                {DNNL_ARG_BIAS, bias_mem},
                                                {DNNL_ARG_DST, dst}};
  primitive.execute(stream, args);  // warm-up: first touch of the output pages
  stream.wait();
  for (auto _ : state) {
    primitive.execute(stream, args);
    stream.wait();
  }
  set_counters(state, s, batch);
}

// ---------------------------------------------------------------------------------------------
// XNNPACK (Debian's 2022 snapshot), operator API on a pthreadpool of the machine's size.

struct PthreadpoolDeleter {
  void operator()(pthreadpool* pool) const { pthreadpool_destroy(pool); }
};
struct XnnOperatorDeleter {
  void operator()(xnn_operator* op) const { xnn_delete_operator(op); }
};

pthreadpool* xnn_threadpool() {
  static const bool initialized = xnn_initialize(nullptr) == xnn_status_success;
  static std::unique_ptr<pthreadpool, PthreadpoolDeleter> pool(
      pthreadpool_create(static_cast<size_t>(hubimg::ThreadPool::default_num_threads())));
  return initialized ? pool.get() : nullptr;
}

void bench_xnnpack(benchmark::State& state, const LayerShape& s, int64_t batch) {
  pthreadpool* pool = xnn_threadpool();
  if (!pool) {
    state.SkipWithError("xnn_initialize failed");
    return;
  }
  const Tensor filter = random_tensor(filter_shape(s), 2, 0.1f);
  const std::vector<float> bias = random_values(s.out_channels, 3);
  const Tensor input = random_tensor(input_shape(s, batch), 1);
  const float lo = -std::numeric_limits<float>::infinity();
  const float hi = std::numeric_limits<float>::infinity();
  xnn_operator_t raw = nullptr;
  xnn_status status;
  Dims out_shape;
  if (s.kind == LayerKind::kMatMul) {
    status = xnn_create_fully_connected_nc_f32(s.in_channels, s.out_channels, s.in_channels,
                                               s.out_channels, filter.data<float>(), bias.data(),
                                               lo, hi, XNN_FLAG_TRANSPOSE_WEIGHTS, &raw);
    out_shape = {batch, s.out_channels};
  } else {
    std::vector<float> ohwi;  // XNNPACK's dense filter layout
    const float* kernel = filter.data<float>();
    uint32_t groups = 1, flags = 0;
    size_t group_in = s.in_channels, group_out = s.out_channels;
    if (s.kind == LayerKind::kDepthwise) {
      groups = static_cast<uint32_t>(s.in_channels);  // [kh, kw, C*M] is TF's layout as is
      group_in = 1;
      group_out = s.out_channels / s.in_channels;
      flags = XNN_FLAG_DEPTHWISE_CONVOLUTION;
    } else {
      const int64_t taps = s.kernel * s.kernel;
      ohwi.resize(static_cast<size_t>(filter.num_elements()));
      for (int64_t t = 0; t < taps; ++t)
        for (int64_t i = 0; i < s.in_channels; ++i)
          for (int64_t o = 0; o < s.out_channels; ++o)
            ohwi[(o * taps + t) * s.in_channels + i] =
                kernel[(t * s.in_channels + i) * s.out_channels + o];
      kernel = ohwi.data();
    }
    if (s.padding == "SAME") flags |= XNN_FLAG_TENSORFLOW_SAME_PADDING;
    const auto k = static_cast<uint32_t>(s.kernel), st = static_cast<uint32_t>(s.stride);
    status = xnn_create_convolution2d_nhwc_f32(0, 0, 0, 0, k, k, st, st, 1, 1, groups, group_in,
                                               group_out, s.in_channels, s.out_channels, kernel,
                                               bias.data(), lo, hi, flags, &raw);
    out_shape = {batch, s.out_height(), s.out_width(), s.out_channels};
  }
  std::unique_ptr<xnn_operator, XnnOperatorDeleter> op(raw);
  if (status != xnn_status_success) {
    state.SkipWithError("xnn_create failed");
    return;
  }
  Tensor output(DType::kFloat32, out_shape);
  if (s.kind == LayerKind::kMatMul) {
    status = xnn_setup_fully_connected_nc_f32(op.get(), batch, input.data<float>(),
                                              output.mutable_data<float>(), pool);
  } else {
    status =
        xnn_setup_convolution2d_nhwc_f32(op.get(), batch, s.height, s.width, input.data<float>(),
                                         output.mutable_data<float>(), pool);
  }
  if (status != xnn_status_success) {
    state.SkipWithError("xnn_setup failed");
    return;
  }
  if (xnn_run_operator(op.get(), pool) != xnn_status_success) {  // warm-up
    state.SkipWithError("xnn_run_operator failed");
    return;
  }
  for (auto _ : state) {
    if (xnn_run_operator(op.get(), pool) != xnn_status_success) {
      state.SkipWithError("xnn_run_operator failed");
      return;
    }
  }
  set_counters(state, s, batch);
}

// ---------------------------------------------------------------------------------------------
// hubimg: the fast kernels (src/ops/fast) as a graph node would use them, bias included.

enum class Epilogue { kBiasOnly, kSwish, kResidual, kSwishAndResidual };

// The fast kernel with bias and the given epilogue fused in (what the epilogue costs).
void bench_hubimg_fast(benchmark::State& state, const LayerShape& s, int64_t batch,
                       Epilogue epilogue) {
  const bool fused = epilogue == Epilogue::kResidual || epilogue == Epilogue::kSwishAndResidual;
  const bool swish = epilogue == Epilogue::kSwish || epilogue == Epilogue::kSwishAndResidual;
  namespace fast = hubimg::ops::fast;
  const Tensor filter = random_tensor(filter_shape(s), 2, 0.1f);
  const Tensor bias = random_tensor({s.out_channels}, 3);
  const Tensor input = random_tensor(input_shape(s, batch), 1);
  const auto activation = swish ? fast::Activation::kSwish : fast::Activation::kNone;
  Tensor residual;
  Tensor output;
  auto run_timed = [&](auto& kernel) {
    const Tensor* residual_ptr = fused ? &residual : nullptr;
    if (auto st = kernel.run(input, residual_ptr, output); !st.ok()) {
      state.SkipWithError(st.to_string().c_str());
      return;
    }
    state.SetLabel(kernel.implementation());
    for (auto _ : state) {
      if (!kernel.run(input, residual_ptr, output).ok()) state.SkipWithError("run failed");
    }
    set_counters(state, s, batch);
  };
  if (s.kind == LayerKind::kMatMul) {
    residual = random_tensor({batch, s.out_channels}, 4);
    auto kernel = fast::FastMatMul::create({.name = s.example_layer,
                                            .weights = filter,
                                            .bias = bias,
                                            .activation = activation,
                                            .fuse_residual = fused});
    if (!kernel.ok()) return state.SkipWithError(kernel.status().to_string().c_str());
    return run_timed(*kernel);
  }
  residual = random_tensor({batch, s.out_height(), s.out_width(), s.out_channels}, 4);
  fast::ConvParams params{
      .name = s.example_layer,
      .filter = filter,
      .bias = bias,
      .strides = {s.stride, s.stride},
      .padding = s.padding == "SAME" ? fast::PaddingKind::kSame : fast::PaddingKind::kValid,
      .activation = activation,
      .fuse_residual = fused,
      .expected_input = input.shape()};
  if (s.kind == LayerKind::kDepthwise) {
    auto kernel = fast::FastDepthwiseConv2D::create(params);
    if (!kernel.ok()) return state.SkipWithError(kernel.status().to_string().c_str());
    return run_timed(*kernel);
  }
  auto kernel = fast::FastConv2D::create(params);
  if (!kernel.ok()) return state.SkipWithError(kernel.status().to_string().c_str());
  run_timed(*kernel);
}

// ---------------------------------------------------------------------------------------------
// Reference kernels (ops::run_op), bias not included.

void bench_reference(benchmark::State& state, const LayerShape& s, int64_t batch) {
  using hubimg::AttrMap;
  const Tensor filter = random_tensor(filter_shape(s), 2, 0.1f);
  const Tensor input = random_tensor(input_shape(s, batch), 1);
  std::vector<Tensor> inputs = {input, filter};
  AttrMap attrs;
  std::string op = "MatMul";
  if (s.kind != LayerKind::kMatMul) {
    op = s.kind == LayerKind::kConv ? "Conv2D" : "DepthwiseConv2dNative";
    attrs.set("strides", std::vector<int64_t>{1, s.stride, s.stride, 1});
    attrs.set("padding", s.padding);
  }
  for (auto _ : state) {
    auto result = hubimg::ops::run_op(op, inputs, attrs);
    if (!result.ok()) {
      state.SkipWithError(result.status().to_string().c_str());
      return;
    }
    benchmark::DoNotOptimize(result);
  }
  set_counters(state, s, batch);
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path models = "/tmp/bm";
  bool with_reference = false;
  std::optional<Epilogue> fused_epilogue;
  std::vector<char*> args = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--models=", 0) == 0) {
      models = arg.substr(9);
    } else if (arg.rfind("--threads=", 0) == 0) {
      setenv("HUBIMG_NUM_THREADS", arg.substr(10).c_str(), 1);
    } else if (arg == "--fused" || arg == "--fused=both") {
      fused_epilogue = Epilogue::kSwishAndResidual;
    } else if (arg == "--fused=swish") {
      fused_epilogue = Epilogue::kSwish;
    } else if (arg == "--fused=residual") {
      fused_epilogue = Epilogue::kResidual;
    } else if (arg == "--reference") {
      with_reference = true;
    } else {
      args.push_back(argv[i]);
    }
  }
  const std::vector<std::string> networks = {"mobilenet_v2", "efficientnet_b0", "resnet50"};
  std::vector<LayerShape> shapes;
  for (const auto& network : networks) {
    const auto manifest = models / network / "weights_manifest.json";
    if (!std::filesystem::exists(manifest)) {
      std::cerr << "generating " << network << " into " << (models / network) << "\n";
      auto written = hubimg::zoo::write_zoo_model(network, models / network, {});
      if (!written.ok()) {
        std::cerr << written.status().to_string() << "\n";
        return 1;
      }
    }
    for (auto& s : read_layer_shapes(manifest)) shapes.push_back(std::move(s));
  }
  const int threads = hubimg::ThreadPool::default_num_threads();
  const bool wall_clock = threads > 1;
  std::cerr << shapes.size() << " distinct layer shapes, " << threads << " threads\n";
  auto configure = [&](benchmark::internal::Benchmark* b) {
    b->Unit(benchmark::kMillisecond);
    if (wall_clock) b->UseRealTime();
    return b;
  };
  for (const auto& s : shapes) {
    for (int64_t batch : {1, 32}) {
      const std::string base = s.network + "/" + s.key() + "/b" + std::to_string(batch) + "/";
      configure(
          benchmark::RegisterBenchmark((base + "onednn").c_str(), bench_onednn, s, batch, false));
      if (s.kind != LayerKind::kMatMul) {
        configure(benchmark::RegisterBenchmark((base + "onednn_blocked").c_str(), bench_onednn, s,
                                               batch, true));
      }
      configure(benchmark::RegisterBenchmark((base + "xnnpack").c_str(), bench_xnnpack, s, batch));
      configure(benchmark::RegisterBenchmark((base + "hubimg").c_str(), bench_hubimg_fast, s, batch,
                                             Epilogue::kBiasOnly));
      if (fused_epilogue) {
        configure(benchmark::RegisterBenchmark((base + "hubimg_fused").c_str(), bench_hubimg_fast,
                                               s, batch, *fused_epilogue));
      }
      if (with_reference && batch == 1) {
        configure(
            benchmark::RegisterBenchmark((base + "reference").c_str(), bench_reference, s, batch))
            ->Iterations(1);
      }
    }
  }
  int bench_argc = static_cast<int>(args.size());
  benchmark::Initialize(&bench_argc, args.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
