// `hubimg bench MODEL [--train] [--batch N] [--threads T] [--iterations K] [--json]`: load time,
// first call, steady-state latency and throughput, peak resident memory. With --train one
// iteration is a full training step: training=true forward, sparse softmax cross-entropy of the
// logits against random labels, backward to every trainable variable, SGD-momentum update (the
// trace's moving-statistics updates applied by the call).
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "commands.h"
#include "hubimg/model.h"
#include "hubimg/train.h"

namespace hubimg::cli {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

struct BenchArgs {
  std::string model;
  std::string signature;
  std::string size;
  int batch = 1;
  int threads = 0;
  int iterations = 20;
  bool json = false;
  bool profile = false;
  int profile_nodes = 10;
  bool train = false;
  double learning_rate = 0.01;
  double momentum = 0.9;
};

int bench(const BenchArgs& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  auto start = Clock::now();
  auto model = Model::load(a.model);
  if (!model.ok()) return report_error(model.status().message());
  const double load_ms = ms_since(start);
  const bool use_call = a.signature.empty() && model->has_call();
  const std::string signature = a.signature.empty() ? "serving_default" : a.signature;
  const auto specs = inputs_without_defaults(use_call ? model->call_input_specs()
                                                      : model->signature_input_specs(signature));
  if (specs.size() != 1) {
    return report_error("bench needs a model with exactly one input without a default; it has " +
                        std::to_string(specs.size()));
  }
  const auto& spec = specs[0];
  if (spec.shape.unknown_rank || spec.dtype != DType::kFloat32) {
    return report_error("bench needs a float32 input of known rank, got " + dtype_name(spec.dtype) +
                        spec.shape.to_string());
  }
  Dims shape = spec.shape.dims;
  int64_t h = 0, w = 0;
  if (!a.size.empty() && std::sscanf(a.size.c_str(), "%ldx%ld", &h, &w) != 2) {
    return report_error("--size wants HxW");
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i == 0) {
      shape[i] = a.batch;
    } else if (shape[i] < 0) {
      if (shape.size() == 4 && (i == 1 || i == 2) && h > 0) {
        shape[i] = i == 1 ? h : w;
      } else {
        return report_error("input dimension " + std::to_string(i) + " is unknown: use --size HxW");
      }
    }
  }
  Tensor input(DType::kFloat32, shape);
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (float& v :
       std::span(input.mutable_data<float>(), static_cast<size_t>(input.num_elements()))) {
    v = uniform(rng);
  }
  Profile profile;
  CallOptions options;
  GradientTargets targets;
  SgdOptimizer sgd({.learning_rate = a.learning_rate, .momentum = a.momentum});
  std::vector<float> losses;
  if (a.train) {
    if (!use_call)
      return report_error("--train needs the root __call__ (signatures have no training trace)");
    options.training = true;
    // The logits' shape (and key) from one training-mode call.
    auto outputs = model->call({{spec.name, input}}, options);
    if (!outputs.ok()) return report_error(outputs.status().message());
    if (outputs->empty()) return report_error("the model has no output");
    const auto& [key, logits] = *outputs->begin();
    if (logits.dtype() != DType::kFloat32 || logits.shape().size() != 2 ||
        logits.shape()[0] != a.batch) {
      return report_error("--train needs logits float32 [batch, classes] as the first output; '" +
                          key + "' is " + logits.description());
    }
    targets.loss_output = key;
    targets.input_gradients = false;
    targets.labels = Tensor(DType::kInt32, {a.batch});
    std::uniform_int_distribution<int32_t> label(0, static_cast<int32_t>(logits.shape()[1]) - 1);
    for (int64_t i = 0; i < a.batch; ++i) targets.labels.mutable_data<int32_t>()[i] = label(rng);
  }
  auto run_once = [&]() -> Status {
    if (a.train) {
      HUBIMG_ASSIGN_OR_RETURN(auto step, model->gradients({{spec.name, input}}, targets, options));
      losses.push_back(step.loss.data<float>()[0]);
      return sgd.apply(model->trainable_variables(), step.gradients);
    }
    if (use_call) return (*model)(input, options).status();
    return model->call_signature(signature, {{spec.name, input}}, options).status();
  };
  start = Clock::now();
  if (Status s = run_once(); !s.ok()) return report_error(s.message());
  const double first_ms = ms_since(start);
  std::vector<double> times;
  for (int i = 0; i < a.iterations; ++i) {
    start = Clock::now();
    if (Status s = run_once(); !s.ok()) return report_error(s.message());
    times.push_back(ms_since(start));
  }
  if (a.profile) {
    options.profile = &profile;
    if (Status s = run_once(); !s.ok()) return report_error(s.message());
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double p90 = times[std::min(times.size() - 1, times.size() * 9 / 10)];
  const double ips = a.batch * 1000.0 / median;
  const int threads = num_threads();
  if (a.json) {
    nlohmann::ordered_json j{{"load_ms", load_ms},       {"first_call_ms", first_ms},
                             {"median_ms", median},      {"p90_ms", p90},
                             {"images_per_second", ips}, {"peak_rss_mb", peak_rss_mb()},
                             {"batch", a.batch},         {"threads", threads}};
    if (a.train) {
      j["mode"] = "train";
      j["loss_first"] = losses.front();
      j["loss_last"] = losses.back();
    }
    if (a.profile) j["profile_ms_by_op"] = profile.ms_by_op;
    std::cout << dump_json(j) << "\n";
  } else {
    std::cout << fmt::format(
        "input {}\nload {:.1f} ms, first {} {:.1f} ms\nper batch of {}: median {:.2f} ms, p90 "
        "{:.2f} ms ({} iterations)\n{:.1f} images/s, peak RSS {:.0f} MB\n",
        input.description(), load_ms, a.train ? "training step" : "call", first_ms, a.batch, median,
        p90, a.iterations, ips, peak_rss_mb());
    if (a.train) {
      std::cout << fmt::format("cross-entropy: first step {:.4f}, last step {:.4f}\n",
                               losses.front(), losses.back());
    }
    if (a.profile) {
      double total = 0;
      for (const auto& [op, ms] : profile.ms_by_op) total += ms;
      std::vector<std::pair<double, std::string>> rows;
      for (const auto& [op, ms] : profile.ms_by_op) rows.emplace_back(ms, op);
      std::sort(rows.rbegin(), rows.rend());
      std::cout << "profile of one call (kernel time by op):\n";
      for (const auto& [ms, op] : rows) {
        std::cout << fmt::format("  {:<28} {:9.2f} ms {:5.1f}%  {} calls\n", op, ms,
                                 100 * ms / total, profile.calls_by_op[op]);
      }
      std::vector<std::pair<double, std::string>> nodes;
      for (const auto& [node, ms] : profile.ms_by_node) nodes.emplace_back(ms, node);
      std::sort(nodes.rbegin(), nodes.rend());
      nodes.resize(std::min<size_t>(nodes.size(), a.profile_nodes));
      if (!nodes.empty()) std::cout << "slowest nodes:\n";
      for (const auto& [ms, node] : nodes) {
        std::cout << fmt::format("  {:9.3f} ms {:5.1f}%  {}\n", ms, 100 * ms / total, node);
      }
    }
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Measure load time, latency and throughput");
  cmd->add_option("MODEL", args->model, kModelArgumentHelp)->required();
  cmd->add_option("--signature", args->signature, "Signature (default: __call__)");
  cmd->add_option("--size", args->size, "HxW when the model accepts any size");
  cmd->add_option("--batch", args->batch, "Batch size")->check(CLI::Range(1, 4096));
  cmd->add_option("--threads", args->threads, "Threads (0: all cores)")->check(CLI::Range(0, 256));
  cmd->add_option("--iterations", args->iterations, "Timed calls")->check(CLI::Range(1, 100000));
  cmd->add_flag("--json", args->json, "Print JSON");
  cmd->add_flag("--train", args->train,
                "Time a training step (forward, cross-entropy on random labels, backward, SGD)");
  cmd->add_option("--learning-rate", args->learning_rate, "SGD learning rate with --train");
  cmd->add_option("--momentum", args->momentum, "SGD momentum with --train")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--profile", args->profile, "Also time one call per op type");
  cmd->add_option("--profile-nodes", args->profile_nodes, "Slowest nodes to list with --profile")
      ->check(CLI::Range(0, 100000));
  cmd->callback([args, &exit_code] { exit_code = bench(*args); });
}

}  // namespace hubimg::cli
