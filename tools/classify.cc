// `hubimg classify MODEL IMAGE... [--labels labels.txt] [--top K] [--json]`.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "commands.h"
#include "core/file_io.h"
#include "image_input.h"

namespace hubimg::cli {
namespace {

// Rows that are already probability distributions (a Softmax inside the model).
bool looks_like_probabilities(const float* p, int64_t rows, int64_t classes) {
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t k = 0; k < classes; ++k) {
      float v = p[r * classes + k];
      if (v < 0 || v > 1) return false;
      sum += v;
    }
    if (std::abs(sum - 1.0) > 1e-3) return false;
  }
  return true;
}

}  // namespace

void add_classify_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string model;
    std::vector<std::string> images;
    std::string labels;
    int top = 5;
    bool json = false;
    ImageInputOptions input;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("classify", "Top-K classes of images");
  cmd->add_option("MODEL", args->model, kModelArgumentHelp)->required();
  cmd->add_option("IMAGES", args->images, "Image files or folders")->required();
  cmd->add_option("--labels", args->labels, "Text file with one class name per line")
      ->check(CLI::ExistingFile);
  cmd->add_option("--top", args->top, "How many classes to show")->check(CLI::Range(1, 100000));
  cmd->add_flag("--json", args->json, "Print JSON");
  add_image_input_options(cmd, args->input);
  cmd->callback([args, &exit_code] {
    std::vector<std::string> labels;
    if (!args->labels.empty()) {
      auto read = read_labels(args->labels);
      if (!read.ok()) return void(exit_code = report_error(read.status().message()));
      labels = std::move(read).value();
    }
    auto model = Model::load(args->model);
    if (!model.ok()) return void(exit_code = report_error(model.status().message()));
    for (const auto& w : model->load_warnings()) std::cerr << "hubimg: warning: " << w << "\n";
    // Without --labels, the class names the model ships (Model::labels_file()); where they came
    // from is printed, so a stray labels.txt beside the model shows.
    std::string labels_source = args->labels;
    if (args->labels.empty()) {
      auto shipped = shipped_labels(model->saved_model(), args->model);
      if (!shipped.ok()) {
        std::cerr << "hubimg: warning: " << shipped.status().message()
                  << " (the classes are shown unnamed)\n";
      } else if (shipped->has_value()) {
        labels = std::move((*shipped)->names);
        labels_source = std::move((*shipped)->source);
      }
    }
    auto files = collect_images(args->images);
    if (!files.ok()) return void(exit_code = report_error(files.status().message()));
    auto ran = run_on_images(*model, *files, args->input, !args->json);
    if (!ran.ok()) return void(exit_code = report_error(ran.status().message()));
    const Tensor* scores = &ran->rows;
    const std::vector<std::filesystem::path>& classified = ran->files;
    if (scores->rank() != 2) {
      return void(exit_code = report_error("the model's output is " + scores->description() +
                                           ", not [images, classes]"));
    }
    const int64_t rows = scores->dim(0), classes = scores->dim(1);
    if (!labels.empty() && static_cast<int64_t>(labels.size()) != classes) {
      std::cerr << "hubimg: warning: " << labels_source << " has " << labels.size()
                << " class names, the model's output " << classes << " classes\n";
    }
    std::vector<float> probs(scores->data<float>(), scores->data<float>() + scores->num_elements());
    const bool already = looks_like_probabilities(probs.data(), rows, classes);
    if (!already) {
      for (int64_t r = 0; r < rows; ++r) {
        float* p = probs.data() + r * classes;
        float m = *std::max_element(p, p + classes);
        double sum = 0;
        for (int64_t k = 0; k < classes; ++k) sum += std::exp(static_cast<double>(p[k] - m));
        for (int64_t k = 0; k < classes; ++k)
          p[k] = static_cast<float>(std::exp(static_cast<double>(p[k] - m)) / sum);
      }
    }
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    if (!args->json) {
      std::cout << (already ? "(the model's outputs already are probabilities; shown as they are)\n"
                            : "(probabilities: softmax of the model's logits)\n");
      if (!labels.empty()) std::cout << "(class names: " << labels_source << ")\n";
    }
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<int64_t> order(static_cast<size_t>(classes));
      std::iota(order.begin(), order.end(), 0);
      const float* p = probs.data() + r * classes;
      const int64_t k = std::min<int64_t>(args->top, classes);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [p](int64_t a, int64_t b) { return p[a] > p[b]; });
      nlohmann::ordered_json row;
      row["image"] = classified[static_cast<size_t>(r)].string();
      row["top"] = nlohmann::ordered_json::array();
      if (!args->json) std::cout << classified[static_cast<size_t>(r)].string() << "\n";
      for (int64_t i = 0; i < k; ++i) {
        int64_t c = order[static_cast<size_t>(i)];
        std::string label =
            static_cast<size_t>(c) < labels.size() ? labels[static_cast<size_t>(c)] : "";
        row["top"].push_back({{"class", c}, {"label", label}, {"probability", p[c]}});
        if (!args->json) std::cout << fmt::format("  {:>4}  {:<24} {:.4f}\n", c, label, p[c]);
      }
      out.push_back(row);
    }
    if (args->json) {
      nlohmann::ordered_json j;
      j["outputs_were_probabilities"] = already;
      j["labels"] =
          labels.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(labels_source);
      j["results"] = out;
      nlohmann::ordered_json skipped = nlohmann::ordered_json::array();
      for (const auto& f : ran->skipped) skipped.push_back(f.string());
      j["skipped"] = skipped;
      std::cout << dump_json(j) << "\n";
    }
    if (!ran->skipped.empty()) {
      std::cerr << fmt::format("hubimg: {} of {} images skipped (unreadable, see the warnings)\n",
                               ran->skipped.size(), files->size());
    }
    exit_code = 0;
  });
}

}  // namespace hubimg::cli
