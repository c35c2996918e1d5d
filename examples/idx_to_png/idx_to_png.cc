// idx_to_png DATA OUT_DIR [--prefix t10k] [--first N] [--count K | --per-class K] [--labels FILE]
//
// Writes examples [N, N + K) of an IDX dataset (MNIST, Fashion-MNIST: DATA holds
// <prefix>-images-idx3-ubyte[.gz] and <prefix>-labels-idx1-ubyte[.gz]), or with --per-class the
// first K examples of every class from N on, as 8-bit grayscale PNGs named after the example and
// its true class, e.g. OUT_DIR/t10k_00042_true_sneaker.png. Class
// names come from FILE (one per line, in label order, e.g. a classifier's labels.txt) or are the
// label numbers. Uses only the public API: hubimg::ImageDataset reads the IDX files,
// hubimg::write_png writes the pictures.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "hubimg/dataset.h"
#include "hubimg/image.h"

namespace {

int fail(const std::string& message) {
  std::fprintf(stderr, "idx_to_png: %s\n", message.c_str());
  return 1;
}

// "T-shirt/top" -> "t_shirt_top", "Ankle boot" -> "ankle_boot": lower case, every run of other
// characters than letters and digits one '_'.
std::string file_name_part(const std::string& name) {
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c)) {
      out += static_cast<char>(std::tolower(c));
    } else if (!out.empty() && out.back() != '_') {
      out += '_';
    }
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "unnamed" : out;
}

bool parse_count(const char* text, int64_t* value) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < 0) return false;
  *value = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage =
      "usage: idx_to_png DATA OUT_DIR [--prefix t10k] [--first N] [--count K | --per-class K] "
      "[--labels FILE]";
  std::vector<std::string> positional;
  std::string prefix = "t10k", labels_file;
  int64_t first = 0, count = 12, per_class = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--prefix" && has_value) {
      prefix = argv[++i];
    } else if (arg == "--labels" && has_value) {
      labels_file = argv[++i];
    } else if (arg == "--first" && has_value) {
      if (!parse_count(argv[++i], &first))
        return fail("--first: not a count: " + std::string(argv[i]));
    } else if (arg == "--count" && has_value) {
      if (!parse_count(argv[++i], &count))
        return fail("--count: not a count: " + std::string(argv[i]));
    } else if (arg == "--per-class" && has_value) {
      if (!parse_count(argv[++i], &per_class) || per_class == 0)
        return fail("--per-class: not a positive count: " + std::string(argv[i]));
    } else if (arg.starts_with("--")) {
      return fail(usage);
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 2) return fail(usage);
  const std::filesystem::path data = positional[0], out_dir = positional[1];

  // ImageDataset::open would read any other folder as one subfolder per class: insist on IDX.
  if (!hubimg::ImageDataset::is_idx_folder(data, prefix)) {
    return fail(data.string() + ": no " + prefix + "-images-idx3-ubyte[.gz] / " + prefix +
                "-labels-idx1-ubyte[.gz] pair");
  }
  auto dataset = hubimg::ImageDataset::open(data, prefix);
  if (!dataset.ok()) return fail(dataset.status().message());

  // The examples to write, in order.
  std::vector<int64_t> examples;
  if (per_class > 0) {
    std::vector<int64_t> taken(static_cast<size_t>(dataset->num_classes()), 0);
    int64_t classes_done = 0;
    for (int64_t i = first; i < dataset->size() && classes_done < dataset->num_classes(); ++i) {
      int64_t& n = taken[static_cast<size_t>(dataset->label(i))];
      if (n == per_class) continue;
      examples.push_back(i);
      if (++n == per_class) ++classes_done;
    }
    if (classes_done < dataset->num_classes()) {
      return fail(data.string() + ": fewer than " + std::to_string(per_class) + " " + prefix +
                  " examples of some class from example " + std::to_string(first) + " on");
    }
  } else {
    if (first + count > dataset->size()) {
      return fail("examples [" + std::to_string(first) + ", " + std::to_string(first + count) +
                  ") asked for, " + data.string() + " has " + std::to_string(dataset->size()) +
                  " " + prefix + " examples");
    }
    for (int64_t i = first; i < first + count; ++i) examples.push_back(i);
  }

  std::vector<std::string> class_names = dataset->class_names();  // "0", "1", ...
  if (!labels_file.empty()) {
    std::ifstream in(labels_file);
    if (!in) return fail(labels_file + ": cannot open");
    class_names.clear();
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      class_names.push_back(line);
    }
    if (static_cast<int64_t>(class_names.size()) < dataset->num_classes()) {
      return fail(labels_file + ": " + std::to_string(class_names.size()) +
                  " names, the data has " + std::to_string(dataset->num_classes()) + " classes");
    }
  }

  std::error_code error;
  std::filesystem::create_directories(out_dir, error);
  if (error) return fail(out_dir.string() + ": " + error.message());
  for (const int64_t i : examples) {
    // float32 [rows, cols, 3] in [0, 1], the gray value in all three channels.
    auto rgb = dataset->load(i);
    if (!rgb.ok()) return fail(rgb.status().message());
    const int64_t rows = rgb->dim(0), cols = rgb->dim(1);
    hubimg::Tensor gray(hubimg::DType::kFloat32, {rows, cols, 1});
    for (int64_t k = 0; k < rows * cols; ++k) {
      gray.mutable_data<float>()[k] = rgb->data<float>()[3 * k];
    }
    const std::string& name = class_names[static_cast<size_t>(dataset->label(i))];
    char index[24];
    std::snprintf(index, sizeof index, "%05lld", static_cast<long long>(i));
    const std::filesystem::path file =
        out_dir / (prefix + "_" + index + "_true_" + file_name_part(name) + ".png");
    if (hubimg::Status s = hubimg::write_png(file, gray); !s.ok()) return fail(s.message());
    std::printf("%s  %-12s -> %s\n", dataset->describe(i).c_str(), name.c_str(),
                file.string().c_str());
  }
  return 0;
}
