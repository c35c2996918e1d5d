#include "hubimg/model.h"

#include <algorithm>
#include <mutex>
#include <set>

#include "core/file_io.h"
#include "core/thread_pool.h"
#include "exec/batch_runner.h"
#include "exec/executor.h"
#include "format/labels.h"
#include "format/saved_model.h"
#include "graph/autodiff.h"
#include "graph/batch_split.h"
#include "graph/graph.h"
#include "graph/optimize.h"

namespace hubimg {

struct Model::Impl {
  std::shared_ptr<format::SavedModel> saved;
  std::vector<std::unique_ptr<Variable>> variables;
  std::vector<Variable*> variable_ptrs;
  std::vector<std::string> warnings;
  bool optimize = true;

  mutable std::mutex mu;                                                // guards the caches
  mutable std::map<std::string, std::shared_ptr<graph::Graph>> graphs;  // by function name
  mutable std::map<std::string, Status> graph_errors;

  Expected<std::shared_ptr<graph::Graph>> graph_for(const format::ConcreteFunction& cf,
                                                    const std::string& description) const {
    std::lock_guard lock(mu);
    if (auto it = graphs.find(cf.name); it != graphs.end()) return it->second;
    if (auto it = graph_errors.find(cf.name); it != graph_errors.end()) return it->second;
    auto g = graph::build_function_graph(*saved, cf, description);
    if (!g.ok()) {
      graph_errors[cf.name] = g.status();
      return g.status();
    }
    graphs[cf.name] = *g;
    return *g;
  }

  Expected<std::shared_ptr<graph::Graph>> tf1_graph_for(const format::Signature& sig) const {
    std::lock_guard lock(mu);
    const std::string key = "signature:" + sig.key;
    if (auto it = graphs.find(key); it != graphs.end()) return it->second;
    if (auto it = graph_errors.find(key); it != graph_errors.end()) return it->second;
    auto g = graph::build_tf1_signature_graph(*saved, sig);
    if (!g.ok()) {
      graph_errors[key] = g.status();
      return g.status();
    }
    graphs[key] = *g;
    return *g;
  }

  // Optimized inference graphs by the raw graph they come from, with the variable versions
  // they were built for, whether their rows are independent (by input ranks), and what the
  // batch splitter needs to size chunks.
  struct Optimized {
    uint64_t version = 0;
    std::shared_ptr<graph::Graph> graph;
    std::map<std::vector<int>, bool> rows_independent;
    exec::ChunkCosts chunk_costs;
  };
  mutable std::map<const graph::Graph*, Optimized> optimized;

  uint64_t variables_version() const {
    uint64_t sum = 0;
    for (const Variable* v : variable_ptrs) sum += v->version();
    return sum;
  }

  Expected<std::shared_ptr<graph::Graph>> optimized_for(const graph::Graph& raw) const {
    const uint64_t version = variables_version();
    std::lock_guard lock(mu);
    auto it = optimized.find(&raw);
    if (it != optimized.end() && it->second.version == version) return it->second.graph;
    HUBIMG_ASSIGN_OR_RETURN(auto g, graph::optimize_for_inference(raw, variable_ptrs));
    Optimized entry{version, g, {}, {}};
    for (const auto& node : g->nodes) {
      if (node.op != "Const") continue;
      if (const auto* t = std::get_if<Tensor>(node.attrs.find("value"))) {
        entry.chunk_costs.weight_bytes += t->byte_size();
      }
    }
    optimized[&raw] = std::move(entry);
    return g;
  }

  static std::vector<int> ranks_of(std::span<const Tensor> inputs) {
    std::vector<int> ranks;
    for (const Tensor& t : inputs) ranks.push_back(t.dtype() == DType::kString ? -1 : t.rank());
    return ranks;
  }

  // Rows per chunk for this call, 0 to run the batch whole.
  int64_t chunk_rows(const graph::Graph& raw, const graph::Graph& optimized_graph,
                     std::span<const Tensor> inputs) const {
    if (inputs.empty() || inputs[0].rank() < 1) return 0;
    const std::vector<int> ranks = ranks_of(inputs);
    if (std::find(ranks.begin(), ranks.end(), -1) != ranks.end()) return 0;
    std::lock_guard lock(mu);
    auto it = optimized.find(&raw);
    if (it == optimized.end() || it->second.graph.get() != &optimized_graph) return 0;
    const int64_t rows = exec::chunk_rows_for(inputs[0].dim(0), ThreadPool::global().num_threads(),
                                              it->second.chunk_costs);
    if (rows == 0) return 0;
    auto [cached, inserted] = it->second.rows_independent.try_emplace(ranks, false);
    if (inserted) cached->second = graph::rows_are_independent(optimized_graph, ranks).independent;
    return cached->second ? rows : 0;
  }

