#include "core/attrs.h"

namespace hubimg {

const AttrValue* AttrMap::find(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

template <typename T>
Expected<T> AttrMap::get(std::string_view name, std::optional<T> fallback,
                         const char* type_name) const {
  const AttrValue* v = find(name);
  if (v == nullptr) {
    if (fallback) return *std::move(fallback);
    return invalid_argument("missing attribute '" + std::string(name) + "'");
  }
  if (const T* typed = std::get_if<T>(v)) return *typed;
  return invalid_argument("attribute '" + std::string(name) + "' is not of type " + type_name);
}

Expected<int64_t> AttrMap::get_int(std::string_view name, std::optional<int64_t> fallback) const {
  return get<int64_t>(name, fallback, "int");
}
Expected<float> AttrMap::get_float(std::string_view name, std::optional<float> fallback) const {
  return get<float>(name, fallback, "float");
}
Expected<bool> AttrMap::get_bool(std::string_view name, std::optional<bool> fallback) const {
  return get<bool>(name, fallback, "bool");
}
Expected<std::string> AttrMap::get_string(std::string_view name,
                                          std::optional<std::string> fallback) const {
  return get<std::string>(name, std::move(fallback), "string");
}
Expected<DType> AttrMap::get_type(std::string_view name, std::optional<DType> fallback) const {
  return get<DType>(name, fallback, "type");
}
Expected<PartialShape> AttrMap::get_shape(std::string_view name) const {
  return get<PartialShape>(name, std::nullopt, "shape");
}
Expected<Tensor> AttrMap::get_tensor(std::string_view name) const {
  return get<Tensor>(name, std::nullopt, "tensor");
}
Expected<FunctionRef> AttrMap::get_func(std::string_view name) const {
  return get<FunctionRef>(name, std::nullopt, "func");
}
Expected<std::vector<int64_t>> AttrMap::get_ints(
    std::string_view name, std::optional<std::vector<int64_t>> fallback) const {
  return get<std::vector<int64_t>>(name, std::move(fallback), "list(int)");
}
Expected<std::vector<float>> AttrMap::get_floats(std::string_view name,
                                                 std::optional<std::vector<float>> fallback) const {
  return get<std::vector<float>>(name, std::move(fallback), "list(float)");
}
Expected<std::vector<DType>> AttrMap::get_types(std::string_view name,
                                                std::optional<std::vector<DType>> fallback) const {
  return get<std::vector<DType>>(name, std::move(fallback), "list(type)");
}
Expected<std::vector<PartialShape>> AttrMap::get_shapes(std::string_view name) const {
  return get<std::vector<PartialShape>>(name, std::nullopt, "list(shape)");
}

}  // namespace hubimg
