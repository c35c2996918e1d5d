// A TF2 (or TF1-style) SavedModel read from disk: the protos, the restored variables and the
// callables the object graph exposes (root `__call__`, signatures, regularization losses).
// Nothing here executes; src/graph builds runnable graphs from these.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::tf {
class SavedModel;
class MetaGraphDef;
class FunctionDef;
class GraphDef;
class StructuredValue;
class SavedObjectGraph;
class TrackableObjectGraph;
}  // namespace hubimg::tf

namespace hubimg::format {

class TensorBundleReader;

struct TensorSpec {
  std::string name;
  DType dtype = DType::kInvalid;
  PartialShape shape;
};

struct StructuredChild;

// A Python value in a traced function's signature: a TensorSpec, a Python constant, or a nest.
struct StructuredArg {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTensor, kList, kTuple, kDict, kOther };
  Kind kind = Kind::kNone;
  bool bool_value = false;
  int64_t int_value = 0;
  double float_value = 0;
  std::string string_value;
  TensorSpec tensor;
  // list/tuple elements (empty keys) or dict entries sorted by key, TensorFlow's flattening order.
  std::vector<StructuredChild> children;

  // Nests deeper than kMaxNesting levels are an error (the walks over them recurse).
  static constexpr int kMaxNesting = 64;
  static Expected<StructuredArg> from_proto(const tf::StructuredValue& value, int depth = 0);
  void flatten_tensors(std::vector<TensorSpec>& out) const;
  int count_tensors() const;
  std::string to_string() const;  // Python-like: "TensorSpec(float32, [-1, 28])", "False"
};

// An element of a nest: `first` is the dict key or named-tuple field ("" in lists and tuples).
struct StructuredChild {
  std::string first;
  StructuredArg second;
};

// One traced concrete function of a tf.function, with its Python-level signature.
struct ConcreteFunction {
  std::string name;                                           // FunctionDef name in the library
  std::vector<std::pair<std::string, StructuredArg>> args;    // positional parameters (no self)
  std::vector<std::pair<std::string, StructuredArg>> kwargs;  // keyword arguments, sorted
  std::optional<bool> training;         // the `training` parameter's traced Python value, if any
  std::vector<TensorSpec> flat_inputs;  // user tensors in FunctionDef argument order
  std::vector<int> bound_inputs;        // object-graph node ids of captures, after user inputs
  StructuredArg output;
  std::vector<std::string> output_keys;  // "output_0", ... or a dict result's keys
};

// A tf.function object (e.g. root.__call__) with all its traces.
struct FunctionObject {
  int node_id = -1;
  std::string path;                          // "root.__call__"
  std::vector<std::string> parameter_names;  // from fullargspec, without self
  // Python defaults of trailing parameters (fullargspec `defaults`), e.g. training=False,
  // batch_norm_momentum=0.99.
  std::map<std::string, StructuredArg> parameter_defaults;
  std::vector<ConcreteFunction> concrete_functions;
};

struct TensorInfo {
  std::string tensor_name;  // graph tensor name ("serving_default_x:0", "input:0")
  DType dtype = DType::kInvalid;
  PartialShape shape;
};

struct Signature {
  std::string key;
  std::string method_name;
  std::map<std::string, TensorInfo> inputs;
  std::map<std::string, TensorInfo> outputs;
  // TF2: the signature wrapper function reached through root.signatures; empty for TF1 graphs,
  // which run the top-level GraphDef from the tensor names. Signatures naming the same object
  // graph node share one (a file may list thousands of keys for one function).
  std::shared_ptr<const ConcreteFunction> function;
  std::vector<std::string> argument_keywords;
};

struct VariableInfo {
  int node_id = -1;  // object-graph node; -1 for TF1 graph variables
  std::string name;  // TensorFlow's variable name ("conv2d/kernel")
  std::string checkpoint_key;
  DType dtype = DType::kInvalid;
  Dims shape;
  bool trainable = false;
  Tensor value;  // a view into the mapped checkpoint where possible
};

struct LoadOptions {
  bool verify_checksums = true;
};

