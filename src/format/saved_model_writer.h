// Assembling and writing a TF2 SavedModel directory the way TensorFlow's tf.saved_model.save
// lays it out: the function library, the object graph (root `__call__`, `variables`,
// `trainable_variables`, `regularization_losses`, `signatures`), the top-level GraphDef with
// the serving signatures' placeholders and call nodes, and the variables checkpoint with its
// own object graph.
//
// Typical use (ops::find_op_def: the op table's OpDefs, src/ops/op_registry.h):
//   SavedModelWriter writer(ops::find_op_def);
//   auto kernel = writer.add_variable({"dense", "kernel"}, "dense/kernel", value, true);
//   FunctionBuilder f(writer.unique_function_name("dense_layer_call_fn"), writer.op_defs());
//   auto x = f.add_input("inputs", DType::kFloat32, PartialShape::known({-1, 4}));
//   auto k = f.read_variable(f.add_resource_input("matmul_readvariableop_resource", *kernel_info));
//   f.add_output(f.add("MatMul", {x, k}));
//   auto fn = writer.add_function(std::move(f));
//   writer.set_call({{.function = fn->name, .input = ..., .captures = {*kernel}, ...}});
//   writer.add_signature({...});
//   writer.write(dir);
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/attrs.h"
#include "format/saved_model.h"
#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::tf {
class FunctionDef;
class OpDef;
}  // namespace hubimg::tf

namespace hubimg::format {

// A node attribute; the helpers in `attr` say which AttrValue field it becomes.
using Attr = AttrValue;
using Attrs = std::vector<std::pair<std::string, Attr>>;

namespace attr {
inline Attr type(DType t) {
  return t;
}
inline Attr types(std::vector<DType> t) {
  return t;
}
inline Attr shape(PartialShape s) {
  return s;
}
inline Attr shape(Dims d) {
  return PartialShape::known(std::move(d));
}
inline Attr i(int64_t v) {
  return v;
}
inline Attr ints(std::vector<int64_t> v) {
  return v;
}
inline Attr str(std::string s) {
  return s;
}
inline Attr f(float v) {
  return v;
}
inline Attr b(bool v) {
  return v;
}
inline Attr tensor(Tensor t) {
  return t;
}
inline Attr func(std::string name) {
  return FunctionRef{std::move(name)};
}
}  // namespace attr

// TensorFlow's OpDef of `op` (input/output argument names and types, attributes and defaults),
// nullptr for an op it does not know. The writer names function outputs ("MatMul:product:0"),
// fills type attributes and writes meta_info_def.stripped_op_list with it. The OpDefs live in
// the op table (src/ops), above this layer: callers pass ops::find_op_def.
using OpDefLookup = std::function<const tf::OpDef*(std::string_view op)>;

// The calling convention of a function in the library.
struct FunctionSignature {
  std::string name;
  std::vector<DType> input_types;
  std::vector<DType> output_types;
  bool stateful = false;  // reads or writes variables, or calls something that does
};

// Builds one FunctionDef. Tensors are referred to by their function-style names ("inputs",
// "Conv2D:output:0"), as returned by the add_* calls. Errors (unknown op, unknown input, type
// mismatch) are sticky: later calls return placeholders and SavedModelWriter::add_function
// reports the first error.
class FunctionBuilder {
 public:
  // `op_defs` gives the OpDef of every op added (SavedModelWriter::op_defs()).
  FunctionBuilder(std::string name, OpDefLookup op_defs);
  ~FunctionBuilder();
  FunctionBuilder(FunctionBuilder&&) noexcept;
  FunctionBuilder& operator=(FunctionBuilder&&) noexcept;

  const std::string& name() const;
  const Status& status() const;

  // A tensor argument; `shape` goes into the function's `_input_shapes`.
  std::string add_input(const std::string& name, DType dtype, PartialShape shape);
  // A DT_RESOURCE argument carrying a variable of `dtype` and `shape` (a capture).
  std::string add_resource_input(const std::string& name, DType dtype, const Dims& shape);

  // Adds a node and returns the names of all its outputs. Type attributes that the inputs
  // determine ("T", "Tidx", "Tin", ...) are filled in when absent. `name_hint` defaults to the
  // op name; "_1", "_2", ... make it unique.
  std::vector<std::string> add_node(const std::string& op, const std::vector<std::string>& inputs,
                                    Attrs attrs = {}, const std::string& name_hint = "");
  // The same for ops with exactly one output; returns that output.
  std::string add(const std::string& op, const std::vector<std::string>& inputs, Attrs attrs = {},
                  const std::string& name_hint = "");
  // ReadVariableOp of a resource argument, named "<name_hint>/ReadVariableOp".
  std::string read_variable(const std::string& resource, const std::string& name_hint);
  std::string add_const(const Tensor& value, const std::string& name_hint = "Const");
  // StatefulPartitionedCall (PartitionedCall when `callee` is not stateful) of `callee`.
  std::vector<std::string> add_call(const FunctionSignature& callee,
                                    const std::vector<std::string>& inputs,
                                    const std::string& name_hint = "");
  // Returns an output; the function ends in Identity(tensor, ^NoOp) for each of them.
  void add_output(const std::string& tensor);

