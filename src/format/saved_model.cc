#include "format/saved_model.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <unordered_map>

#include "checkpoint.pb.h"
#include "core/file_io.h"
#include "format/archive.h"
#include "format/model_files.h"
#include "format/tensor_bundle.h"
#include "graph.pb.h"
#include "saved_model.pb.h"

namespace hubimg::format {
namespace {

constexpr char kVariableValueAttribute[] = "VARIABLE_VALUE";
constexpr int64_t kMaxProtoBytes = int64_t{2} << 30;
// Binary protobuf parsing stops at 100 nested messages; the text parser gets the same limit.
constexpr int kMaxProtoNesting = 100;

Expected<std::string> read_whole_file(const std::filesystem::path& path) {
  // Refuses FIFOs and devices without blocking on them (core/file_io.h).
  auto bytes = read_regular_file(path, static_cast<uint64_t>(kMaxProtoBytes) - 1);
  if (!bytes.ok() && bytes.status().code() == StatusCode::kOutOfRange) {
    return out_of_range(path.string() + ": file is larger than the 2 GiB protobuf limit");
  }
  return bytes;
}

// TensorFlow refuses dimensions below -1 (-1 is "unknown"); shape_of would read them as -1.
Status check_dims(const tf::TensorShapeProto& p, const std::string& what) {
  for (const auto& dim : p.dim()) {
    if (dim.size() < -1) {
      return data_loss(what + ": shape has a dimension of " + std::to_string(dim.size()) +
                       " (below -1, where -1 means unknown)");
    }
  }
  return {};
}

PartialShape shape_of(const tf::TensorShapeProto& p) {
  if (p.unknown_rank()) return PartialShape::unknown();
  Dims d;
  for (const auto& dim : p.dim()) d.push_back(dim.size() < 0 ? -1 : dim.size());
  return PartialShape::known(std::move(d));
}

DType dtype_or_invalid(int v) {
  auto d = dtype_from_proto(v);
  return d.ok() ? *d : DType::kInvalid;
}

std::string python_repr_float(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Names of the elements of a FullArgSpec `args` list (e.g. self, inputs, training, mask).
std::vector<std::string> fullargspec_names(const tf::StructuredValue& spec, const char* field) {
  std::vector<std::string> names;
  if (spec.kind_case() != tf::StructuredValue::kNamedTupleValue) return names;
  for (const auto& pair : spec.named_tuple_value().values()) {
    if (pair.key() != field || !pair.value().has_list_value()) continue;
    for (const auto& v : pair.value().list_value().values()) {
      if (v.kind_case() == tf::StructuredValue::kStringValue) names.push_back(v.string_value());
    }
  }
  return names;
}

// Keeps the first error the text-format parser reports, with its position.
class FirstTextError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& text) override {
    if (message.empty()) {
      message = "line " + std::to_string(line + 1) + ", column " + std::to_string(column + 1) +
                ": " + text;
    }
  }
  std::string message;
};

}  // namespace

