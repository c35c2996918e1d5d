// Prepared fast kernels for the hot ops of image models: Conv2D, DepthwiseConv2dNative and
// MatMul on float32, with bias, activation and a residual add fused. A kernel is created once
// per graph node from the node's constant weights (which it packs into the backend's preferred
// layout) and then run on plain row-major NHWC / [batch, features] tensors of any batch and
// spatial size. See src/ops/fast/README.md for how a graph node holds one and for the numbers
// behind the backend choice.
//
// Fused result, in this order: output = activation(op(input, filter) + bias + residual).
//
// create() returns kUnimplemented for parameter combinations the backend does not take (the
// caller then keeps the reference kernel) and kInvalidArgument for inconsistent ones; run()
// returns kInvalidArgument for inputs that do not fit the prepared kernel. Messages name the
// layer and the shapes. A kernel may be run from several threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::ops::fast {

enum class PaddingKind { kSame, kValid, kExplicit };

enum class Activation {
  kNone,
  kRelu,
  kRelu6,
  kSwish,  // x * sigmoid(x), TensorFlow's Mul(x, Sigmoid(x)) and tf.nn.silu
};

// True when the backend this build uses is compiled in (oneDNN); without it every create()
// returns kUnimplemented.
bool fast_kernels_available();

struct ConvParams {
  std::string name;  // the layer or node, for error messages
  // Conv2D: [kh, kw, in_channels / groups, out_channels] (HWIO).
  // DepthwiseConv2dNative: [kh, kw, channels, multiplier].
  Tensor filter;
  Tensor bias;  // [out_channels], or invalid (default) for none
  // Conv2D only: channels of the input; a multiple of filter.dim(2) (grouped convolution, as
  // TensorFlow's Conv2D allows). 0 means filter.dim(2).
  int64_t input_channels = 0;
  std::array<int64_t, 2> strides = {1, 1};    // rows, columns
  std::array<int64_t, 2> dilations = {1, 1};  // rows, columns
  PaddingKind padding = PaddingKind::kValid;
  // kExplicit only: top, bottom, left, right (TensorFlow's explicit_paddings[2..5]).
  std::array<int64_t, 4> explicit_padding = {0, 0, 0, 0};
  Activation activation = Activation::kNone;
  // run() then requires a residual of the output's shape, added before the activation.
  bool fuse_residual = false;
  // Input shape [batch, height, width, channels] to prepare (and pack the weights) for at
  // creation; without it create() prepares for a nominal 1 x 32 x 32 input. Other shapes are
  // prepared on their first run and cached.
  std::optional<Dims> expected_input;
};

struct MatMulParams {
  std::string name;
  Tensor weights;  // [in_features, out_features], or [out, in] with transpose_weights
  bool transpose_weights = false;  // TensorFlow's MatMul transpose_b
  Tensor bias;                     // [out_features] or invalid
  Activation activation = Activation::kNone;
  bool fuse_residual = false;  // residual of the output's shape, added before the activation
  int64_t expected_batch = 1;  // batch to prepare for at creation
};

// Output shape and padding of one prepared convolution, TensorFlow's rules.
struct ConvGeometry {
  int64_t batch = 0, in_height = 0, in_width = 0, in_channels = 0;
  int64_t out_height = 0, out_width = 0, out_channels = 0;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
};

class FastConvImpl;
class FastMatMulImpl;

// Conv2D. `output` is reused when it already is a float32 tensor of the output's shape that
// does not share the input's buffer (it may share the residual's, for an in-place add);
// otherwise it is replaced by a new tensor.
class FastConv2D {
 public:
  static Expected<FastConv2D> create(const ConvParams& params);
  FastConv2D(FastConv2D&&) noexcept;
  FastConv2D& operator=(FastConv2D&&) noexcept;
  ~FastConv2D();

  // With `spatial_mean`, also the mean of the result over height and width, float32
  // [batch, out_channels], computed in the activation's pass where the kernel can (left invalid
  // otherwise: the caller then reduces the output itself).
  Status run(const Tensor& input, const Tensor* residual, Tensor& output,
             Tensor* spatial_mean = nullptr) const;

  // Conv2D of input * gate for a gate of shape [batch, 1, 1, in_channels] (squeeze-and-
  // excitation's per-image channel weights), computed as a convolution of the input by a filter
  // scaled per image, without a pass over the input. folds_input_gate says whether the kernel
  // does that for these shapes (ungrouped, direct — not Winograd — convolution, and a filter
  // at most half the size of one input image); run_with_input_gate returns kInvalidArgument
  // where it does not, and the caller multiplies first.
  bool folds_input_gate(const Dims& input_shape, const Dims& gate_shape) const;
  Status run_with_input_gate(const Tensor& input, const Tensor& gate, const Tensor* residual,
                             Tensor& output) const;

  Expected<ConvGeometry> geometry(const Dims& input_shape) const;
  // The backend implementation of the most recently prepared shape, e.g.
  // "onednn:brg:avx512_core".
  std::string implementation() const;

 private:
  explicit FastConv2D(std::unique_ptr<FastConvImpl> impl);
  std::unique_ptr<FastConvImpl> impl_;
};

// DepthwiseConv2dNative with any channel multiplier; output channel c * multiplier + m.
class FastDepthwiseConv2D {
 public:
  static Expected<FastDepthwiseConv2D> create(const ConvParams& params);
  FastDepthwiseConv2D(FastDepthwiseConv2D&&) noexcept;
  FastDepthwiseConv2D& operator=(FastDepthwiseConv2D&&) noexcept;
  ~FastDepthwiseConv2D();

  // `spatial_mean` as for FastConv2D::run.
  Status run(const Tensor& input, const Tensor* residual, Tensor& output,
             Tensor* spatial_mean = nullptr) const;
  Expected<ConvGeometry> geometry(const Dims& input_shape) const;
  std::string implementation() const;

 private:
  explicit FastDepthwiseConv2D(std::unique_ptr<FastConvImpl> impl);
  std::unique_ptr<FastConvImpl> impl_;
};

// MatMul of a [batch, in_features] input by constant weights.
class FastMatMul {
 public:
  static Expected<FastMatMul> create(const MatMulParams& params);
  FastMatMul(FastMatMul&&) noexcept;
  FastMatMul& operator=(FastMatMul&&) noexcept;
  ~FastMatMul();

  Status run(const Tensor& input, const Tensor* residual, Tensor& output) const;
  std::string implementation() const;

 private:
  explicit FastMatMul(std::unique_ptr<FastMatMulImpl> impl);
  std::unique_ptr<FastMatMulImpl> impl_;
};

}  // namespace hubimg::ops::fast
