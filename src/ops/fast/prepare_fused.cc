#include "ops/fast/prepare_fused.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <type_traits>
#include <variant>

#include "ops/fast/fast_conv.h"
#include "ops/fast_paths.h"

namespace hubimg::ops::fast {
namespace {

// Where fused Relu/Relu6 layers decide about NaN
// ------------------------------------------------
// TensorFlow's Relu and Relu6 keep NaN (relu(NaN) = NaN on CPU). oneDNN's relu and clip post-ops
// do not: they compute max(x, 0) with the zero as the operand a NaN comparison yields, so a NaN
// pre-activation comes out as 0. A NaN pre-activation of a convolution or matmul has two causes:
//   1. a NaN or Inf among the operands (input, residual, input gate; weights and bias are checked
//      once in prepare_fused): such calls run the op's reference kernel (separate Conv2D/MatMul,
//      BiasAdd, AddV2 and Relu ops), and
//   2. float32 overflow inside the dot product with all operands finite: partial sums that the
//      kernel keeps apart (vector lanes, blocks of the inner dimension) reach +Inf and -Inf and
//      their sum is NaN, as in TensorFlow's float32 kernels (where depends on the kernel's
//      summation order, there as here; tests/hostile/hostile_data_test.cc shows one). The
//      reference kernels sum in double and would not overflow, so such calls run a second fast
//      kernel of the same weights without the activation (made on first need), and then the
//      activation as a separate pass that keeps NaN (apply_activation).
// PreparedFused::run tells the three cases apart with one pass over each per-call operand that
// finds its largest magnitude (the pass case 1 needed anyway) and the bound
//     max|input| * max|gate| * sum|weights| + max|bias| + max|residual| <= kOverflowFree:
// the left side bounds every product, partial sum and output of the exact computation, and the
// margin of kOverflowFree (2^-24 of FLT_MAX) covers rounding and Winograd's transforms, so under
// it no intermediate of the fused kernel can overflow and its pre-activation is finite. Real
// networks are nowhere near it (activations ~1e3, weight sums ~1e5).
constexpr double kOverflowFree = std::numeric_limits<float>::max() / 16777216.0;

// Largest magnitude of the floats of `t` (0 for none or a non-float32 tensor), +Inf when one is
// Inf or NaN. The largest magnitude bit pattern is an unsigned max reduction, which vectorizes;
// exponent all ones means Inf or NaN.
double max_magnitude(const Tensor& t) {
  if (!t.valid() || t.dtype() != DType::kFloat32) return 0;
  const auto* bits = static_cast<const uint32_t*>(t.raw_data());
  std::atomic<uint32_t> largest = 0;
  parallel_rows(t.num_elements(), 1, [&](int64_t begin, int64_t end) {
    uint32_t local = 0;
    for (int64_t i = begin; i < end; ++i) local = std::max(local, bits[i] & 0x7fffffffu);
    uint32_t seen = largest.load(std::memory_order_relaxed);
    while (local > seen && !largest.compare_exchange_weak(seen, local, std::memory_order_relaxed)) {
    }
  });
  const uint32_t m = largest.load(std::memory_order_relaxed);
  if (m >= 0x7f800000u) return std::numeric_limits<double>::infinity();
  return static_cast<double>(std::bit_cast<float>(m));
}

// Sum of the magnitudes of the floats of `t` (+Inf when one is Inf or NaN).
double sum_of_magnitudes(const Tensor& t) {
  if (!t.valid() || t.dtype() != DType::kFloat32) return 0;
  double sum = 0;
  for (float v : t.values<float>()) sum += std::fabs(static_cast<double>(v));
  return std::isnan(sum) ? std::numeric_limits<double>::infinity() : sum;
}

bool is_relu_like(Activation a) {
  return a == Activation::kRelu || a == Activation::kRelu6;
}

class PreparedFused final : public PreparedKernel {
 public:
  using Kernel = std::variant<FastConv2D, FastDepthwiseConv2D, FastMatMul>;
  // Inputs: input, filter, [bias], [residual], [input factor] (see src/ops/fused_ops.cc).
  // spatial_mean: a second output, the Mean of the output over axes 1 and 2 (fused_ops.cc).
  struct Layout {
    bool has_bias = false, has_residual = false, has_input_mul = false;
    bool spatial_mean = false, spatial_mean_keep_dims = false;
  };
  // `reference`: the op's reference kernel, for calls under a Relu/Relu6 with a NaN or Inf
  // operand; `make_linear`: the same kernel without the activation, for calls whose dot products
  // may overflow (see kOverflowFree). `weights_l1`: sum|filter|; `bias_max`: max|bias|.
  PreparedFused(Kernel kernel, const Layout& layout, Activation activation, ops::Kernel reference,
                std::function<Expected<Kernel>()> make_linear, double weights_l1, double bias_max)
      : kernel_(std::move(kernel)),
        activation_(activation),
        reference_(is_relu_like(activation) ? std::move(reference) : ops::Kernel()),
        make_linear_(std::move(make_linear)),
        weights_l1_(weights_l1),
        bias_max_(bias_max),
        residual_index_(layout.has_residual ? 2 + static_cast<int>(layout.has_bias) : -1),
        factor_index_(layout.has_input_mul
                          ? 2 + static_cast<int>(layout.has_bias) + layout.has_residual
                          : -1),
        spatial_mean_(layout.spatial_mean),
        keep_dims_(layout.spatial_mean_keep_dims) {}

