// The `hubimg` subcommands: each file in tools/ adds one to the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

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
void add_export_command(CLI::App& app, int& exit_code);

// Prints "hubimg: error: <message>" to stderr; returns the exit code for errors.
int report_error(const std::string& message);

// "3.5" / "1e-3" -> float32 scalar; "true"/"false" -> bool; "file.npy" -> that tensor.
Expected<Tensor> parse_argument_value(const std::string& text);

// True when `name` can be used as a file name as it is: [A-Za-z0-9_.-]+, not "." or "..".
bool is_safe_file_stem(const std::string& name);
// `name` with every character outside [A-Za-z0-9.-] replaced by '_' (variable names contain '/').
std::string file_stem_for(const std::string& name);

}  // namespace hubimg::cli
