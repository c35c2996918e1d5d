// Loading and calling a SavedModel: the root `__call__` (what hub.load(...)(images) runs),
// named signatures, and the model's variables.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "hubimg/status.h"
#include "hubimg/tensor.h"
#include "hubimg/variable.h"

namespace hubimg {

namespace format {
class SavedModel;
}

// Where a call spends its time, per op type (kernel time only).
struct Profile {
  std::map<std::string, double> ms_by_op;
  std::map<std::string, int64_t> calls_by_op;
  std::map<std::string, double> ms_by_node;  // "node name (op)"
};

struct CallOptions {
  // Selects the training trace (batch norm on batch statistics, dropout inside the model).
  bool training = false;
  // Keyword arguments of `__call__`, e.g. {"batch_norm_momentum", Tensor::scalar(0.997f)}.
  std::map<std::string, Tensor> arguments;
  // When set, kernel times are added to it (summed over threads when a batch is split).
  Profile* profile = nullptr;
  // Lets a batch of several images run as chunks of rows on different threads when the graph
  // treats rows independently (results are the same; off: the batch runs whole).
  bool split_batch = true;
  // Gradient calls: called before each node of the forward and backward graph whose op type is
  // in `ops` runs, with the node's name and input values (a look at intermediate values, e.g.
  // which branch each ReLU unit takes when comparing with another engine).
  struct NodeTap {
    std::set<std::string> ops;
    std::function<void(const std::string& node, const std::string& op,
                       std::span<const Tensor> inputs)>
        on_node;
  };
  const NodeTap* tap = nullptr;
};

// What a gradient call differentiates. L is the sum of the parts given:
//   sum_k sum(cotangents[k] * output_k)   (a vector-Jacobian product), and/or
//   mean over the batch of the sparse softmax cross-entropy of output `loss_output` (logits
//   [batch, classes]) against `labels` (int32/int64 [batch]), as tf.keras'
//   SparseCategoricalCrossentropy(from_logits=True) computes it.
struct GradientTargets {
  std::map<std::string, Tensor> cotangents;
  std::string loss_output;
  Tensor labels;
  // Cotangents that depend on the outputs (a loss computed outside the model): called once in
  // the middle of the call, after the forward pass, with the forward outputs by name; returns
  // the cotangent of each output named in `cotangents` (whose values are then ignored). One
  // forward pass serves both the caller's loss and the backward pass.
  std::function<Expected<std::map<std::string, Tensor>>(const std::map<std::string, Tensor>&)>
      cotangents_from_outputs;
  // Also differentiate w.r.t. the float inputs (off: a training step that only needs the
  // variables' gradients skips the backward pass into the images).
  bool input_gradients = true;
};

struct GradientResult {
  std::map<std::string, Tensor> outputs;
  // dL/dv for each variable of trainable_variables(), in that order (zeros for a variable the
  // call does not read, where TensorFlow would return None).
  std::vector<Tensor> gradients;
  // dL/dx for each float input, by input name.
  std::map<std::string, Tensor> input_gradients;
  // The variables the call assigned (batch-norm moving statistics in training mode), in the
  // model's variable order; their values are already the new ones.
  std::vector<Variable*> assigned;
  // The cross-entropy part of L when `loss_output` was given (a float32 scalar).
  Tensor loss;
};

struct LoadOptions {
  // Build the training traces at load time too (they are otherwise built on first use).
  bool prepare_training = false;
  // Run inference graphs optimized: variables frozen into constants, constants folded,
  // batch norm folded into convolutions (rebuilt after variables change).
  bool optimize = true;
};

// A loaded model. Copies are cheap and share everything, variables included: training through
// one copy (or an ImageClassifier built on it) changes what every copy computes.
//
// Threads: calls that only read the variables may run on one Model from any number of threads
// at once, and give the same bits as when made alone (tests/exec/concurrent_calls_test.cc):
// operator(), call(), call_signature(), regularization_losses(), regularization_gradients(),
// and gradients() in inference mode. A call that writes variables (gradients() with
// `training = true` updates batch-norm statistics; an optimizer's apply()) must not overlap any
// other call on the model or its copies.
class Model {
 public:
  // `path`: a SavedModel directory or a .tar.gz, .tar or .zip of one.
  static Expected<Model> load(const std::filesystem::path& path, const LoadOptions& options = {});

