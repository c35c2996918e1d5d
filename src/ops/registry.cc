#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "graph.pb.h"
#include "ops/op_registry.h"

namespace hubimg::ops {

Status run_kernel(const Kernel& kernel, KernelContext& ctx) {
  Status s;
  try {
    s = kernel(ctx);
  } catch (const TensorTooLarge& e) {
    return ctx.error(StatusCode::kOutOfRange, e.what());
  } catch (const std::bad_alloc&) {
    return ctx.error(StatusCode::kOutOfRange, "out of memory");
  }
  // Every kernel error names its node, also where a kernel passes on a helper's status (an
  // attribute lookup, a shape check) as it is.
  if (!s.ok() && !s.message().starts_with("node '")) return ctx.error(s.code(), s.message());
  return s;
}

Status KernelContext::error(StatusCode code, const std::string& message) const {
  return {code, "node '" + std::string(node_name_) + "' (" + std::string(op_) + "): " + message};
}

void OpRegistry::add(OpSpec spec) {
  std::string name = spec.name;
  auto [it, inserted] = ops_.emplace(name, std::make_unique<OpSpec>(std::move(spec)));
  if (!inserted) {
    std::fprintf(stderr, "hubimg: op %s registered twice\n", name.c_str());
    std::abort();
  }
}

void OpRegistry::set_gradient(std::string_view name, GradientRule rule) {
  auto it = ops_.find(name);
  if (it == ops_.end() || it->second->gradient) {
    std::fprintf(stderr, "hubimg: gradient for op %.*s: %s\n", static_cast<int>(name.size()),
                 name.data(), it == ops_.end() ? "op not registered" : "registered twice");
    std::abort();
  }
  it->second->gradient = std::move(rule);
}

OpSpec& OpRegistry::entry(std::string_view name, const char* what) {
  auto it = ops_.find(name);
  if (it == ops_.end()) {
    std::fprintf(stderr, "hubimg: %s: op %.*s not registered\n", what,
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return *it->second;
}

void OpRegistry::set_fast_kernel(std::string_view name, Kernel kernel) {
  OpSpec& spec = entry(name, "fast kernel");
  if (spec.fast_kernel) {
    std::fprintf(stderr, "hubimg: fast kernel for op %.*s registered twice\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  spec.fast_kernel = std::move(kernel);
}

void OpRegistry::set_not_differentiable(std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) entry(name, "not_differentiable").not_differentiable = true;
}

void OpRegistry::set_writes_variable(std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) entry(name, "writes_variable").writes_variable = true;
}

void OpRegistry::set_identity_like(std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) entry(name, "identity_like").identity_like = true;
}

void OpRegistry::set_row_rule(RowRule rule, std::initializer_list<std::string_view> names) {
  for (std::string_view name : names) entry(name, "row_rule").row_rule = rule;
}

namespace {

[[noreturn]] void op_def_error(std::string_view op, const std::string& what) {
  std::fprintf(stderr, "hubimg: OpDef of op %.*s: %s\n", static_cast<int>(op.size()), op.data(),
               what.c_str());
  std::abort();
}

std::vector<std::shared_ptr<const tf::OpDef>> parse_op_list(std::string_view text) {
  tf::OpList list;
  if (!google::protobuf::TextFormat::ParseFromString(std::string(text), &list)) {
    op_def_error("?", "the OpList text does not parse");
  }
  std::vector<std::shared_ptr<const tf::OpDef>> defs;
  for (auto& op : *list.mutable_op()) defs.push_back(std::make_shared<tf::OpDef>(std::move(op)));
  return defs;
}

std::string describe(const std::vector<OutputArg>& args) {
  std::string s;
  for (const auto& a : args) {
    if (!s.empty()) s += ", ";
    s += a.name;
    if (!a.list_size_attr.empty()) s += "[" + a.list_size_attr + "]";
  }
  return "(" + s + ")";
}

}  // namespace

std::vector<OutputArg> output_args_of(const tf::OpDef& def) {
  std::vector<OutputArg> args;
  for (const auto& arg : def.output_arg()) {
    args.push_back(
        {arg.name(), !arg.number_attr().empty() ? arg.number_attr() : arg.type_list_attr()});
  }
  return args;
}

void OpRegistry::set_op_defs(std::string_view op_list) {
  for (auto& def : parse_op_list(op_list)) {
    OpSpec& spec = entry(def->name(), "OpDef");
    if (spec.op_def) op_def_error(def->name(), "registered twice");
    std::vector<OutputArg> derived = output_args_of(*def);
    if (spec.outputs.empty()) {
      spec.outputs = std::move(derived);
    } else if (spec.outputs.size() != derived.size() ||
               !std::equal(derived.begin(), derived.end(), spec.outputs.begin(),
                           [](const OutputArg& a, const OutputArg& b) {
                             return a.name == b.name && a.list_size_attr == b.list_size_attr;
                           })) {
      op_def_error(def->name(), "the entry's outputs " + describe(spec.outputs) +
                                    " disagree with the OpDef's " + describe(derived));
    }
    spec.op_def = std::move(def);
  }
}

void OpRegistry::add_graph_op_defs(std::string_view op_list) {
  for (auto& def : parse_op_list(op_list)) {
    if (ops_.count(def->name())) op_def_error(def->name(), "the op has an entry: use set_op_defs");
    const std::string name = def->name();
    if (!graph_op_defs_.emplace(name, std::move(def)).second) {
      op_def_error(name, "registered twice");
    }
  }
}

const tf::OpDef* OpRegistry::find_op_def(std::string_view name) const {
  if (const OpSpec* spec = find(name)) return spec->op_def.get();
  auto it = graph_op_defs_.find(name);
  return it == graph_op_defs_.end() ? nullptr : it->second.get();
}

std::vector<std::string> OpRegistry::graph_op_names() const {
  std::vector<std::string> out;
  for (const auto& [name, def] : graph_op_defs_) out.push_back(name);
  return out;
}

const tf::OpDef* find_op_def(std::string_view op) {
  return OpRegistry::global().find_op_def(op);
}

const OpSpec* OpRegistry::find(std::string_view name) const {
  auto it = ops_.find(name);
  return it == ops_.end() ? nullptr : it->second.get();
}

std::vector<std::string> OpRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, spec] : ops_) out.push_back(name);
  return out;
}

