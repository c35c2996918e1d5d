// Writing a retrained classifier (hub base + dropout + dense head) as a SavedModel.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::train {

struct PublishRequest {
  std::filesystem::path base_model;  // the hub model that was retrained (SavedModel dir)
  std::map<std::string, Tensor> base_variables;  // base variable values after training, keyed by
                                                 // Variable::name(); missing = unchanged
  bool base_trainable = false;
  std::string base_output_key;                   // "" when the base __call__ returns one tensor
  std::map<std::string, double> base_arguments;  // e.g. batch_norm_momentum
  Tensor head_kernel;                            // float32 [num_features, num_classes]
  Tensor head_bias;                              // float32 [num_classes]
  float dropout_rate = 0.2f;
  double head_l2 = 0.0;
  std::vector<std::string> labels;            // written to assets/labels.txt
  int64_t image_height = 0, image_width = 0;  // serving signature input [-1, H, W, 3]
};

Status publish_classifier(const PublishRequest& request, const std::filesystem::path& out_dir);

}  // namespace hubimg::train
