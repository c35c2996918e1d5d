// embed_folder MODEL FOLDER OUTPUT.npy [HEIGHT WIDTH]: one feature row per image of FOLDER (sorted
// by name), from the model's root __call__; the input size comes from the model unless given.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "hubimg/image.h"
#include "hubimg/model.h"
#include "hubimg/npy.h"
#include "hubimg/version.h"

int fail(const std::string& message) {
  std::fprintf(stderr, "embed_folder: %s\n", message.c_str());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 4 && argc != 6) return fail("usage: embed_folder MODEL FOLDER OUTPUT.npy [H W]");
  auto model = hubimg::load(argv[1]);
  if (!model.ok()) return fail(model.status().message());
  int64_t height = argc == 6 ? std::atoll(argv[4]) : -1,
          width = argc == 6 ? std::atoll(argv[5]) : -1;
  const std::vector<hubimg::Model::InputSpec> inputs =
      model->has_call() ? model->call_input_specs() : std::vector<hubimg::Model::InputSpec>{};
  if (height <= 0 && inputs.size() == 1 && !inputs[0].shape.unknown_rank &&
      inputs[0].shape.dims.size() == 4) {
    height = inputs[0].shape.dims[1], width = inputs[0].shape.dims[2];
  }
  if (height <= 0 || width <= 0) return fail("the model does not fix its image size: pass H W");

  std::vector<std::filesystem::path> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(argv[2], error)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  if (error) return fail(std::string(argv[2]) + ": " + error.message());
  if (files.empty()) return fail(std::string(argv[2]) + ": no files");
  std::sort(files.begin(), files.end());

  auto images = hubimg::load_image_batch(files, height, width, hubimg::ColorMode::kRgb);
  if (!images.ok()) return fail(images.status().message());
  auto outputs = (*model)(*images);
  if (!outputs.ok()) return fail(outputs.status().message());
  if (hubimg::Status s = hubimg::write_npy(argv[3], outputs->front()); !s.ok())
    return fail(s.message());
  std::printf("hubimg %s: %zu images -> %s %s\n", hubimg::version().c_str(), files.size(), argv[3],
              outputs->front().description().c_str());
  return 0;
}
