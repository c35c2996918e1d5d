#include "format/saved_model_writer.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <map>
#include <set>

#include "checkpoint.pb.h"
#include "format/tensor_bundle.h"
#include "graph.pb.h"
#include "saved_model.pb.h"

namespace hubimg::format {
namespace {

// Protobuf writes map entries (attrs, the function library's maps) in hash-table order unless
// asked otherwise; serialized deterministically, the same model gives the same bytes on every
// run, as TensorFlow's own writer does. False when the message is over 2 GiB.
bool serialize_deterministically(const google::protobuf::MessageLite& message, std::string* out) {
  out->clear();
  google::protobuf::io::StringOutputStream stream(out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  return message.SerializeToCodedStream(&coded);
}

// ConfigProto{device_count {CPU: 1, GPU: 0}, ...}: what tf.function puts on every call node.
constexpr char kCallConfigProto[] =
    "\n\007\n\003CPU\020\001\n\007\n\003GPU\020\0002\002J\0008\001\202\001\000";
constexpr int kConfigProtoSize = sizeof(kCallConfigProto) - 1;

tf::DataType to_proto(DType d) {
  return static_cast<tf::DataType>(static_cast<int>(d));
}

void shape_to_proto(const PartialShape& shape, tf::TensorShapeProto* out) {
  out->Clear();
  if (shape.unknown_rank) {
    out->set_unknown_rank(true);
    return;
  }
  for (int64_t d : shape.dims) out->add_dim()->set_size(d);
}

void dims_to_proto(const Dims& dims, tf::TensorShapeProto* out) {
  shape_to_proto(PartialShape::known(dims), out);
}

Status tensor_to_proto(const Tensor& t, tf::TensorProto* out) {
  out->set_dtype(to_proto(t.dtype()));
  dims_to_proto(t.shape(), out->mutable_tensor_shape());
  if (t.dtype() == DType::kString) {
    for (const auto& s : t.strings()) out->add_string_val(s);
    return {};
  }
  if (!dtype_is_numeric(t.dtype())) {
    return unimplemented("cannot store a " + t.description() + " tensor in a graph constant");
  }
  if (t.num_elements() == 1) {
    // TensorFlow stores single values in the typed repeated fields.
    switch (t.dtype()) {
      case DType::kFloat32: out->add_float_val(t.data<float>()[0]); return {};
      case DType::kFloat64: out->add_double_val(t.data<double>()[0]); return {};
      case DType::kInt32: out->add_int_val(t.data<int32_t>()[0]); return {};
      case DType::kInt64: out->add_int64_val(t.data<int64_t>()[0]); return {};
      case DType::kBool: out->add_bool_val(t.data<bool>()[0]); return {};
      default: break;
    }
  }
  out->set_tensor_content(static_cast<const char*>(t.raw_data()), t.byte_size());
  return {};
}

Status attr_to_proto(const Attr& value, tf::AttrValue* out) {
  Status status;
  std::visit(
      [&](const auto& v) {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, int64_t>) {
          out->set_i(v);
        } else if constexpr (std::is_same_v<V, float>) {
          out->set_f(v);
        } else if constexpr (std::is_same_v<V, bool>) {
          out->set_b(v);
        } else if constexpr (std::is_same_v<V, std::string>) {
          out->set_s(v);
        } else if constexpr (std::is_same_v<V, DType>) {
          out->set_type(to_proto(v));
        } else if constexpr (std::is_same_v<V, PartialShape>) {
          shape_to_proto(v, out->mutable_shape());
        } else if constexpr (std::is_same_v<V, Tensor>) {
          status = tensor_to_proto(v, out->mutable_tensor());
        } else if constexpr (std::is_same_v<V, FunctionRef>) {
          out->mutable_func()->set_name(v.name);
        } else if constexpr (std::is_same_v<V, std::vector<int64_t>>) {
          auto* list = out->mutable_list();
          for (int64_t x : v) list->add_i(x);
        } else if constexpr (std::is_same_v<V, std::vector<float>>) {
          auto* list = out->mutable_list();
          for (float x : v) list->add_f(x);
        } else if constexpr (std::is_same_v<V, std::vector<bool>>) {
          auto* list = out->mutable_list();
          for (bool x : v) list->add_b(x);
        } else if constexpr (std::is_same_v<V, std::vector<std::string>>) {
          auto* list = out->mutable_list();
          for (const auto& x : v) list->add_s(x);
        } else if constexpr (std::is_same_v<V, std::vector<DType>>) {
          auto* list = out->mutable_list();
          for (DType x : v) list->add_type(to_proto(x));
        } else if constexpr (std::is_same_v<V, std::vector<PartialShape>>) {
          auto* list = out->mutable_list();
          for (const auto& x : v) shape_to_proto(x, list->add_shape());
        } else if constexpr (std::is_same_v<V, std::vector<Tensor>>) {
          auto* list = out->mutable_list();
          for (const auto& x : v) {
            if (status.ok()) status = tensor_to_proto(x, list->add_tensor());
          }
        } else if constexpr (std::is_same_v<V, std::vector<FunctionRef>>) {
          auto* list = out->mutable_list();
          for (const auto& x : v) list->add_func()->set_name(x.name);
        }
      },
      value);
  return status;
}

// "MatMul_1" style unique names, shared by a function body or the top-level graph.
class NameScope {
 public:
  std::string unique(const std::string& base) {
    if (used_.insert(base).second) return base;
    for (int i = 1;; ++i) {
      std::string candidate = base + "_" + std::to_string(i);
      if (used_.insert(candidate).second) return candidate;
    }
  }

 private:
  std::set<std::string> used_;
};

// Lower-case argument names as tf.function derives them from node names ("matmul_readvariableop").
std::string sanitized_arg_name(std::string_view name) {
  std::string s;
  for (char c : name) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') {
      s += c;
    } else if (c >= 'A' && c <= 'Z') {
      s += static_cast<char>(c - 'A' + 'a');
    } else {
      s += '_';
    }
  }
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) s = "arg_" + s;
  return s;
}

tf::StructuredValue none_value() {
  tf::StructuredValue v;
  v.mutable_none_value();
  return v;
}

tf::StructuredValue tensor_spec_value(const TensorSpec& spec) {
  tf::StructuredValue v;
  auto* s = v.mutable_tensor_spec_value();
  s->set_name(spec.name);
  shape_to_proto(spec.shape, s->mutable_shape());
  s->set_dtype(to_proto(spec.dtype));
  return v;
}

tf::StructuredValue string_list(const std::vector<std::string>& items) {
  tf::StructuredValue v;
  auto* list = v.mutable_list_value();
  for (const auto& s : items) list->add_values()->set_string_value(s);
  return v;
}

// inspect.FullArgSpec as tf.function records it.
tf::StructuredValue full_arg_spec(const std::vector<std::string>& args,
                                  const tf::StructuredValue& defaults, bool has_kwargs) {
  tf::StructuredValue v;
  auto* t = v.mutable_named_tuple_value();
  t->set_name("FullArgSpec");
  auto add = [t](const char* key, tf::StructuredValue value) {
    auto* pair = t->add_values();
    pair->set_key(key);
    *pair->mutable_value() = std::move(value);
  };
  add("args", string_list(args));
  add("varargs", none_value());
  tf::StructuredValue kwargs;
  if (has_kwargs) {
    kwargs.set_string_value("kwargs");
  } else {
    kwargs = none_value();
  }
  add("varkw", kwargs);
  add("defaults", defaults);
  add("kwonlyargs", string_list({}));
  add("kwonlydefaults", none_value());
  tf::StructuredValue annotations;
  annotations.mutable_dict_value();
  add("annotations", annotations);
  return v;
}

}  // namespace

