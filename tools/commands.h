// The `hubimg` subcommands: each file in tools/ adds one to the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace hubimg::cli {

// Adds the subcommand; its callback sets `exit_code`.
void add_info_command(CLI::App& app, int& exit_code);
void add_run_command(CLI::App& app, int& exit_code);
void add_embed_command(CLI::App& app, int& exit_code);
void add_classify_command(CLI::App& app, int& exit_code);
void add_bench_command(CLI::App& app, int& exit_code);

// Prints "hubimg: error: <message>" to stderr; returns the exit code for errors.
int report_error(const std::string& message);

}  // namespace hubimg::cli
