// The einsums of one ViT-B/16 attention layer (Keras MultiHeadAttention at 224x224: 197 tokens,
// 12 heads of 64, width 768) through the Einsum op entry, fast kernel (oneDNN GEMM) or
// reference; bench/peers/torch_einsum_bench.py times torch.einsum on the same shapes and
// bench/run_attention_peers.sh runs both side by side. One JSON object per equation.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "ops/op_registry.h"

namespace {

using hubimg::Dims;
using hubimg::Tensor;

struct Einsum {
  std::string name, equation;
  std::vector<Dims> shapes;
  double macs;  // multiply-adds
};

std::vector<Einsum> vit_b16_attention(int64_t b) {
  const int64_t t = 197, h = 12, d = 64, w = 768;
  return {
      {"qkv_projection", "abc,cde->abde", {{b, t, w}, {w, h, d}}, double(b * t * w * h * d)},
      {"scores", "aecd,abcd->acbe", {{b, t, h, d}, {b, t, h, d}}, double(b * h * t * t * d)},
      {"context", "acbe,aecd->abcd", {{b, h, t, t}, {b, t, h, d}}, double(b * h * t * t * d)},
      {"output_projection", "abcd,cde->abe", {{b, t, h, d}, {h, d, w}}, double(b * t * h * d * w)},
  };
}

Tensor random_tensor(const Dims& shape, uint32_t seed) {
  Tensor tensor(hubimg::DType::kFloat32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  float* values = tensor.mutable_data<float>();
  for (int64_t i = 0; i < tensor.num_elements(); ++i) values[i] = dist(rng);
  return tensor;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("ViT-B/16 attention einsums through hubimg's Einsum kernels");
  int64_t batch = 1;
  int threads = 0, iterations = 10;
  bool reference = false;
  app.add_option("--batch", batch, "images per call");
  app.add_option("--threads", threads, "kernel threads (default: all cores)");
  app.add_option("--iterations", iterations, "timed calls per equation (after one untimed)");
  app.add_flag("--reference", reference, "the reference kernel instead of the fast one");
  CLI11_PARSE(app, argc, argv);
  hubimg::ThreadPool::set_global_num_threads(threads);

  const hubimg::ops::OpSpec* spec = hubimg::ops::OpRegistry::global().find("Einsum");
  const hubimg::ops::Kernel& kernel =
      reference || !spec->fast_kernel ? spec->kernel : spec->fast_kernel;
  uint32_t seed = 1;
  for (const Einsum& e : vit_b16_attention(batch)) {
    std::vector<Tensor> inputs;
    for (const Dims& shape : e.shapes) inputs.push_back(random_tensor(shape, seed++));
    hubimg::AttrMap attrs{{"equation", e.equation}, {"N", int64_t{2}}};
    std::vector<double> ms;
    for (int i = 0; i <= iterations; ++i) {
      hubimg::ops::KernelContext ctx(e.name, "Einsum", attrs, inputs, 1);
      const auto start = std::chrono::steady_clock::now();
      const hubimg::Status status = kernel(ctx);
      const auto stop = std::chrono::steady_clock::now();
      if (!status.ok()) {
        std::fprintf(stderr, "%s: %s\n", e.name.c_str(), status.to_string().c_str());
        return 1;
      }
      if (i > 0) ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    nlohmann::json out = {{"engine", reference ? "hubimg-reference" : "hubimg"},
                          {"name", e.name},
                          {"equation", e.equation},
                          {"batch", batch},
                          {"threads", hubimg::ThreadPool::global().num_threads()},
                          {"median_ms", median},
                          {"gflops", 2 * e.macs / (median * 1e6)}};
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}
