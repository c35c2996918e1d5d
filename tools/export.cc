// `hubimg export ARCH --output DIR [--alpha A] [--feature-vector | --num-classes N] [--seed S]
//  [--input-size N] [--l2 F] [--init varied|keras]`: a freshly initialized network of the model
// zoo (src/zoo/zoo.h) as a Reusable SavedModel: __call__(inputs, training=False,
// batch_norm_momentum=0.99), variables, trainable_variables, regularization_losses and a
// serving_default signature.
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "format/atomic_dir.h"
#include "zoo/zoo.h"

namespace hubimg::cli {

void add_export_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string arch;
    std::string output;
    double alpha = 1.0;
    bool feature_vector = false;
    int64_t num_classes = 0;
    uint64_t seed = 1;
    int64_t input_size = -1;
    double l2 = 4e-5;
    std::string init = "varied";
  };
  auto args = std::make_shared<Args>();
  std::string archs;
  for (const auto& n : zoo::zoo_model_names()) archs += (archs.empty() ? "" : ", ") + n;
  auto* cmd = app.add_subcommand(
      "export", "Write a freshly initialized zoo network as a Reusable SavedModel (TF Hub API)");
  cmd->add_option("ARCH", args->arch, "Architecture: " + archs)->required();
  cmd->add_option("--output", args->output, "SavedModel directory to create (absent or empty)")
      ->required();
  cmd->add_option("--alpha", args->alpha,
                  "Width multiplier (MobileNetV2, as Keras applications' alpha)");
  auto* fv = cmd->add_flag("--feature-vector", args->feature_vector,
                           "No classifier: __call__ returns features [batch, num_features]");
  cmd->add_option("--num-classes", args->num_classes,
                  "Classifier head with N classes, returning logits (default: 1000; tiny_cnn 5)")
      ->excludes(fv)
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", args->seed, "Seed of the weight initializers (default 1)");
  cmd->add_option("--input-size", args->input_size,
                  "Fixed input height and width; -1 (default): any size, input [-1, -1, -1, 3]");
  cmd->add_option("--l2", args->l2,
                  "L2 factor of the kernel regularization losses l2*sum(w^2) (default 4e-5; 0: "
                  "none)");
  cmd->add_option("--init", args->init,
                  "Weights: varied (default; He-scaled kernels, batch-norm parameters and "
                  "statistics drawn near their neutral values, residual branches starting small) "
                  "or keras (the architecture's Keras initializers: glorot_uniform, batch norm "
                  "at gamma 1, beta 0, statistics 0 and 1)")
      ->check(CLI::IsMember({"varied", "keras"}));
  cmd->callback([args, &exit_code] {
    zoo::ZooOptions options;
    options.seed = args->seed;
    options.initialization =
        args->init == "keras" ? zoo::Initialization::kKeras : zoo::Initialization::kVaried;
    options.alpha = args->alpha;
    options.feature_vector = args->feature_vector;
    options.num_classes = args->num_classes;
    options.input_size = args->input_size;
    options.momentum_argument = true;
    options.l2 = args->l2;
    options.training_trace = true;
    options.write_manifest = false;
    zoo::ZooModelSummary summary;
    Status s = format::write_directory_atomically(
        args->output, [&](const std::filesystem::path& dir) -> Status {
          HUBIMG_ASSIGN_OR_RETURN(summary, zoo::write_zoo_model(args->arch, dir, options));
          return {};
        });
    if (!s.ok()) return void(exit_code = report_error(s.message()));
    std::cout << fmt::format(
        "{} ({}): input [-1, {}, {}, 3] -> {} [-1, {}]; {} variables ({} trainable), {} "
        "parameters ({} trainable), {} regularization losses -> {}\n",
        args->arch, summary.name, summary.input_shape[1], summary.input_shape[2],
        args->feature_vector ? "features" : "logits", summary.num_outputs, summary.num_variables,
        summary.num_trainable_variables, summary.parameters, summary.trainable_parameters,
        summary.num_regularization_losses, args->output);
    exit_code = 0;
  });
}

}  // namespace hubimg::cli
