// NumPy-style broadcasting as TensorFlow's BCast does it: shapes are aligned at their last
// axis; each pair of dims must be equal or one of them 1 (a 1 against 0 gives 0).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "hubimg/tensor.h"
#include "ops/array_util.h"

namespace hubimg::ops {

// The broadcast shape of all `shapes`, or nullopt when they are incompatible.
std::optional<Dims> broadcast_shape(std::span<const Dims> shapes);
std::optional<Dims> broadcast_shape(const Dims& a, const Dims& b);

// Axis maps (see remap) reading a tensor of shape `in` broadcast to `out`; `in` must be
// broadcast-compatible with `out` and of rank <= out's rank.
AxisMaps broadcast_maps(const Dims& in, const Dims& out);

// For each element of `out` (row-major), the flat index of the element of `in` it reads.
std::vector<int64_t> broadcast_offsets(const Dims& in, const Dims& out);

// "[2, 3] and [4]": operand shapes for an incompatible-broadcast error message.
std::string shapes_description(std::span<const Dims> shapes);

}  // namespace hubimg::ops
