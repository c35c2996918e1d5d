// `hubimg grad MODEL [--signature __call__] --input KEY=FILE.npy ... --cotangent OUTPUT=FILE.npy
//  ... [--training] [--arg NAME=VALUE] --output DIR`: one call with its backward pass (a
// vector-Jacobian product), written as ../shared/fixtures/golden-train/README.md specifies:
// DIR/<output key>.npy, DIR/gradients.json (+ files, trainable-variable order),
// DIR/input_gradients/<input key>.npy, DIR/variables_after.json (+ files).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>

#include "commands.h"
#include "hubimg/model.h"
#include "hubimg/npy.h"
#include "output_paths.h"

namespace hubimg::cli {
namespace {

struct GradArgs {
  std::string model;
  std::string signature;
  std::vector<std::string> inputs;
  std::vector<std::string> cotangents;
  std::vector<std::string> arguments;
  std::string output_dir;
  bool training = false;
  bool profile = false;
  int profile_nodes = 15;
  int repeat = 1;
  std::vector<std::string> dump_ops;
};

// "KEY=FILE" pairs; a bare FILE takes `default_key`.
Expected<std::map<std::string, Tensor>> read_pairs(const std::vector<std::string>& specs,
                                                   const std::string& default_key,
                                                   const std::string& flag) {
  std::map<std::string, Tensor> out;
  for (const auto& spec : specs) {
    auto eq = spec.find('=');
    if (eq == std::string::npos && default_key.empty()) {
      return invalid_argument(flag + " wants KEY=FILE.npy, got '" + spec + "'");
    }
    std::string key = eq == std::string::npos ? default_key : spec.substr(0, eq);
    std::string file = eq == std::string::npos ? spec : spec.substr(eq + 1);
    HUBIMG_ASSIGN_OR_RETURN(Tensor t, read_npy(file));
    if (!out.emplace(key, std::move(t)).second) {
      return invalid_argument(flag + " " + key + " given twice");
    }
  }
  return out;
}

Status write_json(const std::filesystem::path& path, const nlohmann::ordered_json& j) {
  std::ofstream out(path);
  out << dump_json(j) << "\n";
  out.close();
  if (!out) return internal_error(path.string() + ": cannot write");
  return {};
}

// Writes one tensor per entry under DIR/sub/ and the index DIR/index_name.
Status write_indexed(const std::filesystem::path& dir, const std::string& sub,
                     const std::string& index_name,
                     const std::vector<std::pair<std::string, Tensor>>& entries) {
  nlohmann::ordered_json index = nlohmann::ordered_json::array();
  if (!entries.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir / sub, ec);
    if (ec) return internal_error((dir / sub).string() + ": " + ec.message());
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& [name, t] = entries[i];
    const std::string file = sub + "/" + fmt::format("{:03d}_", i) + file_stem_for(name) + ".npy";
    HUBIMG_RETURN_IF_ERROR(check_inside(dir, dir / file));
    HUBIMG_RETURN_IF_ERROR(write_npy(dir / file, t));
    index.push_back({{"variable", name}, {"file", file}});
  }
  return write_json(dir / index_name, index);
}

// The call's wall time and its kernel time by op type and by node, on stderr (the profile
// times every kernel, so the wall time includes that overhead).
void print_profile(Profile& profile, double call_ms, int max_nodes) {
  double total = 0;
  for (const auto& [op, ms] : profile.ms_by_op) total += ms;
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [op, ms] : profile.ms_by_op) rows.emplace_back(ms, op);
  std::sort(rows.rbegin(), rows.rend());
  std::cerr << fmt::format("gradient call {:.1f} ms, kernel time {:.1f} ms, by op:\n", call_ms,
                           total);
  for (const auto& [ms, op] : rows) {
    std::cerr << fmt::format("  {:<36} {:9.2f} ms {:5.1f}%  {} calls\n", op, ms, 100 * ms / total,
                             profile.calls_by_op[op]);
  }
  std::vector<std::pair<double, std::string>> nodes;
  for (const auto& [node, ms] : profile.ms_by_node) nodes.emplace_back(ms, node);
  std::sort(nodes.rbegin(), nodes.rend());
  nodes.resize(std::min<size_t>(nodes.size(), static_cast<size_t>(std::max(max_nodes, 0))));
  if (!nodes.empty()) std::cerr << "slowest nodes:\n";
  for (const auto& [ms, node] : nodes) {
    std::cerr << fmt::format("  {:9.3f} ms {:5.1f}%  {}\n", ms, 100 * ms / total, node);
  }
}

