#include "train/publish.h"

#include <algorithm>
#include <optional>
#include <set>

#include "format/atomic_dir.h"
#include "format/saved_model.h"
#include "format/saved_model_writer.h"
#include "graph.pb.h"
#include "ops/op_registry.h"
#include "train/graph_function.h"

namespace hubimg::train {
namespace {

using format::FunctionBuilder;
using format::FunctionSignature;
using format::SavedModelWriter;
using format::TensorSpec;
using format::VariableHandle;
constexpr DType kF32 = DType::kFloat32;

// The object path of a checkpoint key "a/b.Sc/.ATTRIBUTES/VARIABLE_VALUE": {"a", "b/c"}.
std::vector<std::string> object_path_of(const std::string& checkpoint_key) {
  static const std::string kSuffix = "/.ATTRIBUTES/VARIABLE_VALUE";
  if (checkpoint_key.size() <= kSuffix.size() || !checkpoint_key.ends_with(kSuffix)) return {};
  const std::string path = checkpoint_key.substr(0, checkpoint_key.size() - kSuffix.size());
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '/') {
      parts.emplace_back();
    } else if (path[i] == '.' && i + 1 < path.size() && path[i + 1] == '.') {
      parts.back() += '.';
      ++i;
    } else if (path[i] == '.' && i + 1 < path.size() && path[i + 1] == 'S') {
      parts.back() += '/';
      ++i;
    } else {
      parts.back() += path[i];
    }
  }
  for (const auto& p : parts) {
    if (p.empty()) return {};
  }
  return parts;
}

Expected<Tensor> scalar_of(DType dtype, double value, const std::string& what) {
  switch (dtype) {
    case DType::kFloat32: return Tensor::scalar<float>(static_cast<float>(value));
    case DType::kFloat64: return Tensor::scalar<double>(value);
    case DType::kInt32: return Tensor::scalar<int32_t>(static_cast<int32_t>(value));
    case DType::kInt64: return Tensor::scalar<int64_t>(static_cast<int64_t>(value));
    default:
      return unimplemented(what + ": a hyperparameter of type " + dtype_name(dtype) +
                           " cannot be set from a number");
  }
}

// One trace of the base model's __call__ and how to call it.
struct BaseTrace {
  const format::ConcreteFunction* function = nullptr;
  FunctionSignature signature;
  TensorSpec image;                      // the function's image parameter
  std::vector<VariableHandle> captures;  // resource arguments after the image and hyperparameters
  std::vector<std::pair<std::string, TensorSpec>> hyperparameters;  // flat inputs after the image
  size_t output_index = 0;
};

class Publisher {
 public:
  Publisher(const PublishRequest& request, const format::SavedModel& base)
      : request_(request), base_(base) {}

  Status write(const std::filesystem::path& dir) {
    HUBIMG_RETURN_IF_ERROR(check_head());
    HUBIMG_RETURN_IF_ERROR(add_variables());
    HUBIMG_RETURN_IF_ERROR(copy_functions());
    HUBIMG_RETURN_IF_ERROR(add_call_and_signature());
    HUBIMG_RETURN_IF_ERROR(add_regularization_losses());
    std::string labels;
    for (const auto& l : request_.labels) labels += l + "\n";
    HUBIMG_RETURN_IF_ERROR(writer_.add_asset("labels_file", "labels.txt", std::move(labels)));
    return writer_.write(dir);
  }

 private:
  std::string where() const { return "publish " + request_.base_model.string(); }
  std::string callable() const {
    return request_.base_signature.empty() ? "__call__"
                                           : "signature '" + request_.base_signature + "'";
  }

