// `hubimg info MODEL [--json]`: what a SavedModel contains, read without running anything.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "commands.h"
#include "format/saved_model.h"
#include "graph/graph.h"
#include "hubimg/model.h"
#include "hubimg/npy.h"
#include "saved_model.pb.h"

namespace hubimg::cli {
namespace {

using format::SavedModel;
using nlohmann::ordered_json;

ordered_json shape_json(const PartialShape& s) {
  if (s.unknown_rank) return nullptr;
  return s.dims;
}

ordered_json spec_json(DType dtype, const PartialShape& shape) {
  return {{"dtype", dtype_name(dtype)}, {"shape", shape_json(shape)}};
}

ordered_json arg_json(const format::StructuredArg& a) {
  using K = format::StructuredArg::Kind;
  switch (a.kind) {
    case K::kNone: return nullptr;
    case K::kBool: return a.bool_value;
    case K::kInt: return a.int_value;
    case K::kFloat: return a.float_value;
    case K::kString: return a.string_value;
    case K::kTensor: return spec_json(a.tensor.dtype, a.tensor.shape);
    case K::kDict: {
      ordered_json o = ordered_json::object();
      for (const auto& [k, v] : a.children) o[k] = arg_json(v);
      return o;
    }
    default: {
      ordered_json arr = ordered_json::array();
      for (const auto& [k, v] : a.children) arr.push_back(arg_json(v));
      return arr;
    }
  }
}

struct ModelSummary {
  ordered_json json;
  std::map<std::string, int64_t> ops;
};

// TF1 graphs: counts the ops of the top-level nodes the signatures' outputs depend on, each node
// once however many signatures reach it (as the TF2 histogram counts each function once). One
// walk with one `seen` set over all signatures: linear in the graph and the signature count.
class Tf1OpCounter {
 public:
  explicit Tf1OpCounter(const SavedModel& m) {
    for (const auto& n : m.graph().node()) by_name_.emplace(n.name(), &n);
  }

  void add(const format::Signature& s, std::map<std::string, int64_t>& ops) {
    std::vector<std::string_view> stack;
    for (const auto& [k, info] : s.outputs) stack.push_back(info.tensor_name);
    while (!stack.empty()) {
      std::string_view name = stack.back();
      stack.pop_back();
      if (!name.empty() && name[0] == '^') name.remove_prefix(1);
      if (auto colon = name.find(':'); colon != std::string_view::npos)
        name = name.substr(0, colon);
      auto it = by_name_.find(name);
      if (it == by_name_.end() || !seen_.insert(it->second).second) continue;
      ++ops[it->second->op()];
      for (const auto& in : it->second->input()) stack.push_back(in);
    }
  }

