#include "hubimg/classifier.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "format/saved_model.h"
#include "train/publish.h"
#include "train/random.h"

namespace hubimg {
namespace {

Status check_labels(const Tensor& labels, int64_t batch, int64_t num_classes) {
  if (labels.dtype() != DType::kInt64 || labels.rank() != 1 || labels.dim(0) != batch) {
    return invalid_argument("labels must be int64 [" + std::to_string(batch) + "], got " +
                            (labels.valid() ? labels.description() : std::string("none")));
  }
  for (int64_t y : labels.values<int64_t>()) {
    if (y < 0 || y >= num_classes) {
      return invalid_argument("label " + std::to_string(y) + " is outside [0, " +
                              std::to_string(num_classes) + ")");
    }
  }
  return {};
}

// Per-row logsumexp and the smoothed-label cross-entropy; `probs` gets softmax(z) when not null.
double row_cross_entropy(const float* z, int64_t c, int64_t label, double smoothing,
                         double* probs) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < c; ++j) mx = std::max(mx, static_cast<double>(z[j]));
  double sum = 0;
  for (int64_t j = 0; j < c; ++j) sum += std::exp(z[j] - mx);
  const double lse = mx + std::log(sum);
  double loss = 0;
  for (int64_t j = 0; j < c; ++j) {
    const double y = (j == label ? 1.0 - smoothing : 0.0) + smoothing / static_cast<double>(c);
    loss -= y * (z[j] - lse);
    if (probs) probs[j] = std::exp(z[j] - lse);
  }
  return loss;
}

int64_t argmax(const float* z, int64_t c) {
  return std::max_element(z, z + c) - z;
}

bool in_top_k(const float* z, int64_t c, int64_t label, int64_t k) {
  int64_t above = 0;
  for (int64_t j = 0; j < c; ++j) above += z[j] > z[label] || (z[j] == z[label] && j < label);
  return above < k;
}

}  // namespace

Expected<ImageClassifier> ImageClassifier::create(Model base, ClassifierOptions options) {
  if (options.num_classes < 2) {
    return invalid_argument("a classifier needs at least 2 classes, got " +
                            std::to_string(options.num_classes));
  }
  if (!(options.dropout_rate >= 0 && options.dropout_rate < 1)) {
    return invalid_argument("dropout rate must be in [0, 1), got " +
                            std::to_string(options.dropout_rate));
  }
  if (!(options.label_smoothing >= 0 && options.label_smoothing <= 1)) {
    return invalid_argument("label smoothing must be in [0, 1]");
  }
  if (!(options.l2 >= 0)) return invalid_argument("l2 must be >= 0");
  if (options.image_height <= 0 || options.image_width <= 0) {
    return invalid_argument("the image size must be set");
  }
  HUBIMG_RETURN_IF_ERROR(options.optimizer.learning_rate.validate());
  const std::string& signature = options.hub.signature;
  std::vector<Model::InputSpec> specs;
  std::string callable = "__call__";
  if (signature.empty()) {
    if (!base.has_call()) {
      std::string names;
      for (const auto& n : base.signature_names()) names += (names.empty() ? "" : ", ") + n;
      return invalid_argument("the base model has no __call__; call one of its signatures (" +
                              (names.empty() ? std::string("none") : names) + ") instead");
    }
    specs = base.call_input_specs();
  } else {
    const auto names = base.signature_names();
    if (std::find(names.begin(), names.end(), signature) == names.end()) {
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      return not_found("the base model has no signature '" + signature +
                       "' (signatures: " + (list.empty() ? std::string("none") : list) + ")");
    }
    if (options.hub.trainable) {
      return invalid_argument(
          "a hub layer over signature '" + signature +
          "' cannot be trainable: a signature has no training mode, no batch-norm updates and "
          "no regularization losses (hub.KerasLayer refuses it too); fine-tune through "
          "__call__, or train the head alone");
    }
    if (!options.hub.arguments.empty()) {
      return invalid_argument("hub layer arguments set __call__'s hyperparameters; signature '" +
                              signature + "' takes only the images");
    }
    specs = base.signature_input_specs(signature);
    callable = "signature '" + signature + "'";
  }
  // The images are the one input that neither `hub.arguments` nor a Python default (TF Hub's
  // `batch_norm_momentum=0.99`) supplies.
  std::vector<std::string> image_inputs;
  for (const auto& spec : specs) {
    if (spec.has_default || options.hub.arguments.count(spec.name)) continue;
    image_inputs.push_back(spec.name);
  }
  if (image_inputs.size() != 1) {
    std::string names;
    for (const auto& n : image_inputs) names += (names.empty() ? "" : ", ") + n;
    return invalid_argument("the base model's " + callable + " takes " +
                            std::to_string(image_inputs.size()) +
                            " inputs that have no default and are not in the hub layer's "
                            "arguments (" +
                            names + "); a hub image layer takes one (images)");
  }
  ImageClassifier c(std::move(base));
  c.input_name_ = image_inputs[0];
  c.options_ = std::move(options);
  Tensor probe(DType::kFloat32, {1, c.options_.image_height, c.options_.image_width, 3});
  auto outputs = c.call_base(probe);
  if (!outputs.ok()) return outputs.status().with_context("probing the base model");
  if (c.options_.hub.output_key.empty()) {
    if (outputs->size() != 1) {
      std::string keys;
      for (const auto& [k, v] : *outputs) keys += (keys.empty() ? "" : ", ") + k;
      return invalid_argument("the base model returns several outputs (" + keys +
                              "): choose one as the output key");
    }
    c.output_name_ = outputs->begin()->first;
  } else {
    c.output_name_ = c.options_.hub.output_key;
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor f, c.pick_output(*outputs));
  c.num_features_ = f.dim(1);
  if (c.options_.hub.trainable) {
    HUBIMG_ASSIGN_OR_RETURN(auto reg, c.base_.regularization_losses());
    c.base_has_regularization_ = !reg.empty();
  }
  const int64_t nf = c.num_features_, nc = c.options_.num_classes;
  // Glorot uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)); bias zeros.
  Tensor kernel(DType::kFloat32, {nf, nc});
  const double limit = std::sqrt(6.0 / static_cast<double>(nf + nc));
  train::Random rng(c.options_.seed, 0x9e11);
  for (float& w : std::span<float>(kernel.mutable_data<float>(), static_cast<size_t>(nf * nc))) {
    w = static_cast<float>((2 * rng.uniform() - 1) * limit);
  }
  c.kernel_ = std::make_unique<Variable>("dense/kernel", std::move(kernel), true);
  c.bias_ = std::make_unique<Variable>("dense/bias", Tensor(DType::kFloat32, {nc}), true);
  c.optimizer_ = Optimizer(c.options_.optimizer);
  return c;
}

