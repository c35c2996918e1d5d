#include "ops/gradient.h"

#include "ops/op_registry.h"

namespace hubimg::ops {

Status GradientBuilder::error(std::string_view message) const {
  return invalid_argument("gradient of node '" + std::string(node_name()) + "' (" +
                          std::string(op()) + "): " + std::string(message));
}

Expected<GradValue> GradientBuilder::add1(std::string_view op, std::vector<GradValue> inputs,
                                          AttrMap attrs) {
  HUBIMG_ASSIGN_OR_RETURN(auto outs, add(op, std::move(inputs), std::move(attrs)));
  if (outs.empty()) return error("op " + std::string(op) + " has no output");
  return outs[0];
}

Expected<GradValue> reduce_to_input_shape(GradientBuilder& b, GradValue grad, GradValue x,
                                          GradValue y, int which) {
  HUBIMG_ASSIGN_OR_RETURN(GradValue sx, b.add1("Shape", {x}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue sy, b.add1("Shape", {y}));
  HUBIMG_ASSIGN_OR_RETURN(auto axes, b.add("BroadcastGradientArgs", {sx, sy}));
  if (axes.size() != 2) return b.error("BroadcastGradientArgs must have two outputs");
  HUBIMG_ASSIGN_OR_RETURN(GradValue summed, b.add1("Sum", {grad, axes[static_cast<size_t>(which)]},
                                                   {{"keep_dims", false}}));
  return b.add1("Reshape", {summed, which == 0 ? sx : sy});
}

void register_nn_gradients(OpRegistry& r);
void register_math_gradients(OpRegistry& r);
void register_array_gradients(OpRegistry& r);

void register_gradients(OpRegistry& r) {
  register_nn_gradients(r);
  register_math_gradients(r);
  register_array_gradients(r);
}

}  // namespace hubimg::ops
