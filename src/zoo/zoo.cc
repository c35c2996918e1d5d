#include "zoo/zoo.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <span>

#include "format/saved_model_writer.h"
#include "hubimg/npy.h"
#include "ops/op_registry.h"

namespace hubimg::zoo {
namespace {

using format::FunctionBuilder;
using format::FunctionSignature;
using format::SavedModelWriter;
using format::TensorSpec;
using format::VariableHandle;
using format::attr::b;
using format::attr::f;
using format::attr::ints;
using format::attr::str;
using format::attr::type;

constexpr DType kF32 = DType::kFloat32;

enum class LayerType {
  kConv2D,
  kDepthwiseConv2D,
  kBatchNorm,
  kReLU,
  kReLU6,
  kSwish,
  kZeroPadding2D,
  kMaxPool,
  kAdd,
  kMultiply,
  kGlobalAveragePool,
  kDense,
  kNormalization,
};

const char* type_name(LayerType t) {
  switch (t) {
    case LayerType::kConv2D: return "Conv2D";
    case LayerType::kDepthwiseConv2D: return "DepthwiseConv2D";
    case LayerType::kBatchNorm: return "BatchNormalization";
    case LayerType::kReLU: return "ReLU";
    case LayerType::kReLU6: return "ReLU6";
    case LayerType::kSwish: return "Swish";
    case LayerType::kZeroPadding2D: return "ZeroPadding2D";
    case LayerType::kMaxPool: return "MaxPooling2D";
    case LayerType::kAdd: return "Add";
    case LayerType::kMultiply: return "Multiply";
    case LayerType::kGlobalAveragePool: return "GlobalAveragePooling2D";
    case LayerType::kDense: return "Dense";
    case LayerType::kNormalization: return "Normalization";
  }
  return "?";
}

struct LayerVariable {
  std::string role;  // "kernel", "bias", "gamma", "beta", "moving_mean", ...
  VariableHandle handle;
  bool used_in_call = true;  // Normalization's `count` is state, not an input of the call
};

struct Layer {
  std::string name;
  LayerType type;
  std::vector<int> inputs;  // layer indices; -1 is the model input
  Dims shape;               // output [H, W, C] or [units]
  // Parameters (those that apply to the type).
  int64_t filters = 0;
  int64_t kernel = 0;
  int64_t stride = 1;
  std::string padding = "VALID";
  bool use_bias = false;
  std::string activation;         // Conv2D: "", "swish", "sigmoid"
  std::array<int64_t, 4> pads{};  // ZeroPadding2D: top, bottom, left, right
  float epsilon = 1e-3f;
  float momentum = 0.99f;
  bool keep_dims = false;
  std::vector<LayerVariable> variables;
};

// Keras' initializers for the kernels of one architecture.
enum class KernelInit {
  kGlorotUniform,     // Keras' default: uniform, limit sqrt(6 / (fan_in + fan_out))
  kEfficientNetConv,  // VarianceScaling(2.0, "fan_out", "truncated_normal")
  kEfficientNetDense  // VarianceScaling(1/3, "fan_out", "uniform")
};
struct KerasInit {
  KernelInit conv = KernelInit::kGlorotUniform;
  KernelInit dense = KernelInit::kGlorotUniform;
};

class Initializers {
 public:
  Initializers(uint64_t seed, Initialization mode, KerasInit keras)
      : rng_(seed), mode_(mode), keras_(keras) {}

  enum class Kernel { kConv, kDepthwise, kDense };
  // `shape`: [kh, kw, in, out] for a convolution, [kh, kw, channels, 1] for a depthwise one,
  // [in, out] for a Dense kernel.
  Tensor kernel(Dims shape, Kernel kind) {
    // Fans as Keras computes them for every kernel: the receptive field times the input
    // (output) channels, so a depthwise kernel's fan-in counts all its channels.
    const int64_t receptive = shape.size() == 4 ? shape[0] * shape[1] : 1;
    const auto fan_in = static_cast<double>(receptive * shape[shape.size() - 2]);
    const auto fan_out = static_cast<double>(receptive * shape.back());
    if (mode_ == Initialization::kVaried) {
      // He: the fan-in of one output, which for a depthwise kernel is its receptive field.
      switch (kind) {
        case Kernel::kConv: return truncated_normal(std::move(shape), std::sqrt(2.0 / fan_in));
        case Kernel::kDepthwise:
          return truncated_normal(std::move(shape),
                                  std::sqrt(2.0 / static_cast<double>(receptive)));
        case Kernel::kDense: return truncated_normal(std::move(shape), std::sqrt(1.0 / fan_in));
      }
    }
    switch (kind == Kernel::kDense ? keras_.dense : keras_.conv) {
      case KernelInit::kGlorotUniform: {
        const double limit = std::sqrt(6.0 / (fan_in + fan_out));
        return uniform(std::move(shape), -limit, limit);
      }
      case KernelInit::kEfficientNetConv:
        return truncated_normal(std::move(shape), std::sqrt(2.0 / fan_out));
      case KernelInit::kEfficientNetDense: {
        const double limit = std::sqrt(3.0 * (1.0 / 3.0) / fan_out);
        return uniform(std::move(shape), -limit, limit);
      }
    }
    return {};
  }
  Tensor bias(int64_t n) {
    return mode_ == Initialization::kVaried ? normal({n}, 0.0, 0.01) : filled({n}, 0.0f);
  }
  // `gamma_range` (varied only): smaller for the last batch norm of a residual branch, so that
  // sums of branches keep the activations' scale through the depth of the network.
  struct BatchNormValues {
    Tensor gamma, beta, moving_mean, moving_variance;
  };
  BatchNormValues batch_norm(int64_t c, std::pair<double, double> gamma_range) {
    if (mode_ == Initialization::kKeras)
      return {filled({c}, 1.0f), filled({c}, 0.0f), filled({c}, 0.0f), filled({c}, 1.0f)};
    BatchNormValues v;
    v.gamma = uniform({c}, gamma_range.first, gamma_range.second);
    v.beta = normal({c}, 0.0, 0.1);
    v.moving_mean = normal({c}, 0.0, 0.1);
    v.moving_variance = uniform({c}, 0.5, 1.5);
    return v;
  }

