// The consumer model of TF Hub's make_image_classifier, in C++:
//   hub.KerasLayer(base, trainable=..., arguments=..., output_key=...)
//   -> Dropout(rate) -> Dense(num_classes, kernel_regularizer=l2(factor))
// trained with sparse categorical cross-entropy on the logits (with label smoothing), plus
// factor * sum(kernel^2), plus the base's regularization_losses when it is trainable. The head
// runs in plain C++; the base's gradients come from Model::gradients with dL/dfeatures.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hubimg/model.h"
#include "hubimg/status.h"
#include "hubimg/tensor.h"
#include "hubimg/train.h"
#include "hubimg/variable.h"

namespace hubimg {

struct HubLayerOptions {
  // Fine-tune the base (training-mode call, its trainable variables updated); otherwise the base
  // runs in inference mode and only the head trains.
  bool trainable = false;
  // Keyword arguments of the base's __call__, e.g. {"batch_norm_momentum", 0.997f}.
  std::map<std::string, Tensor> arguments;
  // The output to use when __call__ returns a dict ("" when it returns one tensor).
  std::string output_key;
  // Call this signature instead of __call__ (hub.KerasLayer's `signature=`), for models without
  // one: Keras 3 `model.export()`, TF1 SavedModels. Its outputs are a dict, so `output_key` picks
  // one when there are several. A signature has one trace (batch norm on moving statistics), no
  // variable updates and no regularization losses, so it cannot be trainable (as KerasLayer).
  std::string signature;
};

struct ClassifierOptions {
  HubLayerOptions hub;
  int64_t num_classes = 0;
  int64_t image_height = 0, image_width = 0;  // the images given to the base
  double dropout_rate = 0.2;
  double l2 = 0.0;               // Keras l2 on the Dense kernel: l2 * sum(kernel^2)
  double label_smoothing = 0.0;  // y = onehot * (1 - s) + s / num_classes
  uint64_t seed = 1;             // Glorot-uniform kernel and dropout masks
  OptimizerOptions optimizer;
};

struct StepMetrics {
  double loss = 0;  // cross-entropy (mean over the batch) + regularization
  double accuracy = 0;
};

struct EvalMetrics {
  double loss = 0;  // as StepMetrics, in inference mode; means over the examples
  double accuracy = 0;
  double top5_accuracy = 0;
  std::vector<int64_t> predictions;  // argmax per example
};

// dL/dv for each of trainable_variables(), with the batch's metrics.
struct ClassifierGradients {
  StepMetrics metrics;
  std::vector<Tensor> gradients;
};

class ImageClassifier {
 public:
  // Probes the base with one zero image to find its feature size; the output must be float32
  // [batch, num_features].
  static Expected<ImageClassifier> create(Model base, ClassifierOptions options);

  int64_t num_features() const { return num_features_; }
  const ClassifierOptions& options() const { return options_; }
  const Model& base() const { return base_; }
  Variable& kernel() { return *kernel_; }  // float32 [num_features, num_classes]
  Variable& bias() { return *bias_; }      // float32 [num_classes]
  // Head kernel and bias, then the base's trainable variables when the hub layer is trainable.
  std::vector<Variable*> trainable_variables() const;
  // Every variable a checkpoint saves: the head, then all of the base's variables (batch-norm
  // moving statistics included) when the hub layer is trainable.
  std::vector<Variable*> checkpoint_variables() const;
  Optimizer& optimizer() { return optimizer_; }

  // Loss, metrics and gradients of one batch in training mode without changing any trainable
  // variable (a trainable base's batch-norm moving statistics are updated, as in Keras).
  // images float32 [batch, H, W, 3]; labels int64 [batch] in [0, num_classes). `step` picks
  // the dropout mask.
  Expected<ClassifierGradients> compute_gradients(const Tensor& images, const Tensor& labels,
                                                  int64_t step);
  // compute_gradients at the optimizer's step count, then one optimizer step.
  Expected<StepMetrics> train_step(const Tensor& images, const Tensor& labels);

  // Re-estimates a trainable base's batch-norm moving statistics with the current weights
  // (PreciseBN; Keras has no such step, so it is never done implicitly): call it for batches
  // k = 0, 1, ... of training images; each runs the base's training trace, which updates the
  // statistics and nothing else. When the base takes `batch_norm_momentum`, batch k runs with
  // momentum k / (k + 1), so after n batches each moving statistic is the mean of the n
  // batches' statistics; otherwise the base's own momentum gives an exponential average.
  Status update_batch_norm_statistics(const Tensor& images, int64_t k);

  // The base's output in inference mode: float32 [batch, num_features].
  Expected<Tensor> features(const Tensor& images) const;
  // A head-only training step on precomputed features (the base is frozen).
  Expected<StepMetrics> train_step_on_features(const Tensor& features, const Tensor& labels);
  // Inference-mode metrics on a batch (or on precomputed features).
  Expected<EvalMetrics> evaluate(const Tensor& images, const Tensor& labels) const;
  Expected<EvalMetrics> evaluate_features(const Tensor& features, const Tensor& labels) const;
  // Logits float32 [batch, num_classes] in inference mode.
  Expected<Tensor> logits(const Tensor& images) const;

  // Writes the classifier to `out_dir` (absent or empty; written to a sibling folder and renamed
  // into place) as a Reusable SavedModel, as `hubimg retrain` publishes it: root __call__ with
  // training=False and training=True traces made of the base model's own functions plus Dropout
  // and Dense (returning logits), a serving_default signature returning softmax probabilities,
  // variables, trainable_variables (the base's too when the hub layer is trainable),
  // regularization_losses, and `class_names` (one per class; empty: "0", "1", ...) as
  // assets/labels.txt. The hub layer's arguments are written into the traces as constants, so
  // they must be numeric scalars.
  Status publish(const std::filesystem::path& out_dir,
                 std::vector<std::string> class_names = {}) const;

 private:
  explicit ImageClassifier(Model base) : base_(std::move(base)) {}
  Expected<ClassifierGradients> head_gradients(const Tensor& features, const Tensor& labels,
                                               int64_t step, Tensor* feature_gradient) const;
  Expected<EvalMetrics> head_evaluate(const Tensor& features, const Tensor& labels) const;
  Expected<Tensor> pick_output(const std::map<std::string, Tensor>& outputs) const;
  // The base's outputs on `images` in inference mode (its __call__ or its signature).
  Expected<std::map<std::string, Tensor>> call_base(const Tensor& images) const;

  Model base_;
  ClassifierOptions options_;
  std::string input_name_;
  std::string output_name_;
  int64_t num_features_ = 0;
  bool base_has_regularization_ = false;
  std::unique_ptr<Variable> kernel_, bias_;
  Optimizer optimizer_;
};

}  // namespace hubimg
