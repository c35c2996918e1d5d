// FunctionDef -> Graph: inlines calls, resolves tensor names, binds variables.
#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "format/attr_proto.h"
#include "format/saved_model.h"
#include "graph.pb.h"
#include "graph/graph.h"
#include "saved_model.pb.h"

namespace hubimg::graph {
namespace {

constexpr int kMaxCallDepth = 64;
// Inlining copies a function body per call, so a chain of functions that each call the next
// twice grows exponentially. The nodes inlined for one graph may not exceed this many per node
// in the file (or kMinInlineBudget, whichever is larger).
constexpr int64_t kInlineBudgetPerFileNode = 64;
constexpr int64_t kMinInlineBudget = 1'000'000;
constexpr int kDtResource = 20;  // tensorflow::DT_RESOURCE

// What a tensor name resolves to while inlining: a value in the graph being built, a model
// variable (a DT_RESOURCE handle), or nothing (NoOp outputs).
struct Binding {
  // kDead: a TF1 cond branch not taken (an output of Switch on the other port, and everything
  // that depends on one); only Merge looks past it.
  enum class Kind { kNone, kValue, kVariable, kDead };
  Kind kind = Kind::kNone;
  ValueRef value;
  int variable = -1;

  static Binding of_value(ValueRef v) { return {Kind::kValue, v, -1}; }
  static Binding of_variable(int v) { return {Kind::kVariable, {}, v}; }
  static Binding dead() { return {Kind::kDead, {}, -1}; }
};

bool is_call_op(const std::string& op) {
  return op == "StatefulPartitionedCall" || op == "PartitionedCall";
}

bool is_if_op(const std::string& op) {
  return op == "If" || op == "StatelessIf";
}
bool is_case_op(const std::string& op) {
  return op == "Case" || op == "StatelessCase";
}

// The parts of an input string: "^ctrl", "arg", "node:out_arg:3" (functions), "node:3" (graphs).
struct InputName {
  bool control = false;
  std::string node;
  std::string arg;  // function style only
  int index = 0;
};

InputName parse_input(const std::string& s, bool function_style) {
  InputName in;
  std::string_view v = s;
  if (!v.empty() && v[0] == '^') {
    in.control = true;
    v.remove_prefix(1);
  }
  auto first = v.find(':');
  in.node = std::string(v.substr(0, first));
  if (first == std::string_view::npos) return in;
  std::string_view rest = v.substr(first + 1);
  auto to_int = [](std::string_view t) {
    int n = 0;
    for (char c : t) {
      if (c < '0' || c > '9') return -1;
      n = n * 10 + (c - '0');
      if (n > 1'000'000) return -1;
    }
    return t.empty() ? -1 : n;
  };
  if (function_style) {
    auto second = rest.find(':');
    in.arg = std::string(rest.substr(0, second));
    in.index = second == std::string_view::npos ? 0 : to_int(rest.substr(second + 1));
  } else {
    in.index = to_int(rest);
  }
  return in;
}

}  // namespace

size_t branch_index(const Tensor& selector, bool is_if, size_t num_branches) {
  if (is_if) {
    // TensorFlow's truthiness: a scalar is true when non-zero (strings: non-empty); any other
    // tensor is true when it has elements.
    bool truth;
    if (selector.rank() == 0) {
      truth = selector.dtype() == DType::kString ? !selector.strings()[0].empty()
                                                 : element_as_double(selector, 0) != 0;
    } else {
      truth = selector.num_elements() > 0;
    }
    return truth ? 0 : 1;
  }
  // Case: an index out of range selects the last branch (the default).
  double idx = selector.num_elements() == 1 ? element_as_double(selector, 0) : -1;
  if (idx < 0 || idx >= static_cast<double>(num_branches)) return num_branches - 1;
  return static_cast<size_t>(idx);
}

namespace {

// What inlining may still spend while building one graph (shared with branch graphs), and
// which library functions may write variables (their calls are kept even when unused).
struct InlineBudget {
  int64_t limit = 0;
  int64_t file_nodes = 0;
  int64_t used = 0;
  std::set<std::string, std::less<>> writing_functions;

  explicit InlineBudget(const format::SavedModel& model);

  // A lower bound of what inlining `f` spends, capped at limit + 1: f's nodes + 1, plus the
  // lower bound of every call among the nodes its results and variable writes need (If/Case:
  // the cheapest branch, as a constant condition inlines one). Exact for a fan-out of plain
  // calls, so a call tree of 2^40 functions fails before one of them is inlined instead of
  // after `limit` nodes are built (seconds, and tens of seconds under ASan).
  int64_t certain_cost(const format::SavedModel& model, const tf::FunctionDef& f, int depth = 0);

