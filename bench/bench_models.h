// Benchmark and demo models: Keras-application architectures (MobileNetV2 1.0, EfficientNet-B0,
// ResNet-50 v1.5) and a tiny CNN, with seeded random weights, written as TF2 SavedModels laid
// out like Keras exports (one function per layer, called from the model function), plus a
// weights_manifest.json that lets another framework rebuild the same network.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "hubimg/status.h"

namespace hubimg::bench {

struct BenchModelOptions {
  uint64_t seed = 1;
  bool dump_npy = false;       // also write npy/<variable>.npy for every variable
  bool training_trace = true;  // add the training=True trace (batch norm on batch statistics)
  // Input height = width (0: the
  // architecture's default), MobileNetV2 width multiplier, and no classification layer: the
  // model returns the pooled features [batch, num_features].
  int64_t input_size = 0;
  double alpha = 1.0;
  bool feature_vector = false;
};

struct BenchModelSummary {
  std::string name;
  std::vector<int64_t> input_shape;  // [-1, H, W, C]
  int num_classes = 0;
  int num_layers = 0;
  int num_variables = 0;
  int num_trainable_variables = 0;
  int64_t parameters = 0;  // every variable element, batch-norm statistics included
  int64_t trainable_parameters = 0;
};

// "mobilenet_v2", "efficientnet_b0", "resnet50", "tiny_cnn".
std::vector<std::string> bench_model_names();

// Writes the model into `dir` (saved_model.pb, variables/, weights_manifest.json).
Expected<BenchModelSummary> write_bench_model(const std::string& name,
                                              const std::filesystem::path& dir,
                                              const BenchModelOptions& options);

}  // namespace hubimg::bench