  Status run(KernelContext& ctx) const override {
    // Relu/Relu6 whose pre-activation could be NaN, which oneDNN's post-op would turn into 0:
    // see kOverflowFree above.
    if (reference_) {
      switch (classify(ctx)) {
        case Operands::kOverflowFree: break;
        case Operands::kNonFinite: return reference_(ctx);
        case Operands::kMayOverflow: {
          std::call_once(linear_once_, [this] {
            auto k = make_linear_();
            if (k.ok()) {
              linear_.emplace(std::move(k).value());
            } else {
              linear_error_ = k.status();
            }
          });
          if (!linear_) return ctx.error(linear_error_.code(), linear_error_.message());
          return run_kernel(ctx, *linear_, /*activation_after=*/true);
        }
      }
    }
    return run_kernel(ctx, kernel_, /*activation_after=*/false);
  }

 private:
  enum class Operands { kOverflowFree, kNonFinite, kMayOverflow };

  // `activation_after`: `kernel` leaves out the activation; it is applied here, keeping NaN.
  Status run_kernel(KernelContext& ctx, const Kernel& kernel, bool activation_after) const {
    const Tensor* residual =
        residual_index_ >= 0 ? &ctx.input(static_cast<size_t>(residual_index_)) : nullptr;
    // The residual's buffer becomes the output when nothing else holds it: the sum post-op then
    // adds in place instead of copying the residual first.
    Tensor out;
    if (residual && residual->owns_buffer_exclusively()) out = *residual;
    Tensor input = ctx.input(0);
    if (factor_index_ >= 0) {
      const Tensor& factor = ctx.input(static_cast<size_t>(factor_index_));
      const auto* conv = std::get_if<FastConv2D>(&kernel);
      if (conv && conv->folds_input_gate(input.shape(), factor.shape())) {
        Status s = conv->run_with_input_gate(input, factor, residual, out);
        if (!s.ok()) return ctx.error(s.code(), s.message());
        if (activation_after) apply_activation(out);
        ctx.set_output(0, std::move(out));
        return {};
      }
      const Tensor operands[] = {input, factor};
      auto product = run_op("Mul", operands, AttrMap{}, ctx.node_name());
      if (!product.ok()) return product.status();
      input = std::move((*product)[0]);
    }
    Tensor mean;
    Status s = std::visit(
        [&](const auto& k) {
          if constexpr (std::is_same_v<std::decay_t<decltype(k)>, FastMatMul>) {
            return k.run(input, residual, out);
          } else {
            return k.run(input, residual, out,
                         spatial_mean_ && !activation_after ? &mean : nullptr);
          }
        },
        kernel);
    if (!s.ok()) return ctx.error(s.code(), s.message());
    if (activation_after) apply_activation(out);
    if (spatial_mean_) {
      HUBIMG_RETURN_IF_ERROR(set_spatial_mean(ctx, out, std::move(mean)));
    }
    ctx.set_output(0, std::move(out));
    return {};
  }