  bool has_call() const;
  // Root `__call__` on one positional input (e.g. images float32 [batch, h, w, 3]). Results in
  // order: output_0, output_1, ... (or a dict result's keys, sorted).
  Expected<std::vector<Tensor>> operator()(const Tensor& input,
                                           const CallOptions& options = {}) const;
  // Root `__call__` with inputs by parameter name ("inputs", or "x", "y", ...); results by
  // output name ("output_0", ... or the dict keys).
  Expected<std::map<std::string, Tensor>> call(const std::map<std::string, Tensor>& inputs,
                                               const CallOptions& options = {}) const;
  // A named signature with its input keys; results by its output keys.
  // `options.training` and `options.arguments` do not apply to signatures.
  Expected<std::map<std::string, Tensor>> call_signature(
      const std::string& name, const std::map<std::string, Tensor>& inputs,
      const CallOptions& options = {}) const;

  // One call of the root `__call__` (trace chosen by `options.training`, hyperparameters from
  // `options.arguments`) with its backward pass: outputs, gradients w.r.t. every trainable
  // variable and every float input, the call's variable writes applied. Training graphs run
  // unoptimized (no folding into inference kernels), on the ops' fast kernels.
  Expected<GradientResult> gradients(const std::map<std::string, Tensor>& inputs,
                                     const GradientTargets& targets,
                                     const CallOptions& options = {}) const;
  // As gradients() for a named signature (no training mode or arguments).
  Expected<GradientResult> signature_gradients(const std::string& name,
                                               const std::map<std::string, Tensor>& inputs,
                                               const GradientTargets& targets) const;
  // Gradients of sum(regularization_losses()) w.r.t. trainable_variables() (zeros where a
  // variable has no regularizer); `total` receives the sum when not null.
  Expected<std::vector<Tensor>> regularization_gradients(Tensor* total = nullptr) const;

  std::vector<std::string> signature_names() const;
  // The signature to call when there is no __call__: serving_default, else "default" (the TF1
  // Hub format's, as hub.KerasLayer picks it); "" when there is neither.
  std::string default_signature() const;
  // Input specs of the inference `__call__` trace (positional parameter name -> spec).
  struct InputSpec {
    std::string name;
    DType dtype;
    PartialShape shape;
    // The call has a Python default for it (a scalar hyperparameter such as TF Hub's
    // `batch_norm_momentum=0.99`): callers may leave it out. Always false for signatures.
    bool has_default = false;
  };
  std::vector<InputSpec> call_input_specs() const;
  std::vector<InputSpec> signature_input_specs(const std::string& name) const;

  std::vector<Variable*> variables() const;
  std::vector<Variable*> trainable_variables() const;
  // Evaluates each of root.regularization_losses (scalar tensors).
  Expected<std::vector<Tensor>> regularization_losses() const;

  // Problems found at load time in parts of the model that are not needed for inference
  // (e.g. a signature using an op hubimg does not implement); calling those parts fails.
  const std::vector<std::string>& load_warnings() const;
  const format::SavedModel& saved_model() const;
  // The class names the model ships, for read_labels(): assets/labels.txt (hubimg retrain
  // publishes them there), else labels.txt beside the SavedModel folder (Teachable Machine's
  // converted_savedmodel.zip, unpacked or not; never outside an extracted archive). Empty when
  // there is none; valid while the model lives.
  std::filesystem::path labels_file() const;

  struct Impl;

 private:
  explicit Model(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// Threads hubimg's kernels use, process-wide (<= 0: HUBIMG_NUM_THREADS, else every core). A
// batch of several images is split into chunks run on different threads; a single image runs
// each layer on all threads.
void set_num_threads(int num_threads);
int num_threads();

// A class-names file: one name per line, a final CR dropped; Teachable Machine's "0 cat",
// "1 dog" lose their indices when every line starts with its own. At most 64 MiB.
Expected<std::vector<std::string>> read_labels(const std::filesystem::path& path);

inline Expected<Model> load(const std::filesystem::path& path, const LoadOptions& options = {}) {
  return Model::load(path, options);
}

}  // namespace hubimg