 private:
  // Normal truncated at two standard deviations and rescaled so that `stddev` is the standard
  // deviation after truncation, as Keras' VarianceScaling(distribution="truncated_normal").
  Tensor truncated_normal(Dims shape, double stddev) {
    Tensor t(kF32, std::move(shape));
    std::normal_distribution<double> n(0.0, 1.0);
    float* p = t.mutable_data<float>();
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      double v;
      do v = n(rng_);
      while (std::abs(v) > 2.0);
      p[i] = static_cast<float>(v * stddev / 0.87962566103423978);  // truncation's std shrink
    }
    return t;
  }
  Tensor normal(Dims shape, double mean, double stddev) {
    Tensor t(kF32, std::move(shape));
    std::normal_distribution<double> n(mean, stddev);
    for (float& v : values(t)) v = static_cast<float>(n(rng_));
    return t;
  }
  Tensor uniform(Dims shape, double lo, double hi) {
    Tensor t(kF32, std::move(shape));
    std::uniform_real_distribution<double> u(lo, hi);
    for (float& v : values(t)) v = static_cast<float>(u(rng_));
    return t;
  }
  static Tensor filled(Dims shape, float value) {
    Tensor t(kF32, std::move(shape));
    std::ranges::fill(values(t), value);
    return t;
  }
  static std::span<float> values(Tensor& t) {
    return {t.mutable_data<float>(), static_cast<size_t>(t.num_elements())};
  }

  std::mt19937_64 rng_;
  Initialization mode_;
  KerasInit keras_;
};

// TensorFlow's output size and SAME padding split for one spatial dimension.
int64_t conv_out(int64_t in, int64_t k, int64_t s, const std::string& padding) {
  if (in < 0) return -1;  // any size
  return padding == "SAME" ? (in + s - 1) / s : (in - k) / s + 1;
}
std::pair<int64_t, int64_t> same_pads(int64_t in, int64_t k, int64_t s) {
  const int64_t out = (in + s - 1) / s;
  const int64_t total = std::max<int64_t>((out - 1) * s + k - in, 0);
  return {total / 2, total - total / 2};
}

// Keras imagenet_utils.correct_pad for an input of static size h x w.
std::array<int64_t, 4> correct_pad(const Dims& hwc, int64_t kernel) {
  // An unknown size counts as even (Keras: `if input_size[0] is None: adjust = (1, 1)`).
  const int64_t adjust_h = hwc[0] < 0 ? 1 : 1 - hwc[0] % 2;
  const int64_t adjust_w = hwc[1] < 0 ? 1 : 1 - hwc[1] % 2;
  const int64_t c = kernel / 2;
  return {c - adjust_h, c, c - adjust_w, c};
}

// A Keras functional model being assembled layer by layer; variables go to the writer as the
// layers are created.
class Net {
 public:
  Net(std::string name, Dims input_hwc, uint64_t seed, Initialization mode, KerasInit keras)
      : name_(std::move(name)), input_(std::move(input_hwc)), init_(seed, mode, keras) {}

  SavedModelWriter& writer() { return writer_; }
  const std::vector<Layer>& layers() const { return layers_; }
  const std::string& name() const { return name_; }
  const Dims& input_shape() const { return input_; }
  Status status() const { return status_; }
  Initializers& init() { return init_; }

  const Dims& shape_of(int t) const {
    return t < 0 ? input_ : layers_[static_cast<size_t>(t)].shape;
  }

  int conv(int x, const std::string& name, int64_t filters, int64_t k, int64_t s,
           const std::string& padding, bool use_bias, const std::string& activation = "") {
    const Dims& in = shape_of(x);
    Layer l = make(name, LayerType::kConv2D, {x});
    l.filters = filters, l.kernel = k, l.stride = s, l.padding = padding, l.use_bias = use_bias;
    l.activation = activation;
    l.shape = {conv_out(in[0], k, s, padding), conv_out(in[1], k, s, padding), filters};
    add_variable(l, "kernel", init_.kernel({k, k, in[2], filters}, Initializers::Kernel::kConv),
                 true);
    if (use_bias) add_variable(l, "bias", init_.bias(filters), true);
    return push(std::move(l));
  }

  int depthwise(int x, const std::string& name, int64_t k, int64_t s, const std::string& padding) {
    const Dims& in = shape_of(x);
    Layer l = make(name, LayerType::kDepthwiseConv2D, {x});
    l.kernel = k, l.stride = s, l.padding = padding;
    l.shape = {conv_out(in[0], k, s, padding), conv_out(in[1], k, s, padding), in[2]};
    add_variable(l, "depthwise_kernel",
                 init_.kernel({k, k, in[2], 1}, Initializers::Kernel::kDepthwise), true);
    return push(std::move(l));
  }

  // `gamma_range`: see Initializers::batch_norm.
  int batch_norm(int x, const std::string& name, float epsilon, float momentum,
                 std::pair<double, double> gamma_range = {0.8, 1.2}) {
    const Dims& in = shape_of(x);
    Layer l = make(name, LayerType::kBatchNorm, {x});
    l.epsilon = epsilon, l.momentum = momentum, l.shape = in;
    const int64_t c = in[2];
    auto values = init_.batch_norm(c, gamma_range);
    add_variable(l, "gamma", std::move(values.gamma), true);
    add_variable(l, "beta", std::move(values.beta), true);
    add_variable(l, "moving_mean", std::move(values.moving_mean), false);
    add_variable(l, "moving_variance", std::move(values.moving_variance), false);
    return push(std::move(l));
  }

  int activation(int x, const std::string& name, LayerType type) {
    Layer l = make(name, type, {x});
    l.shape = shape_of(x);
    return push(std::move(l));
  }

  int zero_pad(int x, const std::string& name, std::array<int64_t, 4> pads) {
    const Dims& in = shape_of(x);
    Layer l = make(name, LayerType::kZeroPadding2D, {x});
    l.pads = pads;
    l.shape = {in[0] < 0 ? -1 : in[0] + pads[0] + pads[1],
               in[1] < 0 ? -1 : in[1] + pads[2] + pads[3], in[2]};
    return push(std::move(l));
  }