Expected<Tensor> ImageClassifier::pick_output(const std::map<std::string, Tensor>& outputs) const {
  auto it = outputs.find(output_name_);
  if (it == outputs.end()) {
    std::string keys;
    for (const auto& [k, v] : outputs) keys += (keys.empty() ? "" : ", ") + k;
    return not_found("the base model has no output '" + output_name_ + "' (outputs: " + keys + ")");
  }
  const Tensor& f = it->second;
  if (f.dtype() != DType::kFloat32 || f.rank() != 2) {
    return invalid_argument("the base model's output '" + output_name_ + "' is " + f.description() +
                            "; a feature vector is float32 [batch, features]");
  }
  return f;
}

std::vector<Variable*> ImageClassifier::trainable_variables() const {
  std::vector<Variable*> out{kernel_.get(), bias_.get()};
  if (options_.hub.trainable) {
    for (Variable* v : base_.trainable_variables()) out.push_back(v);
  }
  return out;
}

std::vector<Variable*> ImageClassifier::checkpoint_variables() const {
  std::vector<Variable*> out{kernel_.get(), bias_.get()};
  if (options_.hub.trainable) {
    for (Variable* v : base_.variables()) out.push_back(v);
  }
  return out;
}

Expected<ClassifierGradients> ImageClassifier::head_gradients(const Tensor& features,
                                                              const Tensor& labels, int64_t step,
                                                              Tensor* feature_gradient) const {
  if (features.dtype() != DType::kFloat32 || features.rank() != 2 ||
      features.dim(1) != num_features_) {
    return invalid_argument("features must be float32 [batch, " + std::to_string(num_features_) +
                            "], got " + features.description());
  }
  const int64_t b = features.dim(0), f = num_features_, c = options_.num_classes;
  HUBIMG_RETURN_IF_ERROR(check_labels(labels, b, c));
  if (b == 0) return invalid_argument("an empty batch");
  const float* x = features.data<float>();
  const float* w = kernel_->value().data<float>();
  const float* bias = bias_->value().data<float>();
  const int64_t* y = labels.data<int64_t>();
  // Dropout (training mode): keep with probability 1 - rate, scaled by 1 / (1 - rate).
  std::vector<float> dropped(static_cast<size_t>(b * f));
  std::vector<float> mask(static_cast<size_t>(b * f), 1.0f);  // d(dropped)/dx
  const double rate = options_.dropout_rate;
  if (rate > 0) {
    const float scale = static_cast<float>(1.0 / (1.0 - rate));
    train::Random rng(options_.seed, 0xd50f00d0000ULL + static_cast<uint64_t>(step));
    for (auto& m : mask) m = rng.uniform() >= rate ? scale : 0.0f;
  }
  for (int64_t i = 0; i < b * f; ++i) {
    dropped[static_cast<size_t>(i)] = x[i] * mask[static_cast<size_t>(i)];
  }
  std::vector<float> z(static_cast<size_t>(b * c));
  for (int64_t i = 0; i < b; ++i) {
    float* zi = &z[static_cast<size_t>(i * c)];
    for (int64_t j = 0; j < c; ++j) zi[j] = bias[j];
    for (int64_t k = 0; k < f; ++k) {
      const float xk = dropped[static_cast<size_t>(i * f + k)];
      if (xk == 0.0f) continue;
      const float* wk = w + k * c;
      for (int64_t j = 0; j < c; ++j) zi[j] += xk * wk[j];
    }
  }
  ClassifierGradients out;
  Tensor dkernel(DType::kFloat32, {f, c});
  Tensor dbias(DType::kFloat32, {c});
  std::vector<float> dz(static_cast<size_t>(b * c));
  std::vector<double> probs(static_cast<size_t>(c));
  double loss = 0;
  int64_t correct = 0;
  for (int64_t i = 0; i < b; ++i) {
    const float* zi = &z[static_cast<size_t>(i * c)];
    loss += row_cross_entropy(zi, c, y[i], options_.label_smoothing, probs.data());
    correct += argmax(zi, c) == y[i];
    for (int64_t j = 0; j < c; ++j) {
      const double target = (j == y[i] ? 1.0 - options_.label_smoothing : 0.0) +
                            options_.label_smoothing / static_cast<double>(c);
      dz[static_cast<size_t>(i * c + j)] =
          static_cast<float>((probs[static_cast<size_t>(j)] - target) / static_cast<double>(b));
    }
  }
  loss /= static_cast<double>(b);
  float* dw = dkernel.mutable_data<float>();
  float* db = dbias.mutable_data<float>();
  for (int64_t i = 0; i < b; ++i) {
    const float* dzi = &dz[static_cast<size_t>(i * c)];
    for (int64_t j = 0; j < c; ++j) db[j] += dzi[j];
    for (int64_t k = 0; k < f; ++k) {
      const float xk = dropped[static_cast<size_t>(i * f + k)];
      if (xk == 0.0f) continue;
      float* dwk = dw + k * c;
      for (int64_t j = 0; j < c; ++j) dwk[j] += xk * dzi[j];
    }
  }
  if (options_.l2 > 0) {
    double sq = 0;
    const float two_l2 = static_cast<float>(2 * options_.l2);
    for (int64_t k = 0; k < f * c; ++k) {
      sq += static_cast<double>(w[k]) * w[k];
      dw[k] += two_l2 * w[k];
    }
    loss += options_.l2 * sq;
  }
  if (feature_gradient) {
    Tensor dx(DType::kFloat32, {b, f});
    float* dxp = dx.mutable_data<float>();
    for (int64_t i = 0; i < b; ++i) {
      const float* dzi = &dz[static_cast<size_t>(i * c)];
      for (int64_t k = 0; k < f; ++k) {
        const float kept = mask[static_cast<size_t>(i * f + k)];
        if (kept == 0.0f) continue;
        const float* wk = w + k * c;
        double s = 0;
        for (int64_t j = 0; j < c; ++j) s += static_cast<double>(dzi[j]) * wk[j];
        dxp[i * f + k] = static_cast<float>(s) * kept;
      }
    }
    *feature_gradient = std::move(dx);
  }
  out.metrics.loss = loss;
  out.metrics.accuracy = static_cast<double>(correct) / static_cast<double>(b);
  out.gradients.push_back(std::move(dkernel));
  out.gradients.push_back(std::move(dbias));
  return out;
}

