#include <cstdio>
#include <string>

#include "commands.h"
#include "hubimg/version.h"

namespace hubimg::cli {

int report_error(const std::string& message) {
  std::fprintf(stderr, "hubimg: error: %s\n", message.c_str());
  return 1;
}

// `hubimg --version`: "hubimg 0.1.0", the git revision, the kernel backends compiled in.
std::string version_text() {
  std::string backends;
  for (const std::string& backend : kernel_backends()) {
    backends += (backends.empty() ? "" : ", ") + backend;
  }
  return "hubimg " + version() + "\nrevision: " + git_revision() + "\nkernel backends: " + backends;
}

}  // namespace hubimg::cli

int main(int argc, char** argv) {
  CLI::App app{"hubimg: load, run, fine-tune and publish TensorFlow 2 image SavedModels"};
  app.set_version_flag("--version", hubimg::cli::version_text());
  app.require_subcommand(1);
  int exit_code = 0;
  hubimg::cli::add_info_command(app, exit_code);
  hubimg::cli::add_run_command(app, exit_code);
  hubimg::cli::add_embed_command(app, exit_code);
  hubimg::cli::add_classify_command(app, exit_code);
  hubimg::cli::add_bench_command(app, exit_code);
  hubimg::cli::add_grad_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
