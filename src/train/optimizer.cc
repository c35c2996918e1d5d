#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>

#include "core/file_io.h"
#include "hubimg/train.h"

namespace hubimg {
namespace {

// Per-step constants, computed in double and applied in the variable's dtype.
struct StepConstants {
  double lr = 0;
  double adam_alpha = 0;  // lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
};

template <typename T>
T* slot_data(std::map<std::string, Tensor>& slots, const char* name) {
  auto it = slots.find(name);
  return it == slots.end() ? nullptr : it->second.mutable_data<T>();
}

template <typename T>
void update(const OptimizerOptions& o, const StepConstants& c, std::span<T> w, std::span<const T> g,
            std::map<std::string, Tensor>& slots) {
  const size_t n = w.size();
  const T lr = static_cast<T>(c.lr);
  switch (o.kind) {
    case OptimizerKind::kSgd: {
      const T m = static_cast<T>(o.momentum);
      if (o.momentum == 0.0) {
        for (size_t i = 0; i < n; ++i) w[i] -= lr * g[i];
        return;
      }
      T* v = slot_data<T>(slots, "momentum");
      for (size_t i = 0; i < n; ++i) {
        v[i] = m * v[i] - lr * g[i];
        w[i] += o.nesterov ? m * v[i] - lr * g[i] : v[i];
      }
      return;
    }
    case OptimizerKind::kAdamW:
    case OptimizerKind::kAdam: {
      if (o.kind == OptimizerKind::kAdamW && o.weight_decay != 0.0) {
        const T decay = static_cast<T>(c.lr * o.weight_decay);
        for (size_t i = 0; i < n; ++i) w[i] -= w[i] * decay;
      }
      T* m = slot_data<T>(slots, "m");
      T* v = slot_data<T>(slots, "v");
      const T one_minus_b1 = static_cast<T>(1 - o.beta_1);
      const T one_minus_b2 = static_cast<T>(1 - o.beta_2);
      const T alpha = static_cast<T>(c.adam_alpha), eps = static_cast<T>(o.epsilon);
      for (size_t i = 0; i < n; ++i) {
        m[i] += (g[i] - m[i]) * one_minus_b1;
        v[i] += (g[i] * g[i] - v[i]) * one_minus_b2;
        w[i] -= alpha * m[i] / (std::sqrt(v[i]) + eps);
      }
      return;
    }
    case OptimizerKind::kRmsprop: {
      const T rho = static_cast<T>(o.rho), one_minus_rho = static_cast<T>(1 - o.rho);
      const T eps = static_cast<T>(o.epsilon), mom = static_cast<T>(o.momentum);
      T* r = slot_data<T>(slots, "rms");
      T* a = o.centered ? slot_data<T>(slots, "mg") : nullptr;
      T* mv = o.momentum > 0 ? slot_data<T>(slots, "momentum") : nullptr;
      for (size_t i = 0; i < n; ++i) {
        r[i] = rho * r[i] + one_minus_rho * g[i] * g[i];
        T d = r[i] + eps;
        if (a) {
          a[i] = rho * a[i] + one_minus_rho * g[i];
          d = r[i] - a[i] * a[i] + eps;
        }
        const T u = lr * g[i] / std::sqrt(d);
        if (mv) {
          mv[i] = mom * mv[i] + u;
          w[i] -= mv[i];
        } else {
          w[i] -= u;
        }
      }
      return;
    }
  }
}

std::string shape_text(const Tensor& t) {
  return t.valid() ? t.description() : std::string("empty");
}

}  // namespace

LearningRateSchedule LearningRateSchedule::constant(double learning_rate) {
  LearningRateSchedule s;
  s.initial = learning_rate;
  return s;
}

LearningRateSchedule LearningRateSchedule::exponential_decay(double initial, int64_t decay_steps,
                                                             double decay_rate, bool staircase) {
  LearningRateSchedule s;
  s.kind = Kind::kExponentialDecay;
  s.initial = initial;
  s.decay_steps = decay_steps;
  s.decay_rate = decay_rate;
  s.staircase = staircase;
  return s;
}

LearningRateSchedule LearningRateSchedule::cosine_decay(double initial, int64_t decay_steps,
                                                        double alpha) {
  LearningRateSchedule s;
  s.kind = Kind::kCosineDecay;
  s.initial = initial;
  s.decay_steps = decay_steps;
  s.alpha = alpha;
  return s;
}

Status LearningRateSchedule::validate() const {
  if (!(initial >= 0) || !std::isfinite(initial)) {
    return invalid_argument("learning rate " + std::to_string(initial) +
                            " is not a finite number >= 0");
  }
  if (kind != Kind::kConstant && decay_steps <= 0) {
    return invalid_argument("learning-rate decay_steps must be > 0, got " +
                            std::to_string(decay_steps));
  }
  if (kind == Kind::kExponentialDecay && !(decay_rate > 0)) {
    return invalid_argument("learning-rate decay_rate must be > 0");
  }
  return {};
}

double LearningRateSchedule::at(int64_t step) const {
  switch (kind) {
    case Kind::kConstant: return initial;
    case Kind::kExponentialDecay: {
      double p = static_cast<double>(step) / static_cast<double>(decay_steps);
      if (staircase) p = std::floor(p);
      return initial * std::pow(decay_rate, p);
    }
    case Kind::kCosineDecay: {
      const double s = static_cast<double>(std::min(step, decay_steps));
      const double cosine =
          0.5 * (1 + std::cos(std::numbers::pi * s / static_cast<double>(decay_steps)));
      return initial * ((1 - alpha) * cosine + alpha);
    }
  }
  return initial;
}

Expected<OptimizerKind> optimizer_kind_from_name(const std::string& name) {
  if (name == "sgd") return OptimizerKind::kSgd;
  if (name == "adam") return OptimizerKind::kAdam;
  if (name == "adamw") return OptimizerKind::kAdamW;
  if (name == "rmsprop") return OptimizerKind::kRmsprop;
  return invalid_argument("unknown optimizer '" + name + "' (known: sgd, adam, adamw, rmsprop)");
}

std::string optimizer_kind_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd: return "sgd";
    case OptimizerKind::kAdam: return "adam";
    case OptimizerKind::kAdamW: return "adamw";
    case OptimizerKind::kRmsprop: return "rmsprop";
  }
  return "?";
}