 private:
  std::map<std::string, int64_t, std::less<>> certain_cost_of_;
  std::set<std::string, std::less<>> counting_;  // on the current chain: a recursive call adds 0
};

bool is_function_call(const format::SavedModel& model, const tf::NodeDef& node) {
  return is_call_op(node.op()) || model.function(node.op()) != nullptr || is_if_op(node.op()) ||
         is_case_op(node.op());
}

// The library functions a node calls (call ops, function-named ops, If/Case branches).
std::vector<std::string> callees(const format::SavedModel& model, const tf::NodeDef& node) {
  std::vector<std::string> names;
  if (model.function(node.op()) != nullptr) names.push_back(node.op());
  for (const auto& [key, value] : node.attr()) {
    if (value.has_func()) names.push_back(value.func().name());
    for (const auto& f : value.list().func()) names.push_back(f.name());
  }
  return names;
}

// A node that may write a variable by itself: a registered variable-writing op, or an op we
// do not implement that is handed a resource (a DT_RESOURCE argument or a VarHandleOp).
bool writes_by_itself(const tf::NodeDef& node, const std::set<std::string>& resource_names,
                      bool function_style) {
  if (const ops::OpSpec* spec = ops::OpRegistry::global().find(node.op()); spec != nullptr) {
    return spec->writes_variable;
  }
  for (const auto& in : node.input()) {
    if (resource_names.count(parse_input(in, function_style).node)) return true;
  }
  return false;
}

std::set<std::string> resource_names_of(const tf::FunctionDef& f) {
  std::set<std::string> names;
  for (const auto& arg : f.signature().input_arg()) {
    if (arg.type() == kDtResource) names.insert(arg.name());
  }
  for (const auto& n : f.node_def()) {
    if (n.op() == "VarHandleOp") names.insert(n.name());
  }
  return names;
}

InlineBudget::InlineBudget(const format::SavedModel& model) {
  file_nodes = model.graph().node_size();
  // Functions that write variables directly, then (worklist over callers) every function that
  // calls one: linear in the library size, whatever the call depth.
  std::map<std::string, std::vector<std::string>> callers;
  std::vector<std::string> work;
  for (const auto& f : model.graph().library().function()) {
    file_nodes += f.node_def_size();
    const std::set<std::string> resources = resource_names_of(f);
    bool writes = false;
    for (const auto& n : f.node_def()) {
      if (is_function_call(model, n)) {
        for (auto& c : callees(model, n)) callers[c].push_back(f.signature().name());
      } else if (writes_by_itself(n, resources, true)) {
        writes = true;
      }
    }
    if (writes && writing_functions.insert(f.signature().name()).second)
      work.push_back(f.signature().name());
  }
  while (!work.empty()) {
    std::string name = std::move(work.back());
    work.pop_back();
    for (const auto& caller : callers[name]) {
      if (writing_functions.insert(caller).second) work.push_back(caller);
    }
  }
  limit = std::max(kMinInlineBudget, kInlineBudgetPerFileNode * file_nodes);
}

int64_t InlineBudget::certain_cost(const format::SavedModel& model, const tf::FunctionDef& f,
                                   int depth) {
  const std::string& name = f.signature().name();
  if (auto it = certain_cost_of_.find(name); it != certain_cost_of_.end()) return it->second;
  // Past the inliner's depth limit, or back at a function being counted, nothing more is
  // certain (the inliner fails there with its own error).
  if (depth >= kMaxCallDepth || !counting_.insert(name).second) return 0;
  const auto& nodes = f.node_def();
  std::map<std::string_view, int> index_of;
  for (int i = 0; i < nodes.size(); ++i) index_of.emplace(nodes[i].name(), i);
  std::vector<int> stack;
  auto push = [&](const std::string& input) {
    if (auto it = index_of.find(parse_input(input, true).node); it != index_of.end())
      stack.push_back(it->second);
  };
  for (const auto& [key, value] : f.ret()) push(value);
  for (int i = 0; i < nodes.size(); ++i) {
    const tf::NodeDef& n = nodes[i];
    bool writes = false;
    if (is_function_call(model, n)) {
      for (const auto& c : callees(model, n)) writes = writes || writing_functions.count(c) > 0;
    } else if (const ops::OpSpec* spec = ops::OpRegistry::global().find(n.op()); spec != nullptr) {
      writes = spec->writes_variable;
    }
    if (writes) stack.push_back(i);
  }
  auto cost_of = [&](const std::string& callee) -> int64_t {
    const tf::FunctionDef* g = model.function(callee);
    return g == nullptr ? 0 : certain_cost(model, *g, depth + 1);
  };
  int64_t cost = nodes.size() + 1;
  std::vector<char> kept(static_cast<size_t>(nodes.size()), 0);
  while (!stack.empty() && cost <= limit) {
    const int i = stack.back();
    stack.pop_back();
    if (kept[static_cast<size_t>(i)] != 0) continue;
    kept[static_cast<size_t>(i)] = 1;
    const tf::NodeDef& n = nodes[i];
    for (const auto& in : n.input()) push(in);
    const std::string& op = n.op();
    if (is_call_op(op)) {
      if (auto a = n.attr().find("f"); a != n.attr().end() && a->second.has_func())
        cost += cost_of(a->second.func().name());
    } else if (model.function(op) != nullptr) {
      cost += cost_of(op);
    } else if (is_if_op(op) || is_case_op(op)) {
      std::vector<std::string> branches;
      for (const char* key : {"then_branch", "else_branch"}) {
        if (auto a = n.attr().find(key); a != n.attr().end() && a->second.has_func())
          branches.push_back(a->second.func().name());
      }
      if (auto a = n.attr().find("branches"); a != n.attr().end()) {
        for (const auto& b : a->second.list().func()) branches.push_back(b.name());
      }
      int64_t cheapest = branches.empty() ? 0 : limit + 1;
      for (const auto& b : branches) cheapest = std::min(cheapest, cost_of(b));
      cost += cheapest;
    }
    cost = std::min(cost, limit + 1);
  }
  counting_.erase(name);
  certain_cost_of_.emplace(name, cost);
  return cost;
}

class Builder {
 public:
  Builder(const format::SavedModel& model, Graph& graph, std::shared_ptr<InlineBudget> budget)
      : model_(model), graph_(graph), budget_(std::move(budget)) {}

  int add_arg(const std::string& name, int index, DType dtype = DType::kInvalid,
              PartialShape shape = PartialShape::unknown()) {
    Node n;
    n.name = name;
    n.op = kArgOp;
    n.arg_index = index;
    n.output_dtypes = {dtype};
    n.output_shapes = {std::move(shape)};
    const int id = append_node(graph_, std::move(n)).value();  // argument nodes cannot fail
    graph_.arg_nodes.push_back(id);
    return id;
  }

  Expected<int> add_const(const std::string& name, Tensor value) {
    Node n;
    n.name = name;
    n.op = "Const";
    n.attrs.set("value", std::move(value));
    n.attrs.set("dtype", n.attrs.get_tensor("value")->dtype());
    return add_node(std::move(n), "");
  }

  // Body of a FunctionDef, inlined under `scope`, with `args` bound to its input args.
  Expected<std::vector<Binding>> inline_function(const tf::FunctionDef& f,
                                                 const std::vector<Binding>& args,
                                                 const std::string& scope, int depth);

  // The top-level GraphDef (TF1), feeding `feeds` (node name -> arg binding), returning the
  // bindings of `fetches` ("node:k" names).
  Expected<std::vector<Binding>> inline_top_graph(const std::map<std::string, Binding>& feeds,
                                                  const std::vector<std::string>& fetches);

  Expected<int> add_node(Node n, const std::string& function_name) {
    n.function = function_name;
    return append_node(graph_, std::move(n));
  }