Expected<StructuredArg> StructuredArg::from_proto(const tf::StructuredValue& v, int depth) {
  if (depth >= kMaxNesting) {
    return out_of_range("structured value nests deeper than " + std::to_string(kMaxNesting) +
                        " levels");
  }
  StructuredArg a;
  using K = tf::StructuredValue;
  auto add_children = [&a, depth](const auto& values) -> Status {
    for (const auto& child : values) {
      HUBIMG_ASSIGN_OR_RETURN(StructuredArg c, from_proto(child, depth + 1));
      a.children.push_back({"", std::move(c)});
    }
    return {};
  };
  switch (v.kind_case()) {
    case K::kNoneValue:
    case K::KIND_NOT_SET: a.kind = Kind::kNone; break;
    case K::kBoolValue:
      a.kind = Kind::kBool;
      a.bool_value = v.bool_value();
      break;
    case K::kInt64Value:
      a.kind = Kind::kInt;
      a.int_value = v.int64_value();
      break;
    case K::kFloat64Value:
      a.kind = Kind::kFloat;
      a.float_value = v.float64_value();
      break;
    case K::kStringValue:
      a.kind = Kind::kString;
      a.string_value = v.string_value();
      break;
    case K::kTensorSpecValue:
      HUBIMG_RETURN_IF_ERROR(check_dims(v.tensor_spec_value().shape(),
                                        "TensorSpec '" + v.tensor_spec_value().name() + "'"));
      a.kind = Kind::kTensor;
      a.tensor = {v.tensor_spec_value().name(), dtype_or_invalid(v.tensor_spec_value().dtype()),
                  shape_of(v.tensor_spec_value().shape())};
      break;
    case K::kBoundedTensorSpecValue:
      HUBIMG_RETURN_IF_ERROR(
          check_dims(v.bounded_tensor_spec_value().shape(),
                     "BoundedTensorSpec '" + v.bounded_tensor_spec_value().name() + "'"));
      a.kind = Kind::kTensor;
      a.tensor = {v.bounded_tensor_spec_value().name(),
                  dtype_or_invalid(v.bounded_tensor_spec_value().dtype()),
                  shape_of(v.bounded_tensor_spec_value().shape())};
      break;
    case K::kListValue:
      a.kind = Kind::kList;
      HUBIMG_RETURN_IF_ERROR(add_children(v.list_value().values()));
      break;
    case K::kTupleValue:
      a.kind = Kind::kTuple;
      HUBIMG_RETURN_IF_ERROR(add_children(v.tuple_value().values()));
      break;
    case K::kNamedTupleValue:
      a.kind = Kind::kTuple;
      for (const auto& pair : v.named_tuple_value().values()) {
        HUBIMG_ASSIGN_OR_RETURN(StructuredArg c, from_proto(pair.value(), depth + 1));
        a.children.push_back({pair.key(), std::move(c)});
      }
      break;
    case K::kDictValue: {
      a.kind = Kind::kDict;
      std::vector<std::string> keys;
      for (const auto& [key, value] : v.dict_value().fields()) keys.push_back(key);
      std::sort(keys.begin(), keys.end());
      for (const auto& key : keys) {
        HUBIMG_ASSIGN_OR_RETURN(StructuredArg c,
                                from_proto(v.dict_value().fields().at(key), depth + 1));
        a.children.push_back({key, std::move(c)});
      }
      break;
    }
    default: a.kind = Kind::kOther; break;
  }
  return a;
}

void StructuredArg::flatten_tensors(std::vector<TensorSpec>& out) const {
  if (kind == Kind::kTensor) out.push_back(tensor);
  for (const auto& [key, child] : children) child.flatten_tensors(out);
}

int StructuredArg::count_tensors() const {
  std::vector<TensorSpec> flat;
  flatten_tensors(flat);
  return static_cast<int>(flat.size());
}

std::string StructuredArg::to_string() const {
  switch (kind) {
    case Kind::kNone: return "None";
    case Kind::kBool: return bool_value ? "True" : "False";
    case Kind::kInt: return std::to_string(int_value);
    case Kind::kFloat: return python_repr_float(float_value);
    case Kind::kString: return "'" + string_value + "'";
    case Kind::kTensor:
      return "TensorSpec(" + dtype_name(tensor.dtype) + ", " + tensor.shape.to_string() +
             (tensor.name.empty() ? "" : ", name='" + tensor.name + "'") + ")";
    case Kind::kOther: return "<other>";
    case Kind::kList:
    case Kind::kTuple:
    case Kind::kDict: {
      std::string s = kind == Kind::kList ? "[" : kind == Kind::kTuple ? "(" : "{";
      for (size_t i = 0; i < children.size(); ++i) {
        if (i) s += ", ";
        if (!children[i].first.empty()) s += children[i].first + ": ";
        s += children[i].second.to_string();
      }
      return s + (kind == Kind::kList ? "]" : kind == Kind::kTuple ? ")" : "}");
    }
  }
  return "?";
}

SavedModel::SavedModel() : proto_(std::make_unique<tf::SavedModel>()) {}
SavedModel::~SavedModel() = default;

const tf::MetaGraphDef& SavedModel::meta_graph() const {
  return proto_->meta_graphs(0);
}
const tf::GraphDef& SavedModel::graph() const {
  return meta_graph().graph_def();
}

std::shared_ptr<const SavedModel::GraphIndex> SavedModel::graph_index() const {
  if (auto index = std::atomic_load(&graph_index_)) return index;
  auto index = std::make_shared<GraphIndex>();
  const auto& nodes = graph().node();
  index->by_name.reserve(static_cast<size_t>(nodes.size()));
  for (int i = 0; i < nodes.size(); ++i) {
    if (!index->by_name.emplace(nodes[i].name(), i).second) index->duplicate_names = true;
  }
  std::shared_ptr<const GraphIndex> result = std::move(index);
  std::atomic_store(&graph_index_, result);
  return result;
}
std::string SavedModel::tensorflow_version() const {
  return meta_graph().meta_info_def().tensorflow_version();
}