OptimizerOptions OptimizerOptions::keras_defaults(OptimizerKind kind) {
  OptimizerOptions o;
  o.kind = kind;
  o.learning_rate = LearningRateSchedule::constant(kind == OptimizerKind::kSgd ? 0.01 : 0.001);
  if (kind == OptimizerKind::kAdamW) o.weight_decay = 0.004;
  return o;
}

std::vector<std::string> Optimizer::slot_names() const {
  switch (options_.kind) {
    case OptimizerKind::kSgd:
      return options_.momentum != 0.0 ? std::vector<std::string>{"momentum"}
                                      : std::vector<std::string>{};
    case OptimizerKind::kAdam:
    case OptimizerKind::kAdamW: return {"m", "v"};
    case OptimizerKind::kRmsprop: {
      std::vector<std::string> names{"rms"};
      if (options_.centered) names.emplace_back("mg");
      if (options_.momentum > 0) names.emplace_back("momentum");
      return names;
    }
  }
  return {};
}

Status Optimizer::apply(const std::vector<Variable*>& variables,
                        const std::vector<Tensor>& gradients) {
  return catch_exceptions("optimizer step", [&]() -> Status {
    const std::string who = optimizer_kind_name(options_.kind);
    if (variables.size() != gradients.size()) {
      return invalid_argument(who + ": " + std::to_string(gradients.size()) + " gradients for " +
                              std::to_string(variables.size()) + " variables");
    }
    for (size_t i = 0; i < variables.size(); ++i) {
      const Variable* var = variables[i];
      if (var == nullptr) {
        return invalid_argument(who + ": variable " + std::to_string(i) + " is null");
      }
      const Tensor& w = var->value();
      const Tensor& g = gradients[i];
      if (w.dtype() != DType::kFloat32 && w.dtype() != DType::kFloat64) {
        return invalid_argument(who + ": variable '" + var->name() + "' is " +
                                dtype_name(w.dtype()) + ", not a float variable");
      }
      if (!g.valid() || g.dtype() != w.dtype() || g.shape() != w.shape()) {
        return invalid_argument(who + ": the gradient of variable '" + var->name() + "' is " +
                                shape_text(g) + ", the variable is " + w.description());
      }
    }
    StepConstants c;
    c.lr = options_.learning_rate.at(iterations_);
    const double t = static_cast<double>(iterations_ + 1);
    c.adam_alpha =
        c.lr * std::sqrt(1 - std::pow(options_.beta_2, t)) / (1 - std::pow(options_.beta_1, t));
    const std::vector<std::string> names = slot_names();
    for (size_t i = 0; i < variables.size(); ++i) {
      Variable& var = *variables[i];
      Tensor w = var.value();
      var.assign(Tensor());
      // Nobody else (a cached inference graph, a caller, a file mapping) reads this buffer: update
      // it in place.
      Tensor updated = w.owns_buffer_exclusively() ? std::move(w) : w.clone();
      std::map<std::string, Tensor>& slots = slots_[&var];
      for (const std::string& name : names) {
        Tensor& s = slots[name];
        // (A slot left by a destroyed variable whose address was reused does not fit: start over.)
        if (!s.valid() || s.dtype() != updated.dtype() || s.shape() != updated.shape()) {
          s = Tensor(updated.dtype(), updated.shape());  // zeros
        }
      }
      const auto n = static_cast<size_t>(updated.num_elements());
      if (updated.dtype() == DType::kFloat32) {
        update<float>(options_, c, {updated.mutable_data<float>(), n},
                      {gradients[i].data<float>(), n}, slots);
      } else {
        update<double>(options_, c, {updated.mutable_data<double>(), n},
                       {gradients[i].data<double>(), n}, slots);
      }
      var.assign(std::move(updated));
    }
    ++iterations_;
    return {};
  });
}