 private:
  // Shared by functions and the TF1 graph: processes `nodes` in dependency order.
  Expected<std::map<std::string, std::vector<Binding>>> inline_body(
      const google::protobuf::RepeatedPtrField<tf::NodeDef>& nodes,
      const std::map<std::string, Binding>& arg_bindings, bool function_style,
      const std::string& scope, const std::string& function_name, int depth,
      const std::set<std::string>* needed, const std::vector<std::string>& outer_refs);

  // TF1's tf.cond (Switch/Merge) and the deadness it spreads; nullopt for other live nodes.
  Expected<std::optional<std::vector<Binding>>> resolve_v1_cond(
      const tf::NodeDef& node, const std::vector<Binding>& inputs, bool dead_control,
      const std::map<std::string, int>& referenced, const std::string& scope,
      const std::string& function_name);

  Expected<std::vector<Binding>> process_node(
      const tf::NodeDef& node, std::vector<Binding> inputs, std::vector<int> control_nodes,
      const std::string& scope, const std::string& function_name, int depth, bool function_style,
      const std::map<std::string, int>& referenced, std::map<std::string, size_t>& out_arg_offsets);

  // Roots of a function body: the nodes its results name, and nodes that may write variables.
  std::set<std::string> function_roots(const google::protobuf::RepeatedPtrField<tf::NodeDef>& nodes,
                                       const std::map<std::string, Binding>& arg_bindings,
                                       const std::vector<std::string>& returned) const;

  const format::SavedModel& model_;
  Graph& graph_;
  std::shared_ptr<InlineBudget> budget_;
};

std::set<std::string> Builder::function_roots(
    const google::protobuf::RepeatedPtrField<tf::NodeDef>& nodes,
    const std::map<std::string, Binding>& arg_bindings,
    const std::vector<std::string>& returned) const {
  std::set<std::string> roots;
  for (const auto& r : returned) roots.insert(parse_input(r, true).node);
  std::set<std::string> resources;
  for (const auto& [name, b] : arg_bindings) {
    if (b.kind == Binding::Kind::kVariable) resources.insert(name);
  }
  for (const auto& n : nodes) {
    if (n.op() == "VarHandleOp") resources.insert(n.name());
  }
  for (const auto& n : nodes) {
    bool writes = false;
    if (is_function_call(model_, n)) {
      for (const auto& c : callees(model_, n))
        writes = writes || budget_->writing_functions.count(c);
    } else {
      writes = writes_by_itself(n, resources, true);
    }
    if (writes) roots.insert(n.name());
  }
  return roots;
}

std::string where(const std::string& function_name, const std::string& node) {
  return "node '" + node + "' in " +
         (function_name.empty() ? std::string("the top-level graph")
                                : "function '" + function_name + "'");
}

// Checks that `node` has as many data inputs (`count`; control inputs "^x" are not data inputs)
// as its op's TensorFlow OpDef declares: one per plain input arg, number_attr of them for an
// arg "N * T", the length of type_list_attr for an arg "Tin". An error like "expects 2 inputs
// (value, bias), has 1"; nothing is checked when a list size attribute is missing or of the
// wrong kind (the kernel or the attribute lookup names that).
Status check_input_count(const tf::NodeDef& node, const tf::OpDef& def, size_t count) {
  size_t expected = 0;
  std::string args;
  for (const auto& arg : def.input_arg()) {
    size_t n = 1;
    std::string size;
    const std::string& list_attr =
        !arg.number_attr().empty() ? arg.number_attr() : arg.type_list_attr();
    if (!list_attr.empty()) {
      auto it = node.attr().find(list_attr);
      if (it == node.attr().end()) return {};
      if (!arg.number_attr().empty() && it->second.value_case() == tf::AttrValue::kI &&
          it->second.i() >= 0) {
        n = static_cast<size_t>(it->second.i());
      } else if (!arg.type_list_attr().empty() && it->second.value_case() == tf::AttrValue::kList) {
        n = static_cast<size_t>(it->second.list().type_size());
      } else {
        return {};
      }
      size = "[" + list_attr + "=" + std::to_string(n) + "]";
    }
    expected += n;
    args += (args.empty() ? "" : ", ") + arg.name() + size;
  }
  if (count == expected) return {};
  return invalid_argument("expects " + std::to_string(expected) +
                          (expected == 1 ? " input (" : " inputs (") + args + "), has " +
                          std::to_string(count));
}

// Switch(data, pred) forwards data to output 1 when pred holds, else to output 0; the other
// output is dead, and so is every node with a dead input or control input. Merge forwards its
// first live input (output 1: that input's index). TensorFlow decides this per run; hubimg
// decides it while building, so the predicate must be a constant then: Keras' learning phase (a
// PlaceholderWithDefault of False that no signature feeds) is. A predicate known only at run
// time is refused by name.
Expected<std::optional<std::vector<Binding>>> Builder::resolve_v1_cond(
    const tf::NodeDef& node, const std::vector<Binding>& inputs, bool dead_control,
    const std::map<std::string, int>& referenced, const std::string& scope,
    const std::string& function_name) {
  const std::string& op = node.op();
  using Bindings = std::vector<Binding>;
  if (op == "Merge" || op == "RefMerge") {
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].kind == Binding::Kind::kDead) continue;
      HUBIMG_ASSIGN_OR_RETURN(const int index,
                              add_const(scope + node.name() + "/value_index",
                                        Tensor::scalar<int32_t>(static_cast<int32_t>(i))));
      return std::optional(Bindings{inputs[i], Binding::of_value({index, 0})});
    }
    return std::optional(Bindings{Binding::dead(), Binding::dead()});
  }
  bool dead = dead_control;
  for (const auto& b : inputs) dead = dead || b.kind == Binding::Kind::kDead;
  if (dead) {
    size_t outputs = 1;
    if (auto it = referenced.find(""); it != referenced.end())
      outputs = std::max(outputs, static_cast<size_t>(it->second));
    return std::optional(Bindings(outputs, Binding::dead()));
  }
  if (op != "Switch" && op != "RefSwitch") return std::optional<Bindings>();
  const std::string where_node = where(function_name, node.name()) + " (" + op + ")";
  if (inputs.size() != 2 || inputs[1].kind != Binding::Kind::kValue)
    return invalid_argument(where_node + ": takes data and a boolean predicate");
  const Node& pred = graph_.nodes[static_cast<size_t>(inputs[1].value.node)];
  const AttrValue* value = pred.op == "Const" ? pred.attrs.find("value") : nullptr;
  const Tensor* t = value != nullptr ? std::get_if<Tensor>(value) : nullptr;
  if (t == nullptr || t->dtype() != DType::kBool || t->num_elements() != 1) {
    return unimplemented(
        where_node + ": TF1 control flow on a predicate known only when the graph runs (from '" +
        pred.name +
        "'); hubimg resolves tf.cond while loading, so the predicate "
        "must be a constant, such as Keras' learning phase left at its default");
  }
  if (t->data<bool>()[0]) return std::optional(Bindings{Binding::dead(), inputs[0]});
  return std::optional(Bindings{inputs[0], Binding::dead()});
}

