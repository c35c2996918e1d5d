// Fused ops made by the inference optimizer (src/graph/optimize.cc): a convolution or matmul
// with constant weights followed by bias, residual add and activation, and for Conv2D an
// element-wise Mul in front (squeeze-and-excitation's channel gate):
//   output = activation(op(input [* input_factor], filter) + bias + residual)
// Inputs: input, filter, [bias if has_bias], [residual if has_residual], [input_factor if
// has_input_mul]. Attributes: those of the base op plus has_bias, has_residual, has_input_mul
// and activation ("", "Relu", "Relu6", "Swish"). Convolutions with spatial_mean have a second
// output: the output's Mean over height and width (axes 1 and 2; kept as size-1 axes with
// spatial_mean_keep_dims), the global average pooling that reads it.
// These reference kernels run the ops one after the other; a graph node may instead hold a
// prepared fast kernel (Node::prepared) that computes the same in one pass.
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

Expected<Tensor> single(std::string_view op, std::vector<Tensor> inputs, const AttrMap& attrs,
                        std::string_view node) {
  HUBIMG_ASSIGN_OR_RETURN(auto outs, run_op(op, inputs, attrs, node));
  return std::move(outs[0]);
}

Status fused_reference(KernelContext& ctx, const char* base_op) {
  HUBIMG_ASSIGN_OR_RETURN(bool has_bias, ctx.attrs().get_bool("has_bias", false));
  HUBIMG_ASSIGN_OR_RETURN(bool has_residual, ctx.attrs().get_bool("has_residual", false));
  HUBIMG_ASSIGN_OR_RETURN(bool has_input_mul, ctx.attrs().get_bool("has_input_mul", false));
  HUBIMG_ASSIGN_OR_RETURN(std::string activation, ctx.attrs().get_string("activation", ""));
  const size_t expected = 2 + has_bias + has_residual + has_input_mul;
  if (ctx.num_inputs() != expected) {
    return ctx.error("expects " + std::to_string(expected) + " inputs, got " +
                     std::to_string(ctx.num_inputs()));
  }
  const AttrMap none;
  Tensor input = ctx.input(0);
  if (has_input_mul) {
    auto product = single("Mul", {input, ctx.input(expected - 1)}, none, ctx.node_name());
    if (!product.ok()) return product.status();
    input = std::move(product).value();
  }
  auto y = single(base_op, {input, ctx.input(1)}, ctx.attrs(), ctx.node_name());
  if (!y.ok()) return y.status();
  size_t next = 2;
  if (has_bias) {
    y = single("BiasAdd", {*y, ctx.input(next++)}, none, ctx.node_name());
    if (!y.ok()) return y.status();
  }
  if (has_residual) {
    y = single("AddV2", {*y, ctx.input(next++)}, none, ctx.node_name());
    if (!y.ok()) return y.status();
  }
  if (activation == "Relu" || activation == "Relu6") {
    y = single(activation, {*y}, none, ctx.node_name());
  } else if (activation == "Swish") {
    auto gate = single("Sigmoid", {*y}, none, ctx.node_name());
    if (!gate.ok()) return gate.status();
    y = single("Mul", {*y, *gate}, none, ctx.node_name());
  } else if (!activation.empty()) {
    return ctx.error(StatusCode::kUnimplemented, "unknown fused activation '" + activation + "'");
  }
  if (!y.ok()) return y.status();
  HUBIMG_ASSIGN_OR_RETURN(bool spatial_mean, ctx.attrs().get_bool("spatial_mean", false));
  if (spatial_mean) {
    if (ctx.num_outputs() != 2) return ctx.error("spatial_mean needs a node with two outputs");
    HUBIMG_ASSIGN_OR_RETURN(bool keep, ctx.attrs().get_bool("spatial_mean_keep_dims", false));
    const AttrMap mean_attrs = {{"keep_dims", keep}};
    auto mean = single("Mean", {*y, Tensor::from_vector<int32_t>({2}, {1, 2})}, mean_attrs,
                       ctx.node_name());
    if (!mean.ok()) return mean.status();
    ctx.set_output(1, std::move(mean).value());
  }
  ctx.set_output(0, std::move(y).value());
  return {};
}

}  // namespace

void register_fused_ops(OpRegistry& r) {
  r.add({"_HubimgFusedConv2D", {{"output", ""}}, [](KernelContext& c) {
           return fused_reference(c, "Conv2D");
         }});
  r.add({"_HubimgFusedDepthwiseConv2dNative", {{"output", ""}}, [](KernelContext& c) {
           return fused_reference(c, "DepthwiseConv2dNative");
         }});
  r.add({"_HubimgFusedMatMul", {{"product", ""}}, [](KernelContext& c) {
           return fused_reference(c, "MatMul");
         }});
  r.set_row_rule(RowRule::kFusedLayer,
                 {"_HubimgFusedConv2D", "_HubimgFusedDepthwiseConv2dNative", "_HubimgFusedMatMul"});
}

}  // namespace hubimg::ops