  void record_run(const graph::Graph& raw, const exec::RunStats& stats, int64_t rows_per_run,
                  std::span<const Tensor> inputs, bool chunks_failed) const {
    std::lock_guard lock(mu);
    auto it = optimized.find(&raw);
    if (it == optimized.end()) return;
    if (chunks_failed) it->second.rows_independent[ranks_of(inputs)] = false;
    if (rows_per_run > 0 && stats.largest_value_bytes > 0) {
      it->second.chunk_costs.largest_value_bytes_per_row =
          stats.largest_value_bytes / static_cast<size_t>(rows_per_run);
    }
  }

  Expected<std::vector<Tensor>> run(const graph::Graph& raw, std::span<const Tensor> inputs,
                                    const CallOptions& options = {}) const {
    Profile* profile = options.profile;
    std::shared_ptr<graph::Graph> holder;
    const graph::Graph* gp = &raw;
    if (optimize && raw.side_effect_nodes.empty()) {
      HUBIMG_ASSIGN_OR_RETURN(holder, optimized_for(raw));
      gp = holder.get();
    }
    const graph::Graph& g = *gp;
    exec::RunStats stats;
    stats.time_ops = profile != nullptr;
    const int64_t rows = holder && options.split_batch ? chunk_rows(raw, g, inputs) : 0;
    bool chunks_failed = false;
    if (rows > 0) {
      auto out = exec::run_graph_in_row_chunks(g, inputs, variable_ptrs, rows, &stats);
      if (out.ok()) {
        record_run(raw, stats, rows, inputs, false);
        add_profile(stats, profile);
        return out;
      }
      // The whole batch tells whether the error is real; chunks are not tried again.
      stats = {};
      stats.time_ops = profile != nullptr;
      chunks_failed = true;
    }
    auto out = exec::run_graph(g, inputs, variable_ptrs, &stats);
    if (holder) {
      const int64_t batch = !inputs.empty() && inputs[0].rank() >= 1 ? inputs[0].dim(0) : 0;
      record_run(raw, stats, batch, inputs, chunks_failed);
    }
    add_profile(stats, profile);
    return out;
  }

  // A function's graph with its backward pass appended, and where each result sits among
  // the graph's outputs.
  struct GradGraph {
    std::shared_ptr<graph::Graph> graph;
    size_t num_forward_outputs = 0;
    std::vector<int> gradient_output;                           // per trainable variable; -1: zeros
    std::vector<std::pair<size_t, int>> input_gradient_output;  // (flat input, output or -1)
    std::vector<int> assigned;                                  // variable indices the graph writes
    int loss_output = -1;
  };
  mutable std::map<std::string, std::shared_ptr<const GradGraph>> grad_graphs;

  Expected<GradientResult> run_gradients(const graph::Graph& raw, const std::string& where,
                                         const std::string& cache_key,
                                         const std::vector<std::string>& output_keys,
                                         std::vector<Tensor> flat,
                                         const std::vector<std::string>& flat_names,
                                         const std::vector<bool>& differentiable_input,
                                         const GradientTargets& targets, Profile* profile,
                                         const CallOptions::NodeTap* tap = nullptr) const;

  std::vector<int> trainable_indices() const {
    std::vector<int> out;
    for (size_t i = 0; i < variable_ptrs.size(); ++i) {
      if (variable_ptrs[i]->trainable()) out.push_back(static_cast<int>(i));
    }
    return out;
  }