Expected<std::vector<Binding>> Builder::process_node(
    const tf::NodeDef& node, std::vector<Binding> inputs, std::vector<int> control_nodes,
    const std::string& scope, const std::string& function_name, int depth, bool function_style,
    const std::map<std::string, int>& referenced, std::map<std::string, size_t>& out_arg_offsets) {
  const std::string& op = node.op();
  const std::string name = scope + node.name();
  auto fail = [&](StatusCode code, const std::string& msg) {
    return Status(code, where(function_name, node.name()) + " (" + op + "): " + msg);
  };
  // The node's arity, against its op's OpDef, before any pass looks at its inputs. (A function
  // of the library named like an op is called instead, with its own arguments.)
  if (const tf::OpDef* def = ops::OpRegistry::global().find_op_def(op);
      def != nullptr && model_.function(op) == nullptr) {
    if (Status s = check_input_count(node, *def, inputs.size()); !s.ok()) {
      return fail(StatusCode::kInvalidArgument, s.message());
    }
  }
  auto inline_call = [&](const std::string& callee,
                         const std::vector<Binding>& args) -> Expected<std::vector<Binding>> {
    const tf::FunctionDef* f = model_.function(callee);
    if (f == nullptr) return fail(StatusCode::kNotFound, "calls unknown function '" + callee + "'");
    if (depth >= kMaxCallDepth) {
      return fail(StatusCode::kOutOfRange, "function calls nest deeper than " +
                                               std::to_string(kMaxCallDepth) + " (recursion?)");
    }
    auto outs = inline_function(*f, args, name + "/", depth + 1);
    if (!outs.ok()) return outs.status();
    // Function-style names of a call node's results: "call:output:i".
    if (is_call_op(op)) {
      out_arg_offsets["output"] = 0;
    } else {
      for (int i = 0; i < f->signature().output_arg_size(); ++i) {
        out_arg_offsets[f->signature().output_arg(i).name()] = static_cast<size_t>(i);
      }
    }
    return outs;
  };

  if (is_call_op(op)) {
    auto fattr = node.attr().find("f");
    if (fattr == node.attr().end() || !fattr->second.has_func()) {
      return fail(StatusCode::kInvalidArgument, "call without a function attribute 'f'");
    }
    return inline_call(fattr->second.func().name(), inputs);
  }
  if (model_.function(op) != nullptr) return inline_call(op, inputs);

  if (const ops::OpSpec* spec = ops::OpRegistry::global().find(op);
      spec != nullptr && spec->identity_like) {
    out_arg_offsets["output"] = 0;
    return inputs;
  }
  if (op == "NoOp" || op == "DisableCopyOnRead") return std::vector<Binding>{};

  const bool is_if = is_if_op(op);
  const bool is_case = is_case_op(op);
  if (is_if || is_case) {
    if (inputs.empty() || inputs[0].kind != Binding::Kind::kValue) {
      return fail(StatusCode::kInvalidArgument, "needs a condition or branch index input");
    }
    std::vector<std::string> branch_names;
    if (is_if) {
      for (const char* key : {"then_branch", "else_branch"}) {
        auto b = node.attr().find(key);
        if (b == node.attr().end())
          return fail(StatusCode::kInvalidArgument, std::string("missing ") + key);
        branch_names.push_back(b->second.func().name());
      }
    } else if (auto b = node.attr().find("branches"); b != node.attr().end()) {
      for (const auto& f : b->second.list().func()) branch_names.push_back(f.name());
    }
    if (branch_names.empty()) return fail(StatusCode::kInvalidArgument, "has no branches");
    std::vector<const tf::FunctionDef*> branches;
    for (const auto& b : branch_names) {
      const tf::FunctionDef* f = model_.function(b);
      if (f == nullptr) return fail(StatusCode::kNotFound, "branch function '" + b + "' not found");
      branches.push_back(f);
    }
    if (depth >= kMaxCallDepth) return fail(StatusCode::kOutOfRange, "branches nest too deep");
    std::vector<Binding> args(inputs.begin() + 1, inputs.end());
    out_arg_offsets["output"] = 0;
    const Node& cond = graph_.nodes[static_cast<size_t>(inputs[0].value.node)];
    if (cond.op == "Const") {  // known when the model loads: inline the branch taken
      auto value = cond.attrs.get_tensor("value");
      if (value.ok() && value->num_elements() == 1 && value->dtype() != DType::kString) {
        size_t taken = branch_index(*value, is_if, branches.size());
        return inline_function(*branches[taken], args, name + "/", depth + 1);
      }
    }
    // Decided at run time: each branch becomes a graph of its own that the executor runs.
    Node n;
    n.name = name;
    n.op = op;
    auto attrs = format::attrs_from_node(node);
    if (!attrs.ok()) return attrs.status().with_context(where(function_name, node.name()));
    n.attrs = std::move(attrs).value();
    n.inputs.push_back(inputs[0].value);
    for (const Binding& a : args) {
      if (a.kind == Binding::Kind::kValue) n.inputs.push_back(a.value);
    }
    for (size_t k = 0; k < branches.size(); ++k) {
      auto sub = std::make_shared<Graph>();
      sub->description = name + " branch " + std::to_string(k);
      Builder sub_builder(model_, *sub, budget_);
      std::vector<Binding> sub_args;
      int arg_index = 0;
      for (const Binding& a : args) {
        if (a.kind == Binding::Kind::kValue) {
          int id = sub_builder.add_arg("arg_" + std::to_string(arg_index), arg_index);
          ++arg_index;
          sub_args.push_back(Binding::of_value({id, 0}));
        } else {
          sub_args.push_back(a);
        }
      }
      auto outs = sub_builder.inline_function(*branches[k], sub_args, name + "/", depth + 1);
      if (!outs.ok()) return outs.status();
      for (const Binding& b : *outs) {
        if (b.kind != Binding::Kind::kValue) {
          return fail(StatusCode::kUnimplemented, "a branch returns a resource");
        }
        sub->outputs.push_back(b.value);
      }
      prune(*sub);
      n.branches.push_back(std::move(sub));
    }
    auto id = add_node(std::move(n), function_name);
    if (!id.ok()) return id.status();
    std::vector<Binding> outs;
    for (int i = 0; i < graph_.nodes[static_cast<size_t>(*id)].num_outputs; ++i) {
      outs.push_back(Binding::of_value({*id, i}));
    }
    return outs;
  }

  if (op == "VarHandleOp") {
    auto shared = node.attr().find("shared_name");
    const std::string& var_name = node.name();
    int idx = model_.variable_index_for_name(var_name);
    if (idx < 0 && shared != node.attr().end())
      idx = model_.variable_index_for_name(shared->second.s());
    if (idx < 0) return fail(StatusCode::kNotFound, "no variable named '" + var_name + "'");
    out_arg_offsets["resource"] = 0;
    return std::vector<Binding>{Binding::of_variable(idx)};
  }

  if (op == "VariableV2" || op == "Variable") {
    // A TF1 reference variable (tf.compat.v1 graphs, TF-Slim and TF1 Hub modules): its users read
    // the value it holds, as a ReadVariableOp of a resource variable gives it. Ops that write
    // through the reference (Assign, AssignSub: TF1 training graphs) are not implemented and
    // fail by name when they survive pruning.
    const int idx = model_.variable_index_for_name(node.name());
    if (idx < 0) return fail(StatusCode::kNotFound, "no variable named '" + node.name() + "'");
    Node read;
    read.name = name;
    read.op = "ReadVariableOp";
    read.attrs.set("dtype", model_.variables()[static_cast<size_t>(idx)].dtype);
    read.control_inputs = std::move(control_nodes);
    read.variables.push_back(idx);
    HUBIMG_ASSIGN_OR_RETURN(const int id, add_node(std::move(read), function_name));
    out_arg_offsets["ref"] = 0;
    return std::vector<Binding>{Binding::of_value({id, 0})};
  }

  if (op == "ResourceGather") {
    // Rows of a variable (Keras Embedding: the position embeddings of ViT-style models) are
    // GatherV2(ReadVariableOp(resource), indices, axis 0): built so, the read stays the one
    // place a variable enters the graph, which freezing and differentiation look for.
    if (inputs.size() != 2 || inputs[0].kind != Binding::Kind::kVariable ||
        inputs[1].kind != Binding::Kind::kValue) {
      return fail(StatusCode::kInvalidArgument, "needs a variable and indices as its inputs");
    }
    const int idx = inputs[0].variable;
    Node read;
    read.name = name + "/ReadVariableOp";
    read.op = "ReadVariableOp";
    read.attrs.set("dtype", model_.variables()[static_cast<size_t>(idx)].dtype);
    read.control_inputs = std::move(control_nodes);
    read.variables.push_back(idx);
    HUBIMG_ASSIGN_OR_RETURN(const int read_id, add_node(std::move(read), function_name));
    HUBIMG_ASSIGN_OR_RETURN(const int axis, add_const(name + "/axis", Tensor::scalar<int32_t>(0)));
    auto attrs = format::attrs_from_node(node);
    if (!attrs.ok()) return attrs.status().with_context(where(function_name, node.name()));
    Node gather;
    gather.name = name;
    gather.op = "GatherV2";
    auto batch_dims = attrs->get_int("batch_dims", 0);
    if (!batch_dims.ok())
      return batch_dims.status().with_context(where(function_name, node.name()));
    gather.attrs.set("batch_dims", *batch_dims);
    gather.inputs = {{read_id, 0}, inputs[1].value, {axis, 0}};
    HUBIMG_ASSIGN_OR_RETURN(const int id, add_node(std::move(gather), function_name));
    out_arg_offsets["output"] = 0;
    return std::vector<Binding>{Binding::of_value({id, 0})};
  }

  Node n;
  n.name = name;
  n.op = op;
  auto attrs = format::attrs_from_node(node);
  if (!attrs.ok()) return attrs.status().with_context(where(function_name, node.name()));
  n.attrs = std::move(attrs).value();
  n.control_inputs = std::move(control_nodes);
  const ops::OpSpec* spec = ops::OpRegistry::global().find(op);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Binding& b = inputs[i];
    if (b.kind == Binding::Kind::kVariable) {
      n.variables.push_back(b.variable);
    } else if (b.kind == Binding::Kind::kValue) {
      n.inputs.push_back(b.value);
    } else if (spec != nullptr) {
      return fail(StatusCode::kInvalidArgument,
                  "input " + std::to_string(i) + " comes from an op without outputs");
    }
  }
  if (op == "VarIsInitializedOp") {
    n = Node{};
    n.name = name;
    HUBIMG_ASSIGN_OR_RETURN(int c, add_const(name, Tensor::scalar<bool>(true)));
    out_arg_offsets["is_initialized"] = 0;
    return std::vector<Binding>{Binding::of_value({c, 0})};
  }
  if (spec == nullptr) {
    // Not implemented: a placeholder that fails the build only if it survives pruning. Every
    // output name the body refers to resolves to its output 0. It may write the variables it
    // is given, so those keep it (and the failure).
    n.unimplemented = true;
    const bool may_write = !n.variables.empty();
    HUBIMG_ASSIGN_OR_RETURN(const int placeholder, add_node(std::move(n), function_name));
    if (may_write) graph_.side_effect_nodes.push_back(placeholder);
    size_t offset = 0;
    for (const auto& [arg, count] : referenced) {
      out_arg_offsets[arg] = offset;
      offset += static_cast<size_t>(count);
    }
    return std::vector<Binding>(offset, Binding::of_value({placeholder, 0}));
  }
  auto id = add_node(std::move(n), function_name);
  if (!id.ok()) return id.status();
  const Node& added = graph_.nodes[static_cast<size_t>(*id)];
  // Variable writes run even when no output needs them.
  if (added.spec->writes_variable) graph_.side_effect_nodes.push_back(*id);
  size_t offset = 0;
  auto sizes = ops::output_arg_sizes(*added.spec, added.attrs);
  for (size_t a = 0; a < added.spec->outputs.size(); ++a) {
    out_arg_offsets[added.spec->outputs[a].name] = offset;
    offset += (*sizes)[a];
  }
  std::vector<Binding> outs;
  for (int i = 0; i < added.num_outputs; ++i) outs.push_back(Binding::of_value({*id, i}));
  return outs;
}

