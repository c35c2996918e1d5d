// Gradient rules of the array op family (TensorFlow's definitions:
// tensorflow/python/ops/array_grad.py).
#include "ops/gradient.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

using Grads = std::vector<GradValue>;

Expected<GradValue> int_vector(GradientBuilder& b, const std::vector<int32_t>& values) {
  const int64_t n = static_cast<int64_t>(values.size());
  return b.constant(Tensor::from_vector<int32_t>({n}, values));
}

Expected<GradValue> to_int32(GradientBuilder& b, GradValue v) {
  if (b.dtype(v) != DType::kInt64) return v;
  return b.add1("Cast", {v}, {{"SrcT", DType::kInt64}, {"DstT", DType::kInt32}});
}

// Reshape, Squeeze, ExpandDims: the cotangent reshaped to the input's shape.
Expected<Grads> reshape_grad(GradientBuilder& b) {
  Grads out(b.num_inputs());
  if (!b.grad(0).valid()) return out;
  HUBIMG_ASSIGN_OR_RETURN(GradValue shape, b.add1("Shape", {b.input(0)}));
  HUBIMG_ASSIGN_OR_RETURN(out[0], b.add1("Reshape", {b.grad(0), shape}));
  return out;
}

Expected<Grads> transpose_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(2);
  HUBIMG_ASSIGN_OR_RETURN(GradValue inverse, b.add1("InvertPermutation", {b.input(1)}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, b.add1("Transpose", {b.grad(0), inverse}));
  return Grads{gx, {}};
}

// The (non-negative) axis `axis` (a scalar, possibly negative) of values of rank `rank_of`'s.
Expected<GradValue> normalized_axis(GradientBuilder& b, GradValue axis, GradValue rank_of) {
  HUBIMG_ASSIGN_OR_RETURN(GradValue rank, b.add1("Rank", {rank_of}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue axis32, to_int32(b, axis));
  return b.add1("FloorMod", {axis32, rank});
}

// ConcatV2(x_0 .. x_{N-1}, axis): the cotangent split along axis into the inputs' sizes.
Expected<Grads> concat_grad(GradientBuilder& b) {
  const size_t n = b.num_inputs() - 1;
  Grads out(b.num_inputs());
  if (!b.grad(0).valid() || n == 0) return out;
  HUBIMG_ASSIGN_OR_RETURN(GradValue axis, normalized_axis(b, b.input(n), b.input(0)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue zero, b.constant(Tensor::scalar<int32_t>(0)));
  std::vector<GradValue> sizes;
  for (size_t i = 0; i < n; ++i) {
    HUBIMG_ASSIGN_OR_RETURN(GradValue shape, b.add1("Shape", {b.input(i)}));
    HUBIMG_ASSIGN_OR_RETURN(GradValue size, b.add1("GatherV2", {shape, axis, zero}));
    sizes.push_back(size);
  }
  HUBIMG_ASSIGN_OR_RETURN(
      GradValue size_splits,
      b.add1("Pack", sizes, {{"N", static_cast<int64_t>(n)}, {"axis", int64_t{0}}}));
  HUBIMG_ASSIGN_OR_RETURN(auto parts, b.add("SplitV", {b.grad(0), size_splits, axis},
                                            {{"num_split", static_cast<int64_t>(n)}}));
  for (size_t i = 0; i < n; ++i) out[i] = parts[i];
  return out;
}

// Concat(axis, x_0 .. x_{N-1}) (version 1, axis first): as ConcatV2, the cotangent split.
Expected<Grads> concat_v1_grad(GradientBuilder& b) {
  const size_t n = b.num_inputs() - 1;
  Grads out(b.num_inputs());
  if (!b.grad(0).valid() || n == 0) return out;
  HUBIMG_ASSIGN_OR_RETURN(GradValue axis, normalized_axis(b, b.input(0), b.input(1)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue zero, b.constant(Tensor::scalar<int32_t>(0)));
  std::vector<GradValue> sizes;
  for (size_t i = 1; i <= n; ++i) {
    HUBIMG_ASSIGN_OR_RETURN(GradValue shape, b.add1("Shape", {b.input(i)}));
    HUBIMG_ASSIGN_OR_RETURN(GradValue size, b.add1("GatherV2", {shape, axis, zero}));
    sizes.push_back(size);
  }
  HUBIMG_ASSIGN_OR_RETURN(
      GradValue size_splits,
      b.add1("Pack", sizes, {{"N", static_cast<int64_t>(n)}, {"axis", int64_t{0}}}));
  HUBIMG_ASSIGN_OR_RETURN(auto parts, b.add("SplitV", {b.grad(0), size_splits, axis},
                                            {{"num_split", static_cast<int64_t>(n)}}));
  for (size_t i = 0; i < n; ++i) out[i + 1] = parts[i];
  return out;
}

// Roll(x, shift, axis): the cotangent rolled back, by -shift along the same axes (TensorFlow's
// manip_grad.py).
Expected<Grads> roll_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(3);
  HUBIMG_ASSIGN_OR_RETURN(GradValue back, b.add1("Neg", {b.input(1)}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, b.add1("Roll", {b.grad(0), back, b.input(2)}));
  return Grads{gx, {}, {}};
}

// ReverseV2(x, axis): the cotangent reversed along the same axes.
Expected<Grads> reverse_v2_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(2);
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, b.add1("ReverseV2", {b.grad(0), b.input(1)}));
  return Grads{gx, {}};
}

// MirrorPad(x, paddings): MirrorPadGrad folds the mirrored borders back in.
Expected<Grads> mirror_pad_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(2);
  AttrMap attrs;
  HUBIMG_ASSIGN_OR_RETURN(std::string mode, b.attrs().get_string("mode"));
  attrs.set("mode", mode);
  if (const auto* t = b.attrs().find("T")) attrs.set("T", *t);
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx,
                          b.add1("MirrorPadGrad", {b.grad(0), b.input(1)}, std::move(attrs)));
  return Grads{gx, {}};
}

