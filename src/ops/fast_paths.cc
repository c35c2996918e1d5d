#include "ops/fast_paths.h"

#include <atomic>
#include <cstdlib>
#include <string_view>

#include "core/thread_pool.h"

namespace hubimg::ops {
namespace {
// HUBIMG_FAST_PATHS=0 starts the process with every fast path (and op-entry fast kernel) off,
// =1 on; anything else, or unset, leaves the default (on). For running a whole test suite on the
// reference kernels.
bool initial_fast_paths() {
  const char* env = std::getenv("HUBIMG_FAST_PATHS");
  return env == nullptr || std::string_view(env) != "0";
}

std::atomic<bool> g_fast_paths{initial_fast_paths()};
}  // namespace

bool fast_paths_enabled() {
  return g_fast_paths.load(std::memory_order_relaxed);
}
void set_fast_paths_enabled(bool enabled) {
  g_fast_paths.store(enabled, std::memory_order_relaxed);
}

void parallel_rows(int64_t rows, int64_t work_per_row,
                   const std::function<void(int64_t, int64_t)>& fn) {
  if (rows <= 0) return;
  auto& pool = ThreadPool::global();
  if (rows == 1 || pool.num_threads() <= 1 || rows * work_per_row < kParallelGrain) {
    fn(0, rows);
    return;
  }
  pool.parallel_for_ranges(rows, fn);
}

Tensor forward_or_allocate(std::span<const Tensor> inputs, std::initializer_list<size_t> candidates,
                           DType dtype, const Dims& shape) {
  for (size_t i : candidates) {
    if (i < inputs.size() && can_forward(inputs[i], dtype, shape)) return inputs[i];
  }
  return Tensor::uninitialized(dtype, shape);
}

}  // namespace hubimg::ops
