// The model zoo: Keras-application architectures (MobileNetV2 with its width multiplier,
// EfficientNet-B0, ResNet-50 v1.5) and a tiny CNN, with seeded random weights, written as TF2
// SavedModels laid out like Keras exports (one function per layer, called from the model
// function). Used by `hubimg export` (Reusable SavedModels for TF Hub-style fine-tuning) and by
// the benchmarks (bench/make_bench_models: fixed input size, ImageNet head, weights_manifest.json
// that lets another framework rebuild the same network).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hubimg/status.h"

namespace hubimg::zoo {

// How the weights are drawn.
enum class Initialization {
  // He-scaled kernels and biases, batch norm's gamma drawn from [0.8, 1.2] ([0.2, 0.4] on the
  // last batch norm of a residual branch, so that branches start small and sums keep the
  // activations' scale), beta and the moving statistics drawn around 0 and 1. No parameter sits
  // at a neutral value, so a check against another engine sees every one. It also trains better
  // than kKeras: the Fashion-MNIST recipe (README) reaches test 0.886 from it, 0.711 and 0.855
  // (two seeds) from kKeras, whose training loss rises in some epochs (in PyTorch too).
  kVaried,
  // The architecture's Keras initializers, as `tf.keras.applications.X(weights=None)` builds it:
  // glorot_uniform kernels (EfficientNet: VarianceScaling fan_out), zero biases, batch norm
  // gamma 1, beta 0, moving mean 0, moving variance 1.
  kKeras,
};

struct ZooOptions {
  uint64_t seed = 1;
  Initialization initialization = Initialization::kVaried;
  // Keras applications' `alpha` (MobileNetV2 only): channels scaled and rounded to multiples of
  // 8, the last convolution stays 1280 wide for alpha <= 1.
  double alpha = 1.0;
  // Stop after global average pooling: __call__ returns features [batch, num_features].
  bool feature_vector = false;
  // Classes of the Dense head; 0: the architecture's (1000, tiny_cnn 5).
  int64_t num_classes = 0;
  // Input height and width; -1 for any size (the input spec is then [-1, -1, -1, 3] and
  // padding follows Keras' correct_pad for an unknown size). 0: the architecture's (224; 64).
  int64_t input_size = 0;
  // __call__(inputs, training=False, batch_norm_momentum=0.99): the momentum is a Tensor-valued
  // hyperparameter that the training trace's moving-average updates use, as TF Hub's image
  // models have. Off: Keras' fixed per-architecture momentum, fused into the batch-norm op.
  bool momentum_argument = false;
  // L2 regularization losses l2 * sum(kernel^2) on every Conv2D and Dense kernel (Keras'
  // kernel_regularizer=l2(...); depthwise kernels and batch norm are not regularized). 0: none.
  double l2 = 0.0;
  bool training_trace = true;  // add the training=True trace (batch norm on batch statistics)
  bool write_manifest = true;  // weights_manifest.json (needs a fixed input size)
  bool dump_npy = false;       // also write npy/<variable>.npy for every variable
};

struct ZooModelSummary {
  std::string name;
  std::vector<int64_t> input_shape;  // [-1, H, W, C]
  int64_t num_outputs = 0;           // classes, or features for a feature vector
  int num_layers = 0;
  int num_variables = 0;
  int num_trainable_variables = 0;
  int num_regularization_losses = 0;
  int64_t parameters = 0;  // every variable element, batch-norm statistics included
  int64_t trainable_parameters = 0;
};

// "mobilenet_v2", "efficientnet_b0", "resnet50", "tiny_cnn".
std::vector<std::string> zoo_model_names();

// Writes the model into `dir` (saved_model.pb, variables/, optionally weights_manifest.json).
Expected<ZooModelSummary> write_zoo_model(const std::string& name, const std::filesystem::path& dir,
                                          const ZooOptions& options);

}  // namespace hubimg::zoo
