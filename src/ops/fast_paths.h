// Float32 fast paths inside the reference kernels: broadcasting binary arithmetic, unary maps
// and Sum/Mean/Max/Min (math_ops.cc), MaxPool/AvgPool (nn_pool.cc), Pad/PadV2 (array_ops.cc)
// and the element-wise activations (nn_activation.cc). Each kernel recognizes a float32 layout
// it can run with contiguous, auto-vectorized loops on the global thread pool and runs its
// reference code for everything else. The fast paths compute the same scalar expressions in
// the same order as the reference code, so their results are identical to it (bit for bit,
// except that a NaN's sign or payload may differ).
//
// The switch below turns every fast path off, so the reference code stays reachable: the tests
// (tests/ops/fast_paths_test.cc) use it as the oracle.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>

#include "hubimg/tensor.h"

namespace hubimg::ops {

// On by default; HUBIMG_FAST_PATHS=0 in the environment starts the process with it off.
// Process-wide; not meant to be flipped while kernels are running.
bool fast_paths_enabled();
void set_fast_paths_enabled(bool enabled);

// Sets the switch for its lifetime and restores the previous value.
class ScopedFastPaths {
 public:
  explicit ScopedFastPaths(bool enabled) : previous_(fast_paths_enabled()) {
    set_fast_paths_enabled(enabled);
  }
  ~ScopedFastPaths() { set_fast_paths_enabled(previous_); }
  ScopedFastPaths(const ScopedFastPaths&) = delete;
  ScopedFastPaths& operator=(const ScopedFastPaths&) = delete;

 private:
  bool previous_;
};

// Work (in elements touched) below which a loop runs on the calling thread: forking to the pool
// costs a few microseconds.
inline constexpr int64_t kParallelGrain = 32 * 1024;

// Calls fn(begin, end) over [0, rows): on the global thread pool in contiguous ranges when
// rows * work_per_row reaches kParallelGrain, else once on the calling thread.
void parallel_rows(int64_t rows, int64_t work_per_row,
                   const std::function<void(int64_t, int64_t)>& fn);

// True when a kernel may write its `dtype` output of `shape` into `input`'s buffer (TensorFlow's
// forward_input): same dtype and shape, and `input` is the only holder of a buffer it allocated.
// The executor moves a value into its last consumer's inputs, so this holds there.
inline bool can_forward(const Tensor& input, DType dtype, const Dims& shape) {
  return input.dtype() == dtype && input.shape() == shape && input.owns_buffer_exclusively();
}

// The output of a float32 element-wise kernel: input `i`'s buffer when it can be forwarded,
// otherwise a fresh uninitialized tensor.
Tensor forward_or_allocate(std::span<const Tensor> inputs, std::initializer_list<size_t> candidates,
                           DType dtype, const Dims& shape);

}  // namespace hubimg::ops