int grad(const GradArgs& args) {
  auto model = Model::load(args.model);
  if (!model.ok()) return report_error(model.status().message());
  for (const auto& w : model->load_warnings()) std::cerr << "hubimg: warning: " << w << "\n";
  const bool use_call = args.signature.empty() || args.signature == "__call__";
  if (!use_call && (args.training || !args.arguments.empty())) {
    return report_error("--training and --arg apply to __call__, not to signatures");
  }
  const auto specs = inputs_without_defaults(
      use_call ? model->call_input_specs() : model->signature_input_specs(args.signature));
  auto inputs = read_pairs(args.inputs, specs.size() == 1 ? specs[0].name : "", "--input");
  if (!inputs.ok()) return report_error(inputs.status().message());
  GradientTargets targets;
  auto cotangents = read_pairs(args.cotangents, "output_0", "--cotangent");
  if (!cotangents.ok()) return report_error(cotangents.status().message());
  targets.cotangents = std::move(cotangents).value();
  if (targets.cotangents.empty()) return report_error("give at least one --cotangent OUTPUT=FILE");
  CallOptions options;
  options.training = args.training;
  for (const auto& a : args.arguments) {
    auto eq = a.find('=');
    if (eq == std::string::npos) return report_error("--arg wants NAME=VALUE, got '" + a + "'");
    auto v = parse_argument_value(a.substr(eq + 1));
    if (!v.ok()) return report_error(v.status().message());
    options.arguments[a.substr(0, eq)] = std::move(v).value();
  }
  // With --repeat the call runs several times (a warm process: cached primitives and buffers);
  // the profile and the results are those of the last call.
  Profile profile;
  // --dump-inputs-of: the input values of those ops' nodes, in execution order. Files are named
  // by position (node names come from the model and never become paths).
  struct Dumped {
    std::string node, op;
    std::vector<Tensor> inputs;
  };
  std::vector<Dumped> dumped;
  CallOptions::NodeTap tap;
  tap.ops.insert(args.dump_ops.begin(), args.dump_ops.end());
  tap.on_node = [&dumped](const std::string& node, const std::string& op,
                          std::span<const Tensor> inputs) {
    dumped.push_back({node, op, {inputs.begin(), inputs.end()}});
  };
  std::optional<Expected<GradientResult>> result;
  double call_ms = 0;
  for (int i = 0; i < args.repeat; ++i) {
    const bool last = i + 1 == args.repeat;
    options.profile = args.profile && last ? &profile : nullptr;
    options.tap = !tap.ops.empty() && last ? &tap : nullptr;
    const auto start = std::chrono::steady_clock::now();
    result.emplace(use_call ? model->gradients(*inputs, targets, options)
                            : model->signature_gradients(args.signature, *inputs, targets));
    call_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!result->ok()) return report_error(result->status().message());
    if (args.repeat > 1) std::cerr << fmt::format("call {}: {:.1f} ms\n", i + 1, call_ms);
  }
  if (args.profile) print_profile(profile, call_ms, args.profile_nodes);
  GradientResult& r = **result;

  const std::filesystem::path dir(args.output_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return report_error(args.output_dir + ": " + ec.message());
  for (const auto& [key, t] : r.outputs) {
    auto path = output_file_path(dir, key, ".npy", "output key");
    if (!path.ok()) return report_error(path.status().message());
    if (Status s = write_npy(*path, t); !s.ok()) return report_error(s.message());
  }
  std::vector<std::pair<std::string, Tensor>> gradients;
  const auto trainable = model->trainable_variables();
  for (size_t i = 0; i < trainable.size(); ++i) {
    gradients.emplace_back(trainable[i]->name(), r.gradients[i]);
  }
  if (Status s = write_indexed(dir, "gradients", "gradients.json", gradients); !s.ok()) {
    return report_error(s.message());
  }
  if (!r.input_gradients.empty()) {
    std::filesystem::create_directories(dir / "input_gradients", ec);
    if (ec) return report_error((dir / "input_gradients").string() + ": " + ec.message());
  }
  for (const auto& [key, t] : r.input_gradients) {
    auto path = output_file_path(dir / "input_gradients", key, ".npy", "input key");
    if (!path.ok()) return report_error(path.status().message());
    if (Status s = write_npy(*path, t); !s.ok()) {
      return report_error(s.message());
    }
  }
  std::vector<std::pair<std::string, Tensor>> after;
  for (Variable* v : r.assigned) after.emplace_back(v->name(), v->value());
  if (Status s = write_indexed(dir, "variables_after", "variables_after.json", after); !s.ok()) {
    return report_error(s.message());
  }
  if (!tap.ops.empty()) {
    std::filesystem::create_directories(dir / "node_inputs", ec);
    if (ec) return report_error((dir / "node_inputs").string() + ": " + ec.message());
    nlohmann::ordered_json index = nlohmann::ordered_json::array();
    for (size_t i = 0; i < dumped.size(); ++i) {
      nlohmann::ordered_json files = nlohmann::ordered_json::array();
      for (size_t k = 0; k < dumped[i].inputs.size(); ++k) {
        const std::string file = fmt::format("node_inputs/{:05d}_{}.npy", i, k);
        if (Status s = write_npy(dir / file, dumped[i].inputs[k]); !s.ok()) {
          return report_error(s.message());
        }
        files.push_back(file);
      }
      index.push_back({{"node", dumped[i].node}, {"op", dumped[i].op}, {"inputs", files}});
    }
    if (Status s = write_json(dir / "node_inputs.json", index); !s.ok()) {
      return report_error(s.message());
    }
  }
  std::cout << fmt::format(
      "{} outputs, {} variable gradients, {} input gradients, {} variables "
      "assigned -> {}\n",
      r.outputs.size(), gradients.size(), r.input_gradients.size(), after.size(), dir.string());
  return 0;
}

}  // namespace

