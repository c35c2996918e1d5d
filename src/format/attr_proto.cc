#include "format/attr_proto.h"

#include <cstring>

#include "graph.pb.h"
#include "tensor.pb.h"

namespace hubimg::format {
namespace {

Expected<PartialShape> shape_from_proto(const tf::TensorShapeProto& p) {
  if (p.unknown_rank()) return PartialShape::unknown();
  Dims dims;
  for (const auto& d : p.dim()) {
    if (d.size() < -1) return invalid_argument("shape has dimension " + std::to_string(d.size()));
    dims.push_back(d.size());
  }
  return PartialShape::known(std::move(dims));
}

template <typename T, typename Repeated>
void fill_from_repeated(Tensor& t, const Repeated& values) {
  T* out = t.mutable_data<T>();
  const int64_t n = t.num_elements();
  if (values.empty()) return;
  for (int64_t i = 0; i < n; ++i) {
    // A short list repeats its last value to fill the shape (TensorProto convention).
    int64_t j = i < values.size() ? i : values.size() - 1;
    out[i] = static_cast<T>(values[static_cast<int>(j)]);
  }
}

}  // namespace

Expected<Tensor> tensor_from_proto(const tf::TensorProto& p) {
  HUBIMG_ASSIGN_OR_RETURN(DType dtype, dtype_from_proto(p.dtype()));
  HUBIMG_ASSIGN_OR_RETURN(PartialShape shape, shape_from_proto(p.tensor_shape()));
  if (!shape.is_fully_defined()) {
    return invalid_argument("tensor constant has shape " + shape.to_string());
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor t, Tensor::create(dtype, shape.dims));
  const int64_t n = t.num_elements();
  if (dtype == DType::kString) {
    auto& out = t.mutable_strings();
    const auto& vals = p.string_val();
    for (int64_t i = 0; i < n && !vals.empty(); ++i) {
      out[static_cast<size_t>(i)] = vals[static_cast<int>(std::min<int64_t>(i, vals.size() - 1))];
    }
    return t;
  }
  if (!p.tensor_content().empty()) {
    if (p.tensor_content().size() != t.byte_size()) {
      return invalid_argument("tensor constant " + t.description() + " has " +
                              std::to_string(p.tensor_content().size()) +
                              " bytes of content, expected " + std::to_string(t.byte_size()));
    }
    std::memcpy(t.raw_mutable_data(), p.tensor_content().data(), t.byte_size());
    return t;
  }
  switch (dtype) {
    case DType::kFloat32: fill_from_repeated<float>(t, p.float_val()); break;
    case DType::kFloat64: fill_from_repeated<double>(t, p.double_val()); break;
    case DType::kInt32: fill_from_repeated<int32_t>(t, p.int_val()); break;
    case DType::kInt16: fill_from_repeated<int16_t>(t, p.int_val()); break;
    case DType::kInt8: fill_from_repeated<int8_t>(t, p.int_val()); break;
    case DType::kUInt8: fill_from_repeated<uint8_t>(t, p.int_val()); break;
    case DType::kUInt16: fill_from_repeated<uint16_t>(t, p.int_val()); break;
    case DType::kInt64: fill_from_repeated<int64_t>(t, p.int64_val()); break;
    case DType::kBool: fill_from_repeated<bool>(t, p.bool_val()); break;
    case DType::kUInt32: fill_from_repeated<uint32_t>(t, p.uint32_val()); break;
    case DType::kUInt64: fill_from_repeated<uint64_t>(t, p.uint64_val()); break;
    case DType::kFloat16:
    case DType::kBFloat16: {
      auto* out = static_cast<uint16_t*>(t.raw_mutable_data());
      const auto& vals = p.half_val();
      for (int64_t i = 0; i < n && !vals.empty(); ++i) {
        out[i] =
            static_cast<uint16_t>(vals[static_cast<int>(std::min<int64_t>(i, vals.size() - 1))]);
      }
      break;
    }
    default: return unimplemented("tensor constants of dtype " + dtype_name(dtype));
  }
  return t;
}

Expected<AttrValue> attr_from_proto(const tf::AttrValue& a) {
  switch (a.value_case()) {
    case tf::AttrValue::kS: return AttrValue(a.s());
    case tf::AttrValue::kI: return AttrValue(int64_t{a.i()});
    case tf::AttrValue::kF: return AttrValue(a.f());
    case tf::AttrValue::kB: return AttrValue(a.b());
    case tf::AttrValue::kType: {
      HUBIMG_ASSIGN_OR_RETURN(DType d, dtype_from_proto(a.type()));
      return AttrValue(d);
    }
    case tf::AttrValue::kShape: {
      HUBIMG_ASSIGN_OR_RETURN(PartialShape s, shape_from_proto(a.shape()));
      return AttrValue(std::move(s));
    }
    case tf::AttrValue::kTensor: {
      HUBIMG_ASSIGN_OR_RETURN(Tensor t, tensor_from_proto(a.tensor()));
      return AttrValue(std::move(t));
    }
    case tf::AttrValue::kFunc: return AttrValue(FunctionRef{a.func().name()});
    case tf::AttrValue::kPlaceholder:
      return unimplemented("attribute placeholder '" + a.placeholder() + "'");
    case tf::AttrValue::kList: {
      const auto& l = a.list();
      // An empty list has no element type; ints is the most common reading (strides, perm).
      if (l.s_size()) return AttrValue(std::vector<std::string>(l.s().begin(), l.s().end()));
      if (l.f_size()) return AttrValue(std::vector<float>(l.f().begin(), l.f().end()));
      if (l.b_size()) return AttrValue(std::vector<bool>(l.b().begin(), l.b().end()));
      if (l.type_size()) {
        std::vector<DType> types;
        for (int t : l.type()) {
          HUBIMG_ASSIGN_OR_RETURN(DType d, dtype_from_proto(t));
          types.push_back(d);
        }
        return AttrValue(std::move(types));
      }
      if (l.shape_size()) {
        std::vector<PartialShape> shapes;
        for (const auto& s : l.shape()) {
          HUBIMG_ASSIGN_OR_RETURN(PartialShape ps, shape_from_proto(s));
          shapes.push_back(std::move(ps));
        }
        return AttrValue(std::move(shapes));
      }
      if (l.tensor_size()) {
        std::vector<Tensor> tensors;
        for (const auto& t : l.tensor()) {
          HUBIMG_ASSIGN_OR_RETURN(Tensor tt, tensor_from_proto(t));
          tensors.push_back(std::move(tt));
        }
        return AttrValue(std::move(tensors));
      }
      if (l.func_size()) {
        std::vector<FunctionRef> funcs;
        for (const auto& f : l.func()) funcs.push_back(FunctionRef{f.name()});
        return AttrValue(std::move(funcs));
      }
      return AttrValue(std::vector<int64_t>(l.i().begin(), l.i().end()));
    }
    case tf::AttrValue::VALUE_NOT_SET: return AttrValue(std::vector<int64_t>{});
  }
  return invalid_argument("unknown attribute kind");
}

Expected<AttrMap> attrs_from_node(const tf::NodeDef& node) {
  AttrMap attrs;
  for (const auto& [name, value] : node.attr()) {
    auto v = attr_from_proto(value);
    if (!v.ok()) return v.status().with_context("attribute '" + name + "'");
    attrs.set(name, std::move(v).value());
  }
  return attrs;
}

}  // namespace hubimg::format