Expected<std::map<std::string, std::vector<Binding>>> Builder::inline_body(
    const google::protobuf::RepeatedPtrField<tf::NodeDef>& nodes,
    const std::map<std::string, Binding>& arg_bindings, bool function_style,
    const std::string& scope, const std::string& function_name, int depth,
    const std::set<std::string>* needed, const std::vector<std::string>& outer_refs) {
  std::map<std::string, int> index_of;
  for (int i = 0; i < nodes.size(); ++i) {
    if (!index_of.emplace(nodes[i].name(), i).second) {
      return data_loss(where(function_name, nodes[i].name()) + ": duplicate node name");
    }
  }
  // The outputs each node's users name: node -> output arg ("" in graphs) -> how many of the
  // arg's outputs are named (the highest index + 1). Only placeholders of unimplemented ops,
  // whose output args are unknown, need this.
  std::map<std::string, std::map<std::string, int>> referenced;
  auto note_reference = [&](const std::string& input) {
    InputName parsed = parse_input(input, function_style);
    if (parsed.control || parsed.index < 0 || (function_style && parsed.arg.empty())) return;
    int& count = referenced[parsed.node][parsed.arg];
    count = std::max(count, parsed.index + 1);
  };
  for (const auto& node : nodes) {
    for (const auto& in : node.input()) note_reference(in);
  }
  for (const auto& ref : outer_refs) note_reference(ref);
  // Kahn's algorithm over the body's data and control edges; a leftover node means a cycle.
  std::vector<std::vector<int>> users(static_cast<size_t>(nodes.size()));
  std::vector<int> pending(static_cast<size_t>(nodes.size()), 0);
  for (int i = 0; i < nodes.size(); ++i) {
    for (const auto& in : nodes[i].input()) {
      InputName parsed = parse_input(in, function_style);
      auto it = index_of.find(parsed.node);
      if (it == index_of.end()) {
        if (!parsed.control && arg_bindings.count(parsed.node)) continue;
        if (function_style && !parsed.control && parsed.arg.empty()) continue;  // checked later
        return data_loss(where(function_name, nodes[i].name()) + ": input '" + in +
                         "' names no node or argument");
      }
      users[static_cast<size_t>(it->second)].push_back(i);
      ++pending[static_cast<size_t>(i)];
    }
  }
  std::vector<int> ready;
  for (int i = 0; i < nodes.size(); ++i) {
    if (pending[static_cast<size_t>(i)] == 0) ready.push_back(i);
  }
  std::vector<int> order;
  while (!ready.empty()) {
    int i = ready.back();
    ready.pop_back();
    order.push_back(i);
    for (int u : users[static_cast<size_t>(i)]) {
      if (--pending[static_cast<size_t>(u)] == 0) ready.push_back(u);
    }
  }
  if (order.size() != static_cast<size_t>(nodes.size())) {
    return data_loss((function_name.empty() ? std::string("top-level graph")
                                            : "function '" + function_name + "'") +
                     " has a cycle");
  }
  // Nodes no output needs are skipped in TF1 graphs (savers, initializers, other signatures).
  std::set<int> keep;
  if (needed != nullptr) {
    std::vector<int> stack;
    for (const auto& name : *needed) {
      if (auto it = index_of.find(name); it != index_of.end()) stack.push_back(it->second);
    }
    while (!stack.empty()) {
      int i = stack.back();
      stack.pop_back();
      if (!keep.insert(i).second) continue;
      if (!function_style && arg_bindings.count(nodes[i].name())) continue;  // fed
      for (const auto& in : nodes[i].input()) {
        auto it = index_of.find(parse_input(in, function_style).node);
        if (it != index_of.end()) stack.push_back(it->second);
      }
    }
  }

  std::map<std::string, std::vector<Binding>> outputs;
  std::map<std::string, std::map<std::string, size_t>> arg_offsets;
  std::map<std::string, int> last_node_of;  // for control inputs
  std::set<std::string> dead_nodes;         // TF1 cond branches not taken
  for (int i : order) {
    if (needed != nullptr && !keep.count(i)) continue;
    const tf::NodeDef& node = nodes[i];
    if (auto fed = arg_bindings.find(node.name()); !function_style && fed != arg_bindings.end()) {
      outputs[node.name()] = {fed->second};
      arg_offsets[node.name()]["output"] = 0;
      continue;
    }
    std::vector<Binding> inputs;
    std::vector<int> controls;
    bool dead_control = false;
    for (const auto& in : node.input()) {
      InputName parsed = parse_input(in, function_style);
      if (parsed.index < 0) {
        return data_loss(where(function_name, node.name()) + ": malformed input '" + in + "'");
      }
      if (parsed.control) {
        dead_control = dead_control || dead_nodes.count(parsed.node) > 0;
        if (auto it = last_node_of.find(parsed.node); it != last_node_of.end() && it->second >= 0) {
          controls.push_back(it->second);
        }
        continue;
      }
      auto out_it = outputs.find(parsed.node);
      if (out_it == outputs.end()) {
        auto arg = arg_bindings.find(parsed.node);
        if (arg == arg_bindings.end() || !parsed.arg.empty()) {
          return data_loss(where(function_name, node.name()) + ": input '" + in +
                           "' names no node or argument");
        }
        inputs.push_back(arg->second);
        continue;
      }
      size_t flat = static_cast<size_t>(parsed.index);
      if (function_style) {
        const auto& offsets = arg_offsets[parsed.node];
        auto off = offsets.find(parsed.arg);
        if (off == offsets.end()) {
          return data_loss(where(function_name, node.name()) + ": input '" + in + "': node '" +
                           parsed.node + "' has no output named '" + parsed.arg + "'");
        }
        flat += off->second;
      }
      if (flat >= out_it->second.size()) {
        return data_loss(where(function_name, node.name()) + ": input '" + in + "': node '" +
                         parsed.node + "' has only " + std::to_string(out_it->second.size()) +
                         " outputs");
      }
      inputs.push_back(out_it->second[flat]);
    }
    if (!function_style) {
      // TF1 control flow (tf.cond before TF2: Switch and Merge), resolved while building.
      HUBIMG_ASSIGN_OR_RETURN(std::optional<std::vector<Binding>> resolved,
                              resolve_v1_cond(node, inputs, dead_control, referenced[node.name()],
                                              scope, function_name));
      if (resolved) {
        bool all_dead = !resolved->empty();
        for (const auto& b : *resolved) all_dead = all_dead && b.kind == Binding::Kind::kDead;
        if (all_dead) dead_nodes.insert(node.name());
        outputs[node.name()] = std::move(*resolved);
        arg_offsets[node.name()][""] = 0;
        continue;
      }
    }
    if (node.op() == "PlaceholderWithDefault" && !inputs.empty()) {
      outputs[node.name()] = {inputs[0]};
      arg_offsets[node.name()]["output"] = 0;
      continue;
    }
    if (node.op() == "Placeholder") {
      return invalid_argument(where(function_name, node.name()) + ": placeholder is not fed");
    }
    std::map<std::string, size_t> offsets;
    size_t before = graph_.nodes.size();
    auto result = process_node(node, std::move(inputs), std::move(controls), scope, function_name,
                               depth, function_style, referenced[node.name()], offsets);
    if (!result.ok()) return result.status();
    last_node_of[node.name()] =
        graph_.nodes.size() > before ? static_cast<int>(graph_.nodes.size()) - 1 : -1;
    outputs[node.name()] = std::move(result).value();
    arg_offsets[node.name()] = std::move(offsets);
  }
  // Callers look outputs up by "node" and flat index (graphs) or via the ret map (functions):
  // expose the offsets through a side table keyed "node:arg".
  std::map<std::string, std::vector<Binding>> named;
  for (auto& [node, bindings] : outputs) {
    for (const auto& [arg, off] : arg_offsets[node]) {
      std::vector<Binding> tail;
      if (off <= bindings.size())
        tail.assign(bindings.begin() + static_cast<long>(off), bindings.end());
      named[node + ":" + arg] = std::move(tail);
    }
    named[node] = std::move(bindings);
  }
  return named;
}

