#include <cstdio>

#include "commands.h"

namespace hubimg::cli {

int report_error(const std::string& message) {
  std::fprintf(stderr, "hubimg: error: %s\n", message.c_str());
  return 1;
}

}  // namespace hubimg::cli

int main(int argc, char** argv) {
  CLI::App app{"hubimg: load, run, fine-tune and publish TensorFlow 2 image SavedModels"};
  app.require_subcommand(1);
  int exit_code = 0;
  hubimg::cli::add_info_command(app, exit_code);
  hubimg::cli::add_run_command(app, exit_code);
  hubimg::cli::add_embed_command(app, exit_code);
  hubimg::cli::add_classify_command(app, exit_code);
  hubimg::cli::add_bench_command(app, exit_code);
  hubimg::cli::add_grad_command(app, exit_code);
  hubimg::cli::add_export_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