const tf::FunctionDef* SavedModel::function(std::string_view name) const {
  auto it = functions_.find(name);
  return it == functions_.end() ? nullptr : it->second;
}

Expected<std::shared_ptr<SavedModel>> SavedModel::parse(std::string_view serialized,
                                                        const std::string& name_for_errors) {
  std::shared_ptr<SavedModel> model(new SavedModel());
  HUBIMG_RETURN_IF_ERROR(model->parse_proto(serialized, name_for_errors, false));
  HUBIMG_RETURN_IF_ERROR(model->index_functions().with_context(name_for_errors));
  HUBIMG_RETURN_IF_ERROR(model->read_object_graph().with_context(name_for_errors));
  HUBIMG_RETURN_IF_ERROR(model->read_signatures().with_context(name_for_errors));
  return model;
}

Expected<std::shared_ptr<SavedModel>> SavedModel::load(const std::filesystem::path& path,
                                                       const LoadOptions& options) {
  std::shared_ptr<SavedModel> model(new SavedModel());
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return not_found(path.string() + ": no such file or directory");
  }
  std::filesystem::path dir = path;
  if (std::filesystem::is_regular_file(path, ec)) {
    if (path.filename() == "saved_model.pb" || path.filename() == "saved_model.pbtxt") {
      dir = path.parent_path();
    } else {
      if (std::string what = describe_foreign_model_file(path); !what.empty()) {
        return invalid_argument(path.string() + ": " + what);
      }
      HUBIMG_ASSIGN_OR_RETURN(ExtractedArchive extracted, extract_saved_model_archive(path));
      dir = extracted.saved_model_dir;
      model->archive_root_ = extracted.root;
      model->temp_dir_owner_ = std::move(extracted.owner);
    }
  }
  model->directory_ = dir;
  model->source_path_ = path;
  auto pb = dir / "saved_model.pb";
  auto pbtxt = dir / "saved_model.pbtxt";
  bool text = false;
  std::filesystem::path proto_path = pb;
  if (!std::filesystem::exists(pb, ec)) {
    if (!std::filesystem::exists(pbtxt, ec)) {
      std::string message =
          dir.string() + ": not a SavedModel directory (no saved_model.pb or saved_model.pbtxt)";
      if (std::string what = describe_folder_without_saved_model(dir); !what.empty()) {
        message += "; " + what;
      }
      return not_found(std::move(message));
    }
    proto_path = pbtxt;
    text = true;
  }
  HUBIMG_ASSIGN_OR_RETURN(std::string bytes, read_whole_file(proto_path));
  HUBIMG_RETURN_IF_ERROR(model->parse_proto(bytes, proto_path.string(), text));
  const std::string where = proto_path.string();
  HUBIMG_RETURN_IF_ERROR(model->index_functions().with_context(where));
  HUBIMG_RETURN_IF_ERROR(model->read_object_graph().with_context(where));
  HUBIMG_RETURN_IF_ERROR(model->read_signatures().with_context(where));
  HUBIMG_RETURN_IF_ERROR(model->restore_variables(options));
  return model;
}

Status SavedModel::parse_proto(std::string_view serialized, const std::string& name,
                               bool text_format) {
  bool ok;
  FirstTextError text_error;
  if (text_format) {
    google::protobuf::TextFormat::Parser parser;
    parser.AllowUnknownField(true);
    parser.AllowUnknownExtension(true);
    parser.SetRecursionLimit(kMaxProtoNesting);
    parser.RecordErrorsTo(&text_error);
    ok = parser.ParseFromString(std::string(serialized), proto_.get());
  } else {
    ok = proto_->ParseFromArray(serialized.data(), static_cast<int>(serialized.size()));
  }
  if (!ok) {
    if (text_format && !text_error.message.empty()) {
      return data_loss(name + ": not a valid SavedModel text proto: " + text_error.message +
                       " (messages may nest at most " + std::to_string(kMaxProtoNesting) +
                       " levels)");
    }
    return data_loss(name + ": not a valid SavedModel " +
                     (text_format ? std::string("text proto") : std::string("protobuf")) +
                     " (truncated, corrupted or nested deeper than " +
                     std::to_string(kMaxProtoNesting) + " levels)");
  }
  if (proto_->meta_graphs_size() == 0) return data_loss(name + ": SavedModel has no MetaGraphDef");
  // TF2 writes exactly one MetaGraphDef; TF1 exports may carry several. The inference graph is
  // the "serve" one, else (TF1 Hub format, which hub.load reads the same way) the one with no
  // tags; the TF1 Hub "train" graph runs batch norm in training mode.
  auto first_with = [&](const std::function<bool(const tf::MetaGraphDef&)>& wanted) {
    for (int i = 0; i < proto_->meta_graphs_size(); ++i) {
      if (wanted(proto_->meta_graphs(i))) return i;
    }
    return -1;
  };
  int chosen = first_with([](const tf::MetaGraphDef& m) {
    const auto& tags = m.meta_info_def().tags();
    return std::find(tags.begin(), tags.end(), "serve") != tags.end();
  });
  if (chosen < 0) {
    chosen = first_with([](const tf::MetaGraphDef& m) { return m.meta_info_def().tags().empty(); });
  }
  if (chosen > 0) proto_->mutable_meta_graphs()->SwapElements(0, chosen);
  return {};
}