  Status check_head() {
    const Tensor& k = request_.head_kernel;
    const Tensor& b = request_.head_bias;
    if (!k.valid() || k.dtype() != kF32 || k.rank() != 2 || k.shape()[1] < 1) {
      return invalid_argument(where() + ": head_kernel must be float32 [features, classes], got " +
                              (k.valid() ? k.description() : std::string("nothing")));
    }
    if (!b.valid() || b.dtype() != kF32 || b.shape() != Dims{k.shape()[1]}) {
      return invalid_argument(where() + ": head_bias must be float32 [" +
                              std::to_string(k.shape()[1]) + "], got " +
                              (b.valid() ? b.description() : std::string("nothing")));
    }
    if (static_cast<int64_t>(request_.labels.size()) != k.shape()[1]) {
      return invalid_argument(where() + ": " + std::to_string(request_.labels.size()) +
                              " labels for " + std::to_string(k.shape()[1]) + " classes");
    }
    for (const auto& l : request_.labels) {
      if (l.find('\n') != std::string::npos || l.find('\r') != std::string::npos)
        return invalid_argument(where() + ": a label contains a line break");
    }
    if (!(request_.dropout_rate >= 0.0f && request_.dropout_rate < 1.0f))
      return invalid_argument(where() + ": dropout_rate must be in [0, 1)");
    if (!(request_.head_l2 >= 0.0)) return invalid_argument(where() + ": head_l2 must be >= 0");
    if (request_.image_height < 0 || request_.image_width < 0)
      return invalid_argument(where() + ": negative image size");
    return {};
  }

  Status add_variables() {
    std::set<std::string> known;
    const auto& vars = base_.variables();
    for (size_t i = 0; i < vars.size(); ++i) {
      const auto& v = vars[i];
      known.insert(v.name);
      Tensor value = v.value;
      if (auto it = request_.base_variables.find(v.name); it != request_.base_variables.end()) {
        if (it->second.dtype() != v.dtype || it->second.shape() != v.shape) {
          return invalid_argument(where() + ": variable '" + v.name + "' is " +
                                  dtype_name(v.dtype) + " " +
                                  PartialShape::known(v.shape).to_string() + ", the new value " +
                                  it->second.description());
        }
        value = it->second;
      }
      std::vector<std::string> path = object_path_of(v.checkpoint_key);
      if (path.empty()) path = {"variables", std::to_string(i)};
      path.insert(path.begin(), "layer_with_weights-0");
      HUBIMG_ASSIGN_OR_RETURN(VariableHandle h,
                              writer_.add_variable(std::move(path), v.name, std::move(value),
                                                   request_.base_trainable && v.trainable));
      base_handles_.push_back(h);
    }
    for (const auto& [name, value] : request_.base_variables) {
      if (!known.count(name))
        return not_found(where() + ": the base model has no variable '" + name + "'");
    }
    HUBIMG_ASSIGN_OR_RETURN(kernel_,
                            writer_.add_variable({"layer_with_weights-1", "kernel"}, "dense/kernel",
                                                 request_.head_kernel, true));
    HUBIMG_ASSIGN_OR_RETURN(bias_, writer_.add_variable({"layer_with_weights-1", "bias"},
                                                        "dense/bias", request_.head_bias, true));
    return {};
  }

  Expected<VariableHandle> handle_for_node(int node_id, const std::string& fn) const {
    const int index = base_.variable_index_for_node(node_id);
    if (index < 0) {
      return unimplemented(where() + ": function '" + fn + "' captures object-graph node " +
                           std::to_string(node_id) + ", which is not a variable");
    }
    return base_handles_[static_cast<size_t>(index)];
  }

  Expected<const format::Signature*> base_signature() const {
    const std::string& name = request_.base_signature;
    auto it = base_.signatures().find(name);
    if (it == base_.signatures().end())
      return not_found(where() + ": the base model has no signature '" + name + "'");
    return &it->second;
  }

  // The base signature's function (TF2), or an error naming why there is none.
  Expected<const format::ConcreteFunction*> signature_function() const {
    HUBIMG_ASSIGN_OR_RETURN(const format::Signature* sig, base_signature());
    if (!sig->function) {
      return internal_error(where() + ": signature '" + sig->key + "' has no function");
    }
    return sig->function.get();
  }

