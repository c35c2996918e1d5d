// `hubimg embed MODEL IMAGE_OR_DIR... --output FEATURES.npy`: one feature row per image.
#include <fmt/format.h>

#include <fstream>
#include <iostream>

#include "commands.h"
#include "hubimg/npy.h"
#include "image_input.h"
#include "output_paths.h"

namespace hubimg::cli {

void add_embed_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string model;
    std::vector<std::string> images;
    std::string output;
    ImageInputOptions input;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("embed", "Feature vectors of images, one row per image");
  cmd->add_option("MODEL", args->model, kModelArgumentHelp)->required();
  cmd->add_option("IMAGES", args->images, "Image files or folders")->required();
  cmd->add_option("--output", args->output, "FEATURES.npy (file names go to FEATURES.npy.txt)")
      ->required();
  add_image_input_options(cmd, args->input);
  cmd->callback([args, &exit_code] {
    auto model = Model::load(args->model);
    if (!model.ok()) return void(exit_code = report_error(model.status().message()));
    for (const auto& w : model->load_warnings()) std::cerr << "hubimg: warning: " << w << "\n";
    auto files = collect_images(args->images);
    if (!files.ok()) return void(exit_code = report_error(files.status().message()));
    auto features = run_on_images(*model, *files, args->input, true);
    if (!features.ok()) return void(exit_code = report_error(features.status().message()));
    if (Status s = write_npy(args->output, features->rows); !s.ok()) {
      return void(exit_code = report_error(s.message()));
    }
    // One line per row; a backslash, newline or CR in a file name is escaped (\\, \n, \r).
    std::ofstream names(args->output + ".txt");
    for (const auto& f : features->files) names << escape_line(f.string()) << "\n";
    names.close();
    if (!names) return void(exit_code = report_error(args->output + ".txt: cannot write"));
    std::cout << fmt::format("{} images -> {} {} (file names in {}.txt)\n", features->files.size(),
                             args->output, features->rows.description(), args->output);
    if (!features->skipped.empty()) {
      std::cerr << fmt::format("hubimg: {} of {} images skipped (unreadable, see the warnings)\n",
                               features->skipped.size(), files->size());
    }
    exit_code = 0;
  });
}

}  // namespace hubimg::cli