std::string file_stem_for(const std::string& name) {
  std::string out;
  for (char c : name.substr(0, 120)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    out += ok ? c : '_';
  }
  return out.empty() || out == "." || out == ".." ? "_" : out;
}

void add_grad_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<GradArgs>();
  auto* cmd = app.add_subcommand(
      "grad", "One call with its backward pass: outputs, variable and input gradients");
  cmd->add_option("MODEL", args->model, kModelArgumentHelp)->required();
  cmd->add_option("--signature", args->signature, "Signature (default: the root __call__)");
  cmd->add_option("--input", args->inputs, "KEY=FILE.npy (or FILE.npy for the only input)");
  cmd->add_option("--cotangent", args->cotangents,
                  "OUTPUT_KEY=FILE.npy: the cotangent of that output (same shape)")
      ->required();
  cmd->add_option("--output", args->output_dir, "Directory for the results")->required();
  cmd->add_flag("--training", args->training, "Use the training trace of __call__");
  cmd->add_option("--arg", args->arguments, "Keyword argument NAME=VALUE of __call__");
  cmd->add_flag("--profile", args->profile,
                "Print the call's wall time and kernel time by op and node (stderr)");
  cmd->add_option("--profile-nodes", args->profile_nodes, "Slowest nodes to list with --profile");
  cmd->add_option("--repeat", args->repeat,
                  "Run the call N times and print each one's wall time (for timing: in training "
                  "mode every call updates the batch-norm moving statistics again); the results "
                  "written are the last call's")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--dump-inputs-of", args->dump_ops,
                  "OP[,OP...]: write the input values of every node of these op types "
                  "(e.g. Relu,Relu6,MaxPool) to DIR/node_inputs/, indexed by "
                  "DIR/node_inputs.json (node, op, files), in execution order")
      ->delimiter(',');
  cmd->callback([args, &exit_code] { exit_code = grad(*args); });
}

}  // namespace hubimg::cli