  // `raw`: the function's graph; `cotangent_outputs`: output positions that get a cotangent
  // argument (appended after the graph's inputs, in this order); `loss_output` >= 0: the
  // position of logits for the cross-entropy loss (labels come after the cotangents);
  // `wrt_inputs`: flat input positions to differentiate.
  Expected<std::shared_ptr<const GradGraph>> grad_graph_for(
      const std::string& key, const graph::Graph& raw, const std::vector<size_t>& cotangent_outputs,
      int loss_output, DType labels_dtype, const std::vector<size_t>& wrt_inputs) const {
    std::lock_guard lock(mu);
    if (auto it = grad_graphs.find(key); it != grad_graphs.end()) return it->second;
    auto gg = std::make_shared<GradGraph>();
    gg->graph = std::make_shared<graph::Graph>(raw);
    graph::Graph& g = *gg->graph;
    g.description += " (gradients)";
    gg->num_forward_outputs = g.outputs.size();
    graph::GradientRequest request;
    int next_arg = static_cast<int>(g.arg_nodes.size());
    auto add_arg = [&](const std::string& name) {
      graph::Node n;
      n.name = name;
      n.op = graph::kArgOp;
      n.arg_index = next_arg++;
      const int id = graph::append_node(g, std::move(n)).value();  // argument nodes cannot fail
      g.arg_nodes.push_back(id);
      return graph::ValueRef{id, 0};
    };
    for (size_t k : cotangent_outputs) {
      request.ys.push_back(g.outputs[k]);
      request.cotangents.push_back(add_arg("cotangent_" + std::to_string(k)));
    }
    if (loss_output >= 0) {
      graph::ValueRef labels = add_arg("labels");
      auto add = [&](const std::string& op, std::vector<graph::ValueRef> inputs,
                     AttrMap attrs) -> Expected<graph::ValueRef> {
        graph::Node n;
        n.name = "loss/" + op;
        n.op = op;
        n.inputs = std::move(inputs);
        n.attrs = std::move(attrs);
        HUBIMG_ASSIGN_OR_RETURN(const int id, graph::append_node(g, std::move(n)));
        return graph::ValueRef{id, 0};
      };
      HUBIMG_ASSIGN_OR_RETURN(graph::ValueRef xent,
                              add("SparseSoftmaxCrossEntropyWithLogits",
                                  {g.outputs[static_cast<size_t>(loss_output)], labels},
                                  {{"T", DType::kFloat32}, {"Tlabels", labels_dtype}}));
      HUBIMG_ASSIGN_OR_RETURN(
          graph::ValueRef axis,
          add("Const", {}, {{"value", Tensor::scalar<int32_t>(0)}, {"dtype", DType::kInt32}}));
      HUBIMG_ASSIGN_OR_RETURN(
          graph::ValueRef mean,
          add("Mean", {xent, axis},
              {{"T", DType::kFloat32}, {"Tidx", DType::kInt32}, {"keep_dims", false}}));
      HUBIMG_ASSIGN_OR_RETURN(
          graph::ValueRef one,
          add("Const", {}, {{"value", Tensor::scalar<float>(1.0f)}, {"dtype", DType::kFloat32}}));
      request.ys.push_back(mean);
      request.cotangents.push_back(one);
      gg->loss_output = static_cast<int>(g.outputs.size());
      g.outputs.push_back(mean);
    }
    const std::vector<int> trainable = trainable_indices();
    request.variables = trainable;
    for (size_t i : wrt_inputs) {
      for (int a : g.arg_nodes) {
        if (g.nodes[static_cast<size_t>(a)].arg_index == static_cast<int>(i)) {
          request.values.push_back({a, 0});
        }
      }
    }
    HUBIMG_ASSIGN_OR_RETURN(auto result, graph::append_gradients(g, request));
    for (const auto& v : result.variable_grads) {
      if (v.node < 0) {
        gg->gradient_output.push_back(-1);
      } else {
        gg->gradient_output.push_back(static_cast<int>(g.outputs.size()));
        g.outputs.push_back(v);
      }
    }
    for (size_t k = 0; k < wrt_inputs.size(); ++k) {
      const graph::ValueRef v =
          k < result.value_grads.size() ? result.value_grads[k] : graph::ValueRef{};
      if (v.node < 0) {
        gg->input_gradient_output.emplace_back(wrt_inputs[k], -1);
      } else {
        gg->input_gradient_output.emplace_back(wrt_inputs[k], static_cast<int>(g.outputs.size()));
        g.outputs.push_back(v);
      }
    }
    std::set<int> assigned;
    for (int s : g.side_effect_nodes) {
      for (int v : g.nodes[static_cast<size_t>(s)].variables) assigned.insert(v);
    }
    gg->assigned.assign(assigned.begin(), assigned.end());
    grad_graphs[key] = gg;
    return std::shared_ptr<const GradGraph>(gg);
  }

