#include "bench/bench_models.h"

#include "zoo/zoo.h"

namespace hubimg::bench {

std::vector<std::string> bench_model_names() {
  return zoo::zoo_model_names();
}

Expected<BenchModelSummary> write_bench_model(const std::string& name,
                                              const std::filesystem::path& dir,
                                              const BenchModelOptions& options) {
  zoo::ZooOptions zoo_options;
  zoo_options.seed = options.seed;
  zoo_options.dump_npy = options.dump_npy;
  zoo_options.training_trace = options.training_trace;
  zoo_options.input_size = options.input_size;
  zoo_options.alpha = options.alpha;
  zoo_options.feature_vector = options.feature_vector;
  HUBIMG_ASSIGN_OR_RETURN(zoo::ZooModelSummary z, zoo::write_zoo_model(name, dir, zoo_options));
  BenchModelSummary summary;
  summary.name = z.name;
  summary.input_shape = z.input_shape;
  summary.num_classes = static_cast<int>(z.num_outputs);
  summary.num_layers = z.num_layers;
  summary.num_variables = z.num_variables;
  summary.num_trainable_variables = z.num_trainable_variables;
  summary.parameters = z.parameters;
  summary.trainable_parameters = z.trainable_parameters;
  return summary;
}

}  // namespace hubimg::bench