  // A TF1 signature names graph tensors rather than a function: its nodes become one, which the
  // published __call__ calls as it would a TF2 base's function.
  Status convert_graph_signature(const format::Signature& sig) {
    HUBIMG_ASSIGN_OR_RETURN(
        GraphFunction fn,
        graph_signature_function(
            base_, sig, request_.base_output_key, writer_,
            [&](int index) { return base_handles_[static_cast<size_t>(index)]; }, where()));
    BaseTrace t;
    const format::TensorInfo& input = sig.inputs.begin()->second;
    t.image = TensorSpec{"images", input.dtype, input.shape};
    t.signature = std::move(fn.signature);
    t.captures = std::move(fn.captures);
    graph_trace_ = std::move(t);
    return {};
  }

  Status copy_functions() {
    std::vector<std::string> roots;
    if (!request_.base_signature.empty()) {
      HUBIMG_ASSIGN_OR_RETURN(const format::Signature* sig, base_signature());
      if (!sig->function) return convert_graph_signature(*sig);
      roots.push_back(sig->function->name);
    } else {
      const auto& call = base_.root_call();
      if (!call || call->concrete_functions.empty())
        return not_found(where() + ": the base model has no root __call__");
      for (const auto& cf : call->concrete_functions) roots.push_back(cf.name);
      for (const auto& fo : base_.regularization_losses()) {
        for (const auto& cf : fo.concrete_functions) roots.push_back(cf.name);
      }
    }
    for (const auto& name : base_.reachable_functions(roots)) {
      const tf::FunctionDef* def = base_.function(name);
      if (def == nullptr) return not_found(where() + ": no function '" + name + "'");
      HUBIMG_RETURN_IF_ERROR(writer_.add_function_def(*def).status().with_context(where()));
    }
    return {};
  }

  // The base trace for `training` (the inference trace when the base has no training one).
  Expected<BaseTrace> base_trace(bool training) const {
    if (graph_trace_) return *graph_trace_;
    const format::ConcreteFunction* chosen = nullptr;
    if (!request_.base_signature.empty()) {
      HUBIMG_ASSIGN_OR_RETURN(chosen, signature_function());
    } else {
      for (const auto& cf : base_.root_call()->concrete_functions) {
        if (cf.training.value_or(false) == training) chosen = &cf;
        if (chosen) break;
      }
      if (chosen == nullptr && training) return base_trace(false);
      if (chosen == nullptr) return not_found(where() + ": root __call__ has no inference trace");
    }
    BaseTrace t;
    t.function = chosen;
    const FunctionSignature* sig = writer_.function(chosen->name);
    if (sig == nullptr) return internal_error(where() + ": '" + chosen->name + "' not copied");
    t.signature = *sig;
    using K = format::StructuredArg::Kind;
    if (!request_.base_signature.empty()) {
      // A signature takes its tensors by keyword; a hub image layer passes only the image.
      if (!chosen->args.empty() || chosen->kwargs.size() != 1 ||
          chosen->kwargs[0].second.kind != K::kTensor) {
        return unimplemented(where() + ": signature '" + request_.base_signature +
                             "' must take exactly one tensor (the images)");
      }
      t.image = chosen->kwargs[0].second.tensor;
    } else {
      if (chosen->args.empty() || chosen->args[0].second.kind != K::kTensor)
        return unimplemented(where() + ": the base __call__ must take one image tensor first");
      t.image = chosen->args[0].second.tensor;
    }
    // Flat inputs after the image: Tensor-valued hyperparameters, by parameter name.
    auto add_named = [&](const std::string& name, const format::StructuredArg& a) -> Status {
      std::vector<TensorSpec> flat;
      a.flatten_tensors(flat);
      if (flat.empty()) return {};
      if (flat.size() != 1 || a.kind != format::StructuredArg::Kind::kTensor)
        return unimplemented(where() + ": base __call__ argument '" + name + "' is a nest");
      t.hyperparameters.emplace_back(name, flat[0]);
      return {};
    };
    for (size_t i = 1; i < chosen->args.size(); ++i)
      HUBIMG_RETURN_IF_ERROR(add_named(chosen->args[i].first, chosen->args[i].second));
    if (request_.base_signature.empty()) {
      for (const auto& [name, a] : chosen->kwargs) HUBIMG_RETURN_IF_ERROR(add_named(name, a));
    }
    const size_t expected = 1 + t.hyperparameters.size() + chosen->bound_inputs.size();
    if (sig->input_types.size() != expected) {
      return data_loss(where() + ": '" + chosen->name + "' takes " +
                       std::to_string(sig->input_types.size()) + " arguments, its signature says " +
                       std::to_string(expected));
    }
    if (request_.base_output_key.empty()) {
      if (sig->output_types.size() != 1) {
        return invalid_argument(where() + ": the base " + callable() + " returns " +
                                std::to_string(sig->output_types.size()) +
                                " tensors; name one with base_output_key");
      }
    } else {
      auto it = std::find(chosen->output_keys.begin(), chosen->output_keys.end(),
                          request_.base_output_key);
      if (it == chosen->output_keys.end())
        return not_found(where() + ": the base " + callable() + " has no output '" +
                         request_.base_output_key + "'");
      t.output_index = static_cast<size_t>(it - chosen->output_keys.begin());
    }
    if (t.output_index >= sig->output_types.size() || sig->output_types[t.output_index] != kF32)
      return invalid_argument(where() + ": the base output is not float32");
    for (int node : chosen->bound_inputs) {
      HUBIMG_ASSIGN_OR_RETURN(VariableHandle h, handle_for_node(node, chosen->name));
      t.captures.push_back(h);
    }
    return t;
  }

