// `hubimg run MODEL [--signature NAME] --input KEY=FILE.npy ... --output DIR [--training]
//  [--arg NAME=VALUE]`: raw tensors in and out as .npy.
#include <fmt/format.h>

#include <cstdlib>
#include <iostream>

#include "commands.h"
#include "hubimg/model.h"
#include "hubimg/npy.h"
#include "output_paths.h"

namespace hubimg::cli {
namespace {

struct RunArgs {
  std::string model;
  std::string signature;
  std::vector<std::string> inputs;
  std::vector<std::string> arguments;
  std::string output_dir;
  bool training = false;
};

int run(const RunArgs& args) {
  auto model = Model::load(args.model);
  if (!model.ok()) return report_error(model.status().message());
  for (const auto& w : model->load_warnings()) std::cerr << "hubimg: warning: " << w << "\n";
  std::string signature = args.signature;
  if (signature.empty() && !model->has_call() && !model->default_signature().empty()) {
    signature = model->default_signature();
    std::cerr << "hubimg: the model has no __call__: running signature '" << signature << "'\n";
  }
  const bool use_call = signature.empty() || signature == "__call__";
  std::string default_key = "inputs";
  if (use_call) {
    const auto specs = inputs_without_defaults(model->call_input_specs());
    if (specs.size() == 1) default_key = specs[0].name;
  } else {
    auto specs = model->signature_input_specs(signature);
    if (specs.size() == 1) default_key = specs[0].name;
  }
  std::map<std::string, Tensor> inputs;
  for (const auto& spec : args.inputs) {
    auto eq = spec.find('=');
    std::string key = eq == std::string::npos ? default_key : spec.substr(0, eq);
    std::string file = eq == std::string::npos ? spec : spec.substr(eq + 1);
    if (inputs.count(key)) return report_error("--input " + key + " given twice");
    auto t = read_npy(file);
    if (!t.ok()) return report_error(t.status().message());
    inputs[key] = std::move(t).value();
  }
  CallOptions options;
  options.training = args.training;
  for (const auto& a : args.arguments) {
    auto eq = a.find('=');
    if (eq == std::string::npos) return report_error("--arg wants NAME=VALUE, got '" + a + "'");
    auto v = parse_argument_value(a.substr(eq + 1));
    if (!v.ok()) return report_error(v.status().message());
    options.arguments[a.substr(0, eq)] = std::move(v).value();
  }
  if (!use_call && (args.training || !options.arguments.empty())) {
    return report_error("--training and --arg apply to __call__, not to signatures");
  }
  auto outputs = use_call ? model->call(inputs, options) : model->call_signature(signature, inputs);
  if (!outputs.ok()) return report_error(outputs.status().message());
  std::error_code ec;
  std::filesystem::create_directories(args.output_dir, ec);
  if (ec) return report_error(args.output_dir + ": " + ec.message());
  for (const auto& [key, t] : *outputs) {
    auto path = output_file_path(args.output_dir, key, ".npy", "output key");
    if (!path.ok()) return report_error(path.status().message());
    if (Status s = write_npy(*path, t); !s.ok()) return report_error(s.message());
    std::cout << fmt::format("{} {} -> {}\n", key, t.description(), path->string());
  }
  return 0;
}

}  // namespace

Expected<Tensor> parse_argument_value(const std::string& text) {
  if (text.size() > 4 && text.ends_with(".npy")) return read_npy(text);
  if (text == "true" || text == "True") return Tensor::scalar<bool>(true);
  if (text == "false" || text == "False") return Tensor::scalar<bool>(false);
  char* end = nullptr;
  float v = std::strtof(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0') {
    return invalid_argument("--arg value '" + text +
                            "' is not a number, true/false or a .npy file");
  }
  return Tensor::scalar<float>(v);
}

void add_run_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Run __call__ or a signature on .npy tensors");
  cmd->add_option("MODEL", args->model, kModelArgumentHelp)->required();
  cmd->add_option("--signature", args->signature,
                  "Signature to run (default: the root __call__, else serving_default, else "
                  "default)");
  cmd->add_option("--input", args->inputs, "KEY=FILE.npy (or FILE.npy for the only input)");
  cmd->add_option("--output", args->output_dir, "Directory for <output key>.npy files")->required();
  cmd->add_flag("--training", args->training, "Use the training trace of __call__");
  cmd->add_option("--arg", args->arguments, "Keyword argument NAME=VALUE of __call__");
  cmd->callback([args, &exit_code] { exit_code = run(*args); });
}

}  // namespace hubimg::cli
