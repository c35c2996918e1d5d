#include "train/graph_function.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "format/attr_proto.h"
#include "graph.pb.h"

namespace hubimg::train {
namespace {

struct TensorRef {
  std::string node;
  int index = 0;
};

// "node:3" or "node"; nullopt for control inputs ("^node") and malformed names.
std::optional<TensorRef> parse_tensor(const std::string& name) {
  if (name.empty() || name[0] == '^') return std::nullopt;
  const size_t colon = name.rfind(':');
  if (colon == std::string::npos) return TensorRef{name, 0};
  const std::string digits = name.substr(colon + 1);
  if (digits.empty() || digits.size() > 6 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return TensorRef{name.substr(0, colon), std::stoi(digits)};
}

std::string node_of(const std::string& input) {
  if (!input.empty() && input[0] == '^') return input.substr(1);
  auto ref = parse_tensor(input);
  return ref ? ref->node : input;
}

// What a tensor is once tf.cond is resolved: dead (a branch not taken), output `index` of a
// copied node, or the constant value_index of a Merge.
struct Resolved {
  bool dead = false;
  std::string node;
  int index = 0;
  int merge_index = -1;
};

class Converter {
 public:
  Converter(const format::SavedModel& model, format::SavedModelWriter& writer,
            const std::function<format::VariableHandle(int)>& handle_of, std::string what)
      : model_(model), writer_(writer), handle_of_(handle_of), what_(std::move(what)) {
    for (const auto& n : model.graph().node()) by_name_[n.name()] = &n;
  }

  Expected<GraphFunction> convert(const format::TensorInfo& input, const TensorRef& input_ref,
                                  const TensorRef& output_ref, const std::string& fn_name) {
    input_node_ = input_ref.node;
    HUBIMG_ASSIGN_OR_RETURN(auto order, dependency_order({output_ref.node}, true));
    for (const tf::NodeDef* node : order) HUBIMG_RETURN_IF_ERROR(resolve_node(*node));
    HUBIMG_ASSIGN_OR_RETURN(
        Resolved out, resolve_input(output_ref.node + ":" + std::to_string(output_ref.index)));
    if (out.dead) return fail(output_ref.node, "the output is on a tf.cond branch not taken");

    format::FunctionBuilder fb(fn_name, writer_.op_defs());
    GraphFunction result;
    emitted_[input_node_] = {fb.add_input("images", input.dtype, input.shape)};
    std::vector<std::string> roots;
    if (out.merge_index < 0) roots.push_back(out.node);
    HUBIMG_ASSIGN_OR_RETURN(auto copied, dependency_order(roots, false));
    for (const tf::NodeDef* node : copied) {
      if (node->name() == input_node_) continue;
      HUBIMG_RETURN_IF_ERROR(emit(*node, fb, result));
    }
    HUBIMG_ASSIGN_OR_RETURN(std::string y, tensor_name(out, fb));
    fb.add_output(y);
    auto fn = writer_.add_function(std::move(fb));
    if (!fn.ok()) return fn.status().with_context(what_);
    result.signature = std::move(fn).value();
    return result;
  }

 private:
  Status fail(const std::string& node, const std::string& message) const {
    return unimplemented(what_ + ": node '" + node + "': " + message);
  }

  const tf::NodeDef* find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }

  // The nodes `roots` depend on, inputs first (an explicit stack: graphs can be deep). With
  // `all_inputs`, through data and control inputs as the graph has them; otherwise through the
  // data inputs left once tf.cond is resolved: the nodes to copy. Stops at the image input.
  Expected<std::vector<const tf::NodeDef*>> dependency_order(const std::vector<std::string>& roots,
                                                             bool all_inputs) const {
    std::vector<const tf::NodeDef*> order;
    std::set<std::string> done, entered;
    std::vector<std::pair<const tf::NodeDef*, bool>> stack;
    auto push = [&](const std::string& name) -> Status {
      const tf::NodeDef* n = find(name);
      if (n == nullptr) return data_loss(what_ + ": no node '" + name + "' in the graph");
      if (!done.count(name)) stack.emplace_back(n, false);
      return {};
    };
    for (const auto& r : roots) HUBIMG_RETURN_IF_ERROR(push(r));
    while (!stack.empty()) {
      auto [node, expanded] = stack.back();
      stack.pop_back();
      if (done.count(node->name())) continue;
      if (expanded) {
        done.insert(node->name());
        order.push_back(node);
        continue;
      }
      if (!entered.insert(node->name()).second)
        return data_loss(what_ + ": the graph has a cycle through '" + node->name() + "'");
      stack.emplace_back(node, true);
      if (node->name() == input_node_) continue;
      for (const auto& in : node->input()) {
        if (all_inputs) {
          HUBIMG_RETURN_IF_ERROR(push(node_of(in)));
          continue;
        }
        if (!parse_tensor(in)) continue;
        HUBIMG_ASSIGN_OR_RETURN(Resolved r, resolve_input(in));
        if (!r.dead && r.merge_index < 0) HUBIMG_RETURN_IF_ERROR(push(r.node));
      }
    }
    return order;
  }

  Expected<Resolved> resolve_input(const std::string& input) const {
    auto ref = parse_tensor(input);
    if (!ref) return data_loss(what_ + ": malformed tensor name '" + input + "'");
    if (dead_.count(ref->node)) return Resolved{true};
    auto it = forwarded_.find(ref->node);
    if (it == forwarded_.end()) return Resolved{false, ref->node, ref->index};
    if (ref->index < 0 || static_cast<size_t>(ref->index) >= it->second.size())
      return data_loss(what_ + ": no tensor '" + input + "'");
    return it->second[static_cast<size_t>(ref->index)];
  }

  // The Switch predicate's constant, through Identity and unfed PlaceholderWithDefault.
  Expected<bool> constant_predicate(const tf::NodeDef& sw, const std::string& input) const {
    std::string name = node_of(input);
    for (int hops = 0; hops < 64; ++hops) {
      const tf::NodeDef* n = find(name);
      if (n == nullptr || name == input_node_) break;
      if ((n->op() == "Identity" || n->op() == "PlaceholderWithDefault") && n->input_size() > 0) {
        name = node_of(n->input(0));
        continue;
      }
      if (n->op() != "Const") break;
      HUBIMG_ASSIGN_OR_RETURN(AttrMap attrs, format::attrs_from_node(*n));
      auto value = attrs.get_tensor("value");
      if (value.ok() && value->dtype() == DType::kBool && value->num_elements() == 1)
        return value->data<bool>()[0];
      break;
    }
    return fail(sw.name(), "TF1 control flow on a predicate known only when the graph runs");
  }

  Status resolve_node(const tf::NodeDef& node) {
    if (node.name() == input_node_) return {};
    std::vector<Resolved> inputs;
    bool dead = false;
    for (const auto& in : node.input()) {
      if (!in.empty() && in[0] == '^') {
        dead = dead || dead_.count(in.substr(1)) > 0;
        continue;
      }
      HUBIMG_ASSIGN_OR_RETURN(Resolved r, resolve_input(in));
      inputs.push_back(r);
    }
    const std::string& op = node.op();
    if (op == "Merge" || op == "RefMerge") {
      for (size_t i = 0; i < inputs.size(); ++i) {
        if (inputs[i].dead) continue;
        Resolved index;
        index.merge_index = static_cast<int>(i);
        forwarded_[node.name()] = {inputs[i], index};
        return {};
      }
      dead_.insert(node.name());
      return {};
    }
    for (const auto& r : inputs) dead = dead || r.dead;
    if (dead) {
      dead_.insert(node.name());
      return {};
    }
    if (op == "Switch" || op == "RefSwitch") {
      if (inputs.size() != 2) return fail(node.name(), "Switch takes data and a predicate");
      HUBIMG_ASSIGN_OR_RETURN(bool pred, constant_predicate(node, node.input(1)));
      forwarded_[node.name()] = pred ? std::vector<Resolved>{Resolved{true}, inputs[0]}
                                     : std::vector<Resolved>{inputs[0], Resolved{true}};
    }
    return {};
  }

  Expected<std::string> tensor_name(const Resolved& r, format::FunctionBuilder& fb) {
    if (r.merge_index >= 0) return fb.add_const(Tensor::scalar<int32_t>(r.merge_index), "Merge");
    const auto& outs = emitted_[r.node];
    if (r.index < 0 || static_cast<size_t>(r.index) >= outs.size())
      return data_loss(what_ + ": no tensor '" + r.node + ":" + std::to_string(r.index) + "'");
    return outs[static_cast<size_t>(r.index)];
  }

  Status emit(const tf::NodeDef& node, format::FunctionBuilder& fb, GraphFunction& result) {
    const std::string& op = node.op();
    if (op == "VarHandleOp" || op == "VariableV2" || op == "Variable") {
      const int index = model_.variable_index_for_name(node.name());
      if (index < 0) return not_found(what_ + ": no variable '" + node.name() + "'");
      const format::VariableHandle h = handle_of_(index);
      const std::string resource =
          writer_.add_resource_input(fb, "unknown_" + std::to_string(result.captures.size()), h);
      result.captures.push_back(h);
      emitted_[node.name()] = {op == "VarHandleOp" ? resource
                                                   : fb.read_variable(resource, node.name())};
      return {};
    }
    if (op == "Placeholder") return fail(node.name(), "a placeholder fed besides the images");
    std::vector<std::string> inputs;
    for (const auto& in : node.input()) {
      if (!parse_tensor(in)) continue;
      HUBIMG_ASSIGN_OR_RETURN(Resolved r, resolve_input(in));
      HUBIMG_ASSIGN_OR_RETURN(std::string name, tensor_name(r, fb));
      inputs.push_back(std::move(name));
    }
    HUBIMG_ASSIGN_OR_RETURN(AttrMap attrs, format::attrs_from_node(node));
    format::Attrs copied;
    for (const auto& [name, value] : attrs.all()) {
      if (!name.starts_with("_")) copied.emplace_back(name, value);
    }
    emitted_[node.name()] = fb.add_node(op, inputs, std::move(copied), node.name());
    return {};
  }

  const format::SavedModel& model_;
  format::SavedModelWriter& writer_;
  const std::function<format::VariableHandle(int)>& handle_of_;
  std::string what_;
  std::string input_node_;
  std::map<std::string, const tf::NodeDef*> by_name_;
  std::set<std::string> dead_;                               // every output dead
  std::map<std::string, std::vector<Resolved>> forwarded_;   // Switch and Merge outputs
  std::map<std::string, std::vector<std::string>> emitted_;  // function tensor names
};

}  // namespace

Expected<GraphFunction> graph_signature_function(
    const format::SavedModel& model, const format::Signature& signature,
    const std::string& output_key, format::SavedModelWriter& writer,
    const std::function<format::VariableHandle(int)>& handle_of, const std::string& where) {
  const std::string what = where + ": signature '" + signature.key + "'";
  if (signature.inputs.size() != 1)
    return unimplemented(what + " must take exactly one tensor (the images)");
  const format::TensorInfo& input = signature.inputs.begin()->second;
  auto out = output_key.empty() && signature.outputs.size() == 1
                 ? signature.outputs.begin()
                 : signature.outputs.find(output_key);
  if (out == signature.outputs.end())
    return not_found(what + " has no output '" + output_key + "'");
  const auto input_ref = parse_tensor(input.tensor_name);
  const auto output_ref = parse_tensor(out->second.tensor_name);
  if (!input_ref || !output_ref) return data_loss(what + ": a malformed tensor name");
  Converter converter(model, writer, handle_of, what);
  return converter.convert(input, *input_ref, *output_ref,
                           writer.unique_function_name("tf1_signature_" + signature.key));
}

}  // namespace hubimg::train
