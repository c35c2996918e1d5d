// A model variable: what a SavedModel's checkpoint holds and what AssignVariableOp changes.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "hubimg/tensor.h"

namespace hubimg {

// A model variable. Reading `value()` never copies; fine-tuning assigns new values.
class Variable {
 public:
  Variable(std::string name, Tensor value, bool trainable)
      : name_(std::move(name)), value_(std::move(value)), trainable_(trainable) {}
  const std::string& name() const { return name_; }
  const Tensor& value() const { return value_; }
  bool trainable() const { return trainable_; }
  void set_trainable(bool t) { trainable_ = t; }
  void assign(Tensor t) {
    value_ = std::move(t);
    ++version_;
  }
  // Changes with every assign(), so caches built from the value (optimized graphs) can tell.
  uint64_t version() const { return version_; }

 private:
  std::string name_;
  Tensor value_;
  bool trainable_;
  uint64_t version_ = 0;
};

}  // namespace hubimg
