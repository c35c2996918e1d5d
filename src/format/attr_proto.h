// TensorFlow's AttrValue / TensorProto / NodeDef attributes into hubimg's plain values
// (src/core/attrs.h, Tensor).
#pragma once

#include "core/attrs.h"
#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::tf {
class AttrValue;
class NodeDef;
class TensorProto;
}  // namespace hubimg::tf

namespace hubimg::format {

// Converts a TensorFlow TensorProto (Const values, attr tensors) into a Tensor.
Expected<Tensor> tensor_from_proto(const tf::TensorProto& proto);
Expected<AttrValue> attr_from_proto(const tf::AttrValue& proto);
Expected<AttrMap> attrs_from_node(const tf::NodeDef& node);

}  // namespace hubimg::format