Expected<std::vector<Binding>> Builder::inline_function(const tf::FunctionDef& f,
                                                        const std::vector<Binding>& args,
                                                        const std::string& scope, int depth) {
  const std::string& fname = f.signature().name();
  if (static_cast<size_t>(f.signature().input_arg_size()) != args.size()) {
    return invalid_argument("function '" + fname + "' takes " +
                            std::to_string(f.signature().input_arg_size()) +
                            " arguments, called with " + std::to_string(args.size()));
  }
  std::map<std::string, Binding> arg_bindings;
  for (int i = 0; i < f.signature().input_arg_size(); ++i) {
    arg_bindings[f.signature().input_arg(i).name()] = args[static_cast<size_t>(i)];
  }
  if (budget_->used + budget_->certain_cost(model_, f) > budget_->limit) {
    return out_of_range("function '" + fname + "': inlining the function calls needs more than " +
                        std::to_string(budget_->limit) + " nodes (the budget is " +
                        std::to_string(kInlineBudgetPerFileNode) + " per node in the file, " +
                        std::to_string(budget_->file_nodes) + " nodes, and at least " +
                        std::to_string(kMinInlineBudget) + "); its calls fan out too much");
  }
  budget_->used += f.node_def_size() + 1;
  std::vector<std::string> returned;
  for (const auto& [name, value] : f.ret()) returned.push_back(value);
  // Only what the results or a variable write need is inlined: an unused call costs nothing.
  const std::set<std::string> roots = function_roots(f.node_def(), arg_bindings, returned);
  HUBIMG_ASSIGN_OR_RETURN(auto body, inline_body(f.node_def(), arg_bindings, true, scope, fname,
                                                 depth, &roots, returned));
  std::vector<Binding> results;
  for (const auto& out : f.signature().output_arg()) {
    auto ret = f.ret().find(out.name());
    if (ret == f.ret().end()) {
      return data_loss("function '" + fname + "' has no ret entry for output '" + out.name() + "'");
    }
    InputName parsed = parse_input(ret->second, true);
    if (parsed.arg.empty()) {  // returns an argument directly
      auto a = arg_bindings.find(parsed.node);
      if (a == arg_bindings.end()) {
        return data_loss("function '" + fname + "' returns unknown '" + ret->second + "'");
      }
      results.push_back(a->second);
      continue;
    }
    auto it = body.find(parsed.node + ":" + parsed.arg);
    if (it == body.end() || parsed.index < 0 ||
        static_cast<size_t>(parsed.index) >= it->second.size()) {
      return data_loss("function '" + fname + "' returns unknown '" + ret->second + "'");
    }
    results.push_back(it->second[static_cast<size_t>(parsed.index)]);
  }
  return results;
}