Status SavedModel::index_functions() {
  for (const auto& f : graph().library().function()) {
    const std::string& name = f.signature().name();
    if (name.empty()) return data_loss("function library has a function without a name");
    if (!functions_.emplace(name, &f).second) {
      return data_loss("function library defines '" + name + "' twice");
    }
  }
  return {};
}

std::vector<std::string> SavedModel::reachable_functions(
    const std::vector<std::string>& roots) const {
  std::vector<std::string> order;
  std::set<std::string, std::less<>> seen;
  std::vector<std::string> stack(roots.rbegin(), roots.rend());
  auto visit_attr = [&](const tf::AttrValue& a) {
    if (a.has_func() && function(a.func().name())) stack.push_back(a.func().name());
    if (a.has_list()) {
      for (const auto& f : a.list().func()) {
        if (function(f.name())) stack.push_back(f.name());
      }
    }
  };
  while (!stack.empty()) {
    std::string name = std::move(stack.back());
    stack.pop_back();
    const tf::FunctionDef* f = function(name);
    if (f == nullptr || !seen.insert(name).second) continue;
    order.push_back(name);
    for (const auto& node : f->node_def()) {
      if (function(node.op())) stack.push_back(node.op());
      for (const auto& [key, value] : node.attr()) visit_attr(value);
    }
  }
  return order;
}

std::map<std::string, int64_t> SavedModel::op_histogram(
    const std::vector<std::string>& functions) const {
  std::map<std::string, int64_t> histogram;
  for (const auto& name : functions) {
    if (const auto* f = function(name)) {
      for (const auto& node : f->node_def()) ++histogram[node.op()];
    }
  }
  return histogram;
}

namespace {

Status check_child_ids(const tf::SavedObjectGraph& g) {
  const int n = g.nodes_size();
  for (int i = 0; i < n; ++i) {
    for (const auto& c : g.nodes(i).children()) {
      if (c.node_id() < 0 || c.node_id() >= n) {
        return data_loss("object graph node " + std::to_string(i) + ": child '" + c.local_name() +
                         "' points to node " + std::to_string(c.node_id()) + ", outside 0.." +
                         std::to_string(n - 1));
      }
    }
  }
  return {};
}

// Children of object-graph nodes by local name. Nodes with many children (a signature map
// with thousands of entries, a root holding every layer) get a hash index built on first use;
// the first child of a name wins, as in a linear scan.
class ChildIndex {
 public:
  explicit ChildIndex(const tf::SavedObjectGraph& g) : graph_(g) {}

  int child_id(int node, std::string_view local_name) {
    const auto& children = graph_.nodes(node).children();
    if (children.size() <= kLinearScanMax) {
      for (const auto& c : children) {
        if (c.local_name() == local_name) return c.node_id();
      }
      return -1;
    }
    auto [it, inserted] = by_node_.try_emplace(node);
    if (inserted) {
      for (const auto& c : children) it->second.try_emplace(c.local_name(), c.node_id());
    }
    auto found = it->second.find(local_name);
    return found == it->second.end() ? -1 : found->second;
  }