// GatherV2(params, indices, axis) / Gather(params, indices): the cotangent scattered back into
// params' shape (TensorFlow's IndexedSlices, densified); indices and axis get none.
Expected<Grads> gather_grad(GradientBuilder& b, bool v2) {
  Grads out(b.num_inputs());
  if (!b.grad(0).valid()) return out;
  HUBIMG_ASSIGN_OR_RETURN(int64_t batch_dims, b.attrs().get_int("batch_dims", 0));
  HUBIMG_ASSIGN_OR_RETURN(GradValue shape, b.add1("Shape", {b.input(0)}));
  GradValue axis;
  if (v2) {
    axis = b.input(2);
  } else {
    HUBIMG_ASSIGN_OR_RETURN(axis, b.constant(Tensor::scalar<int32_t>(0)));
  }
  HUBIMG_ASSIGN_OR_RETURN(out[0], b.add1("_HubimgGatherGrad", {b.grad(0), b.input(1), shape, axis},
                                         {{"batch_dims", batch_dims}}));
  return out;
}

Expected<Grads> pack_grad(GradientBuilder& b) {
  Grads out(b.num_inputs());
  if (!b.grad(0).valid()) return out;
  HUBIMG_ASSIGN_OR_RETURN(int64_t axis, b.attrs().get_int("axis", 0));
  HUBIMG_ASSIGN_OR_RETURN(auto parts,
                          b.add("Unpack", {b.grad(0)},
                                {{"num", static_cast<int64_t>(b.num_inputs())}, {"axis", axis}}));
  for (size_t i = 0; i < out.size(); ++i) out[i] = parts[i];
  return out;
}

