// libFuzzer target: arbitrary text as saved_model.pbtxt (no variables), through Model::load
// (parsing, object graph, graph building and inlining, optimization) and one call of each
// signature and of __call__ (the executor and the kernels) on small zero inputs.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_model_common.h"

namespace {
std::filesystem::path model_dir;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  hubimg::fuzzing::init_budgets();
  model_dir = hubimg::fuzzing::scratch_dir("fuzz_model_pbtxt");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hubimg::fuzzing::write_bytes(model_dir / "saved_model.pbtxt",
                               std::string_view(reinterpret_cast<const char*>(data), size));
  hubimg::fuzzing::load_and_call(model_dir);
  return 0;
}