 private:
  static constexpr int kLinearScanMax = 16;
  const tf::SavedObjectGraph& graph_;
  std::unordered_map<int, std::unordered_map<std::string_view, int>> by_node_;
};

int child_id(const tf::SavedObjectGraph& g, int node, std::string_view local_name) {
  return ChildIndex(g).child_id(node, local_name);
}

Expected<ConcreteFunction> read_concrete_function(const tf::SavedObjectGraph& g,
                                                  const std::string& name,
                                                  const std::vector<std::string>& parameter_names) {
  ConcreteFunction cf;
  cf.name = name;
  auto it = g.concrete_functions().find(name);
  if (it == g.concrete_functions().end()) {
    return data_loss("object graph lists concrete function '" + name +
                     "' but has no SavedConcreteFunction for it");
  }
  const tf::SavedConcreteFunction& saved = it->second;
  cf.bound_inputs.assign(saved.bound_inputs().begin(), saved.bound_inputs().end());
  for (int id : cf.bound_inputs) {
    if (id < 0 || id >= g.nodes_size()) {
      return data_loss("concrete function '" + name + "' captures node " + std::to_string(id) +
                       ", outside the object graph");
    }
  }
  auto sig = StructuredArg::from_proto(saved.canonicalized_input_signature());
  if (!sig.ok()) return sig.status().with_context("concrete function '" + name + "'");
  // canonicalized_input_signature is the tuple (positional args, keyword args).
  if (sig->kind == StructuredArg::Kind::kTuple && sig->children.size() == 2) {
    const StructuredArg& args = sig->children[0].second;
    for (size_t i = 0; i < args.children.size(); ++i) {
      std::string pname =
          i < parameter_names.size() ? parameter_names[i] : "arg_" + std::to_string(i);
      cf.args.emplace_back(pname, args.children[i].second);
    }
    for (const auto& kw : sig->children[1].second.children)
      cf.kwargs.emplace_back(kw.first, kw.second);
  }
  for (const auto& [pname, value] : cf.args) {
    if (pname == "training" && value.kind == StructuredArg::Kind::kBool)
      cf.training = value.bool_value;
    value.flatten_tensors(cf.flat_inputs);
  }
  for (const auto& [pname, value] : cf.kwargs) {
    if (pname == "training" && value.kind == StructuredArg::Kind::kBool)
      cf.training = value.bool_value;
    value.flatten_tensors(cf.flat_inputs);
  }
  auto out = StructuredArg::from_proto(saved.output_signature());
  if (!out.ok()) return out.status().with_context("concrete function '" + name + "' output");
  cf.output = std::move(out).value();
  if (cf.output.kind == StructuredArg::Kind::kDict) {
    for (const auto& [key, v] : cf.output.children) cf.output_keys.push_back(key);
  } else {
    int n = cf.output.count_tensors();
    for (int i = 0; i < n; ++i) cf.output_keys.push_back("output_" + std::to_string(i));
  }
  return cf;
}

Expected<FunctionObject> read_function_object(const tf::SavedObjectGraph& g, int node,
                                              std::string path) {
  FunctionObject fo;
  fo.node_id = node;
  fo.path = std::move(path);
  const tf::SavedObject& obj = g.nodes(node);
  if (obj.kind_case() == tf::SavedObject::kFunction) {
    const auto& fn = obj.function();
    auto names = fullargspec_names(fn.function_spec().fullargspec(), "args");
    if (fn.function_spec().is_method() && !names.empty()) names.erase(names.begin());
    fo.parameter_names = names;
    for (const auto& pair : fn.function_spec().fullargspec().named_tuple_value().values()) {
      if (pair.key() != "defaults") continue;
      auto defaults = StructuredArg::from_proto(pair.value());
      if (!defaults.ok() || defaults->children.size() > names.size()) continue;
      const size_t first = names.size() - defaults->children.size();
      for (size_t i = 0; i < defaults->children.size(); ++i)
        fo.parameter_defaults[names[first + i]] = defaults->children[i].second;
    }
    for (const auto& cname : fn.concrete_functions()) {
      HUBIMG_ASSIGN_OR_RETURN(ConcreteFunction cf, read_concrete_function(g, cname, names));
      fo.concrete_functions.push_back(std::move(cf));
    }
  } else if (obj.kind_case() == tf::SavedObject::kBareConcreteFunction) {
    const auto& bare = obj.bare_concrete_function();
    fo.parameter_names.assign(bare.argument_keywords().begin(), bare.argument_keywords().end());
    HUBIMG_ASSIGN_OR_RETURN(ConcreteFunction cf,
                            read_concrete_function(g, bare.concrete_function_name(), {}));
    fo.concrete_functions.push_back(std::move(cf));
  } else {
    return data_loss(fo.path + " (object graph node " + std::to_string(node) +
                     ") is not a function");
  }
  return fo;
}

}  // namespace

