// libFuzzer target: an IDX pair (MNIST/Fashion-MNIST files, plain or gzip'd) must load or give
// an error naming a file, never crash; every image of an accepted pair must load. Input: two
// bytes giving the labels file's length (little-endian, clipped), the labels file, then the
// images file.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "hubimg/dataset.h"

namespace {

std::filesystem::path write_scratch(const char* name, const uint8_t* data, size_t size) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("hubimg_fuzz_idx_" + std::to_string(::getpid()) + name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t labels_size = std::min<size_t>(data[0] | size_t{data[1]} << 8, size - 2);
  const auto labels = write_scratch("-labels-idx1-ubyte", data + 2, labels_size);
  const auto images =
      write_scratch("-images-idx3-ubyte", data + 2 + labels_size, size - 2 - labels_size);
  auto dataset = hubimg::ImageDataset::from_idx(images, labels);
  if (dataset.ok()) {
    if (dataset->size() < 1 || dataset->num_classes() < 2) __builtin_trap();
    for (int64_t i = 0; i < std::min<int64_t>(dataset->size(), 4); ++i) {
      if (dataset->label(i) < 0 || dataset->label(i) >= dataset->num_classes()) __builtin_trap();
      auto image = dataset->load(i, 8, 8);
      if (!image.ok() || image->shape() != hubimg::Dims{8, 8, 3}) __builtin_trap();
    }
  }
  std::filesystem::remove(labels);
  std::filesystem::remove(images);
  return 0;
}