  TensorSpec image_spec(const BaseTrace& t) const {
    TensorSpec spec = t.image;
    spec.name = "inputs";
    if (!spec.shape.unknown_rank && spec.shape.dims.size() == 4) {
      spec.shape.dims[0] = -1;
      if (request_.image_height > 0) spec.shape.dims[1] = request_.image_height;
      if (request_.image_width > 0) spec.shape.dims[2] = request_.image_width;
    }
    return spec;
  }

  // The base call, then (training) Dropout and the Dense head; returns logits.
  Expected<FunctionSignature> model_function(const BaseTrace& t, bool training,
                                             const TensorSpec& input) {
    FunctionBuilder fb(writer_.unique_function_name("sequential_layer_call_fn"), writer_.op_defs());
    const auto x = fb.add_input("inputs", input.dtype, input.shape);
    std::vector<std::string> args = {x};
    for (const auto& [name, spec] : t.hyperparameters) {
      double value = 0;
      if (auto it = request_.base_arguments.find(name); it != request_.base_arguments.end()) {
        value = it->second;
      } else {
        const auto& defaults = base_.root_call()->parameter_defaults;
        auto d = defaults.find(name);
        using K = format::StructuredArg::Kind;
        if (d == defaults.end() || (d->second.kind != K::kFloat && d->second.kind != K::kInt)) {
          return invalid_argument(where() + ": no value for the base __call__ argument '" + name +
                                  "' (set it in base_arguments)");
        }
        value = d->second.kind == K::kFloat ? d->second.float_value
                                            : static_cast<double>(d->second.int_value);
      }
      if (spec.shape.unknown_rank || !spec.shape.dims.empty())
        return unimplemented(where() + ": base argument '" + name + "' is not a scalar");
      HUBIMG_ASSIGN_OR_RETURN(Tensor c, scalar_of(spec.dtype, value, where() + ": " + name));
      args.push_back(fb.add_const(c, name));
    }
    std::vector<VariableHandle> captures = t.captures;
    for (size_t k = 0; k < captures.size(); ++k) {
      args.push_back(writer_.add_resource_input(
          fb, k == 0 ? "unknown" : "unknown_" + std::to_string(k - 1), captures[k]));
    }
    const std::string kernel =
        writer_.add_resource_input(fb, "dense_matmul_readvariableop_resource", kernel_);
    const std::string bias =
        writer_.add_resource_input(fb, "dense_biasadd_readvariableop_resource", bias_);
    auto outs = fb.add_call(t.signature, args, "keras_layer/StatefulPartitionedCall");
    std::string features = outs.size() > t.output_index ? outs[t.output_index] : outs[0];
    if (training && request_.dropout_rate > 0) {
      const float rate = request_.dropout_rate;
      const auto scale = fb.add_const(Tensor::scalar(1.0f / (1.0f - rate)), "dropout/Const");
      const auto scaled = fb.add("Mul", {features, scale}, {}, "dropout/Mul");
      const auto shape = fb.add("Shape", {features},
                                {{"out_type", format::attr::type(DType::kInt32)}}, "dropout/Shape");
      const auto uniform = fb.add("RandomUniform", {shape},
                                  {{"dtype", format::attr::type(kF32)},
                                   {"seed", format::attr::i(0)},
                                   {"seed2", format::attr::i(0)}},
                                  "dropout/random_uniform/RandomUniform");
      const auto threshold = fb.add_const(Tensor::scalar(rate), "dropout/GreaterEqual/y");
      const auto keep = fb.add("GreaterEqual", {uniform, threshold}, {}, "dropout/GreaterEqual");
      const auto mask = fb.add("Cast", {keep},
                               {{"SrcT", format::attr::type(DType::kBool)},
                                {"DstT", format::attr::type(kF32)},
                                {"Truncate", format::attr::b(false)}},
                               "dropout/Cast");
      features = fb.add("Mul", {scaled, mask}, {}, "dropout/Mul_1");
    }
    const auto y =
        fb.add("MatMul", {features, fb.read_variable(kernel, "dense/MatMul")}, {}, "dense/MatMul");
    fb.add_output(
        fb.add("BiasAdd", {y, fb.read_variable(bias, "dense/BiasAdd")}, {}, "dense/BiasAdd"));
    captures.push_back(kernel_);
    captures.push_back(bias_);
    call_captures_[training] = captures;
    return writer_.add_function(std::move(fb));
  }

