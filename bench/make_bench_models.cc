// make_bench_models OUT_DIR [--only NAME] [--seed N] [--init keras|varied] [--dump-npy]
//     [--no-training-trace] [--input-size N] [--alpha A] [--feature-vector]
// Writes OUT_DIR/<name>/ for each benchmark model (the model zoo, src/zoo/zoo.h).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "zoo/zoo.h"

namespace {

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s OUT_DIR [--only NAME] [--seed N] [--init keras|varied] [--dump-npy]\n"
               "       [--no-training-trace] [--input-size N] [--alpha A] [--feature-vector]\n"
               "models:",
               argv0);
  for (const auto& n : hubimg::zoo::zoo_model_names()) std::fprintf(stderr, " %s", n.c_str());
  std::fprintf(stderr, "\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_dir;
  std::vector<std::string> names;
  hubimg::zoo::ZooOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--only" && i + 1 < argc) {
      names.push_back(argv[++i]);
    } else if (arg == "--seed" && i + 1 < argc) {
      char* end = nullptr;
      options.seed = std::strtoull(argv[++i], &end, 10);
      if (end == nullptr || *end != '\0') return usage(argv[0]);
    } else if (arg == "--input-size" && i + 1 < argc) {
      options.input_size = std::atoll(argv[++i]);
    } else if (arg == "--alpha" && i + 1 < argc) {
      options.alpha = std::atof(argv[++i]);
    } else if (arg == "--init" && i + 1 < argc) {
      const std::string init = argv[++i];
      if (init == "keras") {
        options.initialization = hubimg::zoo::Initialization::kKeras;
      } else if (init == "varied") {
        options.initialization = hubimg::zoo::Initialization::kVaried;
      } else {
        return usage(argv[0]);
      }
    } else if (arg == "--feature-vector") {
      options.feature_vector = true;
    } else if (arg == "--dump-npy") {
      options.dump_npy = true;
    } else if (arg == "--no-training-trace") {
      options.training_trace = false;
    } else if (arg == "-h" || arg == "--help") {
      return usage(argv[0]);
    } else if (out_dir.empty() && !arg.starts_with("-")) {
      out_dir = arg;
    } else {
      return usage(argv[0]);
    }
  }
  if (out_dir.empty()) return usage(argv[0]);
  if (names.empty()) names = hubimg::zoo::zoo_model_names();
  for (const auto& name : names) {
    const auto dir = std::filesystem::path(out_dir) / name;
    auto summary = hubimg::zoo::write_zoo_model(name, dir, options);
    if (!summary.ok()) {
      std::fprintf(stderr, "make_bench_models: %s\n", summary.status().to_string().c_str());
      return 1;
    }
    std::printf(
        "%-16s %4d layers %4d variables (%d trainable) %11lld parameters (%lld trainable) -> %s\n",
        name.c_str(), summary->num_layers, summary->num_variables, summary->num_trainable_variables,
        static_cast<long long>(summary->parameters),
        static_cast<long long>(summary->trainable_parameters), dir.string().c_str());
  }
  return 0;
}
