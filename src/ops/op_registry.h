// The op table: one OpSpec per TensorFlow op we run, registered explicitly in
// src/ops/registry.cc. Each op family lives in its own file (nn_ops.cc, math_ops.cc, ...) and
// exposes one `register_<family>_ops(OpRegistry&)` function.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/attrs.h"
#include "hubimg/status.h"
#include "hubimg/tensor.h"
#include "ops/gradient.h"

namespace hubimg {
class Variable;  // include/hubimg/variable.h
}

namespace hubimg::tf {
class OpDef;  // src/format/proto/graph.proto
}

namespace hubimg::ops {

using ::hubimg::Variable;

// What a kernel sees: its node's identity (for error messages), attributes and input tensors;
// it sets every output.
class KernelContext {
 public:
  KernelContext(std::string_view node_name, std::string_view op, const AttrMap& attrs,
                std::span<const Tensor> inputs, size_t num_outputs)
      : node_name_(node_name), op_(op), attrs_(attrs), inputs_(inputs), outputs_(num_outputs) {}

  std::string_view node_name() const { return node_name_; }
  std::string_view op() const { return op_; }
  const AttrMap& attrs() const { return attrs_; }
  size_t num_inputs() const { return inputs_.size(); }
  const Tensor& input(size_t i) const { return inputs_[i]; }
  std::span<const Tensor> inputs() const { return inputs_; }

  size_t num_outputs() const { return outputs_.size(); }
  void set_output(size_t i, Tensor t) { outputs_[i] = std::move(t); }
  std::vector<Tensor>& outputs() { return outputs_; }

  // Variables bound to this node (ReadVariableOp, AssignVariableOp, ...), in input order.
  std::span<Variable* const> variables() const { return variables_; }
  void set_variables(std::span<Variable* const> v) { variables_ = v; }

  // Seed source for stateful random ops (RandomUniform without seeds): a per-executor counter.
  uint64_t next_random_seed() { return random_seed_++; }
  void set_random_seed(uint64_t s) { random_seed_ = s; }

  // An error that names the node and op: "node 'model/conv/Conv2D' (Conv2D): <message>".
  Status error(const std::string& message) const {
    return error(StatusCode::kInvalidArgument, message);
  }
  Status error(StatusCode code, const std::string& message) const;

 private:
  std::string_view node_name_;
  std::string_view op_;
  const AttrMap& attrs_;
  std::span<const Tensor> inputs_;
  std::vector<Tensor> outputs_;
  std::span<Variable* const> variables_;
  uint64_t random_seed_ = 87654321;
};

using Kernel = std::function<Status(KernelContext&)>;

// Runs `kernel` on `ctx`; a tensor over the size budget (TensorTooLarge) or a failed allocation
// inside it becomes an error naming the node, like the checks kernels make themselves.
Status run_kernel(const Kernel& kernel, KernelContext& ctx);

// One output argument of an op, as its OpDef names it. Function bodies refer to outputs as
// "node:<arg name>:<index within the arg>", so the executor needs these names and list sizes.
struct OutputArg {
  std::string name;
  // Empty: a single tensor. Otherwise the attribute that sizes the list: an int attribute
  // (number_attr, e.g. Split's "num_split") or a list-of-types attribute (type_list_attr,
  // e.g. IdentityN's "T").
  std::string list_size_attr;
};

// A kernel prepared once for one graph node (weights packed for a fast backend); it computes
// what the node's op computes.
class PreparedKernel {
 public:
  virtual ~PreparedKernel() = default;
  virtual Status run(KernelContext& ctx) const = 0;
};

// How an op treats the rows (dimension 0, the batch) of its inputs: what src/graph/batch_split.cc
// needs to decide whether a graph can run a batch as independent chunks. Every rule but kUnknown
// keeps output row i a function of input row i alone, under the conditions stated.
enum class RowRule {
  kUnknown,          // not known to keep rows independent
  kElementwise,      // input 0 rows, other inputs constant; output shaped like input 0
  kLastAxis,         // as kElementwise, computed along the last axis (softmax): rank >= 2
  kBroadcastBinary,  // two operands; a constant one must not span the batch dimension
  kSpatial,          // NHWC rows in and out (convolution, pooling, resize); others constant
  kBatchNorm,        // kSpatial when is_training is false (moving statistics)
  kFusedLayer,       // hubimg's fused convolution / matmul (src/ops/fused_ops.cc)
  kMatMul,           // rows times a constant matrix, transpose_a false
  kReduction,        // constant axes that leave dimension 0 alone
  kPad,              // constant paddings that leave dimension 0 alone
  kReshape,          // constant shape [-1, ...] (checked per chunk by the batch runner)
  kExpandDims,       // constant axis after dimension 0
  kSqueeze,          // explicit squeeze_dims after dimension 0
  kConcat,           // rows of equal rank, constant axis after dimension 0
  kRoll,             // constant shift and axes, none of them dimension 0
};

// One op's entry in the op table: everything the code knows about the op lives here.
struct OpSpec {
  std::string name;
  // Derived from `op_def` when the op has one (OpRegistry::set_op_defs); listed by hand only for
  // ops without an OpDef.
  std::vector<OutputArg> outputs;
  // The reference kernel: plain code every optimized kernel is tested against.
  Kernel kernel;
  // True for ops whose result depends on state or randomness; never constant-folded.
  bool stateful = false;
  // Writes a variable (AssignVariableOp, ...): runs even when no requested output needs it.
  bool writes_variable = false;
  // Optional optimized kernel computing the same as `kernel` (oneDNN or vectorized code); the
  // executor runs it when fast paths are enabled.
  Kernel fast_kernel;
  // The backward pass (src/ops/*_grad.cc); empty: the op has no gradient rule, and
  // differentiating through it is an error naming op and node.
  GradientRule gradient;
  // True when the op's outputs never carry a gradient (Shape, comparisons, integer math, ...):
  // the autodiff pass stops there without asking for a rule.
  bool not_differentiable = false;
  // Output k is input k (Identity, IdentityN, Snapshot): the graph builder wires the inputs
  // through instead of adding a node.
  bool identity_like = false;
  RowRule row_rule = RowRule::kUnknown;
  // TensorFlow's OpDef of the op (REGISTER_OP in tensorflow/core/ops/*.cc, as TensorFlow writes
  // it into meta_info_def.stripped_op_list): argument names and types, attributes, defaults.
  // Attached by the family files with OpRegistry::set_op_defs; SavedModelWriter names outputs
  // and fills type attributes with it, and the graph builder checks input counts against it.
  // Null for hubimg's own ops ("_Hubimg..." fused and gradient kernels: TensorFlow has no such
  // op). OpDefs found in the TensorFlow-written fixtures' stripped_op_list are taken from the
  // newest TF version there, allowed_values included; the others are written from TensorFlow's
  // REGISTER_OP sources with arguments, attributes, defaults and minimums but without the
  // allowed_values lists, which grow with every TF version (tests/ops/op_defs_test.cc).
  std::shared_ptr<const tf::OpDef> op_def;
};

class OpRegistry {
 public:
  // Registers `spec`; registering a name twice is a programming error (aborts).
  void add(OpSpec spec);
  const OpSpec* find(std::string_view name) const;
  // Attaches the gradient rule to an op registered before; a missing op or a second rule is
  // a programming error (aborts). Rules live beside the kernels' families in *_grad.cc.
  void set_gradient(std::string_view name, GradientRule rule);
  // Attaches an optimized kernel to an op registered before (src/ops/fast/); a missing op or a
  // second fast kernel is a programming error (aborts).
  void set_fast_kernel(std::string_view name, Kernel kernel);
  // Marks ops whose outputs never carry a gradient (aborts on unknown names).
  void set_not_differentiable(std::initializer_list<std::string_view> names);
  // Traits set by the family files after registering their ops (abort on unknown names).
  void set_writes_variable(std::initializer_list<std::string_view> names);
  void set_identity_like(std::initializer_list<std::string_view> names);
  void set_row_rule(RowRule rule, std::initializer_list<std::string_view> names);
  // Attaches TensorFlow's OpDefs, a text-format tf::OpList (`op { name: "Relu" ... }` ...), to
  // the ops of those names registered before, and derives each op's `outputs` from its OpDef
  // (when the entry lists outputs itself, they must agree). An unknown op, a second OpDef, a
  // text that does not parse or outputs that disagree are programming errors (abort).
  void set_op_defs(std::string_view op_list);
  // OpDefs of TensorFlow ops that have no entry because no kernel runs them: the graph builder
  // resolves them itself (NoOp, Placeholder, VarHandleOp, PartitionedCall, ...) or hubimg never
  // executes them (the saver functions' SaveV2, RestoreV2, ...). Same text format and rules.
  void add_graph_op_defs(std::string_view op_list);
  // TensorFlow's OpDef of `op`: its entry's, else a graph-level op's; nullptr when neither.
  const tf::OpDef* find_op_def(std::string_view op) const;
  std::vector<std::string> names() const;
  // Names of the graph-level ops (add_graph_op_defs).
  std::vector<std::string> graph_op_names() const;

