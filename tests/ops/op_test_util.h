// Helpers shared by the op tests: tensors from literals, running one op, checking results.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ops/op_registry.h"

namespace hubimg::ops::testing {

inline constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
inline constexpr float kInf = std::numeric_limits<float>::infinity();

// Every op under test runs as this node; error messages must name it.
inline constexpr const char* kNode = "model/block/op_under_test";

template <typename T>
Tensor make(Dims shape, std::vector<T> values) {
  if (values.empty()) return Tensor(dtype_of<T>(), std::move(shape));  // no memcpy from null
  return Tensor::from_vector<T>(std::move(shape), values);
}
inline Tensor f32(Dims shape, std::vector<float> v) {
  return make<float>(std::move(shape), std::move(v));
}
inline Tensor f64(Dims shape, std::vector<double> v) {
  return make<double>(std::move(shape), std::move(v));
}
inline Tensor i32(Dims shape, std::vector<int32_t> v) {
  return make<int32_t>(std::move(shape), std::move(v));
}
inline Tensor i64(Dims shape, std::vector<int64_t> v) {
  return make<int64_t>(std::move(shape), std::move(v));
}
inline Tensor u8(Dims shape, std::vector<uint8_t> v) {
  return make<uint8_t>(std::move(shape), std::move(v));
}
inline Tensor u64(Dims shape, std::vector<uint64_t> v) {
  return make<uint64_t>(std::move(shape), std::move(v));
}

// Runs `op` and returns its outputs; a failed run fails the test and returns nothing.
inline std::vector<Tensor> run(std::string_view op, std::vector<Tensor> inputs,
                               const AttrMap& attrs = {}) {
  auto r = run_op(op, inputs, attrs, kNode);
  EXPECT_TRUE(r.ok()) << op << ": " << r.status().to_string();
  return r.ok() ? std::move(r).value() : std::vector<Tensor>{};
}
inline Tensor run1(std::string_view op, std::vector<Tensor> inputs, const AttrMap& attrs = {}) {
  auto out = run(op, std::move(inputs), attrs);
  return out.empty() ? Tensor() : out[0];
}

// Expects the run to fail with a message naming the node and containing `fragment`.
inline void expect_error(std::string_view op, std::vector<Tensor> inputs, const AttrMap& attrs,
                         const std::string& fragment) {
  auto r = run_op(op, inputs, attrs, kNode);
  ASSERT_FALSE(r.ok()) << op << " unexpectedly succeeded";
  EXPECT_NE(r.status().message().find(kNode), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
}

// Exact dtype, shape and values (a NaN expected matches a NaN).
template <typename T>
void expect_values(const Tensor& t, const Dims& shape, const std::vector<T>& expected) {
  ASSERT_EQ(t.dtype(), dtype_of<T>()) << t.description();
  ASSERT_EQ(t.shape(), shape) << t.description();
  ASSERT_EQ(static_cast<size_t>(t.num_elements()), expected.size());
  const T* got = t.data<T>();
  for (size_t i = 0; i < expected.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(expected[i])) {
        EXPECT_TRUE(std::isnan(got[i])) << "element " << i;
        continue;
      }
    }
    EXPECT_EQ(got[i], expected[i]) << "element " << i;
  }
}

}  // namespace hubimg::ops::testing