Expected<ClassifierGradients> ImageClassifier::compute_gradients(const Tensor& images,
                                                                 const Tensor& labels,
                                                                 int64_t step) {
  if (!options_.hub.trainable) {
    HUBIMG_ASSIGN_OR_RETURN(Tensor f, features(images));
    return head_gradients(f, labels, step, nullptr);
  }
  ClassifierGradients head;
  GradientTargets targets;
  targets.input_gradients = false;
  targets.cotangents[output_name_] = Tensor();
  targets.cotangents_from_outputs =
      [&](const std::map<std::string, Tensor>& outputs) -> Expected<std::map<std::string, Tensor>> {
    HUBIMG_ASSIGN_OR_RETURN(Tensor f, pick_output(outputs));
    Tensor df;
    HUBIMG_ASSIGN_OR_RETURN(head, head_gradients(f, labels, step, &df));
    return std::map<std::string, Tensor>{{output_name_, std::move(df)}};
  };
  CallOptions call;
  call.training = true;
  call.arguments = options_.hub.arguments;
  HUBIMG_ASSIGN_OR_RETURN(GradientResult r,
                          base_.gradients({{input_name_, images}}, targets, call));
  for (Tensor& g : r.gradients) head.gradients.push_back(std::move(g));
  if (base_has_regularization_) {
    Tensor total;
    HUBIMG_ASSIGN_OR_RETURN(auto reg, base_.regularization_gradients(&total));
    for (size_t k = 0; k < reg.size(); ++k) {
      Tensor& g = head.gradients[2 + k];
      if (g.dtype() != DType::kFloat32 || reg[k].dtype() != DType::kFloat32) {
        return unimplemented("regularization of a non-float32 base variable");
      }
      if (!g.owns_buffer_exclusively()) g = g.clone();
      float* gp = g.mutable_data<float>();
      const float* rp = reg[k].data<float>();
      for (int64_t i = 0; i < g.num_elements(); ++i) gp[i] += rp[i];
    }
    if (total.valid()) head.metrics.loss += element_as_double(total, 0);
  }
  return head;
}

