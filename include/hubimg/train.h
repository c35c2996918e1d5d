// Training: the optimizer update applied to a model's variables after Model::gradients().
// (Losses, datasets and the consumer model come with the retrain workflow.)
#pragma once

#include <map>
#include <string>
#include <vector>

#include "hubimg/status.h"
#include "hubimg/tensor.h"
#include "hubimg/variable.h"

namespace hubimg {

struct SgdOptions {
  double learning_rate = 0.01;
  double momentum = 0.0;  // 0: plain gradient descent
  bool nesterov = false;
};

// Stochastic gradient descent with momentum, as tf.keras.optimizers.SGD updates a variable:
//   velocity = momentum * velocity - learning_rate * gradient
//   variable += velocity                                  (nesterov: momentum * velocity
//                                                          - learning_rate * gradient)
// The velocity of a variable starts at zero on its first step. Variables are updated in place
// when nothing else holds their buffer (otherwise a new value is assigned).
class SgdOptimizer {
 public:
  explicit SgdOptimizer(SgdOptions options = {}) : options_(options) {}

  // One step over `variables[i]` with `gradients[i]` (same shape; float32 or float64 like the
  // variable). Fails, naming the variable, on a count, shape or dtype mismatch, before changing
  // anything.
  Status apply(const std::vector<Variable*>& variables, const std::vector<Tensor>& gradients);

  const SgdOptions& options() const { return options_; }
  // The velocity slot of a variable (empty before its first step).
  Tensor velocity(const Variable& variable) const;

 private:
  SgdOptions options_;
  std::map<const Variable*, Tensor> velocity_;
};

}  // namespace hubimg
