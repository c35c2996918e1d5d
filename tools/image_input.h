// What `embed` and `classify` share: turning image files into the model's input batches.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "hubimg/model.h"

namespace hubimg::cli {

struct ImageInputOptions {
  std::string signature;      // empty: root __call__ (or serving_default when there is none)
  std::string size;           // "HxW" when the model does not fix it
  std::string range = "0,1";  // pixel range the model expects, "lo,hi" (TF Hub: 0,1)
  int batch = 32;
  bool antialias = false;
  std::string interpolation = "bilinear";  // tf.image.resize's method (resize_method_from_name)
  bool strict = false;  // an unreadable image is an error (default: skipped with a warning)
};

void add_image_input_options(CLI::App* cmd, ImageInputOptions& o);

// Image files in the order given; folders contribute their image files sorted by name.
Expected<std::vector<std::filesystem::path>> collect_images(const std::vector<std::string>& args);

struct ImageRows {
  Tensor rows;                                 // the first output's rows stacked: [images, ...]
  std::vector<std::filesystem::path> files;    // the image of each row, in order
  std::vector<std::filesystem::path> skipped;  // images that could not be read
};

// Runs the model on the images, batch by batch. An image that cannot be read is skipped with a
// warning on stderr (an error with options.strict, or when no image can be read). The first
// output must be float32 [batch, ...] with the same non-empty row shape in every batch.
// `progress` draws a progress bar on stderr when it is a terminal.
Expected<ImageRows> run_on_images(const Model& model,
                                  const std::vector<std::filesystem::path>& files,
                                  const ImageInputOptions& options, bool progress);

}  // namespace hubimg::cli