Expected<StepMetrics> ImageClassifier::train_step(const Tensor& images, const Tensor& labels) {
  HUBIMG_ASSIGN_OR_RETURN(auto g, compute_gradients(images, labels, optimizer_.iterations()));
  HUBIMG_RETURN_IF_ERROR(optimizer_.apply(trainable_variables(), g.gradients));
  return g.metrics;
}

Expected<StepMetrics> ImageClassifier::train_step_on_features(const Tensor& features,
                                                              const Tensor& labels) {
  HUBIMG_ASSIGN_OR_RETURN(auto g,
                          head_gradients(features, labels, optimizer_.iterations(), nullptr));
  HUBIMG_RETURN_IF_ERROR(optimizer_.apply({kernel_.get(), bias_.get()}, g.gradients));
  return g.metrics;
}

Status ImageClassifier::update_batch_norm_statistics(const Tensor& images, int64_t k) {
  if (!options_.hub.trainable) {
    return invalid_argument(
        "batch-norm statistics are re-estimated for a trainable (fine-tuned) hub layer only");
  }
  if (k < 0) return invalid_argument("the batch index must be >= 0");
  CallOptions call;
  call.training = true;
  call.arguments = options_.hub.arguments;
  for (const auto& spec : base_.call_input_specs()) {
    if (spec.name == "batch_norm_momentum") {
      call.arguments[spec.name] =
          Tensor::scalar<float>(static_cast<float>(k) / static_cast<float>(k + 1));
    }
  }
  auto outputs = base_.call({{input_name_, images}}, call);
  if (!outputs.ok()) return outputs.status().with_context("re-estimating batch-norm statistics");
  return {};
}

Expected<std::map<std::string, Tensor>> ImageClassifier::call_base(const Tensor& images) const {
  if (options_.hub.signature.empty()) {
    CallOptions call;
    call.arguments = options_.hub.arguments;
    return base_.call({{input_name_, images}}, call);
  }
  return base_.call_signature(options_.hub.signature, {{input_name_, images}});
}

Expected<Tensor> ImageClassifier::features(const Tensor& images) const {
  HUBIMG_ASSIGN_OR_RETURN(auto outputs, call_base(images));
  HUBIMG_ASSIGN_OR_RETURN(Tensor f, pick_output(outputs));
  if (f.dim(1) != num_features_) {
    return invalid_argument("the base model returned " + f.description() + ", expected " +
                            std::to_string(num_features_) + " features");
  }
  return f;
}