std::string escape_checkpoint_local_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '.') {
      out += "..";
    } else if (c == '/') {
      out += ".S";
    } else {
      out += c;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// FunctionBuilder

struct FunctionBuilder::Impl {
  OpDefLookup op_defs;
  tf::FunctionDef def;
  Status status;
  NameScope names;
  std::map<std::string, DType> tensor_types;  // function-style tensor name -> dtype
  std::vector<PartialShape> input_shapes;
  std::vector<std::string> stateful_nodes;
  std::vector<std::string> outputs;
  std::string last_node;
  bool stateful = false;

  void fail(Status s) {
    if (status.ok()) status = std::move(s);
  }
  std::string where() const { return "function '" + def.signature().name() + "'"; }

  DType type_of_input(const std::string& input) {
    auto it = tensor_types.find(input);
    if (it != tensor_types.end()) return it->second;
    // "node:arg" names the first element of that output.
    it = tensor_types.find(input + ":0");
    if (it != tensor_types.end()) return it->second;
    return DType::kInvalid;
  }
};

FunctionBuilder::FunctionBuilder(std::string name, OpDefLookup op_defs)
    : impl_(std::make_unique<Impl>()) {
  impl_->op_defs = std::move(op_defs);
  impl_->def.mutable_signature()->set_name(std::move(name));
}
FunctionBuilder::~FunctionBuilder() = default;
FunctionBuilder::FunctionBuilder(FunctionBuilder&&) noexcept = default;
FunctionBuilder& FunctionBuilder::operator=(FunctionBuilder&&) noexcept = default;

const std::string& FunctionBuilder::name() const {
  return impl_->def.signature().name();
}
const Status& FunctionBuilder::status() const {
  return impl_->status;
}

DType FunctionBuilder::dtype_of(const std::string& tensor) const {
  auto it = impl_->tensor_types.find(tensor);
  return it == impl_->tensor_types.end() ? DType::kInvalid : it->second;
}

const std::string& FunctionBuilder::last_node_name() const {
  return impl_->last_node;
}

std::string FunctionBuilder::add_input(const std::string& name, DType dtype, PartialShape shape) {
  std::string arg = impl_->names.unique(name);
  auto* a = impl_->def.mutable_signature()->add_input_arg();
  a->set_name(arg);
  a->set_type(to_proto(dtype));
  const uint32_t index = static_cast<uint32_t>(impl_->def.signature().input_arg_size() - 1);
  auto& arg_attrs = *(*impl_->def.mutable_arg_attr())[index].mutable_attr();
  arg_attrs["_user_specified_name"].set_s(name);
  impl_->input_shapes.push_back(std::move(shape));
  impl_->tensor_types[arg] = dtype;
  return arg;
}

std::string FunctionBuilder::add_resource_input(const std::string& name, DType dtype,
                                                const Dims& shape) {
  std::string arg = impl_->names.unique(sanitized_arg_name(name));
  auto* a = impl_->def.mutable_signature()->add_input_arg();
  a->set_name(arg);
  a->set_type(tf::DT_RESOURCE);
  auto* handle = a->add_handle_data();
  handle->set_dtype(to_proto(dtype));
  dims_to_proto(shape, handle->mutable_shape());
  impl_->input_shapes.push_back(PartialShape::known({}));
  impl_->tensor_types[arg] = DType::kResource;
  return arg;
}

std::vector<std::string> FunctionBuilder::add_node(
    const std::string& op, const std::vector<std::string>& inputs,
    Attrs attrs,  // NOLINT(performance-unnecessary-value-param): moved from
    const std::string& name_hint) {
  Impl& m = *impl_;
  const std::string node_name = m.names.unique(name_hint.empty() ? op : name_hint);
  m.last_node = node_name;
  if (!m.status.ok()) return {node_name + ":output:0"};
  const tf::OpDef* def = m.op_defs ? m.op_defs(op) : nullptr;
  if (def == nullptr) {
    m.fail(unimplemented(m.where() + ": node '" + node_name +
                         "': the writer has no OpDef for op '" + op + "'"));
    return {node_name + ":output:0"};
  }
  std::map<std::string, Attr> attr_map;
  for (auto& [k, v] : attrs) attr_map[k] = std::move(v);

  std::vector<std::string> data_inputs;
  std::vector<std::string> controls;
  for (const auto& in : inputs) {
    if (!in.empty() && in[0] == '^') {
      controls.push_back(in);
    } else {
      data_inputs.push_back(in);
    }
  }
  std::vector<DType> input_types;
  for (const auto& in : data_inputs) {
    DType t = m.type_of_input(in);
    if (t == DType::kInvalid) {
      m.fail(invalid_argument(m.where() + ": node '" + node_name + "' (" + op + "): input '" + in +
                              "' is no argument or output of an earlier node"));
      return {node_name + ":output:0"};
    }
    input_types.push_back(t);
  }

  // Match the inputs to the OpDef's input args; at most one arg has a variable length.
  int fixed = 0;
  for (const auto& arg : def->input_arg()) {
    if (arg.number_attr().empty() && arg.type_list_attr().empty()) ++fixed;
  }
  const int variable = static_cast<int>(data_inputs.size()) - fixed;
  if (variable < 0 || (variable > 0 && fixed == def->input_arg_size())) {
    m.fail(invalid_argument(m.where() + ": node '" + node_name + "' (" + op + ") takes " +
                            std::to_string(def->input_arg_size()) + " inputs, got " +
                            std::to_string(data_inputs.size())));
    return {node_name + ":output:0"};
  }
  size_t next = 0;
  for (const auto& arg : def->input_arg()) {
    int count = 1;
    if (!arg.number_attr().empty() || !arg.type_list_attr().empty()) count = variable;
    if (!arg.number_attr().empty() && !attr_map.count(arg.number_attr())) {
      attr_map[arg.number_attr()] = int64_t{count};
    }
    if (!arg.type_list_attr().empty() && !attr_map.count(arg.type_list_attr())) {
      attr_map[arg.type_list_attr()] =
          std::vector<DType>(input_types.begin() + static_cast<long>(next),
                             input_types.begin() + static_cast<long>(next) + count);
    }
    for (int k = 0; k < count; ++k, ++next) {
      DType t = input_types[next];
      if (!arg.type_attr().empty()) {
        auto it = attr_map.find(arg.type_attr());
        if (it == attr_map.end()) {
          attr_map[arg.type_attr()] = t;
        } else if (const DType* given = std::get_if<DType>(&it->second); given && *given != t) {
          m.fail(invalid_argument(m.where() + ": node '" + node_name + "' (" + op + "): input '" +
                                  data_inputs[next] + "' is " + dtype_name(t) + " but " +
                                  arg.type_attr() + " is " + dtype_name(*given)));
          return {node_name + ":output:0"};
        }
      } else if (arg.type() != tf::DT_INVALID &&
                 static_cast<int>(arg.type()) != static_cast<int>(t)) {
        m.fail(invalid_argument(m.where() + ": node '" + node_name + "' (" + op + "): input '" +
                                data_inputs[next] + "' is " + dtype_name(t) + ", the op wants " +
                                dtype_name(static_cast<DType>(arg.type()))));
        return {node_name + ":output:0"};
      }
    }
  }

  tf::NodeDef* node = m.def.add_node_def();
  node->set_name(node_name);
  node->set_op(op);
  for (const auto& in : data_inputs) node->add_input(in);
  for (const auto& c : controls) node->add_input(c);
  for (const auto& [k, v] : attr_map) {
    Status s = attr_to_proto(v, &(*node->mutable_attr())[k]);
    if (!s.ok()) {
      m.fail(s.with_context(m.where() + ": node '" + node_name + "' attribute '" + k + "'"));
      return {node_name + ":output:0"};
    }
  }

  std::vector<std::string> outputs;
  for (const auto& arg : def->output_arg()) {
    std::vector<DType> types;
    if (!arg.type_list_attr().empty()) {
      auto it = attr_map.find(arg.type_list_attr());
      if (it != attr_map.end()) {
        if (const auto* list = std::get_if<std::vector<DType>>(&it->second)) types = *list;
      }
    } else {
      DType t = static_cast<DType>(arg.type());
      if (!arg.type_attr().empty()) {
        auto it = attr_map.find(arg.type_attr());
        const DType* given = it == attr_map.end() ? nullptr : std::get_if<DType>(&it->second);
        if (given == nullptr) {
          m.fail(invalid_argument(m.where() + ": node '" + node_name + "' (" + op +
                                  "): attribute '" + arg.type_attr() + "' is not set"));
          return {node_name + ":output:0"};
        }
        t = *given;
      }
      int64_t count = 1;
      if (!arg.number_attr().empty()) {
        auto it = attr_map.find(arg.number_attr());
        if (it != attr_map.end()) {
          if (const auto* n = std::get_if<int64_t>(&it->second)) count = *n;
        }
      }
      types.assign(static_cast<size_t>(count), t);
    }
    for (size_t k = 0; k < types.size(); ++k) {
      std::string out = node_name + ":" + arg.name() + ":" + std::to_string(k);
      m.tensor_types[out] = types[k];
      outputs.push_back(std::move(out));
    }
  }
  if (def->is_stateful() || op == "StatefulPartitionedCall") {
    m.stateful = true;
    m.stateful_nodes.push_back(node_name);
  }
  return outputs;
}

std::string FunctionBuilder::add(const std::string& op, const std::vector<std::string>& inputs,
                                 Attrs attrs, const std::string& name_hint) {
  auto outs = add_node(op, inputs, std::move(attrs), name_hint);
  if (impl_->status.ok() && outs.size() != 1) {
    impl_->fail(invalid_argument(impl_->where() + ": op " + op + " has " +
                                 std::to_string(outs.size()) + " outputs; use add_node"));
  }
  return outs.empty() ? std::string("invalid") : outs[0];
}

std::string FunctionBuilder::read_variable(const std::string& resource,
                                           const std::string& name_hint) {
  auto it = impl_->def.signature().input_arg();
  DType dtype = DType::kInvalid;
  for (const auto& arg : it) {
    if (arg.name() == resource && arg.handle_data_size() == 1) {
      dtype = static_cast<DType>(arg.handle_data(0).dtype());
    }
  }
  if (dtype == DType::kInvalid) {
    impl_->fail(invalid_argument(impl_->where() + ": '" + resource +
                                 "' is not a resource argument with handle data"));
    return "invalid";
  }
  return add("ReadVariableOp", {resource}, {{"dtype", attr::type(dtype)}},
             name_hint + "/ReadVariableOp");
}

std::string FunctionBuilder::add_const(const Tensor& value, const std::string& name_hint) {
  return add("Const", {}, {{"value", attr::tensor(value)}, {"dtype", attr::type(value.dtype())}},
             name_hint);
}

std::vector<std::string> FunctionBuilder::add_call(const FunctionSignature& callee,
                                                   const std::vector<std::string>& inputs,
                                                   const std::string& name_hint) {
  const std::string op = callee.stateful ? "StatefulPartitionedCall" : "PartitionedCall";
  Attrs attrs = {{"f", attr::func(callee.name)},
                 {"Tin", attr::types(callee.input_types)},
                 {"Tout", attr::types(callee.output_types)},
                 {"config_proto", attr::str(std::string(kCallConfigProto, kConfigProtoSize))}};
  if (callee.stateful) {
    std::vector<int64_t> read_only;
    for (size_t i = 0; i < callee.input_types.size(); ++i) {
      if (callee.input_types[i] == DType::kResource) read_only.push_back(static_cast<int64_t>(i));
    }
    attrs.emplace_back("_read_only_resource_inputs", attr::ints(std::move(read_only)));
    attrs.emplace_back("_collective_manager_ids", attr::ints({}));
  }
  return add_node(op, inputs, std::move(attrs), name_hint.empty() ? op : name_hint);
}

void FunctionBuilder::add_output(const std::string& tensor) {
  if (impl_->status.ok() && impl_->type_of_input(tensor) == DType::kInvalid) {
    impl_->fail(
        invalid_argument(impl_->where() + ": output '" + tensor + "' is not a tensor of it"));
  }
  impl_->outputs.push_back(tensor);
}

// ---------------------------------------------------------------------------------------------
// SavedModelWriter

namespace {

struct VariableEntry {
  std::vector<std::string> path;
  std::string name;
  Tensor value;
  bool trainable = false;
};

struct SignatureEntry {
  SignatureDefinition definition;
  std::string wrapper;                      // the signature wrapper FunctionDef
  std::vector<std::string> sorted_inputs;   // keys
  std::vector<std::string> sorted_outputs;  // keys
};

// An object of the object graph before ids are assigned.
struct Object {
  enum class Kind {
    kUser,
    kList,
    kVariable,
    kFunction,
    kBareFunction,
    kSignatureMap,
    kLossFunction,
    kAsset
  };
  Kind kind = Kind::kUser;
  std::string identifier;
  std::vector<std::pair<std::string, int>> children;  // local name, object index
  int variable = -1;
  std::vector<std::string> concrete_functions;
  int signature = -1;  // for kBareFunction
  int index = -1;      // kLossFunction: regularization loss; kAsset: asset

  static Object of(Kind kind, std::string identifier = "") {
    Object o;
    o.kind = kind;
    o.identifier = std::move(identifier);
    return o;
  }
};

}  // namespace

struct SavedModelWriter::Impl {
  OpDefLookup op_defs;
  WriterOptions options;
  std::vector<VariableEntry> variables;
  std::vector<tf::FunctionDef> functions;
  std::map<std::string, FunctionSignature, std::less<>> signatures_by_function;
  std::vector<CallTrace> call_traces;
  bool has_call = false;
  std::vector<SignatureEntry> signatures;
  std::vector<RegularizationLoss> losses;
  struct Asset {
    std::string local_name, filename, contents;
  };
  std::vector<Asset> assets;
  int next_function_id = 100;
  std::vector<WrittenVariable> written;
  bool write_started = false;

  Status add_function_def(tf::FunctionDef def, FunctionSignature sig) {
    if (signatures_by_function.count(sig.name)) {
      return invalid_argument("the function library already has '" + sig.name + "'");
    }
    signatures_by_function.emplace(sig.name, sig);
    functions.push_back(std::move(def));
    return {};
  }
};

SavedModelWriter::SavedModelWriter(OpDefLookup op_defs, WriterOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->op_defs = std::move(op_defs);
  impl_->options = std::move(options);
}
SavedModelWriter::~SavedModelWriter() = default;

const OpDefLookup& SavedModelWriter::op_defs() const {
  return impl_->op_defs;
}

Expected<VariableHandle> SavedModelWriter::add_variable(std::vector<std::string> path,
                                                        std::string name, Tensor value,
                                                        bool trainable) {
  if (path.empty()) return invalid_argument("variable '" + name + "': empty object path");
  for (const auto& part : path) {
    if (part.empty())
      return invalid_argument("variable '" + name + "': empty local name in its path");
  }
  static const std::set<std::string> kReserved = {
      "variables", "trainable_variables", "regularization_losses", "__call__", "signatures"};
  if (kReserved.count(path[0]) ||
      std::any_of(impl_->assets.begin(), impl_->assets.end(),
                  [&](const auto& a) { return a.local_name == path[0]; })) {
    return invalid_argument("variable '" + name + "': root child '" + path[0] +
                            "' is reserved for the SavedModel interface");
  }
  if (!value.valid() || (!dtype_is_numeric(value.dtype()))) {
    return invalid_argument("variable '" + name + "': needs a numeric tensor, got " +
                            value.description());
  }
  for (const auto& v : impl_->variables) {
    if (v.path == path)
      return invalid_argument("variable '" + name + "': its path is already taken by '" + v.name +
                              "'");
    const size_t common = std::min(v.path.size(), path.size());
    if (std::equal(path.begin(), path.begin() + static_cast<long>(common), v.path.begin())) {
      return invalid_argument("variable '" + name + "': its path and that of '" + v.name +
                              "' are prefixes of each other");
    }
  }
  impl_->variables.push_back({std::move(path), std::move(name), std::move(value), trainable});
  return VariableHandle{static_cast<int>(impl_->variables.size()) - 1};
}

DType SavedModelWriter::variable_dtype(VariableHandle v) const {
  return impl_->variables.at(static_cast<size_t>(v.index)).value.dtype();
}

const Dims& SavedModelWriter::variable_shape(VariableHandle v) const {
  return impl_->variables.at(static_cast<size_t>(v.index)).value.shape();
}

const Tensor& SavedModelWriter::variable_value(VariableHandle v) const {
  return impl_->variables.at(static_cast<size_t>(v.index)).value;
}

bool SavedModelWriter::variable_trainable(VariableHandle v) const {
  return impl_->variables.at(static_cast<size_t>(v.index)).trainable;
}

std::string SavedModelWriter::add_resource_input(FunctionBuilder& builder, const std::string& name,
                                                 VariableHandle v) const {
  return builder.add_resource_input(name, variable_dtype(v), variable_shape(v));
}

std::string SavedModelWriter::unique_function_name(std::string_view base) {
  for (;;) {
    std::string name =
        "__inference_" + std::string(base) + "_" + std::to_string(impl_->next_function_id++);
    if (!impl_->signatures_by_function.count(name)) return name;
  }
}

Expected<FunctionSignature> SavedModelWriter::add_function_def(const tf::FunctionDef& def) {
  FunctionSignature sig;
  sig.name = def.signature().name();
  if (sig.name.empty()) return invalid_argument("add_function_def: a FunctionDef without a name");
  auto arg_type = [&](const tf::OpDef::ArgDef& arg) -> Expected<DType> {
    if (arg.type() == tf::DT_INVALID || !arg.type_attr().empty() || !arg.number_attr().empty() ||
        !arg.type_list_attr().empty()) {
      return invalid_argument("function '" + sig.name + "': argument '" + arg.name() +
                              "' has no fixed type");
    }
    return static_cast<DType>(arg.type());
  };
  for (const auto& arg : def.signature().input_arg()) {
    HUBIMG_ASSIGN_OR_RETURN(DType t, arg_type(arg));
    sig.input_types.push_back(t);
  }
  for (const auto& arg : def.signature().output_arg()) {
    HUBIMG_ASSIGN_OR_RETURN(DType t, arg_type(arg));
    sig.output_types.push_back(t);
  }
  sig.stateful = def.signature().is_stateful();
  HUBIMG_RETURN_IF_ERROR(impl_->add_function_def(def, sig));
  return sig;
}

Status SavedModelWriter::add_regularization_loss(RegularizationLoss loss) {
  const FunctionSignature* f = function(loss.function);
  if (f == nullptr)
    return not_found("regularization loss: no function '" + loss.function + "' in the library");
  if (f->input_types.size() != loss.captures.size() || f->output_types.size() != 1 ||
      f->output_types[0] != DType::kFloat32) {
    return invalid_argument("regularization loss '" + loss.function +
                            "' must take one resource per capture and return one float32");
  }
  for (const auto& c : loss.captures) {
    if (c.index < 0 || c.index >= static_cast<int>(impl_->variables.size()))
      return invalid_argument("regularization loss '" + loss.function +
                              "': a capture is not a variable of this writer");
  }
  impl_->losses.push_back(std::move(loss));
  return {};
}

Status SavedModelWriter::add_asset(const std::string& local_name, const std::string& filename,
                                   std::string contents) {
  if (local_name.empty() || filename.empty() || filename.find('/') != std::string::npos ||
      filename == "." || filename == "..") {
    return invalid_argument("asset '" + filename + "': needs a local name and a plain file name");
  }
  for (const auto& a : impl_->assets) {
    if (a.local_name == local_name || a.filename == filename)
      return invalid_argument("asset '" + filename + "' is added twice");
  }
  impl_->assets.push_back({local_name, filename, std::move(contents)});
  return {};
}

const FunctionSignature* SavedModelWriter::function(std::string_view name) const {
  auto it = impl_->signatures_by_function.find(name);
  return it == impl_->signatures_by_function.end() ? nullptr : &it->second;
}

Expected<FunctionSignature> SavedModelWriter::add_function(FunctionBuilder&& builder) {
  FunctionBuilder::Impl& m = *builder.impl_;
  if (!m.status.ok()) return m.status;
  const std::string where = m.where();
  if (m.outputs.empty()) return invalid_argument(where + " has no outputs");
  tf::FunctionDef def = std::move(m.def);
  FunctionSignature sig;
  sig.name = def.signature().name();
  for (const auto& arg : def.signature().input_arg()) {
    sig.input_types.push_back(static_cast<DType>(arg.type()));
  }

  // TensorFlow's ending: Identity(result, ^NoOp) per output, NoOp waiting for every stateful node.
  std::vector<std::string> stateful = m.stateful_nodes;
  std::sort(stateful.begin(), stateful.end());
  const std::string noop = m.names.unique("NoOp");
  for (size_t i = 0; i < m.outputs.size(); ++i) {
    const std::string identity = m.names.unique("Identity");
    DType t = m.type_of_input(m.outputs[i]);
    auto* node = def.add_node_def();
    node->set_name(identity);
    node->set_op("Identity");
    node->add_input(m.outputs[i]);
    node->add_input("^" + noop);
    (*node->mutable_attr())["T"].set_type(to_proto(t));
    const std::string out_arg = i == 0 ? "identity" : "identity_" + std::to_string(i);
    auto* arg = def.mutable_signature()->add_output_arg();
    arg->set_name(out_arg);
    arg->set_type(to_proto(t));
    (*def.mutable_ret())[out_arg] = identity + ":output:0";
    sig.output_types.push_back(t);
  }
  auto* noop_node = def.add_node_def();
  noop_node->set_name(noop);
  noop_node->set_op("NoOp");
  for (const auto& s : stateful) noop_node->add_input("^" + s);
  (*noop_node->mutable_attr())["_acd_function_control_output"].set_b(true);
  for (const auto& s : stateful) {
    def.mutable_signature()->add_control_output(s);
    (*def.mutable_control_ret())[s] = s;
  }
  if (m.stateful) def.mutable_signature()->set_is_stateful(true);
  sig.stateful = m.stateful;
  (*def.mutable_attr())["_construction_context"].set_s("kEagerRuntime");
  auto* shapes = (*def.mutable_attr())["_input_shapes"].mutable_list();
  for (const auto& s : m.input_shapes) shape_to_proto(s, shapes->add_shape());
  HUBIMG_RETURN_IF_ERROR(impl_->add_function_def(std::move(def), sig));
  return sig;
}

Status SavedModelWriter::set_call(std::vector<CallTrace> traces) {
  if (traces.empty()) return invalid_argument("__call__ needs at least one trace");
  const bool with_training = traces[0].training.has_value();
  std::set<std::string> seen;
  for (const auto& t : traces) {
    // TensorFlow writes each trace as a function of its own; one function bound twice would
    // also get its captures twice when loaded.
    if (!seen.insert(t.function).second) {
      return invalid_argument("__call__ traces must be different functions, '" + t.function +
                              "' is given twice");
    }
    const FunctionSignature* f = function(t.function);
    if (f == nullptr)
      return not_found("__call__ trace: no function '" + t.function + "' in the library");
    if (t.training.has_value() != with_training) {
      return invalid_argument("__call__ traces must all have a `training` argument or none");
    }
    const size_t expected_args = 1 + t.arguments.size() + t.captures.size();
    if (f->input_types.size() != expected_args) {
      return invalid_argument(
          "__call__ trace '" + t.function + "' takes " + std::to_string(f->input_types.size()) +
          " arguments, the input, " + std::to_string(t.arguments.size()) + " hyperparameters and " +
          std::to_string(t.captures.size()) + " captures make " + std::to_string(expected_args));
    }
    if (t.arguments.size() != traces[0].arguments.size()) {
      return invalid_argument("__call__ traces must all take the same hyperparameters");
    }
    for (size_t i = 0; i < t.arguments.size(); ++i) {
      const CallArgument& a = t.arguments[i];
      if (a.spec.name.empty() || a.spec.name == "inputs" || a.spec.name == "training" ||
          a.spec.name != traces[0].arguments[i].spec.name ||
          a.default_value != traces[0].arguments[i].default_value ||
          f->input_types[1 + i] != a.spec.dtype) {
        return invalid_argument("__call__ trace '" + t.function + "': hyperparameter '" +
                                a.spec.name + "' differs between traces or from the function");
      }
    }
    if (f->input_types[0] != t.input.dtype || f->output_types.size() != 1 ||
        f->output_types[0] != t.output.dtype) {
      return invalid_argument("__call__ trace '" + t.function +
                              "': the function's input/output types do not match the specs");
    }
    for (size_t i = 0; i < t.captures.size(); ++i) {
      if (t.captures[i].index < 0 ||
          t.captures[i].index >= static_cast<int>(impl_->variables.size())) {
        return invalid_argument("__call__ trace '" + t.function + "': capture " +
                                std::to_string(i) + " is not a variable of this writer");
      }
    }
  }
  impl_->call_traces = std::move(traces);
  impl_->has_call = true;
  return {};
}

Status SavedModelWriter::add_signature(SignatureDefinition s) {
  const std::string where = "signature '" + s.key + "'";
  if (s.key.empty() || s.key == "__saved_model_init_op")
    return invalid_argument(where + ": bad key");
  for (const auto& e : impl_->signatures) {
    if (e.definition.key == s.key) return invalid_argument(where + " is defined twice");
  }
  const FunctionSignature* inner = function(s.function);
  if (inner == nullptr)
    return not_found(where + ": no function '" + s.function + "' in the library");
  if (inner->input_types.size() != s.inputs.size() + s.captures.size()) {
    return invalid_argument(where + ": '" + s.function + "' takes " +
                            std::to_string(inner->input_types.size()) + " arguments, not " +
                            std::to_string(s.inputs.size()) + " inputs + " +
                            std::to_string(s.captures.size()) + " captures");
  }
  if (inner->output_types.size() != s.outputs.size()) {
    return invalid_argument(where + ": '" + s.function + "' returns " +
                            std::to_string(inner->output_types.size()) + " values, not " +
                            std::to_string(s.outputs.size()));
  }
  for (const auto& c : s.captures) {
    if (c.index < 0 || c.index >= static_cast<int>(impl_->variables.size())) {
      return invalid_argument(where + ": a capture is not a variable of this writer");
    }
  }
  SignatureEntry entry;
  for (const auto& [key, spec] : s.inputs) entry.sorted_inputs.push_back(key);
  for (const auto& [key, spec] : s.outputs) entry.sorted_outputs.push_back(key);
  std::sort(entry.sorted_inputs.begin(), entry.sorted_inputs.end());
  std::sort(entry.sorted_outputs.begin(), entry.sorted_outputs.end());
  if (std::adjacent_find(entry.sorted_inputs.begin(), entry.sorted_inputs.end()) !=
          entry.sorted_inputs.end() ||
      std::adjacent_find(entry.sorted_outputs.begin(), entry.sorted_outputs.end()) !=
          entry.sorted_outputs.end()) {
    return invalid_argument(where + ": duplicate input or output key");
  }

  // The wrapper tf.saved_model.save generates: keyword inputs in sorted order, then the captures.
  FunctionBuilder wrapper(unique_function_name("signature_wrapper"), impl_->op_defs);
  std::map<std::string, std::string> arg_for_key;
  for (const auto& key : entry.sorted_inputs) {
    const auto& spec = std::find_if(s.inputs.begin(), s.inputs.end(), [&](const auto& p) {
                         return p.first == key;
                       })->second;
    arg_for_key[key] = wrapper.add_input(key, spec.dtype, spec.shape);
  }
  std::vector<std::string> call_inputs;
  for (const auto& [key, spec] : s.inputs) call_inputs.push_back(arg_for_key[key]);
  for (size_t i = 0; i < s.captures.size(); ++i) {
    call_inputs.push_back(add_resource_input(
        wrapper, i == 0 ? "unknown" : "unknown_" + std::to_string(i - 1), s.captures[i]));
  }
  auto outs = wrapper.add_call(*inner, call_inputs);
  for (const auto& key : entry.sorted_outputs) {
    size_t position = 0;
    while (s.outputs[position].first != key) ++position;
    if (position < outs.size()) wrapper.add_output(outs[position]);
  }
  HUBIMG_ASSIGN_OR_RETURN(FunctionSignature wrapper_sig, add_function(std::move(wrapper)));
  entry.wrapper = wrapper_sig.name;
  entry.definition = std::move(s);
  impl_->signatures.push_back(std::move(entry));
  return {};
}

const std::vector<WrittenVariable>& SavedModelWriter::written_variables() const {
  return impl_->written;
}

namespace {

// `_traced_save` / `_traced_restore` as tf.saved_model.save builds them for plain variables;
// TensorFlow's C++ loader runs the restore function through saver_def.restore_op_name.
struct SaverFunctions {
  FunctionSignature save;
  FunctionSignature restore;
};

Expected<SaverFunctions> add_saver_functions(SavedModelWriter& writer,
                                             const std::vector<VariableEntry>& variables,
                                             const std::vector<std::string>& keys) {
  FunctionBuilder save(writer.unique_function_name("_traced_save"), writer.op_defs());
  const std::string prefix = save.add_input("file_prefix", DType::kString, PartialShape::known({}));
  std::vector<std::string> values;
  for (const auto& v : variables) {
    values.push_back(save.add_input("savev2_" + sanitized_arg_name(v.name) + "_read_readvariableop",
                                    v.value.dtype(), PartialShape::known(v.value.shape())));
  }
  values.push_back(save.add_input("savev2_const", DType::kString, PartialShape::known({})));
  const auto is_s3 =
      save.add("StaticRegexFullMatch", {prefix}, {{"pattern", attr::str("^s3://.*")}});
  const auto part = save.add_const(Tensor::from_strings({}, {".part"}), "Const");
  const auto temp = save.add_const(Tensor::from_strings({}, {"_temp/part"}), "Const_1");
  const auto suffix = save.add("Select", {is_s3, part, temp});
  const auto tmp_prefix = save.add("StringJoin", {prefix, suffix});
  const auto num_shards = save.add_const(Tensor::scalar<int32_t>(1), "num_shards");
  const auto shard = save.add_const(Tensor::scalar<int32_t>(0), "ShardedFilename/shard");
  const auto filename = save.add("ShardedFilename", {tmp_prefix, shard, num_shards});
  std::vector<std::string> names = keys;
  names.emplace_back(kObjectGraphKey);
  const auto count = static_cast<int64_t>(names.size());
  const auto tensor_names =
      save.add_const(Tensor::from_strings({count}, names), "SaveV2/tensor_names");
  const auto slices =
      save.add_const(Tensor::from_strings({count}, std::vector<std::string>(names.size())),
                     "SaveV2/shape_and_slices");
  std::vector<std::string> save_inputs = {filename, tensor_names, slices};
  save_inputs.insert(save_inputs.end(), values.begin(), values.end());
  save.add_node("SaveV2", save_inputs);
  const std::string save_node = save.last_node_name();
  const auto prefixes =
      save.add("Pack", {filename, "^" + save_node}, {}, "MergeV2Checkpoints/checkpoint_prefixes");
  save.add_node("MergeV2Checkpoints", {prefixes, prefix});
  save.add_output(save.add("Identity", {prefix, "^" + save.last_node_name()}));
  HUBIMG_ASSIGN_OR_RETURN(FunctionSignature save_sig, writer.add_function(std::move(save)));

  FunctionBuilder restore(writer.unique_function_name("_traced_restore"), writer.op_defs());
  const std::string rprefix =
      restore.add_input("file_prefix", DType::kString, PartialShape::known({}));
  std::vector<std::string> handles;
  std::vector<DType> dtypes;
  for (size_t i = 0; i < variables.size(); ++i) {
    const std::string op = i == 0 ? "assignvariableop" : "assignvariableop_" + std::to_string(i);
    handles.push_back(restore.add_resource_input(op + "_" + sanitized_arg_name(variables[i].name),
                                                 variables[i].value.dtype(),
                                                 variables[i].value.shape()));
    dtypes.push_back(variables[i].value.dtype());
  }
  const auto n = static_cast<int64_t>(keys.size());
  const auto rnames = restore.add_const(Tensor::from_strings({n}, keys), "RestoreV2/tensor_names");
  const auto rslices =
      restore.add_const(Tensor::from_strings({n}, std::vector<std::string>(keys.size())),
                        "RestoreV2/shape_and_slices");
  const auto restored =
      restore.add_node("RestoreV2", {rprefix, rnames, rslices}, {{"dtypes", attr::types(dtypes)}});
  std::vector<std::string> done = {rprefix};
  for (size_t i = 0; i < variables.size() && i < restored.size(); ++i) {
    const auto value = restore.add("Identity", {restored[i]});
    restore.add_node("AssignVariableOp", {handles[i], value});
    done.push_back("^" + restore.last_node_name());
  }
  restore.add_output(restore.add("Identity", done));
  HUBIMG_ASSIGN_OR_RETURN(FunctionSignature restore_sig, writer.add_function(std::move(restore)));
  return SaverFunctions{save_sig, restore_sig};
}

tf::NodeDef* add_graph_node(tf::GraphDef& g, const std::string& name, const std::string& op,
                            const std::vector<std::string>& inputs) {
  tf::NodeDef* n = g.add_node();
  n->set_name(name);
  n->set_op(op);
  for (const auto& in : inputs) n->add_input(in);
  return n;
}

void set_call_attrs(tf::NodeDef* node, const FunctionSignature& f) {
  auto& a = *node->mutable_attr();
  a["f"].mutable_func()->set_name(f.name);
  for (DType t : f.input_types) a["Tin"].mutable_list()->add_type(to_proto(t));
  for (DType t : f.output_types) a["Tout"].mutable_list()->add_type(to_proto(t));
  a["Tout"].mutable_list();
  a["config_proto"].set_s(std::string(kCallConfigProto, kConfigProtoSize));
  a["_collective_manager_ids"].mutable_list();
  auto* read_only = a["_read_only_resource_inputs"].mutable_list();
  for (size_t i = 0; i < f.input_types.size(); ++i) {
    if (f.input_types[i] == DType::kResource) read_only->add_i(static_cast<int64_t>(i));
  }
}

void collect_ops(const google::protobuf::RepeatedPtrField<tf::NodeDef>& nodes,
                 std::set<std::string>& ops) {
  for (const auto& n : nodes) ops.insert(n.op());
}

Status write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return not_found(path.string() + ": cannot create");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return data_loss(path.string() + ": write failed");
  return {};
}

}  // namespace