  // kOverflowFree when no intermediate of the fused computation can overflow (every operand
  // finite and max|input| * max|gate| * sum|weights| + max|bias| + max|residual| within
  // kOverflowFree), kNonFinite when an operand holds NaN or Inf, else kMayOverflow.
  Operands classify(KernelContext& ctx) const {
    const double input = max_magnitude(ctx.input(0));
    const double gate =
        factor_index_ >= 0 ? max_magnitude(ctx.input(static_cast<size_t>(factor_index_))) : 1;
    const double residual =
        residual_index_ >= 0 ? max_magnitude(ctx.input(static_cast<size_t>(residual_index_))) : 0;
    if (std::isinf(input) || std::isinf(gate) || std::isinf(residual)) return Operands::kNonFinite;
    const double bound = input * gate * weights_l1_ + bias_max_ + residual;
    return bound <= kOverflowFree ? Operands::kOverflowFree : Operands::kMayOverflow;
  }

  // Relu or Relu6 in place, as the reference ops compute them: std::max(x, 0) returns x (not 0)
  // when x is NaN, and std::min(NaN, 6) returns the NaN.
  void apply_activation(Tensor& out) const {
    float* y = out.mutable_data<float>();
    const float cap =
        activation_ == Activation::kRelu6 ? 6.0f : std::numeric_limits<float>::infinity();
    parallel_rows(out.num_elements(), 1, [y, cap](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) y[i] = std::min(std::max(y[i], 0.0f), cap);
    });
  }

  // Output 1: the kernel's [batch, channels] means, reshaped for keep_dims, or (where the kernel
  // left them out) the Mean op on the output.
  Status set_spatial_mean(KernelContext& ctx, const Tensor& out, Tensor mean) const {
    if (mean.valid()) {
      if (keep_dims_) {
        HUBIMG_ASSIGN_OR_RETURN(mean, mean.reshaped({mean.dim(0), 1, 1, mean.dim(1)}));
      }
      ctx.set_output(1, std::move(mean));
      return {};
    }
    const Tensor operands[] = {out, Tensor::from_vector<int32_t>({2}, {1, 2})};
    auto result = run_op("Mean", operands, {{"keep_dims", keep_dims_}}, ctx.node_name());
    if (!result.ok()) return result.status();
    ctx.set_output(1, std::move((*result)[0]));
    return {};
  }

  Kernel kernel_;
  Activation activation_;
  ops::Kernel reference_;
  std::function<Expected<Kernel>()> make_linear_;
  mutable std::once_flag linear_once_;
  mutable std::optional<Kernel> linear_;
  mutable Status linear_error_;
  double weights_l1_;
  double bias_max_;
  int residual_index_;
  int factor_index_;
  bool spatial_mean_;
  bool keep_dims_;
};

Expected<Activation> activation_of(const AttrMap& attrs) {
  HUBIMG_ASSIGN_OR_RETURN(std::string a, attrs.get_string("activation", ""));
  if (a.empty()) return Activation::kNone;
  if (a == "Relu") return Activation::kRelu;
  if (a == "Relu6") return Activation::kRelu6;
  if (a == "Swish") return Activation::kSwish;
  return unimplemented("activation '" + a + "'");
}

Expected<std::array<int64_t, 2>> spatial(const AttrMap& attrs, const char* name) {
  HUBIMG_ASSIGN_OR_RETURN(auto v, attrs.get_ints(name, std::vector<int64_t>{1, 1, 1, 1}));
  if (v.size() != 4 || v[0] != 1 || v[3] != 1) {
    return unimplemented(std::string(name) + " other than [1, h, w, 1]");
  }
  return std::array<int64_t, 2>{v[1], v[2]};
}

// The fused node for fast kernel `FastKernel` built from `params`, with the activation-free
// variant that PreparedFused builds for calls whose dot products may overflow.
template <typename FastKernel, typename Params>
Expected<std::shared_ptr<const PreparedKernel>> make_prepared(Params params,
                                                              const PreparedFused::Layout& layout,
                                                              Activation activation,
                                                              ops::Kernel reference,
                                                              double weights_l1, double bias_max) {
  HUBIMG_ASSIGN_OR_RETURN(FastKernel kernel, FastKernel::create(params));
  auto make_linear = [params]() mutable -> Expected<PreparedFused::Kernel> {
    params.activation = Activation::kNone;
    HUBIMG_ASSIGN_OR_RETURN(FastKernel linear, FastKernel::create(params));
    return PreparedFused::Kernel(std::move(linear));
  };
  return std::shared_ptr<const PreparedKernel>(std::make_shared<const PreparedFused>(
      std::move(kernel), layout, activation, std::move(reference), std::move(make_linear),
      weights_l1, bias_max));
}

}  // namespace

