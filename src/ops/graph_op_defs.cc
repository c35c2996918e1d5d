// TensorFlow's OpDefs of the ops that have no entry in the op table because no kernel runs
// them: the graph builder resolves them itself (NoOp, Placeholder, PlaceholderWithDefault,
// VarHandleOp, VarIsInitializedOp, DisableCopyOnRead, the call ops PartitionedCall and
// StatefulPartitionedCall, ResourceGather as ReadVariableOp + GatherV2), or hubimg never executes
// them (the saver functions' StringJoin, ShardedFilename, SaveV2, RestoreV2, MergeV2Checkpoints,
// StaticRegexFullMatch). Giving them entries would need kernels that never run, and the executor,
// optimizer and autodiff treat an entry as a runnable op. SavedModelWriter emits several of them,
// so their OpDefs live here, beside the table (OpRegistry::add_graph_op_defs,
// OpRegistry::find_op_def).
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

constexpr char kGraphOpDefs[] = R"pb(
  op {
    name: "DisableCopyOnRead"
    input_arg { name: "resource" type: DT_RESOURCE }
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
  op { name: "NoOp" }
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
    name: "PlaceholderWithDefault"
    input_arg { name: "input" type_attr: "dtype" }
    output_arg { name: "output" type_attr: "dtype" }
    attr { name: "dtype" type: "type" }
    attr { name: "shape" type: "shape" }
  }
  op {
    name: "ResourceGather"
    input_arg { name: "resource" type: DT_RESOURCE }
    input_arg { name: "indices" type_attr: "Tindices" }
    output_arg { name: "output" type_attr: "dtype" }
    attr {
      name: "batch_dims"
      type: "int"
      default_value { i: 0 }
    }
    attr {
      name: "validate_indices"
      type: "bool"
      default_value { b: true }
    }
    attr { name: "dtype" type: "type" }
    attr {
      name: "Tindices"
      type: "type"
      allowed_values { list { type: DT_INT32 type: DT_INT64 } }
    }
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
    name: "SaveV2"
    input_arg { name: "prefix" type: DT_STRING }
    input_arg { name: "tensor_names" type: DT_STRING }
    input_arg { name: "shape_and_slices" type: DT_STRING }
    input_arg { name: "tensors" type_list_attr: "dtypes" }
    attr { name: "dtypes" type: "list(type)" has_minimum: true minimum: 1 }
    is_stateful: true
  }
  op {
    name: "ShardedFilename"
    input_arg { name: "basename" type: DT_STRING }
    input_arg { name: "shard" type: DT_INT32 }
    input_arg { name: "num_shards" type: DT_INT32 }
    output_arg { name: "filename" type: DT_STRING }
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
    is_distributed_communication: true
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
    attr {
      name: "debug_name"
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
    name: "VarIsInitializedOp"
    input_arg { name: "resource" type: DT_RESOURCE }
    output_arg { name: "is_initialized" type: DT_BOOL }
    is_stateful: true
  }
)pb";

}  // namespace

void register_graph_op_defs(OpRegistry& r) {
  r.add_graph_op_defs(kGraphOpDefs);
}

}  // namespace hubimg::ops