Status SavedModelWriter::write(const std::filesystem::path& dir) {
  Impl& m = *impl_;
  const std::string where = dir.string();
  if (m.write_started)
    return failed_precondition(where + ": write() may be called once per writer");
  m.write_started = true;

  // ---- Object graph, before ids: root, objects on variable paths, the interface children.
  std::vector<Object> objects(1);
  objects[0].identifier = m.options.root_identifier;
  std::vector<int> variable_object(m.variables.size(), -1);
  for (size_t v = 0; v < m.variables.size(); ++v) {
    int parent = 0;
    const auto& path = m.variables[v].path;
    for (size_t k = 0; k < path.size(); ++k) {
      int child = -1;
      for (const auto& [local, id] : objects[static_cast<size_t>(parent)].children) {
        if (local == path[k]) child = id;
      }
      if (child < 0) {
        Object o;
        if (k + 1 == path.size()) {
          o.kind = Object::Kind::kVariable;
          o.variable = static_cast<int>(v);
        } else {
          o.identifier = "_generic_user_object";
        }
        objects.push_back(std::move(o));
        child = static_cast<int>(objects.size()) - 1;
        objects[static_cast<size_t>(parent)].children.emplace_back(path[k], child);
      }
      parent = child;
    }
    variable_object[v] = parent;
  }
  auto add_object = [&objects](Object o, const std::string& local) {
    objects.push_back(std::move(o));
    const int id = static_cast<int>(objects.size()) - 1;
    objects[0].children.emplace_back(local, id);
    return id;
  };
  Object all_list = Object::of(Object::Kind::kList, "trackable_list_wrapper");
  Object trainable_list = Object::of(Object::Kind::kList, "trackable_list_wrapper");
  int listed = 0;
  int listed_trainable = 0;
  for (size_t v = 0; v < m.variables.size(); ++v) {
    all_list.children.emplace_back(std::to_string(listed++), variable_object[v]);
    if (m.variables[v].trainable) {
      trainable_list.children.emplace_back(std::to_string(listed_trainable++), variable_object[v]);
    }
  }
  add_object(std::move(all_list), "variables");
  add_object(std::move(trainable_list), "trainable_variables");
  {
    Object list = Object::of(Object::Kind::kList, "trackable_list_wrapper");
    for (size_t i = 0; i < m.losses.size(); ++i) {
      Object fn = Object::of(Object::Kind::kLossFunction);
      fn.index = static_cast<int>(i);
      fn.concrete_functions.push_back(m.losses[i].function);
      objects.push_back(std::move(fn));
      list.children.emplace_back(std::to_string(i), static_cast<int>(objects.size()) - 1);
    }
    add_object(std::move(list), "regularization_losses");
  }
  if (m.has_call) {
    Object call = Object::of(Object::Kind::kFunction);
    for (const auto& t : m.call_traces) call.concrete_functions.push_back(t.function);
    add_object(std::move(call), "__call__");
  }
  {
    Object map = Object::of(Object::Kind::kSignatureMap, "signature_map");
    std::vector<size_t> order(m.signatures.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return m.signatures[a].definition.key < m.signatures[b].definition.key;
    });
    std::vector<std::pair<std::string, int>> children;
    for (size_t i : order) {
      Object bare = Object::of(Object::Kind::kBareFunction);
      bare.signature = static_cast<int>(i);
      objects.push_back(std::move(bare));
      children.emplace_back(m.signatures[i].definition.key, static_cast<int>(objects.size()) - 1);
    }
    map.children = std::move(children);
    add_object(std::move(map), "signatures");
  }
  for (size_t i = 0; i < m.assets.size(); ++i) {
    Object asset = Object::of(Object::Kind::kAsset);
    asset.index = static_cast<int>(i);
    add_object(std::move(asset), m.assets[i].local_name);
  }

  // ---- Ids in breadth-first order; a variable's checkpoint key follows the first path found.
  std::vector<int> id_of(objects.size(), -1);
  std::vector<int> order;
  std::vector<std::string> key_path(objects.size());
  std::deque<int> queue{0};
  id_of[0] = 0;
  while (!queue.empty()) {
    int o = queue.front();
    queue.pop_front();
    order.push_back(o);
    for (const auto& [local, child] : objects[static_cast<size_t>(o)].children) {
      if (id_of[static_cast<size_t>(child)] >= 0) continue;
      id_of[static_cast<size_t>(child)] = static_cast<int>(order.size() + queue.size());
      const std::string& parent_path = key_path[static_cast<size_t>(o)];
      key_path[static_cast<size_t>(child)] =
          (parent_path.empty() ? "" : parent_path + "/") + escape_checkpoint_local_name(local);
      queue.push_back(child);
    }
  }
  m.written.clear();
  std::vector<std::string> checkpoint_keys;
  for (size_t v = 0; v < m.variables.size(); ++v) {
    const int o = variable_object[v];
    WrittenVariable w;
    w.name = m.variables[v].name;
    w.checkpoint_key = key_path[static_cast<size_t>(o)] + "/.ATTRIBUTES/VARIABLE_VALUE";
    w.node_id = id_of[static_cast<size_t>(o)];
    checkpoint_keys.push_back(w.checkpoint_key);
    m.written.push_back(std::move(w));
  }
  auto node_ids = [&](const std::vector<VariableHandle>& captures) {
    std::vector<int> ids;
    for (const auto& c : captures) ids.push_back(m.written[static_cast<size_t>(c.index)].node_id);
    return ids;
  };

  // ---- Checkpoint object graph (mirrors the SavedObjectGraph node for node).
  tf::TrackableObjectGraph trackable;
  std::vector<bool> has_values(objects.size(), false);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {  // NOLINT(modernize-loop-convert)
    const Object& o = objects[static_cast<size_t>(*it)];
    bool any = o.kind == Object::Kind::kVariable;
    for (const auto& [local, child] : o.children)
      any = any || has_values[static_cast<size_t>(child)];
    has_values[static_cast<size_t>(*it)] = any;
  }
  for (int o : order) {
    const Object& obj = objects[static_cast<size_t>(o)];
    auto* node = trackable.add_nodes();
    for (const auto& [local, child] : obj.children) {
      auto* ref = node->add_children();
      ref->set_node_id(id_of[static_cast<size_t>(child)]);
      ref->set_local_name(local);
    }
    if (obj.kind == Object::Kind::kVariable) {
      auto* a = node->add_attributes();
      a->set_name("VARIABLE_VALUE");
      a->set_full_name(m.variables[static_cast<size_t>(obj.variable)].name);
      a->set_checkpoint_key(m.written[static_cast<size_t>(obj.variable)].checkpoint_key);
    }
    node->mutable_has_checkpoint_values()->set_value(has_values[static_cast<size_t>(o)]);
  }
  std::string trackable_bytes;
  if (!serialize_deterministically(trackable, &trackable_bytes)) {
    return internal_error(where + ": cannot serialize the checkpoint object graph");
  }

  // ---- The saver functions need the checkpoint keys; add them before the library is copied.
  std::optional<SaverFunctions> saver;
  if (m.options.write_saver && !m.variables.empty()) {
    HUBIMG_ASSIGN_OR_RETURN(saver, add_saver_functions(*this, m.variables, checkpoint_keys));
  }

  // ---- SavedModel proto.
  tf::SavedModel saved_model;
  saved_model.set_saved_model_schema_version(1);
  tf::MetaGraphDef& meta = *saved_model.add_meta_graphs();
  tf::GraphDef& graph = *meta.mutable_graph_def();
  NameScope graph_names;

  std::vector<std::string> handle_node(m.variables.size());
  std::vector<std::string> read_node(m.variables.size());
  for (size_t v = 0; v < m.variables.size(); ++v) {
    const auto& var = m.variables[v];
    handle_node[v] = graph_names.unique(var.name);
    auto* n = add_graph_node(graph, handle_node[v], "VarHandleOp", {});
    auto& a = *n->mutable_attr();
    a["dtype"].set_type(to_proto(var.value.dtype()));
    dims_to_proto(var.value.shape(), a["shape"].mutable_shape());
    a["shared_name"].set_s(handle_node[v]);
    if (saver) {
      read_node[v] = graph_names.unique(handle_node[v] + "/Read/ReadVariableOp");
      auto* r = add_graph_node(graph, read_node[v], "ReadVariableOp", {handle_node[v]});
      (*r->mutable_attr())["dtype"].set_type(to_proto(var.value.dtype()));
    }
  }

  std::vector<size_t> signature_order(m.signatures.size());
  for (size_t i = 0; i < signature_order.size(); ++i) signature_order[i] = i;
  std::sort(signature_order.begin(), signature_order.end(), [&](size_t a, size_t b) {
    return m.signatures[a].definition.key < m.signatures[b].definition.key;
  });
  for (size_t i : signature_order) {
    const SignatureEntry& e = m.signatures[i];
    const SignatureDefinition& d = e.definition;
    tf::SignatureDef& sig = (*meta.mutable_signature_def())[d.key];
    sig.set_method_name("tensorflow/serving/predict");
    std::vector<std::string> call_inputs;
    for (const auto& key : e.sorted_inputs) {
      const TensorSpec& spec = std::find_if(d.inputs.begin(), d.inputs.end(), [&](const auto& p) {
                                 return p.first == key;
                               })->second;
      const std::string ph = graph_names.unique(d.key + "_" + key);
      auto* n = add_graph_node(graph, ph, "Placeholder", {});
      (*n->mutable_attr())["dtype"].set_type(to_proto(spec.dtype));
      shape_to_proto(spec.shape, (*n->mutable_attr())["shape"].mutable_shape());
      call_inputs.push_back(ph);
      tf::TensorInfo& info = (*sig.mutable_inputs())[key];
      info.set_name(ph + ":0");
      info.set_dtype(to_proto(spec.dtype));
      shape_to_proto(spec.shape, info.mutable_tensor_shape());
    }
    for (const auto& c : d.captures)
      call_inputs.push_back(handle_node[static_cast<size_t>(c.index)]);
    const std::string call = graph_names.unique("StatefulPartitionedCall");
    set_call_attrs(add_graph_node(graph, call, "StatefulPartitionedCall", call_inputs),
                   *function(e.wrapper));
    for (size_t k = 0; k < e.sorted_outputs.size(); ++k) {
      const std::string& key = e.sorted_outputs[k];
      const TensorSpec& spec = std::find_if(d.outputs.begin(), d.outputs.end(), [&](const auto& p) {
                                 return p.first == key;
                               })->second;
      tf::TensorInfo& info = (*sig.mutable_outputs())[key];
      info.set_name(call + ":" + std::to_string(k));
      info.set_dtype(to_proto(spec.dtype));
      shape_to_proto(spec.shape, info.mutable_tensor_shape());
    }
  }
  for (const auto& a : m.assets) {
    // TensorFlow keeps each asset's path in a string Const of the top-level graph.
    const std::string node = graph_names.unique("Const");
    auto* c = add_graph_node(graph, node, "Const", {});
    (*c->mutable_attr())["dtype"].set_type(tf::DT_STRING);
    auto* value = (*c->mutable_attr())["value"].mutable_tensor();
    value->set_dtype(tf::DT_STRING);
    value->mutable_tensor_shape();
    value->add_string_val(a.filename);
    auto* def = meta.add_asset_file_def();
    def->set_filename(a.filename);
    def->mutable_tensor_info()->set_name(node + ":0");
    def->mutable_tensor_info()->set_dtype(tf::DT_STRING);
    def->mutable_tensor_info()->mutable_tensor_shape();
  }
  const std::string init_op = graph_names.unique("NoOp");
  add_graph_node(graph, init_op, "NoOp", {});
  {
    tf::SignatureDef& init = (*meta.mutable_signature_def())["__saved_model_init_op"];
    tf::TensorInfo& info = (*init.mutable_outputs())["__saved_model_init_op"];
    info.set_name(init_op);
    info.mutable_tensor_shape()->set_unknown_rank(true);
    (*meta.mutable_collection_def())["saved_model_main_op"].mutable_node_list()->add_value(init_op);
  }
  if (saver) {
    const std::string graph_const = graph_names.unique("Const");
    auto* c = add_graph_node(graph, graph_const, "Const", {});
    c->set_device("/device:CPU:0");
    (*c->mutable_attr())["dtype"].set_type(tf::DT_STRING);
    auto* value = (*c->mutable_attr())["value"].mutable_tensor();
    value->set_dtype(tf::DT_STRING);
    value->mutable_tensor_shape();
    value->add_string_val(trackable_bytes);
    const std::string filename = graph_names.unique("saver_filename");
    auto* ph = add_graph_node(graph, filename, "Placeholder", {});
    (*ph->mutable_attr())["dtype"].set_type(tf::DT_STRING);
    (*ph->mutable_attr())["shape"].mutable_shape();
    std::vector<std::string> save_inputs = {filename};
    save_inputs.insert(save_inputs.end(), read_node.begin(), read_node.end());
    save_inputs.push_back(graph_const);
    const std::string save_call = graph_names.unique("StatefulPartitionedCall");
    set_call_attrs(add_graph_node(graph, save_call, "StatefulPartitionedCall", save_inputs),
                   saver->save);
    std::vector<std::string> restore_inputs = {filename};
    restore_inputs.insert(restore_inputs.end(), handle_node.begin(), handle_node.end());
    const std::string restore_call = graph_names.unique("StatefulPartitionedCall");
    set_call_attrs(add_graph_node(graph, restore_call, "StatefulPartitionedCall", restore_inputs),
                   saver->restore);
    tf::SaverDef& sd = *meta.mutable_saver_def();
    sd.set_filename_tensor_name(filename + ":0");
    sd.set_save_tensor_name(save_call + ":0");
    sd.set_restore_op_name(restore_call);
    sd.set_version(2);  // CheckpointFormatVersion V2: TensorBundle
  }
  for (const auto& f : m.functions) *graph.mutable_library()->add_function() = f;
  graph.mutable_versions()->set_producer(m.options.graph_producer);
  graph.mutable_versions()->set_min_consumer(12);

  // ---- Object graph proto.
  tf::SavedObjectGraph& og = *meta.mutable_object_graph_def();
  auto version = [](tf::VersionDef* v) {
    v->set_producer(1);
    v->set_min_consumer(1);
  };
  for (int o : order) {
    const Object& obj = objects[static_cast<size_t>(o)];
    tf::SavedObject& node = *og.add_nodes();
    for (const auto& [local, child] : obj.children) {
      auto* ref = node.add_children();
      ref->set_node_id(id_of[static_cast<size_t>(child)]);
      ref->set_local_name(local);
    }
    switch (obj.kind) {
      case Object::Kind::kUser:
      case Object::Kind::kList:
      case Object::Kind::kSignatureMap:
        node.mutable_user_object()->set_identifier(obj.identifier);
        version(node.mutable_user_object()->mutable_version());
        break;
      case Object::Kind::kVariable: {
        const auto& var = m.variables[static_cast<size_t>(obj.variable)];
        auto* sv = node.mutable_variable();
        sv->set_dtype(to_proto(var.value.dtype()));
        dims_to_proto(var.value.shape(), sv->mutable_shape());
        sv->set_trainable(var.trainable);
        sv->set_name(var.name);
        break;
      }
      case Object::Kind::kFunction: {
        auto* fn = node.mutable_function();
        for (const auto& c : obj.concrete_functions) fn->add_concrete_functions(c);
        const bool training = m.call_traces[0].training.has_value();
        std::vector<std::string> args = {"self", "inputs"};
        tf::StructuredValue defaults;
        if (training) {
          args.emplace_back("training");
          defaults.mutable_list_value()->add_values()->set_bool_value(false);
        }
        for (const auto& a : m.call_traces[0].arguments) {
          args.push_back(a.spec.name);
          defaults.mutable_list_value()->add_values()->set_float64_value(a.default_value);
        }
        if (!defaults.has_list_value()) defaults = none_value();
        *fn->mutable_function_spec()->mutable_fullargspec() = full_arg_spec(args, defaults, false);
        fn->mutable_function_spec()->set_is_method(true);
        *fn->mutable_function_spec()->mutable_input_signature() = none_value();
        break;
      }
      case Object::Kind::kLossFunction: {
        auto* fn = node.mutable_function();
        for (const auto& c : obj.concrete_functions) fn->add_concrete_functions(c);
        *fn->mutable_function_spec()->mutable_fullargspec() =
            full_arg_spec({}, none_value(), false);
        *fn->mutable_function_spec()->mutable_input_signature() = none_value();
        break;
      }
      case Object::Kind::kAsset: node.mutable_asset()->set_asset_file_def_index(obj.index); break;
      case Object::Kind::kBareFunction: {
        const SignatureEntry& e = m.signatures[static_cast<size_t>(obj.signature)];
        auto* bare = node.mutable_bare_concrete_function();
        bare->set_concrete_function_name(e.wrapper);
        for (const auto& key : e.sorted_inputs) bare->add_argument_keywords(key);
        bare->set_allowed_positional_arguments(static_cast<int64_t>(e.sorted_inputs.size()));
        *bare->mutable_function_spec()->mutable_fullargspec() =
            full_arg_spec({}, none_value(), true);
        *bare->mutable_function_spec()->mutable_input_signature() = none_value();
        break;
      }
    }
  }
  auto& concrete = *og.mutable_concrete_functions();
  for (const auto& t : m.call_traces) {
    tf::SavedConcreteFunction& cf = concrete[t.function];
    for (int id : node_ids(t.captures)) cf.add_bound_inputs(id);
    auto* sig = cf.mutable_canonicalized_input_signature()->mutable_tuple_value();
    auto* args = sig->add_values()->mutable_tuple_value();
    *args->add_values() = tensor_spec_value(t.input);
    if (t.training) args->add_values()->set_bool_value(*t.training);
    for (const auto& a : t.arguments) *args->add_values() = tensor_spec_value(a.spec);
    sig->add_values()->mutable_dict_value();
    *cf.mutable_output_signature() = tensor_spec_value(t.output);
  }
  for (const auto& loss : m.losses) {
    tf::SavedConcreteFunction& cf = concrete[loss.function];
    for (int id : node_ids(loss.captures)) cf.add_bound_inputs(id);
    auto* sig = cf.mutable_canonicalized_input_signature()->mutable_tuple_value();
    sig->add_values()->mutable_tuple_value();
    sig->add_values()->mutable_dict_value();
    *cf.mutable_output_signature() =
        tensor_spec_value({"", DType::kFloat32, PartialShape::known({})});
  }
  for (const auto& e : m.signatures) {
    tf::SavedConcreteFunction& cf = concrete[e.wrapper];
    for (int id : node_ids(e.definition.captures)) cf.add_bound_inputs(id);
    auto* sig = cf.mutable_canonicalized_input_signature()->mutable_tuple_value();
    sig->add_values()->mutable_tuple_value();
    auto* kwargs = sig->add_values()->mutable_dict_value()->mutable_fields();
    for (const auto& [key, spec] : e.definition.inputs) {
      TensorSpec named = spec;
      named.name = key;
      (*kwargs)[key] = tensor_spec_value(named);
    }
    auto* outs = cf.mutable_output_signature()->mutable_dict_value()->mutable_fields();
    for (const auto& [key, spec] : e.definition.outputs) {
      TensorSpec named = spec;
      named.name = key;
      (*outs)[key] = tensor_spec_value(named);
    }
  }

  // ---- MetaInfoDef: the OpDefs of every op used anywhere.
  std::set<std::string> used_ops;
  collect_ops(graph.node(), used_ops);
  for (const auto& f : graph.library().function()) collect_ops(f.node_def(), used_ops);
  auto& info = *meta.mutable_meta_info_def();
  for (const auto& op : used_ops) {
    if (const tf::OpDef* def = m.op_defs ? m.op_defs(op) : nullptr)
      *info.mutable_stripped_op_list()->add_op() = *def;
  }
  info.add_tags("serve");
  info.set_tensorflow_version(m.options.tensorflow_version);
  info.set_tensorflow_git_version(m.options.tensorflow_git_version);
  info.set_stripped_default_attrs(true);

  // ---- Files.
  std::error_code ec;
  std::filesystem::create_directories(dir / "variables", ec);
  if (ec) return not_found(where + ": cannot create directory: " + ec.message());
  std::string bytes;
  if (!serialize_deterministically(saved_model, &bytes)) {
    return internal_error(where + ": cannot serialize the SavedModel (larger than 2 GiB?)");
  }
  HUBIMG_RETURN_IF_ERROR(write_file(dir / "saved_model.pb", bytes));
  if (!m.assets.empty()) {
    std::filesystem::create_directories(dir / "assets", ec);
    if (ec) return not_found(where + ": cannot create assets/: " + ec.message());
    for (const auto& a : m.assets)
      HUBIMG_RETURN_IF_ERROR(write_file(dir / "assets" / a.filename, a.contents));
  }
  TensorBundleWriter bundle(dir / "variables" / "variables");
  for (size_t v = 0; v < m.variables.size(); ++v) {
    HUBIMG_RETURN_IF_ERROR(bundle.add(checkpoint_keys[v], m.variables[v].value));
  }
  HUBIMG_RETURN_IF_ERROR(bundle.add(kObjectGraphKey, Tensor::from_strings({}, {trackable_bytes})));
  return bundle.finish();
}

}  // namespace hubimg::format