  int max_pool(int x, const std::string& name, int64_t k, int64_t s) {
    const Dims& in = shape_of(x);
    Layer l = make(name, LayerType::kMaxPool, {x});
    l.kernel = k, l.stride = s, l.padding = "VALID";
    l.shape = {conv_out(in[0], k, s, "VALID"), conv_out(in[1], k, s, "VALID"), in[2]};
    return push(std::move(l));
  }

  int add(int a, int b2, const std::string& name) {
    if (shape_of(a) != shape_of(b2)) fail("add '" + name + "': shapes differ");
    Layer l = make(name, LayerType::kAdd, {a, b2});
    l.shape = shape_of(a);
    return push(std::move(l));
  }

  int multiply(int a, int b2, const std::string& name) {
    Layer l = make(name, LayerType::kMultiply, {a, b2});
    l.shape = shape_of(a);
    return push(std::move(l));
  }

  int global_average_pool(int x, const std::string& name, bool keep_dims) {
    const Dims& in = shape_of(x);
    Layer l = make(name, LayerType::kGlobalAveragePool, {x});
    l.keep_dims = keep_dims;
    l.shape = keep_dims ? Dims{1, 1, in[2]} : Dims{in[2]};
    return push(std::move(l));
  }

  int dense(int x, const std::string& name, int64_t units) {
    const Dims& in = shape_of(x);
    Layer l = make(name, LayerType::kDense, {x});
    l.filters = units;
    l.use_bias = true;
    l.shape = {units};
    add_variable(l, "kernel", init_.kernel({in.back(), units}, Initializers::Kernel::kDense), true);
    add_variable(l, "bias", init_.bias(units), true);
    return push(std::move(l));
  }

  // Keras Normalization adapted to ImageNet's RGB mean and variance (EfficientNet's stem).
  int normalization(int x, const std::string& name, const std::vector<float>& mean,
                    const std::vector<float>& variance) {
    const int64_t c = shape_of(x)[2];
    Layer l = make(name, LayerType::kNormalization, {x});
    l.shape = shape_of(x);
    add_variable(l, "mean", Tensor::from_vector<float>({c}, mean), false);
    add_variable(l, "variance", Tensor::from_vector<float>({c}, variance), false);
    add_variable(l, "count", Tensor::scalar<int64_t>(0), false, /*used_in_call=*/false);
    return push(std::move(l));
  }

 private:
  Layer make(const std::string& name, LayerType type, std::vector<int> inputs) {
    Layer l;
    l.name = name;
    l.type = type;
    l.inputs = std::move(inputs);
    return l;
  }
  int push(Layer l) {
    layers_.push_back(std::move(l));
    return static_cast<int>(layers_.size()) - 1;
  }
  void fail(const std::string& message) {
    if (status_.ok()) status_ = internal_error(name_ + ": " + message);
  }
  void add_variable(Layer& l, const std::string& role, Tensor value, bool trainable,
                    bool used_in_call = true) {
    if (l.variables.empty()) l_with_weights_index_[l.name] = layers_with_weights_++;
    const std::string object =
        "layer_with_weights-" + std::to_string(l_with_weights_index_[l.name]);
    auto v = writer_.add_variable({object, role}, l.name + "/" + role, std::move(value), trainable);
    if (!v.ok()) {
      fail(v.status().message());
      return;
    }
    l.variables.push_back({role, *v, used_in_call});
  }

