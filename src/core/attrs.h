// Node attributes as plain C++ values (src/format/attr_proto.h converts TensorFlow's AttrValue
// protos once, at load). Default-valued attributes are stripped from real SavedModels, so
// kernels pass TensorFlow's default explicitly where the attribute has one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg {

struct FunctionRef {
  std::string name;
  bool operator==(const FunctionRef&) const = default;
};

using AttrValue =
    std::variant<int64_t, float, bool, std::string, DType, PartialShape, Tensor, FunctionRef,
                 std::vector<int64_t>, std::vector<float>, std::vector<bool>,
                 std::vector<std::string>, std::vector<DType>, std::vector<PartialShape>,
                 std::vector<Tensor>, std::vector<FunctionRef>>;

class AttrMap {
 public:
  AttrMap() = default;
  AttrMap(std::initializer_list<std::pair<const std::string, AttrValue>> init) : values_(init) {}

  void set(std::string name, AttrValue value) { values_[std::move(name)] = std::move(value); }
  bool has(std::string_view name) const { return values_.find(name) != values_.end(); }
  const AttrValue* find(std::string_view name) const;
  const std::map<std::string, AttrValue, std::less<>>& all() const { return values_; }

  // Each getter returns the attribute, or `fallback` when it is absent (TensorFlow's default
  // for stripped attributes), or an error naming the attribute when it is absent without a
  // fallback or has another type.
  Expected<int64_t> get_int(std::string_view name, std::optional<int64_t> fallback = {}) const;
  Expected<float> get_float(std::string_view name, std::optional<float> fallback = {}) const;
  Expected<bool> get_bool(std::string_view name, std::optional<bool> fallback = {}) const;
  Expected<std::string> get_string(std::string_view name,
                                   std::optional<std::string> fallback = {}) const;
  Expected<DType> get_type(std::string_view name, std::optional<DType> fallback = {}) const;
  Expected<PartialShape> get_shape(std::string_view name) const;
  Expected<Tensor> get_tensor(std::string_view name) const;
  Expected<FunctionRef> get_func(std::string_view name) const;
  Expected<std::vector<int64_t>> get_ints(std::string_view name,
                                          std::optional<std::vector<int64_t>> fallback = {}) const;
  Expected<std::vector<float>> get_floats(std::string_view name,
                                          std::optional<std::vector<float>> fallback = {}) const;
  Expected<std::vector<DType>> get_types(std::string_view name,
                                         std::optional<std::vector<DType>> fallback = {}) const;
  Expected<std::vector<PartialShape>> get_shapes(std::string_view name) const;

 private:
  template <typename T>
  Expected<T> get(std::string_view name, std::optional<T> fallback, const char* type_name) const;

  std::map<std::string, AttrValue, std::less<>> values_;
};

}  // namespace hubimg