// The cotangents of every output, zeros where none reaches one.
Expected<std::vector<GradValue>> output_grads_or_zeros(GradientBuilder& b) {
  std::vector<GradValue> grads;
  for (size_t k = 0; k < b.num_outputs(); ++k) {
    if (b.grad(k).valid()) {
      grads.push_back(b.grad(k));
    } else {
      HUBIMG_ASSIGN_OR_RETURN(GradValue zeros, b.add1("ZerosLike", {b.output(k)}));
      grads.push_back(zeros);
    }
  }
  return grads;
}

Expected<Grads> unpack_grad(GradientBuilder& b) {
  HUBIMG_ASSIGN_OR_RETURN(int64_t axis, b.attrs().get_int("axis", 0));
  HUBIMG_ASSIGN_OR_RETURN(auto grads, output_grads_or_zeros(b));
  HUBIMG_ASSIGN_OR_RETURN(
      GradValue gx,
      b.add1("Pack", grads, {{"N", static_cast<int64_t>(grads.size())}, {"axis", axis}}));
  return Grads{gx};
}

// Split(axis, value) and SplitV(value, size_splits, axis): the cotangents concatenated.
Expected<Grads> split_grad(GradientBuilder& b, size_t value_index, GradValue axis) {
  Grads out(b.num_inputs());
  HUBIMG_ASSIGN_OR_RETURN(auto grads, output_grads_or_zeros(b));
  const int64_t n = static_cast<int64_t>(grads.size());
  grads.push_back(axis);
  HUBIMG_ASSIGN_OR_RETURN(out[value_index], b.add1("ConcatV2", grads, {{"N", n}}));
  return out;
}

