// Shared by the fuzz targets that go through Model::load and one call: a scratch SavedModel
// directory, small budgets (tensor bytes, threads) so each input stays quick and bounded, and a
// call of every signature and of __call__ on small zero inputs built from their specs.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include "hubimg/model.h"
#include "hubimg/tensor.h"

namespace hubimg::fuzzing {

// Per-tensor budget while fuzzing: far below libFuzzer's -rss_limit_mb.
inline constexpr int64_t kFuzzTensorBytes = int64_t{64} << 20;
// Zero inputs get at most this many elements (unknown dimensions become 1 first).
inline constexpr int64_t kMaxInputElements = int64_t{1} << 16;

inline void init_budgets() {
  setenv("HUBIMG_NUM_THREADS", "1", 0);
  set_max_tensor_bytes(kFuzzTensorBytes);
}

// A fresh directory under $TMPDIR (or /tmp) for this process, reused for every input.
inline std::filesystem::path scratch_dir(const char* name) {
  std::error_code ec;
  auto base = std::filesystem::temp_directory_path(ec);
  if (ec) base = "/tmp";
  auto dir = base / (std::string(name) + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  return dir;
}

inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline Expected<Tensor> zero_input(const Model::InputSpec& spec) {
  Dims dims;
  if (!spec.shape.unknown_rank) {
    if (spec.shape.dims.size() > 8) return invalid_argument("rank");
    for (int64_t d : spec.shape.dims) dims.push_back(d < 0 ? 1 : d);
  }
  auto n = checked_num_elements(dims);
  if (!n.ok() || *n > kMaxInputElements) return invalid_argument("large input");
  if (spec.dtype == DType::kString) {
    return Tensor::from_strings(dims, std::vector<std::string>(static_cast<size_t>(*n)));
  }
  return Tensor::create(spec.dtype, dims);
}

// Loads the model in `dir` and calls each signature and __call__ once.
inline void load_and_call(const std::filesystem::path& dir) {
  auto model = Model::load(dir);
  if (!model.ok()) return;
  for (const auto& name : model->signature_names()) {
    std::map<std::string, Tensor> inputs;
    bool ok = true;
    for (const auto& spec : model->signature_input_specs(name)) {
      auto t = zero_input(spec);
      if (!t.ok()) {
        ok = false;
        break;
      }
      inputs[spec.name] = std::move(t).value();
    }
    if (ok) (void)model->call_signature(name, inputs);
  }
  if (model->has_call()) {
    std::map<std::string, Tensor> inputs;
    for (const auto& spec : model->call_input_specs()) {
      auto t = zero_input(spec);
      if (!t.ok()) return;
      inputs[spec.name] = std::move(t).value();
    }
    (void)model->call(inputs);
  }
}

}  // namespace hubimg::fuzzing
