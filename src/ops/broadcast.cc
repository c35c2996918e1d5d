#include "ops/broadcast.h"

#include <algorithm>

namespace hubimg::ops {

std::optional<Dims> broadcast_shape(std::span<const Dims> shapes) {
  size_t rank = 0;
  for (const Dims& s : shapes) rank = std::max(rank, s.size());
  Dims out(rank, 1);
  std::vector<bool> seen(rank, false);
  for (const Dims& s : shapes) {
    const size_t offset = rank - s.size();
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t& o = out[offset + i];
      const int64_t d = s[i];
      if (!seen[offset + i]) {
        o = d;
        seen[offset + i] = true;
      } else if (o == 1) {
        o = d;
      } else if (d != 1 && d != o) {
        return std::nullopt;
      }
    }
  }
  return out;
}

std::optional<Dims> broadcast_shape(const Dims& a, const Dims& b) {
  const Dims both[] = {a, b};
  return broadcast_shape(both);
}

AxisMaps broadcast_maps(const Dims& in, const Dims& out) {
  const Dims strides = row_major_strides(in);
  const size_t offset = out.size() - in.size();
  AxisMaps maps(out.size());
  for (size_t k = 0; k < out.size(); ++k) {
    auto& map = maps[k];
    map.resize(static_cast<size_t>(out[k]), 0);
    if (k < offset || in[k - offset] == 1) continue;  // broadcast axis: always index 0
    for (int64_t j = 0; j < out[k]; ++j) map[static_cast<size_t>(j)] = j * strides[k - offset];
  }
  return maps;
}

std::vector<int64_t> broadcast_offsets(const Dims& in, const Dims& out) {
  return source_offsets(out, broadcast_maps(in, out));
}

std::string shapes_description(std::span<const Dims> shapes) {
  std::string s;
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (i) s += i + 1 == shapes.size() ? " and " : ", ";
    s += dims_to_string(shapes[i]);
  }
  return s;
}

}  // namespace hubimg::ops
