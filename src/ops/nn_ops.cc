#include "ops/nn_kernels.h"
#include "ops/op_registry.h"

namespace hubimg::ops {

void register_nn_ops(OpRegistry& r) {
  nn::register_activation_ops(r);
  nn::register_conv_ops(r);
  nn::register_pool_ops(r);
  nn::register_patch_ops(r);
  nn::register_top_k_ops(r);
  nn::register_lrn_ops(r);
  nn::register_norm_ops(r);
  nn::register_matmul_ops(r);
}

}  // namespace hubimg::ops
