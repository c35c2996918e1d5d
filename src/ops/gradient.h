// Gradient rules: how an op's entry in the op table says what its backward pass is.
//
// A rule is symbolic (as TensorFlow's REGISTER_GRADIENT_OP functions are): given the forward
// node and the cotangents of its outputs, it appends nodes to the graph being differentiated
// and returns, per forward input, the value holding that input's gradient (or none). The
// autodiff pass in src/graph/autodiff.cc implements GradientBuilder; rules never see the graph
// itself, so ops/ does not depend on graph/.
//
// Shapes are dynamic: a rule that needs a run-time shape adds a Shape node (the same graph
// serves every batch size).
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/attrs.h"
#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::ops {

// One output of a node of the graph being differentiated; node < 0: no value (a zero gradient).
struct GradValue {
  int node = -1;
  int index = 0;
  bool valid() const { return node >= 0; }
  bool operator==(const GradValue&) const = default;
};

class GradientBuilder {
 public:
  virtual ~GradientBuilder() = default;

  // The forward node.
  virtual std::string_view node_name() const = 0;
  virtual std::string_view op() const = 0;
  virtual const AttrMap& attrs() const = 0;
  virtual size_t num_inputs() const = 0;
  virtual size_t num_outputs() const = 0;
  virtual GradValue input(size_t i) const = 0;
  virtual GradValue output(size_t i) const = 0;
  // The cotangent of output i; invalid when no gradient reaches that output.
  virtual GradValue grad(size_t i) const = 0;
  // Whether the autodiff pass wants the gradient of input i (rules may skip the others).
  virtual bool needs_grad(size_t i) const = 0;
  // The dtype of a value when the graph knows it (kInvalid otherwise).
  virtual DType dtype(GradValue v) const = 0;

  // Appends a node `op(inputs)` with `attrs` and returns its outputs (as many as the op's
  // table entry says for these attributes). Its name is derived from the forward node's.
  virtual Expected<std::vector<GradValue>> add(std::string_view op, std::vector<GradValue> inputs,
                                               AttrMap attrs = {}) = 0;
  // A Const node.
  virtual Expected<GradValue> constant(Tensor value) = 0;

  // "gradient of node 'x' (Conv2D): <message>".
  Status error(std::string_view message) const;

  // Shorthands over add(): single-output ops.
  Expected<GradValue> add1(std::string_view op, std::vector<GradValue> inputs, AttrMap attrs = {});
};

// Per forward input, its gradient (nullopt or an invalid value: none flows to that input).
using GradientRule = std::function<Expected<std::vector<GradValue>>(GradientBuilder&)>;

// Rules shared by several ops' entries ----------------------------------------------------

// Sums `grad` (the cotangent of a broadcasting binary op's output) down to the shape of
// `input`, TensorFlow's way: BroadcastGradientArgs over both inputs' shapes, Sum, Reshape.
// `which` is 0 for x, 1 for y.
Expected<GradValue> reduce_to_input_shape(GradientBuilder& b, GradValue grad, GradValue x,
                                          GradValue y, int which);

}  // namespace hubimg::ops