Expected<std::shared_ptr<const PreparedKernel>> prepare_fused(const std::string& node_name,
                                                              const std::string& op,
                                                              const AttrMap& attrs,
                                                              const Tensor& filter,
                                                              const Tensor& bias) {
  if (!fast_kernels_available()) return unimplemented("no fast backend in this build");
  HUBIMG_ASSIGN_OR_RETURN(Activation activation, activation_of(attrs));
  PreparedFused::Layout layout;
  HUBIMG_ASSIGN_OR_RETURN(layout.has_residual, attrs.get_bool("has_residual", false));
  HUBIMG_ASSIGN_OR_RETURN(layout.has_bias, attrs.get_bool("has_bias", false));
  HUBIMG_ASSIGN_OR_RETURN(layout.has_input_mul, attrs.get_bool("has_input_mul", false));
  HUBIMG_ASSIGN_OR_RETURN(layout.spatial_mean, attrs.get_bool("spatial_mean", false));
  HUBIMG_ASSIGN_OR_RETURN(layout.spatial_mean_keep_dims,
                          attrs.get_bool("spatial_mean_keep_dims", false));
  const bool has_residual = layout.has_residual;
  // Constant weights with NaN or Inf under a Relu: the reference kernel for every call.
  const double weights_l1 = is_relu_like(activation) ? sum_of_magnitudes(filter) : 0;
  const double bias_max = is_relu_like(activation) ? max_magnitude(bias) : 0;
  if (std::isinf(weights_l1) || std::isinf(bias_max)) {
    return unimplemented("non-finite weights under " +
                         std::string(activation == Activation::kRelu ? "Relu" : "Relu6") +
                         " (oneDNN's post-op would drop NaN)");
  }
  const OpSpec* spec = OpRegistry::global().find(op);
  if (spec == nullptr || !spec->kernel) return unimplemented("no reference kernel for " + op);
  const ops::Kernel reference = spec->kernel;
  if (layout.has_input_mul && op != "_HubimgFusedConv2D") {
    return unimplemented("an input Mul fused into " + op);
  }
  if (layout.spatial_mean && op == "_HubimgFusedMatMul") {
    return unimplemented("a spatial mean of a MatMul");
  }
  if (op == "_HubimgFusedMatMul") {
    MatMulParams p;
    p.name = node_name;
    p.weights = filter;
    HUBIMG_ASSIGN_OR_RETURN(p.transpose_weights, attrs.get_bool("transpose_b", false));
    p.bias = bias;
    p.activation = activation;
    p.fuse_residual = has_residual;
    return make_prepared<FastMatMul>(std::move(p), layout, activation, reference, weights_l1,
                                     bias_max);
  }
  ConvParams p;
  p.name = node_name;
  p.filter = filter;
  p.bias = bias;
  HUBIMG_ASSIGN_OR_RETURN(p.strides, spatial(attrs, "strides"));
  HUBIMG_ASSIGN_OR_RETURN(p.dilations, spatial(attrs, "dilations"));
  HUBIMG_ASSIGN_OR_RETURN(std::string padding, attrs.get_string("padding"));
  if (padding == "SAME") {
    p.padding = PaddingKind::kSame;
  } else if (padding == "VALID") {
    p.padding = PaddingKind::kValid;
  } else if (padding == "EXPLICIT") {
    p.padding = PaddingKind::kExplicit;
    HUBIMG_ASSIGN_OR_RETURN(auto pads, attrs.get_ints("explicit_paddings"));
    if (pads.size() != 8) return invalid_argument("explicit_paddings needs 8 values");
    p.explicit_padding = {pads[2], pads[3], pads[4], pads[5]};
  } else {
    return unimplemented("padding '" + padding + "'");
  }
  p.activation = activation;
  p.fuse_residual = has_residual;
  if (op == "_HubimgFusedConv2D") {
    return make_prepared<FastConv2D>(std::move(p), layout, activation, reference, weights_l1,
                                     bias_max);
  }
  if (op == "_HubimgFusedDepthwiseConv2dNative") {
    return make_prepared<FastDepthwiseConv2D>(std::move(p), layout, activation, reference,
                                              weights_l1, bias_max);
  }
  return unimplemented("no fast kernel for " + op);
}

}  // namespace hubimg::ops::fast