 private:
  std::unordered_map<std::string_view, const tf::NodeDef*> by_name_;
  std::unordered_set<const tf::NodeDef*> seen_;
};

ordered_json summarize(const SavedModel& m) {
  ordered_json j;
  j["tensorflow_version"] = m.tensorflow_version();
  std::error_code ec;
  // hub.Module exports (TF1 Hub format) carry this file; their untagged graph is the one run.
  j["tf1_hub_module"] = std::filesystem::is_regular_file(m.directory() / "tfhub_module.pb", ec);
  ordered_json sigs = ordered_json::object();
  // ordered_json's entries are pair<const string, json>, which a growing vector copies (deeply)
  // instead of moving: reserved up front.
  auto& sig_entries =
      static_cast<ordered_json::object_t::Container&>(sigs.get_ref<ordered_json::object_t&>());
  sig_entries.reserve(m.signatures().size());
  std::vector<std::string> roots;
  std::map<std::string, int64_t> ops;
  std::optional<Tf1OpCounter> tf1_ops;
  for (const auto& [key, s] : m.signatures()) {
    ordered_json sj;
    ordered_json in = ordered_json::object(), out = ordered_json::object();
    for (const auto& [name, info] : s.inputs) in[name] = spec_json(info.dtype, info.shape);
    for (const auto& [name, info] : s.outputs) out[name] = spec_json(info.dtype, info.shape);
    sj["inputs"] = std::move(in);
    sj["outputs"] = std::move(out);
    sj["method_name"] = s.method_name;
    if (s.function) {
      sj["function"] = s.function->name;
      roots.push_back(s.function->name);
    } else {
      if (!tf1_ops) tf1_ops.emplace(m);
      tf1_ops->add(s, ops);
    }
    // The keys of signatures() are unique and sorted: appended directly, without the linear
    // duplicate scan of ordered_json's operator[] (quadratic for thousands of signatures).
    sig_entries.emplace_back(key, std::move(sj));
  }
  j["signatures"] = std::move(sigs);
  ordered_json call = ordered_json::array();
  if (m.root_call()) {
    for (const auto& cf : m.root_call()->concrete_functions) {
      ordered_json c;
      c["function"] = cf.name;
      ordered_json inputs = ordered_json::array();
      for (const auto& t : cf.flat_inputs) inputs.push_back(spec_json(t.dtype, t.shape));
      c["inputs"] = inputs;
      c["training"] = cf.training ? ordered_json(*cf.training) : ordered_json(nullptr);
      ordered_json kwargs = ordered_json::object();
      for (const auto& [k, v] : cf.kwargs) kwargs[k] = arg_json(v);
      c["kwargs"] = kwargs;
      ordered_json args = ordered_json::object();
      for (const auto& [k, v] : cf.args) args[k] = arg_json(v);
      c["args"] = args;
      c["outputs"] = cf.output_keys;
      call.push_back(c);
      roots.push_back(cf.name);
    }
  }
  j["call"] = call;
  ordered_json vars = ordered_json::array();
  int64_t params = 0, bytes = 0;
  for (const auto& v : m.variables()) {
    vars.push_back({{"name", v.name},
                    {"dtype", dtype_name(v.dtype)},
                    {"shape", v.shape},
                    {"trainable", v.trainable},
                    {"checkpoint_key", v.checkpoint_key}});
    params += v.value.num_elements();
    bytes += static_cast<int64_t>(v.value.byte_size());
  }
  j["variables"] = vars;
  j["num_parameters"] = params;
  j["parameter_bytes"] = bytes;
  j["regularization_losses"] = m.regularization_losses().size();
  for (const auto& [op, n] : m.op_histogram(m.reachable_functions(roots))) ops[op] += n;
  j["ops"] = ops;
  // Ops no graph of this model can run, so a user sees them all at once (a run names only the
  // first it meets). A library function named like an op is called, not looked up.
  std::vector<std::string> not_implemented;
  for (const auto& [op, n] : ops) {
    if (!graph::op_is_runnable(op) && m.function(op) == nullptr) not_implemented.push_back(op);
  }
  j["not_implemented_ops"] = not_implemented;
  return j;
}

// `given_path`: what the user named (an archive is shown as itself, not as the temporary folder
// it was extracted to).
void print_human(const SavedModel& m, const ordered_json& j, const std::string& given_path) {
  std::error_code ec;
  const std::filesystem::path given(given_path);
  const bool archive = std::filesystem::is_regular_file(given, ec) &&
                       given.filename() != "saved_model.pb" &&
                       given.filename() != "saved_model.pbtxt";
  std::cout << fmt::format("SavedModel {}\n", archive ? given_path : m.directory().string());
  std::cout << fmt::format(
      "TensorFlow {}{}\n", j["tensorflow_version"].get<std::string>(),
      j["tf1_hub_module"].get<bool>()
          ? " (TF1 Hub format module: its untagged inference graph; no object graph)"
      : m.has_object_graph() ? ""
                             : " (TF1 graph, no object graph)");
  if (const auto& labels = j["labels"]; !labels.is_null()) {
    constexpr size_t kShown = 8;
    const auto& names = labels["names"];
    std::string shown;
    for (size_t i = 0; i < std::min(names.size(), kShown); ++i) {
      shown += (i ? ", " : "") + names[i].get<std::string>();
    }
    std::cout << fmt::format("Labels: {} class names ({}): {}{}\n", names.size(),
                             labels["file"].get<std::string>(), shown,
                             names.size() > kShown ? ", ..." : "");
  }
  auto shape_str = [](const ordered_json& s) {
    return s.is_null() ? std::string("<unknown rank>") : s.dump();
  };
  std::cout << fmt::format("\nSignatures ({}):\n", j["signatures"].size());
  for (const auto& [key, s] : j["signatures"].items()) {
    std::cout << fmt::format("  {}  ({})\n", key, s["method_name"].get<std::string>());
    for (const auto& [name, t] : s["inputs"].items()) {
      std::cout << fmt::format("    in   {}: {} {}\n", name, t["dtype"].get<std::string>(),
                               shape_str(t["shape"]));
    }
    for (const auto& [name, t] : s["outputs"].items()) {
      std::cout << fmt::format("    out  {}: {} {}\n", name, t["dtype"].get<std::string>(),
                               shape_str(t["shape"]));
    }
  }
  if (m.root_call()) {
    const auto& rc = *m.root_call();
    std::string params;
    for (const auto& p : rc.parameter_names) params += (params.empty() ? "" : ", ") + p;
    std::cout << fmt::format("\n__call__({}): {} concrete functions\n", params,
                             rc.concrete_functions.size());
    for (const auto& cf : rc.concrete_functions) {
      std::string args;
      for (const auto& [k, v] : cf.args)
        args += (args.empty() ? "" : ", ") + k + "=" + v.to_string();
      for (const auto& [k, v] : cf.kwargs)
        args += (args.empty() ? "" : ", ") + k + "=" + v.to_string();
      std::cout << fmt::format("  {}\n    ({}) -> {}\n", cf.name, args, cf.output.to_string());
    }
  } else {
    std::cout << "\n__call__: none\n";
  }
  int64_t trainable = 0;
  for (const auto& v : m.variables()) trainable += v.trainable;
  std::cout << fmt::format("\nVariables: {} ({} trainable), {} parameters, {} bytes\n",
                           m.variables().size(), trainable, j["num_parameters"].get<int64_t>(),
                           j["parameter_bytes"].get<int64_t>());
  for (const auto& v : m.variables()) {
    std::cout << fmt::format("  {:<50} {:<8} {:<20} {}\n", v.name, dtype_name(v.dtype),
                             dims_to_string(v.shape), v.trainable ? "trainable" : "");
  }
  std::cout << fmt::format("\nRegularization losses: {}\n", m.regularization_losses().size());
  std::cout << "\nOps reachable from the signatures and __call__:\n";
  const auto& missing = j["not_implemented_ops"];
  for (const auto& [op, n] : j["ops"].items()) {
    const bool absent = std::find(missing.begin(), missing.end(), op) != missing.end();
    std::cout << fmt::format("  {:<36} {}{}\n", op, n.get<int64_t>(),
                             absent ? "  (not implemented in hubimg)" : "");
  }
  if (!missing.empty()) {
    std::vector<std::string> names = missing.get<std::vector<std::string>>();
    std::cout << fmt::format(
        "\n{} of these ops {} not implemented in hubimg: {}; whatever needs them cannot run.\n",
        names.size(), names.size() == 1 ? "is" : "are", fmt::join(names, ", "));
  }
}

int write_regularization_losses(const std::string& model_path, const std::string& out_path) {
  auto model = Model::load(model_path);
  if (!model.ok()) return report_error(model.status().message());
  auto losses = model->regularization_losses();
  if (!losses.ok()) return report_error(losses.status().message());
  std::vector<float> values;
  for (size_t i = 0; i < losses->size(); ++i) {
    const Tensor& t = (*losses)[i];
    if (t.num_elements() != 1 || (t.dtype() != DType::kFloat32 && t.dtype() != DType::kFloat64)) {
      return report_error(
          fmt::format("regularization loss {} is {}, not a float scalar", i, t.description()));
    }
    values.push_back(static_cast<float>(element_as_double(t, 0)));
    std::cout << fmt::format("regularization_losses[{}] = {:.9g}\n", i, values.back());
  }
  const Tensor out = Tensor::from_vector<float>({static_cast<int64_t>(values.size())}, values);
  if (Status s = write_npy(out_path, out); !s.ok()) return report_error(s.message());
  std::cout << fmt::format("{} regularization losses -> {}\n", values.size(), out_path);
  return 0;
}

}  // namespace

void add_info_command(CLI::App& app, int& exit_code) {
  auto* cmd =
      app.add_subcommand("info", "Describe a SavedModel: signatures, __call__, variables, ops");
  auto model_path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("MODEL", *model_path, kModelArgumentHelp)->required();
  cmd->add_flag("--json", *as_json, "Print one JSON object");
  auto losses_path = std::make_shared<std::string>();
  cmd->add_option("--regularization-losses", *losses_path,
                  "Evaluate root.regularization_losses and write them to FILE.npy (float32 "
                  "[count], list order)");
  cmd->callback([model_path, as_json, losses_path, &exit_code] {
    if (!losses_path->empty()) {
      exit_code = write_regularization_losses(*model_path, *losses_path);
      return;
    }
    auto model = SavedModel::load(*model_path);
    if (!model.ok()) {
      exit_code = report_error(model.status().message());
      return;
    }
    if (Status s = (*model)->check_runnable(); !s.ok()) {
      exit_code = report_error(s.message());
      return;
    }
    ordered_json j = summarize(**model);
    auto labels = shipped_labels(**model, *model_path);
    if (!labels.ok()) std::cerr << "hubimg: warning: " << labels.status().message() << "\n";
    j["labels"] = nullptr;
    if (labels.ok() && labels->has_value()) {
      j["labels"] = {{"file", (*labels)->source}, {"names", (*labels)->names}};
    }
    if (*as_json) {
      std::cout << dump_json(j) << "\n";
    } else {
      print_human(**model, j, *model_path);
    }
    exit_code = 0;
  });
}

}  // namespace hubimg::cli