Status SavedModel::read_object_graph() {
  has_object_graph_ =
      meta_graph().has_object_graph_def() && meta_graph().object_graph_def().nodes_size() > 0;
  if (!has_object_graph_) return {};
  const auto& g = meta_graph().object_graph_def();
  HUBIMG_RETURN_IF_ERROR(check_child_ids(g));
  if (int call = child_id(g, 0, "__call__"); call >= 0) {
    HUBIMG_ASSIGN_OR_RETURN(FunctionObject fo, read_function_object(g, call, "root.__call__"));
    root_call_ = std::move(fo);
  }
  if (int losses = child_id(g, 0, "regularization_losses"); losses >= 0) {
    for (const auto& c : g.nodes(losses).children()) {
      HUBIMG_ASSIGN_OR_RETURN(
          FunctionObject fo,
          read_function_object(g, c.node_id(),
                               "root.regularization_losses[" + c.local_name() + "]"));
      regularization_losses_.push_back(std::move(fo));
    }
  }
  return {};
}

Status SavedModel::read_signatures() {
  const auto& mg = meta_graph();
  std::optional<ChildIndex> children;
  if (has_object_graph_) children.emplace(mg.object_graph_def());
  int signature_map = children ? children->child_id(0, "signatures") : -1;
  struct SignatureFunction {
    std::vector<std::string> argument_keywords;
    std::shared_ptr<const ConcreteFunction> function;
  };
  std::unordered_map<int, SignatureFunction> by_node;
  for (const auto& [key, def] : mg.signature_def()) {
    if (key == "__saved_model_init_op") continue;
    Signature sig;
    sig.key = key;
    sig.method_name = def.method_name();
    for (const auto& [name, info] : def.inputs()) {
      HUBIMG_RETURN_IF_ERROR(
          check_dims(info.tensor_shape(), "signature '" + key + "' input '" + name + "'"));
      sig.inputs[name] = {info.name(), dtype_or_invalid(info.dtype()),
                          shape_of(info.tensor_shape())};
    }
    for (const auto& [name, info] : def.outputs()) {
      HUBIMG_RETURN_IF_ERROR(
          check_dims(info.tensor_shape(), "signature '" + key + "' output '" + name + "'"));
      sig.outputs[name] = {info.name(), dtype_or_invalid(info.dtype()),
                           shape_of(info.tensor_shape())};
    }
    if (signature_map >= 0) {
      int fn_node = children->child_id(signature_map, key);
      if (fn_node >= 0) {
        // Read once per object-graph node: keys naming the same node share the result.
        auto [it, inserted] = by_node.try_emplace(fn_node);
        if (inserted) {
          auto fo = read_function_object(mg.object_graph_def(), fn_node,
                                         "root.signatures['" + key + "']");
          if (!fo.ok()) return fo.status();
          if (fo->concrete_functions.size() != 1) {
            return data_loss("signature '" + key + "' has " +
                             std::to_string(fo->concrete_functions.size()) + " concrete functions");
          }
          it->second.argument_keywords = std::move(fo->parameter_names);
          it->second.function =
              std::make_shared<const ConcreteFunction>(std::move(fo->concrete_functions[0]));
        }
        sig.argument_keywords = it->second.argument_keywords;
        sig.function = it->second.function;
      }
    }
    signatures_.emplace(key, std::move(sig));
  }
  return {};
}

int SavedModel::variable_index_for_node(int node_id) const {
  auto it = variable_by_node_.find(node_id);
  return it == variable_by_node_.end() ? -1 : it->second;
}

int SavedModel::variable_index_for_name(std::string_view name) const {
  auto it = variable_by_name_.find(name);
  return it == variable_by_name_.end() ? -1 : it->second;
}

std::string SavedModel::constant_op_for_node(int node_id) const {
  if (!has_object_graph_) return {};
  const auto& g = meta_graph().object_graph_def();
  if (node_id < 0 || node_id >= g.nodes_size()) return {};
  const auto& obj = g.nodes(node_id);
  if (obj.kind_case() == tf::SavedObject::kConstant) return obj.constant().operation();
  return {};
}

Status SavedModel::check_runnable() const {
  bool has_call = root_call_ && !root_call_->concrete_functions.empty();
  if (has_call || !signatures_.empty()) return {};
  std::string where = directory_.string();
  if (!variables_.empty()) {
    return failed_precondition(
        where + ": the SavedModel has " + std::to_string(variables_.size()) +
        " variables but no traced functions or signatures (its __call__ "
        "was plain Python, which SavedModels cannot store); nothing can be run");
  }
  return failed_precondition(where + ": the SavedModel has no signatures and no traced __call__");
}