Tensor Optimizer::slot(const Variable& variable, const std::string& name) const {
  auto it = slots_.find(&variable);
  if (it == slots_.end()) return {};
  auto s = it->second.find(name);
  return s == it->second.end() ? Tensor() : s->second;
}

std::map<std::string, Tensor> Optimizer::state(const std::vector<Variable*>& variables) const {
  std::map<std::string, Tensor> out;
  out["iterations"] = Tensor::scalar<int64_t>(iterations_);
  for (const Variable* var : variables) {
    auto it = slots_.find(var);
    if (it == slots_.end()) continue;
    for (const auto& [name, value] : it->second) out[var->name() + "/" + name] = value.clone();
  }
  return out;
}

Status Optimizer::restore(const std::vector<Variable*>& variables,
                          const std::map<std::string, Tensor>& state) {
  auto it = state.find("iterations");
  if (it == state.end() || it->second.dtype() != DType::kInt64 || it->second.num_elements() != 1) {
    return invalid_argument("optimizer state: no int64 'iterations'");
  }
  std::map<const Variable*, std::map<std::string, Tensor>> slots;
  for (const Variable* var : variables) {
    for (const std::string& name : slot_names()) {
      auto s = state.find(var->name() + "/" + name);
      if (s == state.end()) continue;
      if (s->second.dtype() != var->value().dtype() || s->second.shape() != var->value().shape()) {
        return invalid_argument("optimizer state: slot '" + s->first + "' is " +
                                s->second.description() + ", the variable is " +
                                var->value().description());
      }
      slots[var][name] = s->second.clone();
    }
  }
  iterations_ = it->second.data<int64_t>()[0];
  slots_ = std::move(slots);
  return {};
}

SgdOptimizer::SgdOptimizer(SgdOptions options) : options_(options) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kSgd;
  o.learning_rate = LearningRateSchedule::constant(options.learning_rate);
  o.momentum = options.momentum;
  o.nesterov = options.nesterov;
  optimizer_ = Optimizer(o);
}

}  // namespace hubimg