  Status add_call_and_signature() {
    HUBIMG_ASSIGN_OR_RETURN(BaseTrace inference, base_trace(false));
    HUBIMG_ASSIGN_OR_RETURN(BaseTrace training, base_trace(true));
    const TensorSpec input = image_spec(inference);
    const int64_t classes = request_.head_kernel.shape()[1];
    if (inference.function != nullptr &&
        inference.function->output.kind == format::StructuredArg::Kind::kTensor) {
      const auto& out = inference.function->output;
      const auto& s = out.tensor.shape;
      if (!s.unknown_rank && (s.dims.size() != 2 ||
                              (s.dims[1] >= 0 && s.dims[1] != request_.head_kernel.shape()[0]))) {
        return invalid_argument(where() + ": the base " + callable() + " returns " + s.to_string() +
                                ", the head kernel wants [batch, " +
                                std::to_string(request_.head_kernel.shape()[0]) + "]");
      }
    }
    const TensorSpec logits{"output_0", kF32, PartialShape::known({-1, classes})};
    std::vector<format::CallTrace> traces;
    for (bool mode : {false, true}) {
      HUBIMG_ASSIGN_OR_RETURN(FunctionSignature fn,
                              model_function(mode ? training : inference, mode, input));
      traces.push_back({fn.name, input, mode, call_captures_[mode], logits, {}});
    }
    const std::string inference_fn = traces[0].function;
    const std::vector<VariableHandle> captures = call_captures_[false];
    HUBIMG_RETURN_IF_ERROR(writer_.set_call(std::move(traces)));

    // serving_default: softmax probabilities, as the Keras model with Dense(softmax) serves.
    FunctionBuilder fb(writer_.unique_function_name("serving"), writer_.op_defs());
    const auto x = fb.add_input("inputs", input.dtype, input.shape);
    std::vector<std::string> args = {x};
    for (size_t k = 0; k < captures.size(); ++k) {
      args.push_back(writer_.add_resource_input(
          fb, k == 0 ? "unknown" : "unknown_" + std::to_string(k - 1), captures[k]));
    }
    const auto z = fb.add_call(*writer_.function(inference_fn), args, "StatefulPartitionedCall");
    fb.add_output(fb.add("Softmax", {z[0]}, {}, "dense/Softmax"));
    HUBIMG_ASSIGN_OR_RETURN(FunctionSignature serving, writer_.add_function(std::move(fb)));
    const TensorSpec probabilities{"dense", kF32, PartialShape::known({-1, classes})};
    return writer_.add_signature({"serving_default",
                                  serving.name,
                                  {{"inputs", input}},
                                  {{"dense", probabilities}},
                                  captures});
  }

