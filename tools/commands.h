// The `hubimg` subcommands: each file in tools/ adds one to the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "hubimg/model.h"
#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::cli {

// Adds the subcommand; its callback sets `exit_code`.
void add_info_command(CLI::App& app, int& exit_code);
void add_run_command(CLI::App& app, int& exit_code);
void add_embed_command(CLI::App& app, int& exit_code);
void add_classify_command(CLI::App& app, int& exit_code);
void add_bench_command(CLI::App& app, int& exit_code);
void add_grad_command(CLI::App& app, int& exit_code);
void add_retrain_command(CLI::App& app, int& exit_code);
void add_export_command(CLI::App& app, int& exit_code);

// Prints "hubimg: error: <message>" to stderr; returns the exit code for errors.
int report_error(const std::string& message);

// JSON text with 2-space indent; bytes that are not valid UTF-8 (file names, strings from a model)
// become U+FFFD instead of making the encoder throw.
std::string dump_json(const nlohmann::ordered_json& j);

// "3.5" / "1e-3" -> float32 scalar; "true"/"false" -> bool; "file.npy" -> that tensor.
Expected<Tensor> parse_argument_value(const std::string& text);

// `name` with every character outside [A-Za-z0-9.-] replaced by '_' (variable names contain '/').
std::string file_stem_for(const std::string& name);

// The class names MODEL ships (Model::labels_file()) and where they came from, as the user
// knows the model: the file's path, or "PATH in ARCHIVE" inside an archive. nullopt: none.
struct ShippedLabels {
  std::vector<std::string> names;
  std::string source;
};
Expected<std::optional<ShippedLabels>> shipped_labels(const format::SavedModel& model,
                                                      const std::string& model_argument);

// The MODEL argument's help text, the same for every subcommand.
inline constexpr const char* kModelArgumentHelp =
    "SavedModel directory, or a .tar.gz, .tar or .zip of one";

// The inputs a caller has to feed: `specs` without the hyperparameters that have a default
// (TF Hub's batch_norm_momentum=0.99), which are never images.
inline std::vector<Model::InputSpec> inputs_without_defaults(std::vector<Model::InputSpec> specs) {
  std::erase_if(specs, [](const Model::InputSpec& s) { return s.has_default; });
  return specs;
}

}  // namespace hubimg::cli
