#include "ops/fast/prepare_fused.h"

#include <variant>

#include "ops/fast/fast_conv.h"

namespace hubimg::ops::fast {
namespace {

class PreparedFused final : public PreparedKernel {
 public:
  using Kernel = std::variant<FastConv2D, FastDepthwiseConv2D, FastMatMul>;
  // Inputs: input, filter, [bias], [residual], [input factor] (see src/ops/fused_ops.cc).
  PreparedFused(Kernel kernel, bool has_bias, bool has_residual, bool has_input_mul)
      : kernel_(std::move(kernel)),
        residual_index_(has_residual ? 2 + static_cast<int>(has_bias) : -1),
        factor_index_(has_input_mul ? 2 + static_cast<int>(has_bias) + has_residual : -1) {}

  Status run(KernelContext& ctx) const override {
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
      auto product = run_op("Mul", operands, graph::AttrMap{}, ctx.node_name());
      if (!product.ok()) return product.status();
      input = std::move((*product)[0]);
    }
    Status s = std::visit([&](const auto& k) { return k.run(input, residual, out); }, kernel_);
    if (!s.ok()) return ctx.error(s.code(), s.message());
    ctx.set_output(0, std::move(out));
    return {};
  }

 private:
  Kernel kernel_;
  int residual_index_;
  int factor_index_;
};

Expected<Activation> activation_of(const graph::AttrMap& attrs) {
  HUBIMG_ASSIGN_OR_RETURN(std::string a, attrs.get_string("activation", ""));
  if (a.empty()) return Activation::kNone;
  if (a == "Relu") return Activation::kRelu;
  if (a == "Relu6") return Activation::kRelu6;
  if (a == "Swish") return Activation::kSwish;
  return unimplemented("activation '" + a + "'");
}

Expected<std::array<int64_t, 2>> spatial(const graph::AttrMap& attrs, const char* name) {
  HUBIMG_ASSIGN_OR_RETURN(auto v, attrs.get_ints(name, std::vector<int64_t>{1, 1, 1, 1}));
  if (v.size() != 4 || v[0] != 1 || v[3] != 1) {
    return unimplemented(std::string(name) + " other than [1, h, w, 1]");
  }
  return std::array<int64_t, 2>{v[1], v[2]};
}

}  // namespace

Expected<std::shared_ptr<const PreparedKernel>> prepare_fused(const std::string& node_name,
                                                              const std::string& op,
                                                              const graph::AttrMap& attrs,
                                                              const Tensor& filter,
                                                              const Tensor& bias) {
  if (!fast_kernels_available()) return unimplemented("no fast backend in this build");
  HUBIMG_ASSIGN_OR_RETURN(Activation activation, activation_of(attrs));
  HUBIMG_ASSIGN_OR_RETURN(bool has_residual, attrs.get_bool("has_residual", false));
  HUBIMG_ASSIGN_OR_RETURN(bool has_bias, attrs.get_bool("has_bias", false));
  HUBIMG_ASSIGN_OR_RETURN(bool has_input_mul, attrs.get_bool("has_input_mul", false));
  if (has_input_mul && op != "_HubimgFusedConv2D") {
    return unimplemented("an input Mul fused into " + op);
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
        std::make_shared<const PreparedFused>(std::move(k), has_bias, has_residual, has_input_mul));
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
        std::make_shared<const PreparedFused>(std::move(k), has_bias, has_residual, has_input_mul));
  }
  if (op == "_HubimgFusedDepthwiseConv2dNative") {
    HUBIMG_ASSIGN_OR_RETURN(FastDepthwiseConv2D k, FastDepthwiseConv2D::create(p));
    return std::shared_ptr<const PreparedKernel>(
        std::make_shared<const PreparedFused>(std::move(k), has_bias, has_residual, has_input_mul));
  }
  return unimplemented("no fast kernel for " + op);
}

}  // namespace hubimg::ops::fast