Status SavedModel::restore_variables(const LoadOptions& options) {
  const auto prefix = directory_ / "variables" / "variables";
  const bool has_checkpoint = std::filesystem::exists(prefix.string() + ".index");
  if (has_checkpoint) {
    HUBIMG_ASSIGN_OR_RETURN(bundle_, TensorBundleReader::open(prefix));
  }
  if (!has_object_graph_) return restore_tf1_variables(bundle_.get());

  const auto& g = meta_graph().object_graph_def();
  // Every variable object somebody can use: listed by root.variables or captured by a function.
  std::set<int> needed;
  if (int list = child_id(g, 0, "variables"); list >= 0) {
    for (const auto& c : g.nodes(list).children()) {
      if (g.nodes(c.node_id()).kind_case() == tf::SavedObject::kVariable)
        needed.insert(c.node_id());
    }
  }
  for (const auto& [name, cf] : g.concrete_functions()) {
    for (int id : cf.bound_inputs()) {
      if (id >= 0 && id < g.nodes_size() && g.nodes(id).kind_case() == tf::SavedObject::kVariable) {
        needed.insert(id);
      }
    }
  }
  if (needed.empty()) {
    for (int i = 0; i < g.nodes_size(); ++i) {
      if (g.nodes(i).kind_case() == tf::SavedObject::kVariable) needed.insert(i);
    }
  }
  if (needed.empty()) return {};
  if (!bundle_) {
    return not_found(prefix.string() + ".index: missing, but the SavedModel has " +
                     std::to_string(needed.size()) + " variables");
  }

  // The checkpoint's own object graph, walked in parallel with the SavedObjectGraph from the
  // root, matching children by local_name (TensorFlow's bundle_v2.cc RecurseObjectsToRestore).
  HUBIMG_ASSIGN_OR_RETURN(Tensor graph_tensor, bundle_->read(kObjectGraphKey));
  if (graph_tensor.dtype() != DType::kString || graph_tensor.num_elements() != 1) {
    return data_loss(prefix.string() + ": " + kObjectGraphKey + " is not a scalar string");
  }
  tf::TrackableObjectGraph trackable;
  if (!trackable.ParseFromString(graph_tensor.strings()[0])) {
    return data_loss(prefix.string() + ": " + kObjectGraphKey +
                     " is not a valid TrackableObjectGraph");
  }
  const int num_trackable = trackable.nodes_size();
  if (num_trackable == 0) return data_loss(prefix.string() + ": checkpoint object graph is empty");

  std::map<int, std::string> key_for_saved_node;
  struct Frame {
    int saved_id;
    int trackable_id;
    int next_child;
  };
  std::set<int> seen_trackable;
  ChildIndex saved_children(g);
  std::vector<Frame> stack{{0, 0, 0}};
  while (!stack.empty()) {
    Frame& f = stack.back();
    const auto& tnode = trackable.nodes(f.trackable_id);
    if (f.next_child == 0 && f.saved_id != 0) {
      for (const auto& attr : tnode.attributes()) {
        if (attr.name() == kVariableValueAttribute)
          key_for_saved_node[f.saved_id] = attr.checkpoint_key();
      }
    }
    if (f.next_child >= tnode.children_size()) {
      stack.pop_back();
      continue;
    }
    const auto& ref = tnode.children(f.next_child++);
    const int tchild = ref.node_id();
    if (tchild < 0 || tchild >= num_trackable) {
      return data_loss(prefix.string() + ": checkpoint object graph node " +
                       std::to_string(f.trackable_id) + " has child '" + ref.local_name() +
                       "' pointing to node " + std::to_string(tchild) + ", outside 0.." +
                       std::to_string(num_trackable - 1));
    }
    if (!seen_trackable.insert(tchild).second) continue;  // shared objects and cycles
    int schild = saved_children.child_id(f.saved_id, ref.local_name());
    if (schild < 0) continue;
    stack.push_back({schild, tchild, 0});
  }

  std::vector<int> listed;
  if (int list = child_id(g, 0, "variables"); list >= 0) {
    for (const auto& c : g.nodes(list).children()) listed.push_back(c.node_id());
  }
  std::set<int> trainable_listed;
  bool has_trainable_list = false;
  if (int list = child_id(g, 0, "trainable_variables"); list >= 0) {
    has_trainable_list = true;
    for (const auto& c : g.nodes(list).children()) trainable_listed.insert(c.node_id());
  }
  // Order: root.variables first (as listed), then any other captured variables by node id.
  std::vector<int> order;
  std::set<int> placed;
  for (int id : listed) {
    if (needed.count(id) && placed.insert(id).second) order.push_back(id);
  }
  for (int id : needed) {
    if (placed.insert(id).second) order.push_back(id);
  }
  for (int id : order) {
    const auto& sv = g.nodes(id).variable();
    VariableInfo v;
    v.node_id = id;
    v.name = sv.name();
    v.dtype = dtype_or_invalid(sv.dtype());
    v.trainable = has_trainable_list ? trainable_listed.count(id) > 0 : sv.trainable();
    auto it = key_for_saved_node.find(id);
    if (it == key_for_saved_node.end()) {
      return not_found(prefix.string() + ": variable '" + v.name + "' (object graph node " +
                       std::to_string(id) + ") has no value in the checkpoint");
    }
    v.checkpoint_key = it->second;
    auto value = bundle_->read(v.checkpoint_key);
    if (!value.ok()) return value.status().with_context("variable '" + v.name + "'");
    HUBIMG_RETURN_IF_ERROR(check_dims(sv.shape(), prefix.string() + ": variable '" + v.name + "'"));
    PartialShape declared = shape_of(sv.shape());
    if (value->dtype() != v.dtype || !declared.is_compatible_with(value->shape())) {
      return data_loss(prefix.string() + ": variable '" + v.name + "' is declared " +
                       dtype_name(v.dtype) + declared.to_string() + " but the checkpoint holds " +
                       value->description());
    }
    v.shape = value->shape();
    v.value = std::move(value).value();
    variable_by_node_[id] = static_cast<int>(variables_.size());
    variables_.push_back(std::move(v));
  }
  (void)options;
  return {};
}

