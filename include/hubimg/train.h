// Training: optimizers with tf.keras's update rules and defaults, learning-rate schedules, and
// the optimizer state a checkpoint saves. (The consumer model is in hubimg/classifier.h.)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hubimg/status.h"
#include "hubimg/tensor.h"
#include "hubimg/variable.h"

namespace hubimg {

// A learning rate as a function of the optimizer's step count (0 on the first step), as
// tf.keras.optimizers.schedules computes it:
//   constant:           initial
//   exponential decay:  initial * decay_rate ^ (step / decay_steps)   (staircase: floor of it)
//   cosine decay:       initial * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay_steps) /
//                       decay_steps)) + alpha)
struct LearningRateSchedule {
  enum class Kind { kConstant, kExponentialDecay, kCosineDecay };
  Kind kind = Kind::kConstant;
  double initial = 0.01;
  int64_t decay_steps = 1;
  double decay_rate = 1.0;  // exponential decay
  bool staircase = false;   // exponential decay
  double alpha = 0.0;       // cosine decay: the final fraction of `initial`

  static LearningRateSchedule constant(double learning_rate);
  static LearningRateSchedule exponential_decay(double initial, int64_t decay_steps,
                                                double decay_rate, bool staircase = false);
  static LearningRateSchedule cosine_decay(double initial, int64_t decay_steps, double alpha = 0);
  // Fails on a non-positive decay_steps or a negative rate.
  Status validate() const;
  double at(int64_t step) const;
};

enum class OptimizerKind { kSgd, kAdam, kAdamW, kRmsprop };
// "sgd", "adam", "adamw", "rmsprop".
Expected<OptimizerKind> optimizer_kind_from_name(const std::string& name);
std::string optimizer_kind_name(OptimizerKind kind);

// Hyperparameters; keras_defaults() gives tf.keras's defaults for each optimizer.
struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kSgd;
  LearningRateSchedule learning_rate = LearningRateSchedule::constant(0.01);
  double momentum = 0.0;      // SGD, RMSprop (0: none)
  bool nesterov = false;      // SGD
  double beta_1 = 0.9;        // Adam, AdamW
  double beta_2 = 0.999;      // Adam, AdamW
  double epsilon = 1e-7;      // Adam, AdamW, RMSprop
  double weight_decay = 0.0;  // AdamW (Keras default 0.004)
  double rho = 0.9;           // RMSprop
  bool centered = false;      // RMSprop

  // SGD lr 0.01; Adam, AdamW, RMSprop lr 0.001; AdamW weight decay 0.004.
  static OptimizerOptions keras_defaults(OptimizerKind kind);
};

// Updates variables in place from their gradients as tf.keras.optimizers (Keras 2.11+ / 3)
// does, with lr = learning_rate.at(iterations) and t = iterations + 1:
//   SGD:     v = momentum * v - lr * g;  w += v   (nesterov: w += momentum * v - lr * g;
//            momentum 0: w -= lr * g)
//   Adam:    m += (g - m) * (1 - beta_1);  v += (g^2 - v) * (1 - beta_2);
//            w -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)
//   AdamW:   w -= lr * weight_decay * w, then the Adam step
//   RMSprop: r = rho * r + (1 - rho) * g^2;  (centered: a = rho * a + (1 - rho) * g,
//            d = r - a^2 + epsilon; else d = r + epsilon);  u = lr * g / sqrt(d);
//            momentum > 0: mv = momentum * mv + u, w -= mv; else w -= u
// Slots start at zero on a variable's first step. Variables are updated in place when nothing
// else holds their buffer (otherwise a new value is assigned).
class Optimizer {
 public:
  explicit Optimizer(OptimizerOptions options = {}) : options_(options) {}

  // One step over `variables[i]` with `gradients[i]` (same shape; float32 or float64 like the
  // variable). Fails, naming the variable, on a count, shape or dtype mismatch, before changing
  // anything.
  Status apply(const std::vector<Variable*>& variables, const std::vector<Tensor>& gradients);

  const OptimizerOptions& options() const { return options_; }
  // Steps applied so far (Keras's `optimizer.iterations`).
  int64_t iterations() const { return iterations_; }
  double current_learning_rate() const { return options_.learning_rate.at(iterations_); }
  // The slot names of this optimizer ("momentum"; "m", "v"; "rms", "mg", "momentum").
  std::vector<std::string> slot_names() const;
  // A variable's slot (empty before its first step or when this optimizer has no such slot).
  Tensor slot(const Variable& variable, const std::string& name) const;

  // The optimizer's state for a checkpoint: "iterations" (int64 scalar) and
  // "<variable name>/<slot>" for each variable's slots.
  std::map<std::string, Tensor> state(const std::vector<Variable*>& variables) const;
  // Restores what state() saved; slots that do not fit their variable are an error.
  Status restore(const std::vector<Variable*>& variables,
                 const std::map<std::string, Tensor>& state);

 private:
  OptimizerOptions options_;
  int64_t iterations_ = 0;
  std::map<const Variable*, std::map<std::string, Tensor>> slots_;
};

struct SgdOptions {
  double learning_rate = 0.01;
  double momentum = 0.0;  // 0: plain gradient descent
  bool nesterov = false;
};

// The Optimizer with OptimizerKind::kSgd and a constant learning rate.
class SgdOptimizer {
 public:
  explicit SgdOptimizer(SgdOptions options = {});
  Status apply(const std::vector<Variable*>& variables, const std::vector<Tensor>& gradients) {
    return optimizer_.apply(variables, gradients);
  }
  const SgdOptions& options() const { return options_; }
  // The velocity slot of a variable (empty before its first step, and without momentum).
  Tensor velocity(const Variable& variable) const { return optimizer_.slot(variable, "momentum"); }

 private:
  SgdOptions options_;
  Optimizer optimizer_;
};

}  // namespace hubimg
