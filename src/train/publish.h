// Publishing a retrained classifier (a TF Hub feature-vector or classifier base + Dropout +
// Dense head, as make_image_classifier builds it) as a Reusable SavedModel: root `__call__`
// (training=False and training=True traces returning logits) made of the base model's own
// FunctionDefs with their captures rebound to the new checkpoint, `serving_default` returning
// softmax probabilities, `variables`, `trainable_variables`, `regularization_losses`, and the
// class names as the asset assets/labels.txt.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::format {
class SavedModel;
}

namespace hubimg::train {

struct PublishRequest {
  std::filesystem::path base_model;  // the hub model that was retrained (SavedModel dir)
  // Base variable values after training, keyed by Variable::name() (as `hubimg info` prints);
  // missing = unchanged value from base_model.
  std::map<std::string, Tensor> base_variables;
  bool base_trainable = false;  // base variables go to trainable_variables too (fine-tuned)
  std::string base_output_key;  // "" when the base __call__ returns one tensor; else the dict key
  // The signature the hub layer called instead of __call__ ("": __call__). Its one function
  // serves both published traces; the base's regularization losses are not included (a
  // signature layer is never trainable).
  std::string base_signature;
  // Hyperparameters the hub layer was called with (e.g. batch_norm_momentum); baked into the
  // published traces as constants. Missing ones take the base __call__'s Python defaults.
  std::map<std::string, double> base_arguments;
  Tensor head_kernel;               // float32 [num_features, num_classes]
  Tensor head_bias;                 // float32 [num_classes]
  float dropout_rate = 0.2f;        // Dropout between hub layer and Dense (training trace only)
  double head_l2 = 0.0;             // L2 factor on head_kernel: a regularization loss l2*sum(k^2)
  std::vector<std::string> labels;  // class names, written to assets/labels.txt
  int64_t image_height = 0, image_width = 0;  // serving signature input [-1, H, W, 3]
};

// Writes the classifier to `out_dir` atomically (into a sibling "<out_dir>.tmp-XXXXXX", renamed
// when complete). Fails, writing nothing, when `out_dir` exists and is not an empty directory.
Status publish_classifier(const PublishRequest& request, const std::filesystem::path& out_dir);
// The same with the base already loaded (request.base_model then only names it in errors).
Status publish_classifier(const PublishRequest& request, const format::SavedModel& base,
                          const std::filesystem::path& out_dir);

}  // namespace hubimg::train