// Slice(x, begin, size): the cotangent padded back to x's shape.
Expected<Grads> slice_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(3);
  HUBIMG_ASSIGN_OR_RETURN(GradValue x_shape, b.add1("Shape", {b.input(0)}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue y_shape, b.add1("Shape", {b.output(0)}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue begin, to_int32(b, b.input(1)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue rest, b.add1("Sub", {x_shape, y_shape}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue after, b.add1("Sub", {rest, begin}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue paddings, b.add1("Pack", {begin, after},
                                                     {{"N", int64_t{2}}, {"axis", int64_t{1}}}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, b.add1("Pad", {b.grad(0), paddings}));
  return Grads{gx, {}, {}};
}

// Pad / PadV2 (x, paddings[, constant]): the cotangent sliced at paddings[:, 0].
Expected<Grads> pad_grad(GradientBuilder& b) {
  Grads out(b.num_inputs());
  if (!b.grad(0).valid()) return out;
  HUBIMG_ASSIGN_OR_RETURN(GradValue paddings, to_int32(b, b.input(1)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue begin2, int_vector(b, {0, 0}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue size2, int_vector(b, {-1, 1}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue first_column, b.add1("Slice", {paddings, begin2, size2}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue flat, int_vector(b, {-1}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue begin, b.add1("Reshape", {first_column, flat}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue x_shape, b.add1("Shape", {b.input(0)}));
  HUBIMG_ASSIGN_OR_RETURN(out[0], b.add1("Slice", {b.grad(0), begin, x_shape}));
  return out;
}

// Tile(x, multiples): the cotangent reshaped to [m0, d0, m1, d1, ...] and summed over the m axes.
Expected<Grads> tile_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(2);
  HUBIMG_ASSIGN_OR_RETURN(GradValue x_shape, b.add1("Shape", {b.input(0)}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue multiples, to_int32(b, b.input(1)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue pairs, b.add1("Pack", {multiples, x_shape},
                                                  {{"N", int64_t{2}}, {"axis", int64_t{1}}}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue flat, int_vector(b, {-1}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue split_shape, b.add1("Reshape", {pairs, flat}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue zero, b.constant(Tensor::scalar<int32_t>(0)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue two, b.constant(Tensor::scalar<int32_t>(2)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue count, b.add1("Size", {split_shape}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue axes, b.add1("Range", {zero, count, two}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue g, b.add1("Reshape", {b.grad(0), split_shape}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, b.add1("Sum", {g, axes}, {{"keep_dims", false}}));
  return Grads{gx, {}};
}

// BroadcastTo(x, shape): the cotangent summed over the broadcast axes, reshaped to x's shape.
Expected<Grads> broadcast_to_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(2);
  HUBIMG_ASSIGN_OR_RETURN(GradValue x_shape, b.add1("Shape", {b.input(0)}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue y_shape, b.add1("Shape", {b.output(0)}));
  HUBIMG_ASSIGN_OR_RETURN(auto axes, b.add("BroadcastGradientArgs", {x_shape, y_shape}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue summed,
                          b.add1("Sum", {b.grad(0), axes[0]}, {{"keep_dims", true}}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, b.add1("Reshape", {summed, x_shape}));
  return Grads{gx, {}};
}

// Fill(dims, value): the value's gradient is the sum of the cotangent.
Expected<Grads> fill_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(2);
  HUBIMG_ASSIGN_OR_RETURN(GradValue rank, b.add1("Rank", {b.grad(0)}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue zero, b.constant(Tensor::scalar<int32_t>(0)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue one, b.constant(Tensor::scalar<int32_t>(1)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue axes, b.add1("Range", {zero, rank, one}));
  HUBIMG_ASSIGN_OR_RETURN(GradValue total,
                          b.add1("Sum", {b.grad(0), axes}, {{"keep_dims", false}}));
  return Grads{{}, total};
}

// StridedSlice(x, begin, end, strides): StridedSliceGrad scatters the cotangent back.
Expected<Grads> strided_slice_grad(GradientBuilder& b) {
  if (!b.grad(0).valid()) return Grads(4);
  HUBIMG_ASSIGN_OR_RETURN(GradValue x_shape, b.add1("Shape", {b.input(0)}));
  AttrMap attrs;
  for (const char* mask :
       {"begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask"}) {
    HUBIMG_ASSIGN_OR_RETURN(int64_t v, b.attrs().get_int(mask, 0));
    attrs.set(mask, v);
  }
  if (const auto* t = b.attrs().find("T")) attrs.set("T", *t);
  HUBIMG_ASSIGN_OR_RETURN(GradValue begin, to_int32(b, b.input(1)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue end, to_int32(b, b.input(2)));
  HUBIMG_ASSIGN_OR_RETURN(GradValue strides, to_int32(b, b.input(3)));
  HUBIMG_ASSIGN_OR_RETURN(
      GradValue gx, b.add1("StridedSliceGrad", {x_shape, begin, end, strides, b.grad(0)}, attrs));
  return Grads{gx, {}, {}, {}};
}

// SpaceToBatchND(x, block_shape, paddings) and BatchToSpaceND(x, block_shape, crops): the
// cotangent through the other op, with crops = paddings; block_shape and the amounts get none.
// `amounts_type`: the forward op's type attribute of its third input, `inverse_amounts_type`
// the inverse op's.
Expected<Grads> space_batch_grad(GradientBuilder& b, std::string_view inverse_op,
                                 const char* amounts_type, const char* inverse_amounts_type) {
  if (!b.grad(0).valid()) return Grads(3);
  AttrMap attrs;
  if (const auto* t = b.attrs().find("T")) attrs.set("T", *t);
  if (const auto* t = b.attrs().find("Tblock_shape")) attrs.set("Tblock_shape", *t);
  if (const auto* t = b.attrs().find(amounts_type)) attrs.set(inverse_amounts_type, *t);
  HUBIMG_ASSIGN_OR_RETURN(
      GradValue gx, b.add1(inverse_op, {b.grad(0), b.input(1), b.input(2)}, std::move(attrs)));
  return Grads{gx, {}, {}};
}

// SpaceToDepth(x) and DepthToSpace(x): the cotangent through the other op, same block_size
// and data_format.
Expected<Grads> depth_space_grad(GradientBuilder& b, std::string_view inverse_op) {
  if (!b.grad(0).valid()) return Grads(1);
  AttrMap attrs;
  for (const char* name : {"T", "block_size", "data_format"}) {
    if (const auto* v = b.attrs().find(name)) attrs.set(name, *v);
  }
  HUBIMG_ASSIGN_OR_RETURN(GradValue gx, b.add1(inverse_op, {b.grad(0)}, std::move(attrs)));
  return Grads{gx};
}

}  // namespace

void register_array_gradients(OpRegistry& r) {
  r.set_gradient("Reshape", reshape_grad);
  r.set_gradient("Squeeze", reshape_grad);
  r.set_gradient("ExpandDims", reshape_grad);
  r.set_gradient("Transpose", transpose_grad);
  r.set_gradient("ConcatV2", concat_grad);
  r.set_gradient("Concat", concat_v1_grad);
  r.set_gradient("MirrorPad", mirror_pad_grad);
  r.set_gradient("GatherV2", [](GradientBuilder& b) { return gather_grad(b, true); });
  r.set_gradient("Gather", [](GradientBuilder& b) { return gather_grad(b, false); });
  r.set_gradient("ReverseV2", reverse_v2_grad);
  r.set_gradient("Roll", roll_grad);
  r.set_gradient("Pack", pack_grad);
  r.set_gradient("Unpack", unpack_grad);
  r.set_gradient("Split", [](GradientBuilder& b) { return split_grad(b, 1, b.input(0)); });
  r.set_gradient("SplitV", [](GradientBuilder& b) { return split_grad(b, 0, b.input(2)); });
  r.set_gradient("Slice", slice_grad);
  r.set_gradient("StridedSlice", strided_slice_grad);
  r.set_gradient("Pad", pad_grad);
  r.set_gradient("PadV2", pad_grad);
  r.set_gradient("Tile", tile_grad);
  r.set_gradient("BroadcastTo", broadcast_to_grad);
  r.set_gradient("Fill", fill_grad);
  r.set_gradient("SpaceToBatchND", [](GradientBuilder& b) {
    return space_batch_grad(b, "BatchToSpaceND", "Tpaddings", "Tcrops");
  });
  r.set_gradient("BatchToSpaceND", [](GradientBuilder& b) {
    return space_batch_grad(b, "SpaceToBatchND", "Tcrops", "Tpaddings");
  });
  r.set_gradient("SpaceToDepth",
                 [](GradientBuilder& b) { return depth_space_grad(b, "DepthToSpace"); });
  r.set_gradient("DepthToSpace",
                 [](GradientBuilder& b) { return depth_space_grad(b, "SpaceToDepth"); });
  r.set_not_differentiable(
      {"Shape", "ShapeN", "Size", "Rank", "ZerosLike", "OnesLike", "BroadcastArgs",
       "BroadcastGradientArgs", "OneHot", "InvertPermutation", "Bitcast", "RandomUniform",
       "RandomStandardNormal", "RandomUniformInt", "StatelessRandomUniform",
       "StatelessRandomNormal", "StatelessRandomUniformV2", "StatelessRandomNormalV2",
       "StatelessRandomUniformInt", "StatelessRandomUniformIntV2", "StatelessRandomUniformFullInt",
       "StatelessRandomUniformFullIntV2", "StatelessRandomGetKeyCounter",
       "StatelessRandomGetKeyCounterAlg", "StatelessRandomGetAlg", "RngReadAndSkip",
       // Variable writes (resource_variable_ops.py) and the training op
       // (no outputs; TensorFlow registers no gradient for it).
       "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
       "ResourceApplyGradientDescent",
       // No gradient registered in TensorFlow (image_grad.py has none):
       // the contrast augmentation is upstream of every variable.
       "AdjustContrastv2"});
}

}  // namespace hubimg::ops
