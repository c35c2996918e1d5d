#include "ops/fast/prepare_fused.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>
#include <variant>

#include "ops/fast/fast_conv.h"
#include "ops/fast_paths.h"

namespace hubimg::ops::fast {
namespace {

// True when no float of `t` is NaN or infinite. The largest magnitude bit pattern is an
// unsigned max reduction, which vectorizes; exponent all ones means Inf or NaN.
bool all_finite(const Tensor& t) {
  if (!t.valid() || t.dtype() != DType::kFloat32) return true;
  const auto* bits = static_cast<const uint32_t*>(t.raw_data());
  std::atomic<bool> finite = true;
  parallel_rows(t.num_elements(), 1, [&](int64_t begin, int64_t end) {
    uint32_t largest = 0;
    for (int64_t i = begin; i < end; ++i) largest = std::max(largest, bits[i] & 0x7fffffffu);
    if (largest >= 0x7f800000u) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load(std::memory_order_relaxed);
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
  // `reference`: the op's reference kernel, for inputs with NaN or Inf under a Relu/Relu6.
  PreparedFused(Kernel kernel, const Layout& layout, Activation activation, ops::Kernel reference)
      : kernel_(std::move(kernel)),
        reference_(is_relu_like(activation) ? std::move(reference) : ops::Kernel()),
        residual_index_(layout.has_residual ? 2 + static_cast<int>(layout.has_bias) : -1),
        factor_index_(layout.has_input_mul
                          ? 2 + static_cast<int>(layout.has_bias) + layout.has_residual
                          : -1),
        spatial_mean_(layout.spatial_mean),
        keep_dims_(layout.spatial_mean_keep_dims) {}

  Status run(KernelContext& ctx) const override {
    // oneDNN's relu and clip post-ops turn NaN into 0 (max(x, 0) with the zero as the operand
    // a NaN comparison yields); TensorFlow's Relu keeps NaN. Non-finite values in the
    // operands are the only way to a NaN pre-activation short of overflowing float32, so those
    // calls take the reference kernel, which keeps it.
    if (reference_) {
      for (size_t i = 0; i < ctx.num_inputs(); ++i) {
        if (static_cast<int>(i) != 1 && !all_finite(ctx.input(i))) return reference_(ctx);
      }
    }
    const Tensor* residual =
        residual_index_ >= 0 ? &ctx.input(static_cast<size_t>(residual_index_)) : nullptr;
    // The residual's buffer becomes the output when nothing else holds it: the sum post-op then
    // adds in place instead of copying the residual first.
    Tensor out;
    if (residual && residual->owns_buffer_exclusively()) out = *residual;
    Tensor input = ctx.input(0);
    if (factor_index_ >= 0) {
      const Tensor& factor = ctx.input(static_cast<size_t>(factor_index_));
      const auto* conv = std::get_if<FastConv2D>(&kernel_);
      if (conv && conv->folds_input_gate(input.shape(), factor.shape())) {
        Status s = conv->run_with_input_gate(input, factor, residual, out);
        if (!s.ok()) return ctx.error(s.code(), s.message());
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
            return k.run(input, residual, out, spatial_mean_ ? &mean : nullptr);
          }
        },
        kernel_);
    if (!s.ok()) return ctx.error(s.code(), s.message());
    if (spatial_mean_) {
      HUBIMG_RETURN_IF_ERROR(set_spatial_mean(ctx, out, std::move(mean)));
    }
    ctx.set_output(0, std::move(out));
    return {};
  }

 private:
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
  ops::Kernel reference_;
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
  if (is_relu_like(activation) && (!all_finite(filter) || !all_finite(bias))) {
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
    HUBIMG_ASSIGN_OR_RETURN(FastMatMul k, FastMatMul::create(p));
    return std::shared_ptr<const PreparedKernel>(
        std::make_shared<const PreparedFused>(std::move(k), layout, activation, reference));
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
    HUBIMG_ASSIGN_OR_RETURN(FastConv2D k, FastConv2D::create(p));
    return std::shared_ptr<const PreparedKernel>(
        std::make_shared<const PreparedFused>(std::move(k), layout, activation, reference));
  }
  if (op == "_HubimgFusedDepthwiseConv2dNative") {
    HUBIMG_ASSIGN_OR_RETURN(FastDepthwiseConv2D k, FastDepthwiseConv2D::create(p));
    return std::shared_ptr<const PreparedKernel>(
        std::make_shared<const PreparedFused>(std::move(k), layout, activation, reference));
  }
  return unimplemented("no fast kernel for " + op);
}

}  // namespace hubimg::ops::fast