const OpRegistry& OpRegistry::global() {
  static const OpRegistry* registry = [] {
    auto* r = new OpRegistry();  // intentionally immortal: used until process exit
    register_array_ops(*r);
    register_space_batch_ops(*r);
    register_math_ops(*r);
    register_nn_ops(*r);
    register_image_ops(*r);
    register_random_ops(*r);
    register_state_ops(*r);
    register_resize_ops(*r);
    register_fused_ops(*r);
    register_loss_ops(*r);
    register_nn_grad_ops(*r);
    register_array_grad_ops(*r);
    register_graph_op_defs(*r);
    register_gradients(*r);
    register_fast_training_kernels(*r);
    return r;
  }();
  return *registry;
}

Expected<std::vector<size_t>> output_arg_sizes(const OpSpec& spec, const AttrMap& attrs) {
  std::vector<size_t> sizes;
  for (const auto& arg : spec.outputs) {
    if (arg.list_size_attr.empty()) {
      sizes.push_back(1);
      continue;
    }
    const AttrValue* v = attrs.find(arg.list_size_attr);
    if (v == nullptr) {
      return invalid_argument("op " + spec.name + " needs attribute '" + arg.list_size_attr +
                              "' to size output '" + arg.name + "'");
    }
    if (const auto* n = std::get_if<int64_t>(v)) {
      if (*n < 0 || *n > 1'000'000) {
        return invalid_argument("attribute '" + arg.list_size_attr + "' = " + std::to_string(*n));
      }
      sizes.push_back(static_cast<size_t>(*n));
    } else if (const auto* types = std::get_if<std::vector<DType>>(v)) {
      sizes.push_back(types->size());
    } else if (const auto* ints = std::get_if<std::vector<int64_t>>(v); ints && ints->empty()) {
      sizes.push_back(0);  // an empty list attribute
    } else {
      return invalid_argument("attribute '" + arg.list_size_attr + "' cannot size a list");
    }
  }
  return sizes;
}

Expected<std::vector<Tensor>> run_op(std::string_view op, std::span<const Tensor> inputs,
                                     const AttrMap& attrs, std::string_view node_name) {
  const OpSpec* spec = OpRegistry::global().find(op);
  if (spec == nullptr) return unimplemented("op '" + std::string(op) + "' is not implemented");
  HUBIMG_ASSIGN_OR_RETURN(auto sizes, output_arg_sizes(*spec, attrs));
  size_t total = 0;
  for (size_t s : sizes) total += s;
  KernelContext ctx(node_name, op, attrs, inputs, total);
  HUBIMG_RETURN_IF_ERROR(run_kernel(spec->kernel, ctx));
  for (size_t i = 0; i < total; ++i) {
    if (!ctx.outputs()[i].valid()) return ctx.error(StatusCode::kInternal, "output not set");
  }
  return std::move(ctx.outputs());
}

}  // namespace hubimg::ops
