#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <new>
#include <string>

#include "commands.h"
#include "format/labels.h"
#include "format/saved_model.h"
#include "hubimg/version.h"

namespace hubimg::cli {

int report_error(const std::string& message) {
  std::fprintf(stderr, "hubimg: error: %s\n", message.c_str());
  return 1;
}

Expected<std::optional<ShippedLabels>> shipped_labels(const format::SavedModel& model,
                                                      const std::string& model_argument) {
  const std::filesystem::path file = format::shipped_labels_file(model);
  if (file.empty()) return std::optional<ShippedLabels>();
  HUBIMG_ASSIGN_OR_RETURN(std::vector<std::string> names, read_labels(file));
  std::string source =
      model.archive_root().empty()
          ? file.string()
          : file.lexically_relative(model.archive_root()).string() + " in " + model_argument;
  return std::optional<ShippedLabels>(ShippedLabels{std::move(names), std::move(source)});
}

std::string dump_json(const nlohmann::ordered_json& j) {
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
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

namespace {

int run_cli(int argc, char** argv) {
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
  hubimg::cli::add_retrain_command(app, exit_code);
  hubimg::cli::add_export_command(app, exit_code);
  // CLI11 reports an unknown first word as "A subcommand is required"; name it instead.
  const std::function<bool(CLI::App*)> every = [](CLI::App*) { return true; };
  std::string known;
  bool is_known = false;
  for (const CLI::App* sub : app.get_subcommands(every)) {
    known += (known.empty() ? "" : ", ") + sub->get_name();
    is_known = is_known || (argc > 1 && sub->get_name() == argv[1]);
  }
  if (argc > 1 && argv[1][0] != '-' && !is_known) {
    return hubimg::cli::report_error("unknown command '" + std::string(argv[1]) +
                                     "' (commands: " + known + "; see hubimg --help)");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  // The library returns errors as values; anything thrown that still reaches here is reported
  // as an error, never left to std::terminate.
  try {
    return run_cli(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fputs("hubimg: error: out of memory\n", stderr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hubimg: error: %s\n", e.what());
  } catch (...) {
    std::fputs("hubimg: error: unexpected failure (unknown exception)\n", stderr);
  }
  return 1;
}
