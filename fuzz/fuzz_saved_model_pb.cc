// libFuzzer target: arbitrary bytes as saved_model.pb, through parsing and the object-graph
// reading (signatures, __call__ traces, structured signatures).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "format/saved_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto model = hubimg::format::SavedModel::parse(bytes, "fuzz.pb");
  if (model.ok()) {
    auto& m = **model;
    std::vector<std::string> roots;
    for (const auto& [key, sig] : m.signatures()) {
      if (sig.function) roots.push_back(sig.function->name);
    }
    if (m.root_call()) {
      for (const auto& cf : m.root_call()->concrete_functions) roots.push_back(cf.name);
    }
    (void)m.op_histogram(m.reachable_functions(roots));
    (void)m.check_runnable();
  }
  return 0;
}