  Status add_regularization_losses() {
    for (const auto& fo : base_.regularization_losses()) {
      if (!request_.base_signature.empty()) break;
      if (fo.concrete_functions.empty()) continue;
      const auto& cf = fo.concrete_functions[0];
      std::vector<VariableHandle> captures;
      for (int node : cf.bound_inputs) {
        HUBIMG_ASSIGN_OR_RETURN(VariableHandle h, handle_for_node(node, cf.name));
        captures.push_back(h);
      }
      HUBIMG_RETURN_IF_ERROR(writer_.add_regularization_loss({cf.name, std::move(captures)}));
    }
    if (request_.head_l2 > 0) {
      FunctionBuilder fb(writer_.unique_function_name("dense_kernel_Regularizer"),
                         writer_.op_defs());
      const auto k =
          fb.read_variable(writer_.add_resource_input(fb, "x", kernel_), "Square/ReadVariableOp");
      const auto sq = fb.add("Square", {k});
      const auto axes = fb.add_const(Tensor::from_vector<int32_t>({2}, {0, 1}), "Const");
      const auto sum = fb.add("Sum", {sq, axes});
      const auto factor =
          fb.add_const(Tensor::scalar(static_cast<float>(request_.head_l2)), "mul/x");
      fb.add_output(fb.add("Mul", {factor, sum}, {}, "mul"));
      HUBIMG_ASSIGN_OR_RETURN(FunctionSignature fn, writer_.add_function(std::move(fb)));
      HUBIMG_RETURN_IF_ERROR(writer_.add_regularization_loss({fn.name, {kernel_}}));
    }
    return {};
  }

  const PublishRequest& request_;
  const format::SavedModel& base_;
  SavedModelWriter writer_{ops::find_op_def};
  std::vector<VariableHandle> base_handles_;
  VariableHandle kernel_, bias_;
  std::map<bool, std::vector<VariableHandle>> call_captures_;
  std::optional<BaseTrace> graph_trace_;  // a TF1 base signature, converted to a function
};

}  // namespace

Status publish_classifier(const PublishRequest& request, const std::filesystem::path& out_dir) {
  HUBIMG_ASSIGN_OR_RETURN(auto base, format::SavedModel::load(request.base_model));
  return publish_classifier(request, *base, out_dir);
}

Status publish_classifier(const PublishRequest& request, const format::SavedModel& base,
                          const std::filesystem::path& out_dir) {
  if (!base.has_object_graph() && request.base_signature.empty())
    return unimplemented(request.base_model.string() +
                         ": a TF1 SavedModel has no __call__ to build on; name a signature");
  return format::write_directory_atomically(out_dir, [&](const std::filesystem::path& dir) {
    Publisher publisher(request, base);
    return publisher.write(dir);
  });
}

}  // namespace hubimg::train