  // dtype of a tensor name this builder produced, kInvalid when unknown.
  DType dtype_of(const std::string& tensor) const;
  // Name of the node the last add_* call created (for control inputs "^name").
  const std::string& last_node_name() const;

  struct Impl;

 private:
  friend class SavedModelWriter;
  std::unique_ptr<Impl> impl_;
};

struct VariableHandle {
  int index = -1;
  bool operator==(const VariableHandle&) const = default;
};

// A Tensor-valued hyperparameter of `__call__` with a Python default (TF Hub's
// `batch_norm_momentum=0.99`): a parameter after `training`, traced as a TensorSpec.
struct CallArgument {
  TensorSpec spec;  // spec.name is the parameter name
  double default_value = 0;
};

// One traced concrete function of the root `__call__(inputs, training, *arguments)`.
struct CallTrace {
  // FunctionDef: arguments are the input, then the `arguments`, then one resource per capture.
  std::string function;
  TensorSpec input;              // its name becomes the TensorSpec name (Keras: "inputs")
  std::optional<bool> training;  // unset: the trace has no `training` argument
  std::vector<VariableHandle> captures;
  TensorSpec output;
  std::vector<CallArgument> arguments;  // the same names and defaults in every trace
};

// A zero-argument function of root.regularization_losses returning a float32 scalar.
struct RegularizationLoss {
  std::string function;  // FunctionDef: one resource argument per capture
  std::vector<VariableHandle> captures;
};

// A serving signature. The writer adds the signature wrapper function TensorFlow generates
// (inputs by sorted key, outputs by sorted key), which calls `function` with `inputs` in the
// given order followed by the captures.
struct SignatureDefinition {
  std::string key = "serving_default";
  std::string function;
  std::vector<std::pair<std::string, TensorSpec>> inputs;
  std::vector<std::pair<std::string, TensorSpec>> outputs;  // in `function`'s output order
  std::vector<VariableHandle> captures;
};

struct WriterOptions {
  std::string tensorflow_version = "2.15.0";
  std::string tensorflow_git_version = "v2.15.0-rc1-8-g6887368d6d4";
  int graph_producer = 1645;  // TF_GRAPH_DEF_VERSION of TensorFlow 2.15
  // The `_traced_save` / `_traced_restore` functions and saver_def that TensorFlow's C++
  // loader (TF Serving, the C API) runs to restore variables; Python's loader does not need them.
  bool write_saver = true;
  std::string root_identifier = "_generic_user_object";
};

struct WrittenVariable {
  std::string name;
  std::string checkpoint_key;
  int node_id = -1;
};

class SavedModelWriter {
 public:
  // `op_defs`: TensorFlow's OpDefs of the ops the model uses (ops::find_op_def).
  explicit SavedModelWriter(OpDefLookup op_defs, WriterOptions options = {});
  ~SavedModelWriter();
  SavedModelWriter(const SavedModelWriter&) = delete;
  SavedModelWriter& operator=(const SavedModelWriter&) = delete;

  // A variable reachable from the root by `path` (local names, e.g. {"layer_with_weights-0",
  // "kernel"}); objects on the way are created as `_generic_user_object`s. `name` is
  // TensorFlow's variable name ("conv2d/kernel"). Every variable is also listed in
  // root.variables (and root.trainable_variables when trainable), in the order added.
  Expected<VariableHandle> add_variable(std::vector<std::string> path, std::string name,
                                        Tensor value, bool trainable);
  DType variable_dtype(VariableHandle v) const;
  const Dims& variable_shape(VariableHandle v) const;
  const Tensor& variable_value(VariableHandle v) const;
  bool variable_trainable(VariableHandle v) const;
  // A resource argument for `v` in `builder`, with TensorFlow's handle data.
  std::string add_resource_input(FunctionBuilder& builder, const std::string& name,
                                 VariableHandle v) const;

  // The OpDef lookup given at construction, for this writer's FunctionBuilders.
  const OpDefLookup& op_defs() const;

  // "__inference_<base>_<n>", unique within this writer.
  std::string unique_function_name(std::string_view base);
  Expected<FunctionSignature> add_function(FunctionBuilder&& builder);
  // A FunctionDef taken as it is (copied from another SavedModel's library); its name must be
  // new to this writer. `def` is a tf::FunctionDef.
  Expected<FunctionSignature> add_function_def(const tf::FunctionDef& def);
  const FunctionSignature* function(std::string_view name) const;

  // The root `__call__`: its traces, one per (input signature, training) combination.
  Status set_call(std::vector<CallTrace> traces);
  Status add_signature(SignatureDefinition signature);
  // Appended to root.regularization_losses in order.
  Status add_regularization_loss(RegularizationLoss loss);
  // A file copied into assets/ and tracked as a root child `local_name` (a TrackableAsset,
  // listed in the MetaGraphDef's asset_file_def as TensorFlow writes assets).
  Status add_asset(const std::string& local_name, const std::string& filename,
                   std::string contents);

  // Writes saved_model.pb and variables/ into `dir` (created if missing).
  Status write(const std::filesystem::path& dir);
  // Valid after write(): where each variable went, by handle index.
  const std::vector<WrittenVariable>& written_variables() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// TensorFlow's checkpoint-key escaping of one object-graph local name: "." -> "..", "/" -> ".S".
std::string escape_checkpoint_local_name(std::string_view name);

}  // namespace hubimg::format