  std::string name_;
  Dims input_;
  Initializers init_;
  SavedModelWriter writer_{ops::find_op_def};
  std::vector<Layer> layers_;
  int layers_with_weights_ = 0;
  std::map<std::string, int> l_with_weights_index_;
  Status status_;
};

// ---------------------------------------------------------------------------------------------
// Lowering: one function per layer (and per training mode where the layer cares), a model
// function per trace calling them, the root __call__ and the serving signature.

PartialShape batched(const Dims& shape) {
  Dims d = {-1};
  d.insert(d.end(), shape.begin(), shape.end());
  return PartialShape::known(d);
}

std::string swish(FunctionBuilder& fb, const std::string& x, const std::string& scope) {
  const auto s = fb.add("Sigmoid", {x}, {}, scope.empty() ? "Sigmoid" : scope + "/Sigmoid");
  return fb.add("Mul", {x, s}, {}, scope.empty() ? "mul" : scope + "/mul");
}

// True when the layer's training-mode function takes the batch-norm momentum as an argument.
bool takes_momentum(const Layer& l, bool training, bool momentum_argument) {
  return training && momentum_argument && l.type == LayerType::kBatchNorm;
}

Expected<FunctionSignature> layer_function(Net& net, const Layer& l, bool training,
                                           bool momentum_argument) {
  SavedModelWriter& w = net.writer();
  FunctionBuilder fb(w.unique_function_name(l.name + "_layer_call_and_return_conditional_losses"),
                     w.op_defs());
  std::vector<std::string> in;
  if (l.inputs.size() == 1) {
    in.push_back(fb.add_input("inputs", kF32, batched(net.shape_of(l.inputs[0]))));
  } else {
    for (size_t i = 0; i < l.inputs.size(); ++i) {
      in.push_back(
          fb.add_input("inputs_" + std::to_string(i), kF32, batched(net.shape_of(l.inputs[i]))));
    }
  }
  std::string momentum;
  if (takes_momentum(l, training, momentum_argument))
    momentum = fb.add_input("momentum", kF32, PartialShape::known({}));
  std::map<std::string, std::string> res;
  for (const auto& v : l.variables) {
    if (v.used_in_call)
      res[v.role] = w.add_resource_input(fb, v.role + "_readvariableop_resource", v.handle);
  }
  const auto strides = ints({1, l.stride, l.stride, 1});
  std::string y;
  switch (l.type) {
    case LayerType::kConv2D: {
      const auto k = fb.read_variable(res["kernel"], "Conv2D");
      y = fb.add("Conv2D", {in[0], k}, {{"strides", strides}, {"padding", str(l.padding)}});
      if (l.use_bias) y = fb.add("BiasAdd", {y, fb.read_variable(res["bias"], "BiasAdd")});
      if (l.activation == "swish") y = swish(fb, y, "");
      if (l.activation == "sigmoid") y = fb.add("Sigmoid", {y});
      break;
    }
    case LayerType::kDepthwiseConv2D: {
      const auto k = fb.read_variable(res["depthwise_kernel"], "depthwise");
      y = fb.add("DepthwiseConv2dNative", {in[0], k},
                 {{"strides", strides}, {"padding", str(l.padding)}}, "depthwise");
      break;
    }
    case LayerType::kBatchNorm: {
      const auto gamma = fb.read_variable(res["gamma"], "ReadVariableOp");
      const auto beta = fb.read_variable(res["beta"], "ReadVariableOp_1");
      const auto mean = fb.read_variable(res["moving_mean"], "FusedBatchNormV3");
      const auto var = fb.read_variable(res["moving_variance"], "FusedBatchNormV3_1");
      format::Attrs attrs = {{"epsilon", f(l.epsilon)},
                             {"is_training", b(training)},
                             {"data_format", str("NHWC")},
                             {"U", type(kF32)}};
      if (training && momentum.empty())
        attrs.emplace_back("exponential_avg_factor", f(1.0f - l.momentum));
      const auto outs = fb.add_node("FusedBatchNormV3", {in[0], gamma, beta, mean, var}, attrs);
      y = outs[0];
      if (!momentum.empty() && outs.size() == 6) {
        // Keras' _assign_moving_average with a Tensor momentum: the op returns the batch mean
        // and (Bessel-corrected) variance, and moving -= (moving - batch) * (1 - momentum).
        const auto one = fb.add_const(Tensor::scalar(1.0f), "AssignMovingAvg/decay/x");
        const auto decay = fb.add("Sub", {one, momentum}, {}, "AssignMovingAvg/decay");
        const std::pair<const char*, std::string> updates[] = {{"AssignMovingAvg", mean},
                                                               {"AssignMovingAvg_1", var}};
        for (int k = 0; k < 2; ++k) {
          const std::string scope = updates[k].first;
          const auto diff = fb.add("Sub", {updates[k].second, outs[1 + k]}, {}, scope + "/sub");
          const auto delta = fb.add("Mul", {diff, decay}, {}, scope + "/mul");
          fb.add_node("AssignSubVariableOp",
                      {res[k == 0 ? "moving_mean" : "moving_variance"], delta}, {}, scope);
        }
      } else if (training && outs.size() == 6) {
        // Keras' fused-average update: moving statistics take the op's running averages.
        fb.add_node("AssignVariableOp", {res["moving_mean"], outs[1]}, {}, "AssignNewValue");
        fb.add_node("AssignVariableOp", {res["moving_variance"], outs[2]}, {}, "AssignNewValue_1");
      }
      break;
    }
    case LayerType::kReLU: y = fb.add("Relu", {in[0]}); break;
    case LayerType::kReLU6: y = fb.add("Relu6", {in[0]}); break;
    case LayerType::kSwish: y = swish(fb, in[0], ""); break;
    case LayerType::kZeroPadding2D: {
      const auto pads = fb.add_const(
          Tensor::from_vector<int32_t>(
              {4, 2}, {0, 0, static_cast<int32_t>(l.pads[0]), static_cast<int32_t>(l.pads[1]),
                       static_cast<int32_t>(l.pads[2]), static_cast<int32_t>(l.pads[3]), 0, 0}),
          "Pad/paddings");
      y = fb.add("Pad", {in[0], pads});
      break;
    }
    case LayerType::kMaxPool:
      y = fb.add("MaxPool", {in[0]},
                 {{"ksize", ints({1, l.kernel, l.kernel, 1})},
                  {"strides", strides},
                  {"padding", str(l.padding)}});
      break;
    case LayerType::kAdd: y = fb.add("AddV2", {in[0], in[1]}, {}, "add"); break;
    case LayerType::kMultiply: y = fb.add("Mul", {in[0], in[1]}, {}, "mul"); break;
    case LayerType::kGlobalAveragePool: {
      const auto axes =
          fb.add_const(Tensor::from_vector<int32_t>({2}, {1, 2}), "Mean/reduction_indices");
      y = fb.add("Mean", {in[0], axes}, {{"keep_dims", b(l.keep_dims)}});
      break;
    }
    case LayerType::kDense: {
      y = fb.add("MatMul", {in[0], fb.read_variable(res["kernel"], "MatMul")});
      y = fb.add("BiasAdd", {y, fb.read_variable(res["bias"], "BiasAdd")});
      break;
    }
    case LayerType::kNormalization: {
      const int32_t c = static_cast<int32_t>(l.shape[2]);
      const auto shape =
          fb.add_const(Tensor::from_vector<int32_t>({4}, {1, 1, 1, c}), "Reshape/shape");
      const auto mean = fb.add("Reshape", {fb.read_variable(res["mean"], "Reshape"), shape});
      const auto var = fb.add("Reshape", {fb.read_variable(res["variance"], "Reshape_1"), shape},
                              {}, "Reshape_1");
      const auto centered = fb.add("Sub", {in[0], mean}, {}, "sub");
      const auto stddev = fb.add("Sqrt", {var});
      const auto floor = fb.add_const(Tensor::scalar(1e-7f), "Maximum/y");  // backend.epsilon()
      y = fb.add("RealDiv", {centered, fb.add("Maximum", {stddev, floor})}, {}, "truediv");
      break;
    }
  }
  fb.add_output(y);
  return w.add_function(std::move(fb));
}

bool layer_depends_on_training(const Layer& l) {
  return l.type == LayerType::kBatchNorm;
}

// Keras' L2 regularizer on one kernel: l2 * sum(kernel^2), a zero-argument function.
Status add_l2_loss(SavedModelWriter& w, const Layer& l, VariableHandle kernel, double l2) {
  FunctionBuilder fb(w.unique_function_name(l.name + "_kernel_Regularizer"), w.op_defs());
  const auto k = fb.read_variable(w.add_resource_input(fb, "x", kernel), "Square");
  const auto sq = fb.add("Square", {k});
  const int32_t rank = static_cast<int32_t>(w.variable_shape(kernel).size());
  std::vector<int32_t> axes(static_cast<size_t>(rank));
  for (int32_t i = 0; i < rank; ++i) axes[static_cast<size_t>(i)] = i;
  const auto ax = fb.add_const(Tensor::from_vector<int32_t>({rank}, axes), "Const");
  const auto sum = fb.add("Sum", {sq, ax});
  const auto factor = fb.add_const(Tensor::scalar(static_cast<float>(l2)), "mul/x");
  fb.add_output(fb.add("Mul", {factor, sum}, {}, "mul"));
  HUBIMG_ASSIGN_OR_RETURN(FunctionSignature fn, w.add_function(std::move(fb)));
  return w.add_regularization_loss({fn.name, {kernel}});
}

Status write_net(Net& net, const std::string& head_key, const std::filesystem::path& dir,
                 const ZooOptions& options, ZooModelSummary& summary) {
  HUBIMG_RETURN_IF_ERROR(net.status());
  SavedModelWriter& w = net.writer();
  const auto& layers = net.layers();
  std::vector<bool> modes = {false};
  if (options.training_trace) modes.push_back(true);
  const bool momentum_argument = options.momentum_argument;

  // Captured variables of the model function: every variable a layer call reads, in order.
  std::vector<VariableHandle> captures;
  for (const auto& l : layers) {
    for (const auto& v : l.variables) {
      if (v.used_in_call) captures.push_back(v.handle);
    }
  }
  std::map<std::pair<size_t, bool>, FunctionSignature> fn;
  for (size_t i = 0; i < layers.size(); ++i) {
    for (bool training : modes) {
      if (training && !layer_depends_on_training(layers[i])) {
        fn[{i, true}] = fn[{i, false}];
        continue;
      }
      HUBIMG_ASSIGN_OR_RETURN(fn[std::make_pair(i, training)],
                              layer_function(net, layers[i], training, momentum_argument));
    }
  }
  const TensorSpec in{"inputs", kF32, batched(net.input_shape())};
  const TensorSpec out{"output_0", kF32, batched(layers.back().shape)};
  std::vector<format::CallArgument> arguments;
  if (momentum_argument) {
    arguments.push_back({{"batch_norm_momentum", kF32, PartialShape::known({})}, 0.99});
  }
  std::vector<format::CallTrace> traces;
  for (bool training : modes) {
    std::string base = net.name();
    std::replace(base.begin(), base.end(), '.', '_');
    FunctionBuilder fb(w.unique_function_name(base + "_layer_call_fn"), w.op_defs());
    const auto x = fb.add_input("inputs", kF32, in.shape);
    std::string momentum;
    if (momentum_argument)
      momentum = fb.add_input("batch_norm_momentum", kF32, PartialShape::known({}));
    std::map<int, std::string> handle_arg;  // variable index -> resource argument
    for (size_t k = 0; k < captures.size(); ++k) {
      handle_arg[captures[k].index] = w.add_resource_input(
          fb, k == 0 ? "unknown" : "unknown_" + std::to_string(k - 1), captures[k]);
    }
    std::vector<std::string> value(layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
      const Layer& l = layers[i];
      std::vector<std::string> args;
      for (int src : l.inputs) args.push_back(src < 0 ? x : value[static_cast<size_t>(src)]);
      if (takes_momentum(l, training, momentum_argument)) args.push_back(momentum);
      for (const auto& v : l.variables) {
        if (v.used_in_call) args.push_back(handle_arg[v.handle.index]);
      }
      const FunctionSignature& callee = fn[{i, training}];
      value[i] = fb.add_call(
          callee, args,
          l.name + (callee.stateful ? "/StatefulPartitionedCall" : "/PartitionedCall"))[0];
    }
    fb.add_output(value.back());
    HUBIMG_ASSIGN_OR_RETURN(FunctionSignature model_fn, w.add_function(std::move(fb)));
    traces.push_back({model_fn.name, in, training, captures, out, arguments});
  }
  if (options.l2 > 0) {
    for (const auto& l : layers) {
      if (l.type != LayerType::kConv2D && l.type != LayerType::kDense) continue;
      for (const auto& v : l.variables) {
        if (v.role == "kernel") HUBIMG_RETURN_IF_ERROR(add_l2_loss(w, l, v.handle, options.l2));
      }
    }
  }
  // The serving signature calls the inference trace, which takes the momentum too.
  std::string serving = traces[0].function;
  if (momentum_argument) {
    FunctionBuilder fb(w.unique_function_name(net.name() + "_serving"), w.op_defs());
    const auto x = fb.add_input("inputs", kF32, in.shape);
    std::vector<std::string> args = {
        x, fb.add_const(Tensor::scalar(static_cast<float>(arguments[0].default_value)),
                        "batch_norm_momentum")};
    for (size_t k = 0; k < captures.size(); ++k) {
      args.push_back(w.add_resource_input(
          fb, k == 0 ? "unknown" : "unknown_" + std::to_string(k - 1), captures[k]));
    }
    fb.add_output(fb.add_call(*w.function(traces[0].function), args, "StatefulPartitionedCall")[0]);
    HUBIMG_ASSIGN_OR_RETURN(FunctionSignature serving_fn, w.add_function(std::move(fb)));
    serving = serving_fn.name;
  }
  HUBIMG_RETURN_IF_ERROR(w.set_call(std::move(traces)));
  TensorSpec sig_in = in;
  sig_in.name = "input_1";
  HUBIMG_RETURN_IF_ERROR(w.add_signature(
      {"serving_default", serving, {{"input_1", sig_in}}, {{head_key, out}}, captures}));
  HUBIMG_RETURN_IF_ERROR(w.write(dir));

  summary = {};
  summary.name = net.name();
  summary.input_shape = in.shape.dims;
  summary.num_outputs = layers.back().shape.back();
  summary.num_layers = static_cast<int>(layers.size());
  for (const auto& l : layers) {
    for (const auto& v : l.variables) {
      const Dims& shape = w.variable_shape(v.handle);
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      ++summary.num_variables;
      summary.parameters += n;
      if (w.variable_trainable(v.handle)) {
        ++summary.num_trainable_variables;
        summary.trainable_parameters += n;
      }
      if (options.l2 > 0 && v.role == "kernel" &&
          (l.type == LayerType::kConv2D || l.type == LayerType::kDense))
        ++summary.num_regularization_losses;
    }
  }
  if (!options.write_manifest) return {};

  // weights_manifest.json: what a peer implementation needs to rebuild the same network.
  nlohmann::ordered_json manifest;
  manifest["model"] = net.name();
  manifest["format"] = "hubimg bench model manifest v1";
  manifest["input"] = {{"name", "input_1"},
                       {"dtype", "float32"},
                       {"shape", in.shape.dims},
                       {"layout", "NHWC"},
                       {"range", "[0, 1]"}};
  manifest["output"] = {
      {"name", head_key}, {"dtype", "float32"}, {"shape", out.shape.dims}, {"kind", "logits"}};
  manifest["conventions"] = {
      {"conv_kernel", "[kh, kw, in, out] (HWIO)"},
      {"depthwise_kernel", "[kh, kw, channels, 1]"},
      {"dense_kernel", "[in, out]; y = x @ kernel + bias"},
      {"padding",
       "TensorFlow: VALID = none; SAME = total max((out-1)*stride+k-in, 0), the extra pixel at the "
       "bottom/right; explicit pads are listed as same_pads/pads"},
      {"batch_norm", "y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta"},
      {"swish", "x * sigmoid(x)"},
      {"normalization",
       "(x - mean) / max(sqrt(variance), 1e-7), mean/variance broadcast over channels"}};
  const auto& written = w.written_variables();
  nlohmann::ordered_json vars = nlohmann::ordered_json::array();
  if (options.dump_npy) std::filesystem::create_directories(dir / "npy");
  for (const auto& l : layers) {
    for (const auto& v : l.variables) {
      const auto& info = written[static_cast<size_t>(v.handle.index)];
      const Dims& shape = w.variable_shape(v.handle);
      const bool trainable = w.variable_trainable(v.handle);
      nlohmann::ordered_json entry = {{"name", info.name},
                                      {"shape", shape},
                                      {"dtype", dtype_name(w.variable_dtype(v.handle))},
                                      {"trainable", trainable},
                                      {"checkpoint_key", info.checkpoint_key}};
      if (options.dump_npy) {
        std::string file = info.name;
        std::replace(file.begin(), file.end(), '/', '.');
        file += ".npy";
        entry["npy"] = "npy/" + file;
        HUBIMG_RETURN_IF_ERROR(write_npy(dir / "npy" / file, w.variable_value(v.handle)));
      }
      vars.push_back(std::move(entry));
    }
  }
  manifest["variables"] = std::move(vars);
  nlohmann::ordered_json js_layers = nlohmann::ordered_json::array();
  for (const auto& l : layers) {
    nlohmann::ordered_json j;
    j["name"] = l.name;
    j["type"] = type_name(l.type);
    nlohmann::ordered_json ins = nlohmann::ordered_json::array();
    for (int src : l.inputs)
      ins.push_back(src < 0 ? std::string("input_1") : layers[static_cast<size_t>(src)].name);
    j["inputs"] = std::move(ins);
    j["output_shape"] = l.shape;
    switch (l.type) {
      case LayerType::kConv2D:
      case LayerType::kDepthwiseConv2D: {
        if (l.type == LayerType::kConv2D) j["filters"] = l.filters;
        j["kernel_size"] = l.kernel;
        j["strides"] = l.stride;
        j["padding"] = l.padding;
        const Dims& ishape = net.shape_of(l.inputs[0]);
        if (l.padding == "SAME") {
          auto [top, bottom] = same_pads(ishape[0], l.kernel, l.stride);
          auto [left, right] = same_pads(ishape[1], l.kernel, l.stride);
          j["same_pads"] = {top, bottom, left, right};
        }
        j["use_bias"] = l.use_bias;
        if (!l.activation.empty()) j["activation"] = l.activation;
        break;
      }
      case LayerType::kBatchNorm:
        j["epsilon"] = l.epsilon;
        j["momentum"] = l.momentum;
        break;
      case LayerType::kZeroPadding2D:
        j["pads"] = {l.pads[0], l.pads[1], l.pads[2], l.pads[3]};
        break;
      case LayerType::kMaxPool:
        j["pool_size"] = l.kernel;
        j["strides"] = l.stride;
        j["padding"] = l.padding;
        break;
      case LayerType::kGlobalAveragePool: j["keepdims"] = l.keep_dims; break;
      case LayerType::kDense: j["units"] = l.filters; break;
      default: break;
    }
    nlohmann::ordered_json lv;
    for (const auto& v : l.variables) lv[v.role] = l.name + "/" + v.role;
    if (!lv.empty()) j["variables"] = std::move(lv);
    js_layers.push_back(std::move(j));
  }
  manifest["layers"] = std::move(js_layers);
  manifest["parameters"] = summary.parameters;
  manifest["trainable_parameters"] = summary.trainable_parameters;
  {
    std::ofstream out_file(dir / "weights_manifest.json");
    out_file << manifest.dump(1) << "\n";
    if (!out_file) return data_loss((dir / "weights_manifest.json").string() + ": write failed");
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Architectures (keras/applications/*.py).

int make_divisible(double v, int divisor) {
  int new_v = std::max(divisor, static_cast<int>(v + divisor / 2.0) / divisor * divisor);
  if (new_v < 0.9 * v) new_v += divisor;
  return new_v;
}

// The classification head, unless the model is a feature vector.
void head(Net& n, int x, const ZooOptions& o, int64_t default_classes, const std::string& name) {
  if (o.feature_vector) return;
  n.dense(x, name, o.num_classes > 0 ? o.num_classes : default_classes);
}

void build_mobilenet_v2(Net& n, const ZooOptions& o) {
  const float eps = 1e-3f, mom = 0.999f;
  const double alpha = o.alpha;
  int x = n.conv(-1, "Conv1", make_divisible(32 * alpha, 8), 3, 2, "SAME", false);
  x = n.batch_norm(x, "bn_Conv1", eps, mom);
  x = n.activation(x, "Conv1_relu", LayerType::kReLU6);
  auto block = [&](int input, int expansion, int stride, int filters, int block_id) {
    const int64_t in_channels = n.shape_of(input)[2];
    const int pointwise = make_divisible(static_cast<int>(filters * alpha), 8);
    std::string prefix = "block_" + std::to_string(block_id) + "_";
    int y = input;
    if (block_id) {
      y = n.conv(y, prefix + "expand", expansion * in_channels, 1, 1, "SAME", false);
      y = n.batch_norm(y, prefix + "expand_BN", eps, mom);
      y = n.activation(y, prefix + "expand_relu", LayerType::kReLU6);
    } else {
      prefix = "expanded_conv_";
    }
    if (stride == 2) y = n.zero_pad(y, prefix + "pad", correct_pad(n.shape_of(y), 3));
    y = n.depthwise(y, prefix + "depthwise", 3, stride, stride == 1 ? "SAME" : "VALID");
    y = n.batch_norm(y, prefix + "depthwise_BN", eps, mom);
    y = n.activation(y, prefix + "depthwise_relu", LayerType::kReLU6);
    y = n.conv(y, prefix + "project", pointwise, 1, 1, "SAME", false);
    const bool residual = in_channels == pointwise && stride == 1;
    y = n.batch_norm(y, prefix + "project_BN", eps, mom,
                     residual ? std::pair{0.2, 0.4} : std::pair{0.8, 1.2});
    return residual ? n.add(input, y, prefix + "add") : y;
  };
  struct B {
    int filters, stride, expansion;
  };
  const B blocks[] = {{16, 1, 1}, {24, 2, 6},  {24, 1, 6},  {32, 2, 6},  {32, 1, 6}, {32, 1, 6},
                      {64, 2, 6}, {64, 1, 6},  {64, 1, 6},  {64, 1, 6},  {96, 1, 6}, {96, 1, 6},
                      {96, 1, 6}, {160, 2, 6}, {160, 1, 6}, {160, 1, 6}, {320, 1, 6}};
  for (int i = 0; i < 17; ++i)
    x = block(x, blocks[i].expansion, blocks[i].stride, blocks[i].filters, i);
  // Keras keeps the last convolution 1280 wide for alpha <= 1.
  x = n.conv(x, "Conv_1", alpha > 1.0 ? make_divisible(1280 * alpha, 8) : 1280, 1, 1, "VALID",
             false);
  x = n.batch_norm(x, "Conv_1_bn", eps, mom);
  x = n.activation(x, "out_relu", LayerType::kReLU6);
  x = n.global_average_pool(x, "global_average_pooling2d", false);
  head(n, x, o, 1000, "predictions");
}

void build_efficientnet_b0(Net& n, const ZooOptions& o) {
  const float eps = 1e-3f, mom = 0.99f;
  // Keras: Rescaling(1/255) then Normalization; hub models take [0, 1] input, so only the
  // Normalization (ImageNet mean and variance) stays.
  int x = n.normalization(-1, "normalization", {0.485f, 0.456f, 0.406f},
                          {0.229f * 0.229f, 0.224f * 0.224f, 0.225f * 0.225f});
  x = n.zero_pad(x, "stem_conv_pad", correct_pad(n.shape_of(x), 3));
  x = n.conv(x, "stem_conv", 32, 3, 2, "VALID", false);
  x = n.batch_norm(x, "stem_bn", eps, mom);
  x = n.activation(x, "stem_activation", LayerType::kSwish);
  struct Args {
    int kernel, repeats, filters_in, filters_out, expand_ratio, strides;
  };
  const Args blocks[] = {{3, 1, 32, 16, 1, 1},  {3, 2, 16, 24, 6, 2},  {5, 2, 24, 40, 6, 2},
                         {3, 3, 40, 80, 6, 2},  {5, 3, 80, 112, 6, 1}, {5, 4, 112, 192, 6, 2},
                         {3, 1, 192, 320, 6, 1}};
  const double se_ratio = 0.25;
  for (int i = 0; i < 7; ++i) {
    Args a = blocks[i];
    for (int j = 0; j < a.repeats; ++j) {
      if (j > 0) {
        a.strides = 1;
        a.filters_in = a.filters_out;
      }
      const std::string name = "block" + std::to_string(i + 1) + static_cast<char>('a' + j) + "_";
      const int input = x;
      const int64_t filters = static_cast<int64_t>(a.filters_in) * a.expand_ratio;
      int y = input;
      if (a.expand_ratio != 1) {
        y = n.conv(y, name + "expand_conv", filters, 1, 1, "SAME", false);
        y = n.batch_norm(y, name + "expand_bn", eps, mom);
        y = n.activation(y, name + "expand_activation", LayerType::kSwish);
      }
      std::string pad = "SAME";
      if (a.strides == 2) {
        y = n.zero_pad(y, name + "dwconv_pad", correct_pad(n.shape_of(y), a.kernel));
        pad = "VALID";
      }
      y = n.depthwise(y, name + "dwconv", a.kernel, a.strides, pad);
      y = n.batch_norm(y, name + "bn", eps, mom);
      y = n.activation(y, name + "activation", LayerType::kSwish);
      const int64_t filters_se =
          std::max<int64_t>(1, static_cast<int64_t>(a.filters_in * se_ratio));
      int se = n.global_average_pool(y, name + "se_squeeze", true);
      se = n.conv(se, name + "se_reduce", filters_se, 1, 1, "SAME", true, "swish");
      se = n.conv(se, name + "se_expand", filters, 1, 1, "SAME", true, "sigmoid");
      y = n.multiply(y, se, name + "se_excite");
      y = n.conv(y, name + "project_conv", a.filters_out, 1, 1, "SAME", false);
      const bool skip = a.strides == 1 && a.filters_in == a.filters_out;
      y = n.batch_norm(y, name + "project_bn", eps, mom,
                       skip ? std::pair{0.2, 0.4} : std::pair{0.8, 1.2});
      // Keras adds Dropout(drop_connect) here, the identity at inference.
      x = skip ? n.add(y, input, name + "add") : y;
    }
  }
  x = n.conv(x, "top_conv", 1280, 1, 1, "SAME", false);
  x = n.batch_norm(x, "top_bn", eps, mom);
  x = n.activation(x, "top_activation", LayerType::kSwish);
  x = n.global_average_pool(x, "avg_pool", false);
  // top_dropout (0.2) is the identity at inference.
  head(n, x, o, 1000, "predictions");
}

void build_resnet50(Net& n, const ZooOptions& o) {
  const float eps = 1.001e-5f, mom = 0.99f;
  int x = n.zero_pad(-1, "conv1_pad", {3, 3, 3, 3});
  x = n.conv(x, "conv1_conv", 64, 7, 2, "VALID", true);
  x = n.batch_norm(x, "conv1_bn", eps, mom);
  x = n.activation(x, "conv1_relu", LayerType::kReLU);
  x = n.zero_pad(x, "pool1_pad", {1, 1, 1, 1});
  x = n.max_pool(x, "pool1_pool", 3, 2);
  // v1.5: the stride sits on the 3x3 convolution of the first block of a stage.
  auto block = [&](int input, int64_t filters, int64_t stride, bool conv_shortcut,
                   const std::string& name) {
    int shortcut = input;
    if (conv_shortcut) {
      shortcut = n.conv(input, name + "_0_conv", 4 * filters, 1, stride, "VALID", true);
      shortcut = n.batch_norm(shortcut, name + "_0_bn", eps, mom);
    }
    int y = n.conv(input, name + "_1_conv", filters, 1, 1, "VALID", true);
    y = n.batch_norm(y, name + "_1_bn", eps, mom);
    y = n.activation(y, name + "_1_relu", LayerType::kReLU);
    y = n.conv(y, name + "_2_conv", filters, 3, stride, "SAME", true);
    y = n.batch_norm(y, name + "_2_bn", eps, mom);
    y = n.activation(y, name + "_2_relu", LayerType::kReLU);
    y = n.conv(y, name + "_3_conv", 4 * filters, 1, 1, "VALID", true);
    y = n.batch_norm(y, name + "_3_bn", eps, mom, {0.2, 0.4});
    y = n.add(shortcut, y, name + "_add");
    return n.activation(y, name + "_out", LayerType::kReLU);
  };
  auto stack = [&](int input, int64_t filters, int blocks, int64_t stride,
                   const std::string& name) {
    int y = block(input, filters, stride, true, name + "_block1");
    for (int i = 2; i <= blocks; ++i)
      y = block(y, filters, 1, false, name + "_block" + std::to_string(i));
    return y;
  };
  x = stack(x, 64, 3, 1, "conv2");
  x = stack(x, 128, 4, 2, "conv3");
  x = stack(x, 256, 6, 2, "conv4");
  x = stack(x, 512, 3, 2, "conv5");
  x = n.global_average_pool(x, "avg_pool", false);
  head(n, x, o, 1000, "predictions");
}

// The README demo: 64x64 RGB, three conv/batch-norm/ReLU/max-pool blocks, 5 classes.
void build_tiny_cnn(Net& n, const ZooOptions& o) {
  int x = -1;
  const int64_t widths[] = {8, 16, 32};
  for (int i = 0; i < 3; ++i) {
    const std::string suffix = i == 0 ? "" : "_" + std::to_string(i);
    x = n.conv(x, "conv2d" + suffix, widths[i], 3, 1, "SAME", false);
    x = n.batch_norm(x, "batch_normalization" + suffix, 1e-3f, 0.99f);
    x = n.activation(x, "re_lu" + suffix, LayerType::kReLU);
    x = n.max_pool(x, "max_pooling2d" + suffix, 2, 2);
  }
  x = n.global_average_pool(x, "global_average_pooling2d", false);
  head(n, x, o, 5, "dense");
}

}  // namespace

std::vector<std::string> zoo_model_names() {
  return {"mobilenet_v2", "efficientnet_b0", "resnet50", "tiny_cnn"};
}

Expected<ZooModelSummary> write_zoo_model(const std::string& name, const std::filesystem::path& dir,
                                          const ZooOptions& options) {
  struct Spec {
    const char* name;
    int64_t size;
    std::function<void(Net&, const ZooOptions&)> build;
    bool has_alpha;
    KerasInit keras_init;
  };
  const KerasInit glorot;
  const KerasInit efficientnet{KernelInit::kEfficientNetConv, KernelInit::kEfficientNetDense};
  const Spec specs[] = {
      {"mobilenet_v2", 224, build_mobilenet_v2, true, glorot},
      {"efficientnet_b0", 224, build_efficientnet_b0, false, efficientnet},
      {"resnet50", 224, build_resnet50, false, glorot},
      {"tiny_cnn", 64, build_tiny_cnn, false, glorot},
  };
  for (const auto& spec : specs) {
    if (name != spec.name) continue;
    if (!(options.alpha > 0) || options.alpha > 10) {
      return invalid_argument(name + ": alpha must be in (0, 10], got " +
                              std::to_string(options.alpha));
    }
    if (options.alpha != 1.0 && !spec.has_alpha)
      return invalid_argument(name + " has no width multiplier (alpha)");
    if (options.feature_vector && options.num_classes > 0)
      return invalid_argument(name + ": a feature vector has no classes");
    if (options.num_classes < 0) return invalid_argument(name + ": negative number of classes");
    const bool size_ok = options.input_size == 0 || options.input_size == -1 ||
                         (options.input_size >= 8 && options.input_size <= 4096);
    if (!size_ok) return invalid_argument(name + ": input size must be -1 (any) or 8..4096");
    if (options.l2 < 0) return invalid_argument(name + ": negative L2 factor");
    const int64_t size = options.input_size == 0 ? spec.size : options.input_size;
    if (options.write_manifest && size < 0)
      return invalid_argument(name + ": weights_manifest.json needs a fixed input size");
    std::string keras_name = spec.name;
    if (keras_name == "mobilenet_v2") {
      char buf[64];
      std::snprintf(buf, sizeof buf, "mobilenetv2_%.2f_%lld", options.alpha,
                    static_cast<long long>(size < 0 ? 224 : size));
      keras_name = buf;
    } else if (keras_name == "efficientnet_b0") {
      keras_name = "efficientnetb0";
    }
    Net net(keras_name, {size, size, 3}, options.seed, options.initialization, spec.keras_init);
    spec.build(net, options);
    ZooModelSummary summary;
    const std::string head = net.layers().back().name;
    HUBIMG_RETURN_IF_ERROR(write_net(net, head, dir, options, summary));
    summary.name = name;
    return summary;
  }
  std::string known;
  for (const auto& n : zoo_model_names()) known += (known.empty() ? "" : ", ") + n;
  return not_found("no model '" + name + "' in the zoo (known: " + known + ")");
}

}  // namespace hubimg::zoo
