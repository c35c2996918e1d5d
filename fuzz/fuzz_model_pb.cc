// libFuzzer target: a binary saved_model.pb beside real variables, through Model::load
// (object graph, checkpoint matching, variable restore, graph building, optimization) and one
// call of each signature and of __call__ on small zero inputs.
//
// Input: one byte choosing the variables directory (byte % (count + 1); 0 = none), then the
// saved_model.pb bytes. The variables come from the small fixtures under
// $HUBIMG_FUZZ_SHARED_DIR (default: the build's HUBIMG_SHARED_DIR)/fixtures/real.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz_model_common.h"

#ifndef HUBIMG_SHARED_DIR
#define HUBIMG_SHARED_DIR ""
#endif

namespace {

// Fixtures whose variables are small enough to restore on every input, in seed order.
constexpr const char* kFixtures[] = {"mnist_cnn_tf231", "tf_testdata/serving_half_plus_two_tf2_cpu",
                                     "tf_testdata/tfnet_simple_model_from_auto_compile"};
std::vector<std::filesystem::path> model_dirs;  // [0]: no variables; [k]: kFixtures[k - 1]

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  hubimg::fuzzing::init_budgets();
  const char* env = std::getenv("HUBIMG_FUZZ_SHARED_DIR");
  const std::filesystem::path shared = env ? env : HUBIMG_SHARED_DIR;
  const auto base = hubimg::fuzzing::scratch_dir("fuzz_model_pb");
  model_dirs.push_back(base / "none");
  std::filesystem::create_directories(model_dirs.back());
  for (const char* fixture : kFixtures) {
    const auto variables = shared / "fixtures/real" / fixture / "saved_model/variables";
    std::error_code ec;
    if (shared.empty() || !std::filesystem::is_directory(variables, ec)) continue;
    auto dir = base / std::to_string(model_dirs.size());
    std::filesystem::create_directories(dir);
    std::filesystem::copy(variables, dir / "variables", std::filesystem::copy_options::recursive,
                          ec);
    model_dirs.push_back(dir);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto& dir = model_dirs[data[0] % model_dirs.size()];
  hubimg::fuzzing::write_bytes(dir / "saved_model.pb",
                               std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  hubimg::fuzzing::load_and_call(dir);
  return 0;
}