class SavedModel {
 public:
  // `path`: a SavedModel directory (saved_model.pb or saved_model.pbtxt + variables/), or a
  // .tar.gz/.tgz/.tar/.zip archive of one, extracted to a temporary directory owned by the model.
  static Expected<std::shared_ptr<SavedModel>> load(const std::filesystem::path& path,
                                                    const LoadOptions& options = {});
  // Parses the serialized SavedModel proto only (fuzzing, tests).
  static Expected<std::shared_ptr<SavedModel>> parse(std::string_view serialized,
                                                     const std::string& name_for_errors);
  ~SavedModel();

  const std::filesystem::path& directory() const { return directory_; }
  // The path load() was given (an archive's own path, not where it was extracted), for messages
  // that name the model as its user knows it.
  const std::filesystem::path& source_path() const { return source_path_; }
  // Where an archive was extracted (directory() is this folder or one below it); empty for a
  // model read from a folder.
  const std::filesystem::path& archive_root() const { return archive_root_; }
  const tf::MetaGraphDef& meta_graph() const;
  const tf::GraphDef& graph() const;
  // The top-level GraphDef's nodes by name (the first of a name), built on first use and shared
  // by every TF1 signature's graph build; `duplicate_names` when a name repeats.
  struct GraphIndex {
    std::unordered_map<std::string_view, int> by_name;
    bool duplicate_names = false;
  };
  std::shared_ptr<const GraphIndex> graph_index() const;
  std::string tensorflow_version() const;
  bool has_object_graph() const { return has_object_graph_; }

  // nullptr when the library has no function of that name.
  const tf::FunctionDef* function(std::string_view name) const;
  std::vector<std::string> reachable_functions(const std::vector<std::string>& roots) const;
  // Op histogram over the given functions (each counted once) and, for TF1 signatures, the
  // top-level graph nodes they need.
  std::map<std::string, int64_t> op_histogram(const std::vector<std::string>& functions) const;

  const std::map<std::string, Signature>& signatures() const { return signatures_; }
  const std::optional<FunctionObject>& root_call() const { return root_call_; }
  const std::vector<FunctionObject>& regularization_losses() const {
    return regularization_losses_;
  }

  // The root's `variables` list where it has one, else every variable the object graph
  // reaches (or, for TF1, the graph's variables).
  const std::vector<VariableInfo>& variables() const { return variables_; }
  std::vector<VariableInfo>& mutable_variables() { return variables_; }
  // Index into variables() of the variable at object-graph node `node_id`, or -1.
  int variable_index_for_node(int node_id) const;
  // Index into variables() of the TF1 graph variable named `shared_name`, or -1.
  int variable_index_for_name(std::string_view name) const;
  // Node id of the constant or other captured non-variable object `node_id` (SavedConstant):
  // the name of the top-level graph node holding its value, or empty.
  std::string constant_op_for_node(int node_id) const;

  // Error for models with nothing to run (no signatures, no traced __call__).
  Status check_runnable() const;

 private:
  SavedModel();
  Status parse_proto(std::string_view serialized, const std::string& name_for_errors,
                     bool text_format);
  Status index_functions();
  Status read_object_graph();
  Status read_signatures();
  Status restore_variables(const LoadOptions& options);
  Status restore_tf1_variables(const TensorBundleReader* bundle);

  std::filesystem::path directory_;
  std::filesystem::path source_path_;
  std::filesystem::path archive_root_;
  std::shared_ptr<void> temp_dir_owner_;  // removes an extracted archive
  std::unique_ptr<tf::SavedModel> proto_;
  std::map<std::string, const tf::FunctionDef*, std::less<>> functions_;
  bool has_object_graph_ = false;
  std::map<std::string, Signature> signatures_;
  mutable std::shared_ptr<const GraphIndex> graph_index_;  // atomic_load / atomic_store
  std::optional<FunctionObject> root_call_;
  std::vector<FunctionObject> regularization_losses_;
  std::vector<VariableInfo> variables_;
  std::map<int, int> variable_by_node_;
  std::map<std::string, int, std::less<>> variable_by_name_;
  std::shared_ptr<TensorBundleReader> bundle_;
};

}  // namespace hubimg::format
