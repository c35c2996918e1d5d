// Helpers shared by the neural-network and image reference kernels: attribute lookups that name
// the node, TensorFlow's padding and windowed-output-size rules, and strided index walks.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "hubimg/status.h"
#include "hubimg/tensor.h"
#include "ops/kernel_util.h"
#include "ops/op_registry.h"

namespace hubimg::ops::nn {

// Accumulator for sums of products: double for floating point (a reference result closer to
// exact than TensorFlow's own float sums), int64 for integers (wraps like TensorFlow on cast).
template <typename T>
using Accumulator = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// An attribute lookup whose error names the node.
template <typename T>
Expected<T> attr(const KernelContext& ctx, Expected<T> value) {
  if (!value.ok()) return ctx.error(value.status().message());
  return value;
}

std::string ints_to_string(const std::vector<int64_t>& values);  // "[1, 2, 2, 1]"

// Output args for an OpSpec: single tensors with the OpDef's names.
inline std::vector<OutputArg> output_args(std::initializer_list<const char*> names) {
  std::vector<OutputArg> args;
  for (const char* name : names) args.push_back({name, ""});
  return args;
}

enum class Padding { kSame, kValid, kExplicit };

// A 2-D sliding window over NHWC rows and columns, resolved to concrete padding.
struct WindowDim {
  int64_t input = 0;
  int64_t window = 0;
  int64_t stride = 1;
  int64_t dilation = 1;
  int64_t pad_before = 0;
  int64_t pad_after = 0;
  int64_t output = 0;
};

// Input row or column read by output position `out` and filter tap `tap` (may lie in the
// padding: < 0 or >= input).
inline int64_t input_coord(const WindowDim& d, int64_t out, int64_t tap) {
  return out * d.stride - d.pad_before + tap * d.dilation;
}

// TensorFlow's GetWindowedOutputSizeVerbose (framework/kernel_shape_util.cc):
//   effective = (window - 1) * dilation + 1
//   VALID:    output = (input - effective + stride) / stride, no padding
//   EXPLICIT: output = (input + before + after - effective + stride) / stride
//   SAME:     output = ceil(input / stride); needed = max(0, (output-1)*stride + effective -
//   input);
//             before = needed / 2, after = needed - before (the odd cell goes after).
// `dim.pad_before/after` are read for EXPLICIT and written otherwise.
Status resolve_window(const KernelContext& ctx, Padding padding, std::string_view dim_name,
                      WindowDim& dim);

// Reads the "padding" attribute (required) and, when it is EXPLICIT, "explicit_paddings"
// (default []) as 8 values in NHWC order; checks batch and depth are not padded.
struct PaddingSpec {
  Padding type = Padding::kValid;
  int64_t top = 0, bottom = 0, left = 0, right = 0;
};
Expected<PaddingSpec> read_padding(const KernelContext& ctx, bool allow_explicit);

// Reads "data_format" (default "NHWC") and fails unless it is NHWC; TensorFlow's CPU kernels
// for these ops do not run NCHW either.
Status require_nhwc(const KernelContext& ctx);

// Reads a 4-element per-dimension list attribute (strides, ksize, dilations) in NHWC order and
// checks the batch and depth entries are 1 and the spatial entries positive.
Expected<std::vector<int64_t>> read_nhwc_window_attr(const KernelContext& ctx,
                                                     std::string_view name,
                                                     std::optional<std::vector<int64_t>> fallback);

// The same list given as an input instead (MaxPoolV2, MaxPoolGradV2: ksize, strides): int32 [4].
Expected<std::vector<int64_t>> read_window_input(const KernelContext& ctx, size_t i,
                                                 std::string_view name);

// A tensor viewed as [outer, channels, inner]: the channel axis is last for NHWC / NDHWC
// (inner = 1) and axis 1 for NCHW / NCDHW. `x` has rank >= 2.
struct ChannelLayout {
  int64_t outer = 1;
  int64_t channels = 0;
  int64_t inner = 1;

  int64_t channel_of(int64_t flat_index) const { return (flat_index / inner) % channels; }
};
ChannelLayout channel_layout(const Tensor& x, bool channels_last);

// Checks input `i` has a numeric dtype equal to input 0's.
Status expect_same_dtype(const KernelContext& ctx, size_t i);

// Visits every index of `dims` in row-major order, calling visit(offset_a, offset_b) with the
// dot products of the index with strides_a and strides_b (a stride of 0 broadcasts).
template <typename Visit>
void walk_strided(const Dims& dims, const Dims& strides_a, const Dims& strides_b, Visit&& visit) {
  for (int64_t d : dims) {
    if (d == 0) return;
  }
  const int rank = static_cast<int>(dims.size());
  std::vector<int64_t> index(dims.size(), 0);
  int64_t offset_a = 0, offset_b = 0;
  while (true) {
    visit(offset_a, offset_b);
    int axis = rank - 1;
    for (; axis >= 0; --axis) {
      if (++index[axis] < dims[axis]) {
        offset_a += strides_a[axis];
        offset_b += strides_b[axis];
        break;
      }
      offset_a -= strides_a[axis] * (dims[axis] - 1);
      offset_b -= strides_b[axis] * (dims[axis] - 1);
      index[axis] = 0;
    }
    if (axis < 0) return;
  }
}

}  // namespace hubimg::ops::nn
