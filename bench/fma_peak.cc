// fma_peak [--seconds S] [--threads N] [--json]
// Measures the machine's fp32 FMA peak: each thread runs independent chains of vfmadd (24 zmm
// accumulators with AVX-512, 12 ymm with AVX2; enough to cover the FMA latency times the number
// of FMA pipes), on 1 thread and on N threads (default: every online core). Each figure is the
// best of several timed rounds, in GFLOP/s (an FMA is 2 FLOPs per lane). The peak is computed
// from each thread's CPU time, so that other processes sharing the cores do not lower it; the
// wall-clock figure is printed beside it ("gflops_*" in --json are the CPU-time ones).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::atomic<float> g_sink{0.0f};  // keeps the chains' results alive

constexpr int kAvx512Chains = 24;
constexpr int kAvx2Chains = 12;

// `iterations` rounds of kAvx512Chains independent FMAs on 16 lanes each.
__attribute__((target("avx512f"))) void fma_avx512(int64_t iterations) {
  __m512 acc[kAvx512Chains];
  for (int i = 0; i < kAvx512Chains; ++i) acc[i] = _mm512_set1_ps(0.001f * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f);
  const __m512 b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kAvx512Chains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 sum = acc[0];
  for (int i = 1; i < kAvx512Chains; ++i) sum = _mm512_add_ps(sum, acc[i]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);
  float total = 0.0f;
  for (float v : lanes) total += v;
  g_sink.store(total, std::memory_order_relaxed);
}

__attribute__((target("avx2,fma"))) void fma_avx2(int64_t iterations) {
  __m256 acc[kAvx2Chains];
  for (int i = 0; i < kAvx2Chains; ++i) acc[i] = _mm256_set1_ps(0.001f * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f);
  const __m256 b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kAvx2Chains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < kAvx2Chains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float total = 0.0f;
  for (float v : lanes) total += v;
  g_sink.store(total, std::memory_order_relaxed);
}

struct Kernel {
  const char* isa;
  void (*run)(int64_t);
  double flops_per_iteration;  // chains * lanes * 2
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Rate {
  double wall = 0.0;  // total FLOPs / wall time
  double cpu = 0.0;   // sum over threads of the thread's FLOPs / its own CPU time
};

// GFLOP/s of `threads` threads each running `iterations` rounds; threads start together.
// The CPU-time rate is what the cores do while they run this, whatever else shares them; the
// wall-clock rate is lower on a busy machine.
Rate measure(const Kernel& k, int threads, int64_t iterations) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> cpu(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      const double start = thread_cpu_seconds();
      k.run(iterations);
      cpu[static_cast<size_t>(t)] = thread_cpu_seconds() - start;
    });
  }
  while (ready.load() < threads) {
  }
  const auto start = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  const double s = seconds_since(start);
  const double flops = k.flops_per_iteration * static_cast<double>(iterations);
  Rate r;
  r.wall = flops * threads / s / 1e9;
  for (double c : cpu) r.cpu += flops / c / 1e9;
  return r;
}

// Calibrates the iteration count to about `seconds` on one thread, then keeps the best of
// `rounds` measurements.
Rate peak(const Kernel& k, int threads, double seconds, int rounds) {
  int64_t iterations = 1 << 16;
  for (;;) {
    const auto start = Clock::now();
    k.run(iterations);
    const double s = seconds_since(start);
    if (s > 0.02) {
      iterations = std::max<int64_t>(1, static_cast<int64_t>(iterations * seconds / s));
      break;
    }
    iterations *= 4;
  }
  Rate best;
  for (int r = 0; r < rounds; ++r) {
    const Rate m = measure(k, threads, iterations);
    best.wall = std::max(best.wall, m.wall);
    best.cpu = std::max(best.cpu, m.cpu);
  }
  return best;
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--seconds S] [--threads N] [--rounds R] [--json]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.25;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  int rounds = 5;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (arg == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (arg == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (arg == "--json") {
      json = true;
    } else {
      return usage(argv[0]);
    }
  }
  if (seconds <= 0 || threads < 1 || rounds < 1) return usage(argv[0]);

  __builtin_cpu_init();
  std::vector<Kernel> kernels;
  if (__builtin_cpu_supports("avx512f")) {
    kernels.push_back({"avx512", fma_avx512, kAvx512Chains * 16 * 2.0});
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    kernels.push_back({"avx2", fma_avx2, kAvx2Chains * 8 * 2.0});
  }
  if (kernels.empty()) {
    std::fprintf(stderr, "fma_peak: this CPU has neither AVX-512F nor AVX2+FMA\n");
    return 1;
  }
  struct Result {
    const char* isa;
    Rate one_thread, all_threads;
  };
  std::vector<Result> results;
  for (const auto& k : kernels) {
    results.push_back({k.isa, peak(k, 1, seconds, rounds), peak(k, threads, seconds, rounds)});
  }
  // The peak is the widest ISA's (the first); the others are printed for reference.
  if (json) {
    std::printf("{\n  \"isa\": \"%s\",\n  \"threads\": %d,\n", results[0].isa, threads);
    std::printf("  \"gflops_1_thread\": %.1f,\n  \"gflops_all_threads\": %.1f,\n",
                results[0].one_thread.cpu, results[0].all_threads.cpu);
    std::printf("  \"wall_gflops_1_thread\": %.1f,\n  \"wall_gflops_all_threads\": %.1f,\n",
                results[0].one_thread.wall, results[0].all_threads.wall);
    std::printf("  \"by_isa\": {");
    for (size_t i = 0; i < results.size(); ++i) {
      std::printf("%s\"%s\": {\"gflops_1_thread\": %.1f, \"gflops_all_threads\": %.1f}",
                  i ? ", " : "", results[i].isa, results[i].one_thread.cpu,
                  results[i].all_threads.cpu);
    }
    std::printf("}\n}\n");
  } else {
    std::printf("fp32 FMA peak, GFLOP/s (by CPU time; by wall clock in brackets)\n");
    for (const auto& r : results) {
      std::printf("%-7s 1 thread %8.1f [%8.1f]   %d threads %8.1f [%8.1f]\n", r.isa,
                  r.one_thread.cpu, r.one_thread.wall, threads, r.all_threads.cpu,
                  r.all_threads.wall);
    }
  }
  return 0;
}