Expected<std::vector<Binding>> Builder::inline_top_graph(
    const std::map<std::string, Binding>& feeds, const std::vector<std::string>& fetches) {
  std::set<std::string> needed;
  for (const auto& f : fetches) needed.insert(parse_input(f, false).node);
  // Only the nodes the fetches depend on go to inline_body, whose analysis
  // is linear in the nodes it is given: a file with thousands of signatures over one large
  // graph then costs the sum of the signatures' own graphs, not signatures x graph. The name
  // index is built once per model. Duplicate names keep the whole graph (inline_body reports
  // them).
  const auto& all = model_.graph().node();
  const auto index = model_.graph_index();
  google::protobuf::RepeatedPtrField<tf::NodeDef> subset;
  const bool use_subset = !index->duplicate_names;
  if (use_subset) {
    std::vector<char> in_closure(static_cast<size_t>(all.size()), 0);
    std::vector<int> stack;
    for (const auto& name : needed) {
      if (auto it = index->by_name.find(name); it != index->by_name.end())
        stack.push_back(it->second);
    }
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      if (in_closure[static_cast<size_t>(i)]) continue;
      in_closure[static_cast<size_t>(i)] = 1;
      for (const auto& in : all[i].input()) {
        const std::string node = parse_input(in, false).node;
        if (auto it = index->by_name.find(node); it != index->by_name.end())
          stack.push_back(it->second);
      }
    }
    for (int i = 0; i < all.size(); ++i) {
      if (in_closure[static_cast<size_t>(i)]) *subset.Add() = all[i];
    }
  }
  HUBIMG_ASSIGN_OR_RETURN(
      auto body, inline_body(use_subset ? subset : all, feeds, false, "", "", 0, &needed, fetches));
  std::vector<Binding> results;
  for (const auto& f : fetches) {
    InputName parsed = parse_input(f, false);
    auto it = body.find(parsed.node);
    if (it == body.end() || parsed.index < 0 ||
        static_cast<size_t>(parsed.index) >= it->second.size()) {
      return not_found("the graph has no tensor '" + f + "'");
    }
    if (it->second[static_cast<size_t>(parsed.index)].kind == Binding::Kind::kDead) {
      return invalid_argument("tensor '" + f +
                              "' is on a tf.cond branch that its constant predicate does not take");
    }
    results.push_back(it->second[static_cast<size_t>(parsed.index)]);
  }
  return results;
}

}  // namespace