Expected<EvalMetrics> ImageClassifier::head_evaluate(const Tensor& features,
                                                     const Tensor& labels) const {
  if (features.dtype() != DType::kFloat32 || features.rank() != 2 ||
      features.dim(1) != num_features_) {
    return invalid_argument("features must be float32 [batch, " + std::to_string(num_features_) +
                            "], got " + features.description());
  }
  const int64_t b = features.dim(0), f = num_features_, c = options_.num_classes;
  HUBIMG_RETURN_IF_ERROR(check_labels(labels, b, c));
  const float* x = features.data<float>();
  const float* w = kernel_->value().data<float>();
  const float* bias = bias_->value().data<float>();
  const int64_t* y = labels.data<int64_t>();
  EvalMetrics m;
  std::vector<float> z(static_cast<size_t>(c));
  int64_t correct = 0, top5 = 0;
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < c; ++j) z[static_cast<size_t>(j)] = bias[j];
    for (int64_t k = 0; k < f; ++k) {
      const float xk = x[i * f + k];
      const float* wk = w + k * c;
      for (int64_t j = 0; j < c; ++j) z[static_cast<size_t>(j)] += xk * wk[j];
    }
    m.loss += row_cross_entropy(z.data(), c, y[i], options_.label_smoothing, nullptr);
    const int64_t p = argmax(z.data(), c);
    m.predictions.push_back(p);
    correct += p == y[i];
    top5 += in_top_k(z.data(), c, y[i], 5);
  }
  if (b > 0) {
    m.loss /= static_cast<double>(b);
    m.accuracy = static_cast<double>(correct) / static_cast<double>(b);
    m.top5_accuracy = static_cast<double>(top5) / static_cast<double>(b);
  }
  if (options_.l2 > 0) {
    double sq = 0;
    for (int64_t k = 0; k < f * c; ++k) sq += static_cast<double>(w[k]) * w[k];
    m.loss += options_.l2 * sq;
  }
  if (options_.hub.trainable && base_has_regularization_) {
    HUBIMG_ASSIGN_OR_RETURN(auto reg, base_.regularization_losses());
    for (const Tensor& r : reg) m.loss += element_as_double(r, 0);
  }
  return m;
}

Expected<EvalMetrics> ImageClassifier::evaluate(const Tensor& images, const Tensor& labels) const {
  HUBIMG_ASSIGN_OR_RETURN(Tensor f, features(images));
  return head_evaluate(f, labels);
}

Expected<EvalMetrics> ImageClassifier::evaluate_features(const Tensor& features,
                                                         const Tensor& labels) const {
  return head_evaluate(features, labels);
}

Status ImageClassifier::publish(const std::filesystem::path& out_dir,
                                std::vector<std::string> class_names) const {
  const format::SavedModel& saved = base_.saved_model();
  train::PublishRequest request;
  request.base_model = saved.source_path();
  request.base_trainable = options_.hub.trainable;
  // A signature's outputs are a dict: name the key even when there is one.
  request.base_output_key = options_.hub.signature.empty() ? options_.hub.output_key : output_name_;
  request.base_signature = options_.hub.signature;
  for (const auto& [name, value] : options_.hub.arguments) {
    if (value.rank() != 0 || !dtype_is_numeric(value.dtype()) || value.dtype() == DType::kBool) {
      return invalid_argument("publish: hub argument '" + name + "' is " + value.description() +
                              "; only numeric scalars can be written into the traces");
    }
    request.base_arguments[name] = element_as_double(value, 0);
  }
  if (options_.hub.trainable) {
    for (Variable* v : base_.variables()) request.base_variables[v->name()] = v->value();
  }
  request.head_kernel = kernel_->value();
  request.head_bias = bias_->value();
  request.dropout_rate = static_cast<float>(options_.dropout_rate);
  request.head_l2 = options_.l2;
  if (class_names.empty()) {
    for (int64_t c = 0; c < options_.num_classes; ++c) class_names.push_back(std::to_string(c));
  }
  request.labels = std::move(class_names);
  request.image_height = options_.image_height;
  request.image_width = options_.image_width;
  return train::publish_classifier(request, saved, out_dir);
}

Expected<Tensor> ImageClassifier::logits(const Tensor& images) const {
  HUBIMG_ASSIGN_OR_RETURN(Tensor f, features(images));
  const int64_t b = f.dim(0), nf = num_features_, c = options_.num_classes;
  Tensor z(DType::kFloat32, {b, c});
  const float* x = f.data<float>();
  const float* w = kernel_->value().data<float>();
  const float* bias = bias_->value().data<float>();
  float* zp = z.mutable_data<float>();
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < c; ++j) zp[i * c + j] = bias[j];
    for (int64_t k = 0; k < nf; ++k) {
      for (int64_t j = 0; j < c; ++j) zp[i * c + j] += x[i * nf + k] * w[k * c + j];
    }
  }
  return z;
}

}  // namespace hubimg