  // The process-wide registry with every op family registered.
  static const OpRegistry& global();

 private:
  OpSpec& entry(std::string_view name, const char* what);

  std::map<std::string, std::unique_ptr<OpSpec>, std::less<>> ops_;
  std::map<std::string, std::shared_ptr<const tf::OpDef>, std::less<>> graph_op_defs_;
};

// The output args an OpDef declares, list sizes included (number_attr / type_list_attr).
std::vector<OutputArg> output_args_of(const tf::OpDef& def);

// OpRegistry::global().find_op_def(op): what SavedModelWriter's callers give it
// (format::OpDefLookup).
const tf::OpDef* find_op_def(std::string_view op);

// Number of tensors each output arg of `spec` produces on a node with `attrs`.
Expected<std::vector<size_t>> output_arg_sizes(const OpSpec& spec, const AttrMap& attrs);

// Runs one op on concrete inputs outside any graph (tests, constant folding).
Expected<std::vector<Tensor>> run_op(std::string_view op, std::span<const Tensor> inputs,
                                     const AttrMap& attrs, std::string_view node_name = "op");

// Family registration functions, called from registry.cc.
void register_array_ops(OpRegistry& r);
void register_space_batch_ops(OpRegistry& r);  // SpaceToBatchND, SpaceToDepth, ...
void register_math_ops(OpRegistry& r);
void register_nn_ops(OpRegistry& r);
void register_image_ops(OpRegistry& r);
void register_random_ops(OpRegistry& r);
void register_state_ops(OpRegistry& r);
void register_resize_ops(OpRegistry& r);
void register_fused_ops(OpRegistry& r);
void register_loss_ops(OpRegistry& r);
void register_nn_grad_ops(OpRegistry& r);     // backward kernels: Conv2DBackpropInput, ...
void register_array_grad_ops(OpRegistry& r);  // MirrorPadGrad, _HubimgGatherGrad, ...
// OpDefs of the ops without entries (OpRegistry::add_graph_op_defs): graph_op_defs.cc.
void register_graph_op_defs(OpRegistry& r);
// Gradient rules, attached to the entries above.
void register_gradients(OpRegistry& r);
// Fast kernels for the ops a training step runs unfused (src/ops/fast/fast_train.cc).
void register_fast_training_kernels(OpRegistry& r);

}  // namespace hubimg::ops
