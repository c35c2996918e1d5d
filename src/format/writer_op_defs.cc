#include "format/writer_op_defs.h"

#include <google/protobuf/text_format.h>

#include <cstdlib>
#include <map>

#include "graph.pb.h"

namespace hubimg::format {
namespace {

// TensorFlow's OpDefs (tensorflow/core/ops/*.cc) for the ops the writer emits, as text protos.
constexpr char kOpDefs[] = R"pb(
  op {
    name: "Const"
    output_arg { name: "output" type_attr: "dtype" }
    attr { name: "value" type: "tensor" }
    attr { name: "dtype" type: "type" }
  }
  op {
    name: "Identity"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op { name: "NoOp" }
  op {
    name: "Placeholder"
    output_arg { name: "output" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    attr {
      name: "shape"
      type: "shape"
      default_value { shape { unknown_rank: true } }
    }
  }
  op {
    name: "ReadVariableOp"
    input_arg { name: "resource" type: DT_RESOURCE }
    output_arg { name: "value" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    is_stateful: true
  }
  op {
    name: "AssignVariableOp"
    input_arg { name: "resource" type: DT_RESOURCE }
    input_arg { name: "value" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    attr {
      name: "validate_shape"
      type: "bool"
      default_value { b: false }
    }
    is_stateful: true
  }
  op {
    name: "VarHandleOp"
    output_arg { name: "resource" type: DT_RESOURCE }
    attr {
      name: "container"
      type: "string"
      default_value { s: "" }
    }
    attr {
      name: "shared_name"
      type: "string"
      default_value { s: "" }
    }
    attr { name: "dtype" type: "type" }
    attr { name: "shape" type: "shape" }
    attr {
      name: "allowed_devices"
      type: "list(string)"
      default_value { list {} }
    }
    is_stateful: true
  }
  op {
    name: "StatefulPartitionedCall"
    input_arg { name: "args" type_list_attr: "Tin" }
    output_arg { name: "output" type_list_attr: "Tout" }
    attr { name: "Tin" type: "list(type)" has_minimum: true }
    attr { name: "Tout" type: "list(type)" has_minimum: true }
    attr { name: "f" type: "func" }
    attr {
      name: "config"
      type: "string"
      default_value { s: "" }
    }
    attr {
      name: "config_proto"
      type: "string"
      default_value { s: "" }
    }
    attr {
      name: "executor_type"
      type: "string"
      default_value { s: "" }
    }
    is_stateful: true
  }
  op {
    name: "PartitionedCall"
    input_arg { name: "args" type_list_attr: "Tin" }
    output_arg { name: "output" type_list_attr: "Tout" }
    attr { name: "Tin" type: "list(type)" has_minimum: true }
    attr { name: "Tout" type: "list(type)" has_minimum: true }
    attr { name: "f" type: "func" }
    attr {
      name: "config"
      type: "string"
      default_value { s: "" }
    }
    attr {
      name: "config_proto"
      type: "string"
      default_value { s: "" }
    }
    attr {
      name: "executor_type"
      type: "string"
      default_value { s: "" }
    }
  }
  op {
    name: "Conv2D"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "filter" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      allowed_values {
        list { type: DT_HALF type: DT_BFLOAT16 type: DT_FLOAT type: DT_DOUBLE type: DT_INT32 }
      }
    }
    attr { name: "strides" type: "list(int)" }
    attr {
      name: "use_cudnn_on_gpu"
      type: "bool"
      default_value { b: true }
    }
    attr {
      name: "padding"
      type: "string"
      allowed_values { list { s: "SAME" s: "VALID" s: "EXPLICIT" } }
    }
    attr {
      name: "explicit_paddings"
      type: "list(int)"
      default_value { list {} }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
      allowed_values { list { s: "NHWC" s: "NCHW" } }
    }
    attr {
      name: "dilations"
      type: "list(int)"
      default_value { list { i: 1 i: 1 i: 1 i: 1 } }
    }
  }
  op {
    name: "DepthwiseConv2dNative"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "filter" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      allowed_values { list { type: DT_HALF type: DT_BFLOAT16 type: DT_FLOAT type: DT_DOUBLE } }
    }
    attr { name: "strides" type: "list(int)" }
    attr {
      name: "padding"
      type: "string"
      allowed_values { list { s: "SAME" s: "VALID" s: "EXPLICIT" } }
    }
    attr {
      name: "explicit_paddings"
      type: "list(int)"
      default_value { list {} }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
      allowed_values { list { s: "NHWC" s: "NCHW" } }
    }
    attr {
      name: "dilations"
      type: "list(int)"
      default_value { list { i: 1 i: 1 i: 1 i: 1 } }
    }
  }
  op {
    name: "FusedBatchNormV3"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "scale" type_attr: "U" }
    input_arg { name: "offset" type_attr: "U" }
    input_arg { name: "mean" type_attr: "U" }
    input_arg { name: "variance" type_attr: "U" }
    output_arg { name: "y" type_attr: "T" }
    output_arg { name: "batch_mean" type_attr: "U" }
    output_arg { name: "batch_variance" type_attr: "U" }
    output_arg { name: "reserve_space_1" type_attr: "U" }
    output_arg { name: "reserve_space_2" type_attr: "U" }
    output_arg { name: "reserve_space_3" type_attr: "U" }
    attr {
      name: "T"
      type: "type"
      allowed_values { list { type: DT_HALF type: DT_BFLOAT16 type: DT_FLOAT } }
    }
    attr {
      name: "U"
      type: "type"
      allowed_values { list { type: DT_BFLOAT16 type: DT_FLOAT } }
    }
    attr {
      name: "epsilon"
      type: "float"
      default_value { f: 0.0001 }
    }
    attr {
      name: "exponential_avg_factor"
      type: "float"
      default_value { f: 1 }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
      allowed_values { list { s: "NHWC" s: "NCHW" s: "NDHWC" s: "NCDHW" } }
    }
    attr {
      name: "is_training"
      type: "bool"
      default_value { b: true }
    }
  }
  op {
    name: "BiasAdd"
    input_arg { name: "value" type_attr: "T" }
    input_arg { name: "bias" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
      allowed_values { list { s: "NHWC" s: "NCHW" } }
    }
  }
  op {
    name: "Relu"
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "activations" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Relu6"
    input_arg { name: "features" type_attr: "T" }
    output_arg { name: "activations" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Sigmoid"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Sqrt"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Softmax"
    input_arg { name: "logits" type_attr: "T" }
    output_arg { name: "softmax" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "AddV2"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
    is_commutative: true
    is_aggregate: true
  }
  op {
    name: "Mul"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
    is_commutative: true
  }
  op {
    name: "Sub"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "RealDiv"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Maximum"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type_attr: "T" }
    attr { name: "T" type: "type" }
    is_commutative: true
  }
  op {
    name: "AssignSubVariableOp"
    input_arg { name: "resource" type: DT_RESOURCE }
    input_arg { name: "value" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    is_stateful: true
  }
  op {
    name: "Square"
    input_arg { name: "x" type_attr: "T" }
    output_arg { name: "y" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Sum"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "reduction_indices" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "keep_dims"
      type: "bool"
      default_value { b: false }
    }
    attr { name: "T" type: "type" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "Shape"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "out_type" }
    attr { name: "T" type: "type" }
    attr {
      name: "out_type"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "RandomUniform"
    input_arg { name: "shape" type_attr: "T" }
    output_arg { name: "output" type_attr: "dtype" }
    attr {
      name: "seed"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "seed2"
      type: "int"
      default_value { i: 0 }
    }
    attr { name: "dtype" type: "type" }
    attr { name: "T" type: "type" }
    is_stateful: true
  }
  op {
    name: "GreaterEqual"
    input_arg { name: "x" type_attr: "T" }
    input_arg { name: "y" type_attr: "T" }
    output_arg { name: "z" type: DT_BOOL }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Cast"
    input_arg { name: "x" type_attr: "SrcT" }
    output_arg { name: "y" type_attr: "DstT" }
    attr { name: "SrcT" type: "type" }
    attr { name: "DstT" type: "type" }
    attr {
      name: "Truncate"
      type: "bool"
      default_value { b: false }
    }
  }
  op {
    name: "Mean"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "reduction_indices" type_attr: "Tidx" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "keep_dims"
      type: "bool"
      default_value { b: false }
    }
    attr { name: "T" type: "type" }
    attr {
      name: "Tidx"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "MatMul"
    input_arg { name: "a" type_attr: "T" }
    input_arg { name: "b" type_attr: "T" }
    output_arg { name: "product" type_attr: "T" }
    attr {
      name: "transpose_a"
      type: "bool"
      default_value { b: false }
    }
    attr {
      name: "transpose_b"
      type: "bool"
      default_value { b: false }
    }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Pad"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "paddings" type_attr: "Tpaddings" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tpaddings"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "MaxPool"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr {
      name: "T"
      type: "type"
      default_value { type: DT_FLOAT }
    }
    attr { name: "ksize" type: "list(int)" has_minimum: true minimum: 4 }
    attr { name: "strides" type: "list(int)" has_minimum: true minimum: 4 }
    attr {
      name: "padding"
      type: "string"
      allowed_values { list { s: "SAME" s: "VALID" s: "EXPLICIT" } }
    }
    attr {
      name: "explicit_paddings"
      type: "list(int)"
      default_value { list {} }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
      allowed_values { list { s: "NHWC" s: "NCHW" s: "NCHW_VECT_C" } }
    }
  }
  op {
    name: "AvgPool"
    input_arg { name: "value" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "ksize" type: "list(int)" has_minimum: true minimum: 4 }
    attr { name: "strides" type: "list(int)" has_minimum: true minimum: 4 }
    attr {
      name: "padding"
      type: "string"
      allowed_values { list { s: "SAME" s: "VALID" } }
    }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
      allowed_values { list { s: "NHWC" s: "NCHW" } }
    }
    attr { name: "T" type: "type" }
  }
  op {
    name: "Reshape"
    input_arg { name: "tensor" type_attr: "T" }
    input_arg { name: "shape" type_attr: "Tshape" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tshape"
      type: "type"
      default_value { type: DT_INT32 }
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
  }
  op {
    name: "Pack"
    input_arg { name: "values" type_attr: "T" number_attr: "N" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "N" type: "int" has_minimum: true minimum: 1 }
    attr { name: "T" type: "type" }
    attr {
      name: "axis"
      type: "int"
      default_value { i: 0 }
    }
  }
  op {
    name: "Select"
    input_arg { name: "condition" type: DT_BOOL }
    input_arg { name: "t" type_attr: "T" }
    input_arg { name: "e" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
  }
  op {
    name: "StaticRegexFullMatch"
    input_arg { name: "input" type: DT_STRING }
    output_arg { name: "output" type: DT_BOOL }
    attr { name: "pattern" type: "string" }
  }
  op {
    name: "StringJoin"
    input_arg { name: "inputs" type: DT_STRING number_attr: "N" }
    output_arg { name: "output" type: DT_STRING }
    attr { name: "N" type: "int" has_minimum: true }
    attr {
      name: "separator"
      type: "string"
      default_value { s: "" }
    }
  }
  op {
    name: "ShardedFilename"
    input_arg { name: "basename" type: DT_STRING }
    input_arg { name: "shard" type: DT_INT32 }
    input_arg { name: "num_shards" type: DT_INT32 }
    output_arg { name: "filename" type: DT_STRING }
  }
  op {
    name: "SaveV2"
    input_arg { name: "prefix" type: DT_STRING }
    input_arg { name: "tensor_names" type: DT_STRING }
    input_arg { name: "shape_and_slices" type: DT_STRING }
    input_arg { name: "tensors" type_list_attr: "dtypes" }
    attr { name: "dtypes" type: "list(type)" has_minimum: true minimum: 1 }
    is_stateful: true
  }
  op {
    name: "RestoreV2"
    input_arg { name: "prefix" type: DT_STRING }
    input_arg { name: "tensor_names" type: DT_STRING }
    input_arg { name: "shape_and_slices" type: DT_STRING }
    output_arg { name: "tensors" type_list_attr: "dtypes" }
    attr { name: "dtypes" type: "list(type)" has_minimum: true minimum: 1 }
    is_stateful: true
  }
  op {
    name: "MergeV2Checkpoints"
    input_arg { name: "checkpoint_prefixes" type: DT_STRING }
    input_arg { name: "destination_prefix" type: DT_STRING }
    attr {
      name: "delete_old_dirs"
      type: "bool"
      default_value { b: true }
    }
    attr {
      name: "allow_missing_files"
      type: "bool"
      default_value { b: false }
    }
    is_stateful: true
  }
)pb";

const std::map<std::string, tf::OpDef, std::less<>>& op_defs() {
  static const auto* defs = [] {
    tf::OpList list;
    if (!google::protobuf::TextFormat::ParseFromString(kOpDefs, &list)) std::abort();
    auto* m =
        new std::map<std::string, tf::OpDef, std::less<>>();  // immortal, like the op registry
    for (const auto& op : list.op()) m->emplace(op.name(), op);
    return m;
  }();
  return *defs;
}

}  // namespace

const tf::OpDef* find_writer_op_def(std::string_view op) {
  const auto& defs = op_defs();
  auto it = defs.find(op);
  return it == defs.end() ? nullptr : &it->second;
}

}  // namespace hubimg::format
