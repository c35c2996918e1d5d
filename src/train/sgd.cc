#include <cstdint>
#include <span>

#include "core/file_io.h"
#include "core/thread_pool.h"
#include "hubimg/train.h"

namespace hubimg {
namespace {

template <typename T>
void sgd_step(std::span<T> w, std::span<T> v, std::span<const T> g, const SgdOptions& o) {
  const T lr = static_cast<T>(o.learning_rate);
  const T m = static_cast<T>(o.momentum);
  if (o.momentum == 0.0) {
    for (size_t i = 0; i < w.size(); ++i) w[i] -= lr * g[i];
    return;
  }
  for (size_t i = 0; i < w.size(); ++i) {
    v[i] = m * v[i] - lr * g[i];
    w[i] += o.nesterov ? m * v[i] - lr * g[i] : v[i];
  }
}

}  // namespace

Status SgdOptimizer::apply(const std::vector<Variable*>& variables,
                           const std::vector<Tensor>& gradients) {
  return catch_exceptions("SgdOptimizer::apply", [&]() -> Status {
    if (variables.size() != gradients.size()) {
      return invalid_argument("SGD: " + std::to_string(gradients.size()) + " gradients for " +
                              std::to_string(variables.size()) + " variables");
    }
    for (size_t i = 0; i < variables.size(); ++i) {
      const Variable* var = variables[i];
      if (var == nullptr)
        return invalid_argument("SGD: variable " + std::to_string(i) + " is null");
      const Tensor& w = var->value();
      const Tensor& g = gradients[i];
      if (w.dtype() != DType::kFloat32 && w.dtype() != DType::kFloat64) {
        return invalid_argument("SGD: variable '" + var->name() + "' is " + dtype_name(w.dtype()) +
                                ", not a float variable");
      }
      if (!g.valid() || g.dtype() != w.dtype() || g.shape() != w.shape()) {
        return invalid_argument("SGD: the gradient of variable '" + var->name() + "' is " +
                                (g.valid() ? g.description() : std::string("empty")) +
                                ", the variable is " + w.description());
      }
    }
    for (size_t i = 0; i < variables.size(); ++i) {
      Variable& var = *variables[i];
      Tensor w = var.value();
      var.assign(Tensor());
      // Nobody else (a cached inference graph, a caller, a file mapping) reads this buffer: update
      // it in place.
      Tensor updated = w.owns_buffer_exclusively() ? std::move(w) : w.clone();
      Tensor& velocity = velocity_[&var];
      // (A slot left by a destroyed variable whose address was reused does not fit: start over.)
      if (options_.momentum != 0.0 && (!velocity.valid() || velocity.dtype() != updated.dtype() ||
                                       velocity.shape() != updated.shape())) {
        velocity = Tensor(updated.dtype(), updated.shape());  // zeros
      }
      const auto n = static_cast<size_t>(updated.num_elements());
      if (updated.dtype() == DType::kFloat32) {
        sgd_step<float>({updated.mutable_data<float>(), n},
                        velocity.valid() ? std::span<float>(velocity.mutable_data<float>(), n)
                                         : std::span<float>(),
                        {gradients[i].data<float>(), n}, options_);
      } else {
        sgd_step<double>({updated.mutable_data<double>(), n},
                         velocity.valid() ? std::span<double>(velocity.mutable_data<double>(), n)
                                          : std::span<double>(),
                         {gradients[i].data<double>(), n}, options_);
      }
      var.assign(std::move(updated));
    }
    return Status();
  });
}

Tensor SgdOptimizer::velocity(const Variable& variable) const {
  auto it = velocity_.find(&variable);
  return it == velocity_.end() ? Tensor() : it->second;
}

}  // namespace hubimg