  static void add_profile(const exec::RunStats& stats, Profile* profile) {
    if (!profile) return;
    for (const auto& [op, ms] : stats.ms_by_op) profile->ms_by_op[op] += ms;
    for (const auto& [op, n] : stats.calls_by_op) profile->calls_by_op[op] += n;
    for (const auto& [node, ms] : stats.ms_by_node) profile->ms_by_node[node] += ms;
  }
};

namespace {

Status check_input(const std::string& where, const std::string& name, const Tensor& t,
                   const format::TensorSpec& spec) {
  if (!t.valid()) return invalid_argument(where + ": input '" + name + "' is empty");
  if (spec.dtype != DType::kInvalid && t.dtype() != spec.dtype) {
    return invalid_argument(where + ": input '" + name + "' must be " + dtype_name(spec.dtype) +
                            spec.shape.to_string() + ", got " + t.description());
  }
  if (!spec.shape.is_compatible_with(t.shape())) {
    return invalid_argument(where + ": input '" + name + "' must have shape " +
                            spec.shape.to_string() + " (-1: any size), got " + t.description());
  }
  return {};
}

std::string describe_trace(const format::ConcreteFunction& cf) {
  std::string s = "root.__call__ trace " + cf.name;
  if (cf.training) s += *cf.training ? " (training=True)" : " (training=False)";
  return s;
}

// Flattened (name, spec) pairs of a trace's tensor inputs, positional then keyword.
std::vector<std::pair<std::string, format::TensorSpec>> named_inputs(
    const format::ConcreteFunction& cf) {
  std::vector<std::pair<std::string, format::TensorSpec>> out;
  auto add = [&out](const std::string& name, const format::StructuredArg& a) {
    std::vector<format::TensorSpec> flat;
    a.flatten_tensors(flat);
    if (flat.size() == 1 && a.kind == format::StructuredArg::Kind::kTensor) {
      out.emplace_back(name, flat[0]);
    } else {
      for (size_t i = 0; i < flat.size(); ++i)
        out.emplace_back(name + "/" + std::to_string(i), flat[i]);
    }
  };
  for (const auto& [name, a] : cf.args) add(name, a);
  for (const auto& [name, a] : cf.kwargs) add(name, a);
  return out;
}

}  // namespace

Expected<Model> Model::load(const std::filesystem::path& path, const LoadOptions& options) {
  return catch_exceptions(path.string(), [&]() -> Expected<Model> {
    auto impl = std::make_shared<Impl>();
    impl->optimize = options.optimize;
    HUBIMG_ASSIGN_OR_RETURN(impl->saved, format::SavedModel::load(path));
    HUBIMG_RETURN_IF_ERROR(impl->saved->check_runnable());
    for (const auto& v : impl->saved->variables()) {
      impl->variables.push_back(std::make_unique<Variable>(v.name, v.value, v.trainable));
      impl->variable_ptrs.push_back(impl->variables.back().get());
    }
    // Build every inference graph now, so an unsupported op is reported before any run.
    bool call_ok = false;
    Status call_error;
    if (const auto& call = impl->saved->root_call()) {
      for (const auto& cf : call->concrete_functions) {
        if (cf.training.value_or(false) && !options.prepare_training) continue;
        auto g = impl->graph_for(cf, describe_trace(cf));
        if (cf.training.value_or(false)) {
          if (!g.ok()) impl->warnings.push_back(g.status().message());
        } else if (g.ok()) {
          call_ok = true;
        } else {
          call_error = g.status();
        }
      }
    }
    int signatures_ok = 0;
    for (const auto& [key, sig] : impl->saved->signatures()) {
      auto g = sig.function ? impl->graph_for(*sig.function, "signature '" + key + "'")
                            : impl->tf1_graph_for(sig);
      if (g.ok()) {
        ++signatures_ok;
      } else {
        impl->warnings.push_back("signature '" + key + "' cannot run: " + g.status().message());
      }
    }
    if (!call_ok && !call_error.ok()) {
      if (signatures_ok == 0) return call_error;
      impl->warnings.push_back("root.__call__ cannot run: " + call_error.message());
    }
    if (!call_ok && signatures_ok == 0 && !impl->warnings.empty()) {
      return unimplemented(path.string() + ": nothing in this model can run: " + impl->warnings[0]);
    }
    return Model(std::move(impl));
  });
}

bool Model::has_call() const {
  const auto& c = impl_->saved->root_call();
  return c && !c->concrete_functions.empty();
}

namespace {

// The trace of root.__call__ that takes `inputs` with `options`, and its flat inputs.
struct ResolvedCall {
  const format::ConcreteFunction* function = nullptr;
  std::vector<Tensor> flat;
  std::vector<std::string> flat_names;
  std::vector<bool> from_inputs;  // per flat input: given in `inputs` (not an argument)
};

// A scalar of `dtype` holding a Python number default (batch_norm_momentum=0.99).
std::optional<Tensor> default_tensor(const format::StructuredArg& value, DType dtype) {
  using K = format::StructuredArg::Kind;
  double v = 0;
  if (value.kind == K::kFloat) {
    v = value.float_value;
  } else if (value.kind == K::kInt) {
    v = static_cast<double>(value.int_value);
  } else {
    return std::nullopt;
  }
  switch (dtype) {
    case DType::kFloat32: return Tensor::scalar<float>(static_cast<float>(v));
    case DType::kFloat64: return Tensor::scalar<double>(v);
    default: return std::nullopt;
  }
}

// The tensor a call uses for parameter `name` when the caller leaves it out: its Python default,
// for scalar parameters only (hyperparameters; images never have one).
std::optional<Tensor> parameter_default(const format::FunctionObject& call, const std::string& name,
                                        const format::TensorSpec& spec) {
  auto def = call.parameter_defaults.find(name);
  if (def == call.parameter_defaults.end() || spec.shape.unknown_rank || !spec.shape.dims.empty()) {
    return std::nullopt;
  }
  return default_tensor(def->second, spec.dtype);
}

Expected<ResolvedCall> resolve_call(const format::SavedModel& saved,
                                    const std::map<std::string, Tensor>& inputs,
                                    const CallOptions& options) {
  const auto& call = saved.root_call();
  if (!call || call->concrete_functions.empty()) {
    return not_found(saved.directory().string() + ": the model has no root __call__");
  }
  bool any_training_arg = false;
  std::string mismatch;
  for (const auto& cf : call->concrete_functions) {
    if (cf.training) any_training_arg = true;
    if (cf.training.value_or(false) != options.training) continue;
    auto named = named_inputs(cf);
    // One positional tensor parameter is also reachable as "inputs" (TF Hub's convention).
    std::map<std::string, Tensor> aliased;
    const std::map<std::string, Tensor>* given = &inputs;
    if (inputs.size() == 1 && inputs.begin()->first == "inputs" && !cf.args.empty() &&
        cf.args[0].second.kind == format::StructuredArg::Kind::kTensor &&
        cf.args[0].first != "inputs") {
      aliased[cf.args[0].first] = inputs.begin()->second;
      given = &aliased;
    }
    ResolvedCall resolved;
    resolved.function = &cf;
    Status problem;
    size_t used_args = 0;
    std::vector<Tensor> defaults;  // scalars made from Python defaults of hyperparameters
    defaults.reserve(named.size());
    for (const auto& [name, spec] : named) {
      auto in = given->find(name);
      auto arg = options.arguments.find(name);
      const Tensor* t = in != given->end()               ? &in->second
                        : arg != options.arguments.end() ? &arg->second
                                                         : nullptr;
      if (arg != options.arguments.end()) ++used_args;
      if (t == nullptr) {
        if (auto value = parameter_default(*call, name, spec)) {
          defaults.push_back(std::move(*value));
          t = &defaults.back();
          ++used_args;
        }
      }
      if (t == nullptr) {
        problem = invalid_argument("missing input '" + name + "'");
        break;
      }
      problem = check_input(describe_trace(cf), name, *t, spec);
      if (!problem.ok()) break;
      resolved.flat.push_back(*t);
      resolved.flat_names.push_back(given == &aliased && in != given->end() ? "inputs" : name);
      resolved.from_inputs.push_back(in != given->end());
    }
    if (problem.ok() && given->size() + used_args != resolved.flat.size()) {
      problem =
          invalid_argument("got " + std::to_string(given->size()) + " inputs, the trace takes " +
                           std::to_string(named.size() - used_args));
    }
    // Python-valued keyword arguments must equal what the trace was made with.
    for (const auto& [name, value] : options.arguments) {
      if (!problem.ok()) break;
      bool found = false;
      for (const auto& [n, s] : named) found |= n == name;
      for (const auto& [n, a] : cf.kwargs) found |= n == name;
      for (const auto& [n, a] : cf.args) found |= n == name;
      if (!found) problem = invalid_argument("this trace has no argument '" + name + "'");
    }
    if (!problem.ok()) {
      if (mismatch.empty()) mismatch = problem.message();
      continue;
    }
    return resolved;
  }
  if (options.training && !any_training_arg) {
    return invalid_argument(saved.directory().string() +
                            ": root.__call__ has no `training` argument");
  }
  return invalid_argument(saved.directory().string() +
                          ": no trace of root.__call__ accepts these inputs" +
                          (mismatch.empty() ? std::string() : ": " + mismatch));
}

std::string output_key(const std::vector<std::string>& keys, size_t i) {
  return i < keys.size() ? keys[i] : "output_" + std::to_string(i);
}

bool is_float(DType d) {
  return d == DType::kFloat32 || d == DType::kFloat64;
}

}  // namespace

Expected<std::map<std::string, Tensor>> Model::call(const std::map<std::string, Tensor>& inputs,
                                                    const CallOptions& options) const {
  return catch_exceptions("__call__", [&]() -> Expected<std::map<std::string, Tensor>> {
    HUBIMG_ASSIGN_OR_RETURN(ResolvedCall resolved, resolve_call(*impl_->saved, inputs, options));
    const format::ConcreteFunction& cf = *resolved.function;
    HUBIMG_ASSIGN_OR_RETURN(auto g, impl_->graph_for(cf, describe_trace(cf)));
    HUBIMG_ASSIGN_OR_RETURN(auto outs, impl_->run(*g, resolved.flat, options));
    std::map<std::string, Tensor> result;
    for (size_t i = 0; i < outs.size(); ++i)
      result[output_key(cf.output_keys, i)] = std::move(outs[i]);
    return result;
  });
}

Expected<GradientResult> Model::Impl::run_gradients(
    const graph::Graph& raw, const std::string& where, const std::string& cache_key,
    const std::vector<std::string>& output_keys, std::vector<Tensor> flat,
    const std::vector<std::string>& flat_names, const std::vector<bool>& differentiable_input,
    const GradientTargets& targets, Profile* profile, const CallOptions::NodeTap* tap) const {
  std::vector<size_t> cotangent_outputs;
  std::string key = cache_key + "|ct:";
  for (const auto& [name, ct] : targets.cotangents) {
    size_t k = 0;
    while (k < raw.outputs.size() && output_key(output_keys, k) != name) ++k;
    if (k == raw.outputs.size()) {
      return invalid_argument(where + ": a cotangent for '" + name +
                              "', which is not an output of this function");
    }
    cotangent_outputs.push_back(k);
    key += name + ",";
  }
  int loss_output = -1;
  if (!targets.loss_output.empty()) {
    size_t k = 0;
    while (k < raw.outputs.size() && output_key(output_keys, k) != targets.loss_output) ++k;
    if (k == raw.outputs.size()) {
      return invalid_argument(where + ": loss on '" + targets.loss_output +
                              "', which is not an output of this function");
    }
    if (!targets.labels.valid() ||
        (targets.labels.dtype() != DType::kInt32 && targets.labels.dtype() != DType::kInt64)) {
      return invalid_argument(where + ": the loss needs int32 or int64 labels");
    }
    loss_output = static_cast<int>(k);
    key += "|loss:" + targets.loss_output + ":" + dtype_name(targets.labels.dtype());
  }
  if (cotangent_outputs.empty() && loss_output < 0) {
    return invalid_argument(where + ": no cotangent and no loss: nothing to differentiate");
  }
  std::vector<size_t> wrt_inputs;
  key += "|wrt:";
  for (size_t i = 0; i < flat.size(); ++i) {
    if (targets.input_gradients && differentiable_input[i] && is_float(flat[i].dtype())) {
      wrt_inputs.push_back(i);
      key += std::to_string(i) + ",";
    }
  }
  HUBIMG_ASSIGN_OR_RETURN(auto gg, grad_graph_for(key, raw, cotangent_outputs, loss_output,
                                                  targets.labels.dtype(), wrt_inputs));
  const size_t first_cotangent = flat.size();
  for (const auto& [name, ct] : targets.cotangents) {
    flat.push_back(targets.cotangents_from_outputs ? Tensor() : ct);
  }
  if (loss_output >= 0) flat.push_back(targets.labels);
  exec::LateInputs late = [&](const std::vector<Tensor>& so_far, std::vector<Tensor>& inputs) {
    std::map<std::string, Tensor> forward;
    for (size_t i = 0; i < gg->num_forward_outputs; ++i) {
      if (!so_far[i].valid()) {
        return internal_error(where + ": output " + output_key(output_keys, i) +
                              " is not computed before the backward pass");
      }
      forward[output_key(output_keys, i)] = so_far[i];
    }
    HUBIMG_ASSIGN_OR_RETURN(auto cts, targets.cotangents_from_outputs(forward));
    size_t k = first_cotangent;
    for (const auto& [name, unused] : targets.cotangents) {
      auto it = cts.find(name);
      const Tensor& out = forward[name];
      if (it == cts.end() || it->second.dtype() != out.dtype() ||
          it->second.shape() != out.shape()) {
        return invalid_argument(where + ": the cotangent of output '" + name + "' must be " +
                                out.description() + ", got " +
                                (it == cts.end() ? std::string("none") : it->second.description()));
      }
      inputs[k++] = it->second;
    }
    return Status();
  };
  exec::RunStats stats;
  stats.time_ops = profile != nullptr;
  if (tap != nullptr && tap->on_node) {
    stats.before_node = [tap](const graph::Node& node, std::span<const Tensor> inputs) {
      if (tap->ops.contains(node.op)) tap->on_node(node.name, node.op, inputs);
    };
  }
  HUBIMG_ASSIGN_OR_RETURN(auto outs,
                          exec::run_graph(*gg->graph, flat, variable_ptrs, &stats,
                                          targets.cotangents_from_outputs ? &late : nullptr));
  add_profile(stats, profile);
  GradientResult result;
  for (size_t i = 0; i < gg->num_forward_outputs; ++i) {
    result.outputs[output_key(output_keys, i)] = outs[i];
  }
  const std::vector<int> trainable = trainable_indices();
  for (size_t k = 0; k < gg->gradient_output.size(); ++k) {
    const int at = gg->gradient_output[k];
    const Tensor& value = variable_ptrs[static_cast<size_t>(trainable[k])]->value();
    result.gradients.push_back(at >= 0 ? outs[static_cast<size_t>(at)]
                                       : Tensor(value.dtype(), value.shape()));
  }
  for (const auto& [input, at] : gg->input_gradient_output) {
    const Tensor& x = flat[input];
    result.input_gradients[flat_names[input]] =
        at >= 0 ? outs[static_cast<size_t>(at)] : Tensor(x.dtype(), x.shape());
  }
  for (int v : gg->assigned) result.assigned.push_back(variable_ptrs[static_cast<size_t>(v)]);
  if (gg->loss_output >= 0) result.loss = outs[static_cast<size_t>(gg->loss_output)];
  return result;
}

Expected<GradientResult> Model::gradients(const std::map<std::string, Tensor>& inputs,
                                          const GradientTargets& targets,
                                          const CallOptions& options) const {
  return catch_exceptions("gradients of __call__", [&]() -> Expected<GradientResult> {
    HUBIMG_ASSIGN_OR_RETURN(ResolvedCall resolved, resolve_call(*impl_->saved, inputs, options));
    const format::ConcreteFunction& cf = *resolved.function;
    HUBIMG_ASSIGN_OR_RETURN(auto g, impl_->graph_for(cf, describe_trace(cf)));
    return impl_->run_gradients(*g, describe_trace(cf), cf.name, cf.output_keys,
                                std::move(resolved.flat), resolved.flat_names, resolved.from_inputs,
                                targets, options.profile, options.tap);
  });
}

Expected<GradientResult> Model::signature_gradients(const std::string& name,
                                                    const std::map<std::string, Tensor>& inputs,
                                                    const GradientTargets& targets) const {
  return catch_exceptions(
      "gradients of signature \x27" + name + "\x27", [&]() -> Expected<GradientResult> {
        const auto& sigs = impl_->saved->signatures();
        auto it = sigs.find(name);
        if (it == sigs.end()) return not_found("no signature '" + name + "'");
        const format::Signature& sig = it->second;
        if (!sig.function) {
          return unimplemented("signature '" + name + "' is a TF1 graph signature: no gradients");
        }
        const std::string where = "signature '" + name + "'";
        std::vector<Tensor> flat;
        std::vector<std::string> names;
        for (const auto& [key, spec] : named_inputs(*sig.function)) {
          auto in = inputs.find(key);
          if (in == inputs.end()) return invalid_argument(where + ": missing input '" + key + "'");
          HUBIMG_RETURN_IF_ERROR(check_input(where, key, in->second, spec));
          flat.push_back(in->second);
          names.push_back(key);
        }
        HUBIMG_ASSIGN_OR_RETURN(auto g, impl_->graph_for(*sig.function, where));
        return impl_->run_gradients(*g, where, "signature:" + name, sig.function->output_keys,
                                    std::move(flat), names, std::vector<bool>(names.size(), true),
                                    targets, nullptr);
      });
}

Expected<std::vector<Tensor>> Model::operator()(const Tensor& input,
                                                const CallOptions& options) const {
  return catch_exceptions("__call__", [&]() -> Expected<std::vector<Tensor>> {
    const auto& root_call = impl_->saved->root_call();
    std::string name = "inputs";
    if (root_call && !root_call->parameter_names.empty()) name = root_call->parameter_names[0];
    HUBIMG_ASSIGN_OR_RETURN(auto named, call({{name, input}}, options));
    std::vector<Tensor> out;
    const auto& keys = root_call->concrete_functions[0].output_keys;
    for (const auto& k : keys) {
      if (auto it = named.find(k); it != named.end()) out.push_back(it->second);
    }
    if (out.size() != named.size()) {
      out.clear();
      for (auto& [k, v] : named) out.push_back(v);
    }
    return out;
  });
}

Expected<std::map<std::string, Tensor>> Model::call_signature(
    const std::string& name, const std::map<std::string, Tensor>& inputs,
    const CallOptions& options) const {
  return catch_exceptions(
      "signature \x27" + name + "\x27", [&]() -> Expected<std::map<std::string, Tensor>> {
        const auto& sigs = impl_->saved->signatures();
        auto it = sigs.find(name);
        if (it == sigs.end()) {
          std::string known;
          for (const auto& [k, s] : sigs) known += (known.empty() ? "" : ", ") + k;
          return not_found(impl_->saved->directory().string() + ": no signature '" + name +
                           "' (the model has: " + known + ")");
        }
        const format::Signature& sig = it->second;
        const std::string where = "signature '" + name + "'";
        for (const auto& [key, t] : inputs) {
          if (!sig.inputs.count(key))
            return invalid_argument(where + " has no input '" + key + "'");
        }
        std::vector<Tensor> flat;
        std::shared_ptr<graph::Graph> g;
        std::vector<std::string> out_keys;
        if (sig.function) {
          for (const auto& [key, spec] : named_inputs(*sig.function)) {
            auto in = inputs.find(key);
            if (in == inputs.end())
              return invalid_argument(where + ": missing input '" + key + "'");
            HUBIMG_RETURN_IF_ERROR(check_input(where, key, in->second, spec));
            flat.push_back(in->second);
          }
          HUBIMG_ASSIGN_OR_RETURN(g, impl_->graph_for(*sig.function, where));
          out_keys = sig.function->output_keys;
        } else {
          for (const auto& [key, info] : sig.inputs) {
            auto in = inputs.find(key);
            if (in == inputs.end())
              return invalid_argument(where + ": missing input '" + key + "'");
            HUBIMG_RETURN_IF_ERROR(
                check_input(where, key, in->second, {key, info.dtype, info.shape}));
            flat.push_back(in->second);
          }
          HUBIMG_ASSIGN_OR_RETURN(g, impl_->tf1_graph_for(sig));
          for (const auto& [key, info] : sig.outputs) out_keys.push_back(key);
        }
        HUBIMG_ASSIGN_OR_RETURN(auto outs, impl_->run(*g, flat, options));
        std::map<std::string, Tensor> result;
        for (size_t i = 0; i < outs.size() && i < out_keys.size(); ++i)
          result[out_keys[i]] = outs[i];
        return result;
      });
}

std::vector<std::string> Model::signature_names() const {
  std::vector<std::string> names;
  for (const auto& [k, s] : impl_->saved->signatures()) names.push_back(k);
  return names;
}

std::string Model::default_signature() const {
  const auto& signatures = impl_->saved->signatures();
  for (const char* name : {"serving_default", "default"}) {
    if (signatures.count(name)) return name;
  }
  return {};
}

std::vector<Model::InputSpec> Model::call_input_specs() const {
  std::vector<InputSpec> specs;
  const auto& call = impl_->saved->root_call();
  if (!call) return specs;
  for (const auto& cf : call->concrete_functions) {
    if (cf.training.value_or(false)) continue;
    for (const auto& [name, spec] : named_inputs(cf)) {
      specs.push_back(
          {name, spec.dtype, spec.shape, parameter_default(*call, name, spec).has_value()});
    }
    break;
  }
  return specs;
}

std::vector<Model::InputSpec> Model::signature_input_specs(const std::string& name) const {
  std::vector<InputSpec> specs;
  auto it = impl_->saved->signatures().find(name);
  if (it == impl_->saved->signatures().end()) return specs;
  for (const auto& [key, info] : it->second.inputs) specs.push_back({key, info.dtype, info.shape});
  return specs;
}

std::vector<Variable*> Model::variables() const {
  return impl_->variable_ptrs;
}

std::vector<Variable*> Model::trainable_variables() const {
  std::vector<Variable*> out;
  for (Variable* v : impl_->variable_ptrs) {
    if (v->trainable()) out.push_back(v);
  }
  return out;
}

Expected<std::vector<Tensor>> Model::regularization_losses() const {
  return catch_exceptions("regularization_losses", [&]() -> Expected<std::vector<Tensor>> {
    std::vector<Tensor> losses;
    for (const auto& fo : impl_->saved->regularization_losses()) {
      if (fo.concrete_functions.empty()) return not_found(fo.path + " has no traced function");
      HUBIMG_ASSIGN_OR_RETURN(auto g, impl_->graph_for(fo.concrete_functions[0], fo.path));
      HUBIMG_ASSIGN_OR_RETURN(auto outs, impl_->run(*g, {}));
      if (outs.size() != 1)
        return internal_error(fo.path + " returned " + std::to_string(outs.size()) + " values");
      losses.push_back(outs[0]);
    }
    return losses;
  });
}

Expected<std::vector<Tensor>> Model::regularization_gradients(Tensor* total) const {
  return catch_exceptions("regularization gradients", [&]() -> Expected<std::vector<Tensor>> {
    const std::vector<int> trainable = impl_->trainable_indices();
    std::vector<Tensor> grads;
    for (int v : trainable) {
      const Tensor& value = impl_->variable_ptrs[static_cast<size_t>(v)]->value();
      grads.emplace_back(value.dtype(), value.shape());
    }
    double sum = 0;
    for (const auto& fo : impl_->saved->regularization_losses()) {
      if (fo.concrete_functions.empty()) return not_found(fo.path + " has no traced function");
      HUBIMG_ASSIGN_OR_RETURN(auto g, impl_->graph_for(fo.concrete_functions[0], fo.path));
      if (g->outputs.size() != 1) {
        return internal_error(fo.path + " returns " + std::to_string(g->outputs.size()) +
                              " values");
      }
      GradientTargets targets;
      targets.cotangents["output_0"] = Tensor::scalar<float>(1.0f);
      HUBIMG_ASSIGN_OR_RETURN(
          auto r, impl_->run_gradients(*g, fo.path, "reg:" + fo.concrete_functions[0].name, {}, {},
                                       {}, {}, targets, nullptr));
      for (const auto& [k, t] : r.outputs) sum += element_as_double(t, 0);
      for (size_t k = 0; k < grads.size(); ++k) {
        if (grads[k].dtype() != DType::kFloat32 || r.gradients[k].dtype() != DType::kFloat32) {
          return unimplemented(fo.path + ": regularization gradients are float32 only");
        }
        float* acc = grads[k].mutable_data<float>();
        const float* add = r.gradients[k].data<float>();
        for (int64_t i = 0; i < grads[k].num_elements(); ++i) acc[i] += add[i];
      }
    }
    if (total != nullptr) *total = Tensor::scalar<float>(static_cast<float>(sum));
    return grads;
  });
}

const std::vector<std::string>& Model::load_warnings() const {
  return impl_->warnings;
}
const format::SavedModel& Model::saved_model() const {
  return *impl_->saved;
}
std::filesystem::path Model::labels_file() const {
  return format::shipped_labels_file(*impl_->saved);
}
Expected<std::vector<std::string>> read_labels(const std::filesystem::path& path) {
  return catch_exceptions(path.string(), [&] { return format::read_labels_file(path); });
}

void set_num_threads(int num_threads) {
  ThreadPool::set_global_num_threads(num_threads);
}

int num_threads() {
  return ThreadPool::global().num_threads();
}

}  // namespace hubimg