bool op_is_runnable(std::string_view op) {
  // The ops Builder::process_node and resolve_v1_cond turn into other nodes or bindings.
  static constexpr std::string_view kResolvedByTheBuilder[] = {"DisableCopyOnRead",
                                                               "Merge",
                                                               "NoOp",
                                                               "PartitionedCall",
                                                               "Placeholder",
                                                               "PlaceholderWithDefault",
                                                               "RefMerge",
                                                               "RefSwitch",
                                                               "ResourceGather",
                                                               "StatefulPartitionedCall",
                                                               "Switch",
                                                               "VarHandleOp",
                                                               "VarIsInitializedOp",
                                                               "Variable",
                                                               "VariableV2"};
  return ops::OpRegistry::global().find(op) != nullptr ||
         std::ranges::find(kResolvedByTheBuilder, op) != std::end(kResolvedByTheBuilder);
}

Expected<std::shared_ptr<Graph>> build_function_graph(const format::SavedModel& model,
                                                      const format::ConcreteFunction& function,
                                                      const std::string& description) {
  auto graph = std::make_shared<Graph>();
  graph->description = description;
  const tf::FunctionDef* f = model.function(function.name);
  if (f == nullptr) {
    return not_found(description + ": function '" + function.name + "' is not in the library");
  }
  Builder builder(model, *graph, std::make_shared<InlineBudget>(model));
  std::vector<Binding> args;
  for (size_t i = 0; i < function.flat_inputs.size(); ++i) {
    const auto& spec = function.flat_inputs[i];
    int id = builder.add_arg(spec.name.empty() ? "input_" + std::to_string(i) : spec.name,
                             static_cast<int>(i), spec.dtype, spec.shape);
    args.push_back(Binding::of_value({id, 0}));
  }
  std::map<std::string_view, const tf::NodeDef*> graph_node_by_name;  // the last of a name wins
  if (!function.bound_inputs.empty()) {
    for (const auto& n : model.graph().node()) graph_node_by_name[n.name()] = &n;
  }
  for (int node_id : function.bound_inputs) {
    if (int v = model.variable_index_for_node(node_id); v >= 0) {
      args.push_back(Binding::of_variable(v));
      continue;
    }
    std::string const_op = model.constant_op_for_node(node_id);
    const tf::NodeDef* const_node = nullptr;
    if (auto it = graph_node_by_name.find(const_op);
        !const_op.empty() && it != graph_node_by_name.end()) {
      const_node = it->second;
    }
    if (const_node != nullptr) {
      auto attrs = format::attrs_from_node(*const_node);
      if (!attrs.ok()) return attrs.status().with_context("captured constant '" + const_op + "'");
      auto value = attrs->get_tensor("value");
      if (!value.ok()) return value.status().with_context("captured constant '" + const_op + "'");
      HUBIMG_ASSIGN_OR_RETURN(int id, builder.add_const(const_op, *value));
      args.push_back(Binding::of_value({id, 0}));
      continue;
    }
    // Assets and other resources: a string constant naming the object, enough for functions
    // that only pass them along; using them as data is reported by the consuming op.
    HUBIMG_ASSIGN_OR_RETURN(int id, builder.add_const("capture_" + std::to_string(node_id),
                                                      Tensor::from_strings({}, {""})));
    args.push_back(Binding::of_value({id, 0}));
  }
  auto outs = builder.inline_function(*f, args, "", 0);
  if (!outs.ok()) return outs.status().with_context(description);
  for (size_t i = 0; i < outs->size(); ++i) {
    const Binding& b = (*outs)[i];
    if (b.kind != Binding::Kind::kValue) {
      return unimplemented(description + ": output " + std::to_string(i) + " is not a tensor");
    }
    graph->outputs.push_back(b.value);
  }
  prune(*graph);
  HUBIMG_RETURN_IF_ERROR(check_implemented(*graph).with_context(description));
  return graph;
}

Expected<std::shared_ptr<Graph>> build_tf1_signature_graph(const format::SavedModel& model,
                                                           const format::Signature& signature) {
  auto graph = std::make_shared<Graph>();
  graph->description = "signature '" + signature.key + "'";
  Builder builder(model, *graph, std::make_shared<InlineBudget>(model));
  std::map<std::string, Binding> feeds;
  int index = 0;
  for (const auto& [key, info] : signature.inputs) {
    int id = builder.add_arg(key, index++);
    feeds[parse_input(info.tensor_name, false).node] = Binding::of_value({id, 0});
  }
  std::vector<std::string> fetches;
  for (const auto& [key, info] : signature.outputs) fetches.push_back(info.tensor_name);
  auto outs = builder.inline_top_graph(feeds, fetches);
  if (!outs.ok()) return outs.status().with_context(graph->description);
  for (const auto& b : *outs) {
    if (b.kind != Binding::Kind::kValue) {
      return unimplemented(graph->description + ": an output is not a tensor");
    }
    graph->outputs.push_back(b.value);
  }
  prune(*graph);
  HUBIMG_RETURN_IF_ERROR(check_implemented(*graph).with_context(graph->description));
  return graph;
}

}  // namespace hubimg::graph