Status SavedModel::restore_tf1_variables(const TensorBundleReader* bundle) {
  std::set<std::string> trainable;
  auto it = meta_graph().collection_def().find("trainable_variables");
  if (it != meta_graph().collection_def().end() && it->second.has_bytes_list()) {
    for (const auto& bytes : it->second.bytes_list().value()) {
      tf::VariableDef def;
      if (!def.ParseFromString(bytes)) continue;
      std::string name = def.variable_name();
      if (auto colon = name.rfind(':'); colon != std::string::npos) name.resize(colon);
      trainable.insert(name);
    }
  }
  // Keras-in-TF1 exports keep object-based checkpoint keys; the checkpoint's object graph maps
  // each TF1 variable name (SerializedTensor.full_name) to its key.
  std::map<std::string, std::string, std::less<>> key_for_full_name;
  if (bundle != nullptr && bundle->find(kObjectGraphKey) != nullptr) {
    HUBIMG_ASSIGN_OR_RETURN(Tensor graph_tensor, bundle->read(kObjectGraphKey));
    tf::TrackableObjectGraph trackable;
    if (graph_tensor.dtype() != DType::kString || graph_tensor.num_elements() != 1 ||
        !trackable.ParseFromString(graph_tensor.strings()[0])) {
      return data_loss((directory_ / "variables" / "variables").string() + ": " + kObjectGraphKey +
                       " is not a valid TrackableObjectGraph");
    }
    for (const auto& node : trackable.nodes()) {
      for (const auto& attr : node.attributes()) {
        if (!attr.full_name().empty()) key_for_full_name[attr.full_name()] = attr.checkpoint_key();
      }
    }
  }
  for (const auto& node : graph().node()) {
    if (node.op() != "VarHandleOp" && node.op() != "VariableV2" && node.op() != "Variable")
      continue;
    VariableInfo v;
    v.name = node.name();
    auto shared = node.attr().find("shared_name");
    v.checkpoint_key = (shared != node.attr().end() && !shared->second.s().empty())
                           ? shared->second.s()
                           : node.name();
    auto dt = node.attr().find("dtype");
    v.dtype = dt != node.attr().end() ? dtype_or_invalid(dt->second.type()) : DType::kInvalid;
    v.trainable = trainable.count(v.name) > 0;
    if (bundle == nullptr) {
      return not_found((directory_ / "variables" / "variables.index").string() +
                       ": missing, but the graph has variable '" + v.name + "'");
    }
    if (bundle->find(v.checkpoint_key) == nullptr) {
      if (auto k = key_for_full_name.find(v.checkpoint_key); k != key_for_full_name.end()) {
        v.checkpoint_key = k->second;
      }
    }
    auto value = bundle->read(v.checkpoint_key);
    if (!value.ok()) return value.status().with_context("variable '" + v.name + "'");
    if (value->dtype() != v.dtype) {
      return data_loss("variable '" + v.name + "' is declared " + dtype_name(v.dtype) +
                       " but the checkpoint holds " + value->description());
    }
    v.shape = value->shape();
    v.value = std::move(value).value();
    variable_by_name_[v.name] = static_cast<int>(variables_.size());
    variables_.push_back(std::move(v));
  }
  return {};
}

}  // namespace hubimg::format
