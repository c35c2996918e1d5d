// Ops that move spatial blocks into another dimension, with the semantics of TensorFlow's CPU
// kernels (tensorflow/core/kernels/{spacetobatch_op,batchtospace_op,spacetobatch_functor,
// spacetodepth_op,depthtospace_op}.cc; the shape contracts of tensorflow/core/ops/array_ops.cc).
// tf.nn.convolution writes a dilated convolution as SpaceToBatchND -> Conv2D (VALID) ->
// BatchToSpaceND.
//
// SpaceToBatchND(input, block_shape, paddings), BatchToSpaceND(input, block_shape, crops):
//   input: [batch] + spatial (M dims) + remaining; block_shape: int32/int64 [M], every value >= 1
//   (M = 0: the input unchanged); paddings / crops: int32/int64 [M, 2], every value >= 0;
//   M <= rank - 1; the remaining dims are carried along untouched.
//   SpaceToBatchND zero-pads spatial dim i by paddings[i] (the padded size must be divisible by
//   block_shape[i]) and returns [batch * prod(block_shape)] + [padded_i / block_shape[i]] +
//   remaining. BatchToSpaceND is its inverse: batch must be divisible by prod(block_shape); it
//   returns [batch / prod(block_shape)] + [size_i * block_shape[i] - crops[i][0] - crops[i][1]]
//   (each >= 0) + remaining.
//   Element order: batch row r = k * space_batch + b, where k enumerates the offsets within a
//   block in row-major order (the last block dim fastest); grid position g along spatial dim i
//   is space position g * block_shape[i] + offset_i - start_i, start_i being paddings[i][0] or
//   crops[i][0]. Gradients (array_grad.py): each is the other with crops = paddings.
//   dtypes: the real number types TensorFlow registers (no bool, string or complex).
//
// SpaceToDepth(input), DepthToSpace(input); attrs block_size (>= 2) and data_format (NHWC only,
//   as on TensorFlow's CPU; NCHW and NCHW_VECT_C are errors naming the format).
//   SpaceToDepth: [n, h, w, c] -> [n, h / bs, w / bs, bs * bs * c], h and w divisible by bs;
//   output[b, y / bs, x / bs, ((y % bs) * bs + x % bs) * c + d] = input[b, y, x, d].
//   DepthToSpace is its inverse: [n, h, w, c] -> [n, h * bs, w * bs, c / (bs * bs)], c divisible
//   by bs * bs. Every dtype (TensorFlow registers all types). Each is the other's gradient.
#include <algorithm>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ops/array_util.h"
#include "ops/kernel_util.h"
#include "ops/nn_util.h"
#include "ops/op_registry.h"

namespace hubimg::ops {
namespace {

// TensorFlow's kernels handle at most this many block dims that are not block 1 without
// padding or crops at the start or end of the list (kMaxSpaceToBatchBlockDims); beyond that
// TensorFlow refuses the node, and so does hubimg.
constexpr int kMaxInternalBlockDims = 4;

// Where the "space" tensor (SpaceToBatchND's input, BatchToSpaceND's output) and the "batch"
// tensor (the other one) meet; see the element order at the top of the file.
struct BlockLayout {
  int64_t space_batch = 0;
  std::vector<int64_t> block;        // M entries
  std::vector<int64_t> space_start;  // paddings[i][0] or crops[i][0]
  Dims space_spatial;                // the space tensor's spatial dims
  Dims grid;                         // the batch tensor's spatial dims
  int64_t depth = 1;                 // elements per spatial position (the remaining dims)
};

// The product of the dims after the M spatial ones: called once the output is allocated and
// not empty, which bounds it.
int64_t remaining_elements(const Tensor& t, size_t m) {
  int64_t n = 1;
  for (int k = static_cast<int>(m) + 1; k < t.rank(); ++k) n *= t.dim(k);
  return n;
}

bool is_real_number(DType dtype) {
  return dtype_is_numeric(dtype) && dtype != DType::kBool;
}

// The checks SpaceToBatchND and BatchToSpaceND share, in TensorFlow's order: block_shape a
// vector of M values >= 1, the input of rank >= M + 1, `amounts` (paddings or crops) [M, 2]
// and non-negative. Fills `layout`'s block and space_start and returns the amounts as (start,
// end) pairs.
Expected<std::vector<std::pair<int64_t, int64_t>>> read_block_args(const KernelContext& ctx,
                                                                   const char* amounts_name,
                                                                   BlockLayout& layout) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 3));
  const Tensor& input = ctx.input(0);
  if (!is_real_number(input.dtype())) {
    return ctx.error(StatusCode::kUnimplemented,
                     "input dtype " + dtype_name(input.dtype()) +
                         " is not supported (TensorFlow registers the op for real number types)");
  }
  HUBIMG_ASSIGN_OR_RETURN(layout.block, int_values(ctx, 1, "block_shape"));
  if (ctx.input(1).rank() != 1) {
    return ctx.error("block_shape rank should be 1 instead of " +
                     std::to_string(ctx.input(1).rank()));
  }
  const auto m = static_cast<int>(layout.block.size());
  if (input.rank() < m + 1) {
    return ctx.error("input rank should be >= " + std::to_string(m + 1) + " instead of " +
                     std::to_string(input.rank()) + " (" + input.description() + ")");
  }
  HUBIMG_ASSIGN_OR_RETURN(auto flat, int_values(ctx, 2, amounts_name));
  const Tensor& amounts_t = ctx.input(2);
  if (amounts_t.rank() != 2 || amounts_t.dim(0) != m || amounts_t.dim(1) != 2) {
    return ctx.error(std::string(amounts_name) + " should have shape [" + std::to_string(m) +
                     ", 2] instead of " + dims_to_string(amounts_t.shape()));
  }
  for (size_t i = 0; i < layout.block.size(); ++i) {
    if (layout.block[i] < 1) {
      return ctx.error("All values in block_shape must be positive, got value " +
                       std::to_string(layout.block[i]) + " at index " + std::to_string(i));
    }
  }
  std::vector<std::pair<int64_t, int64_t>> amounts;
  for (size_t i = 0; i < layout.block.size(); ++i) {
    const int64_t start = flat[2 * i];
    const int64_t end = flat[2 * i + 1];
    if (start < 0 || end < 0) {
      return ctx.error(std::string(amounts_name) + " must be non-negative, got [" +
                       std::to_string(start) + ", " + std::to_string(end) + "] for spatial dim " +
                       std::to_string(i));
    }
    amounts.emplace_back(start, end);
    layout.space_start.push_back(start);
  }
  // TensorFlow folds leading and trailing block dims of block 1 without padding into the batch
  // and depth dims before it counts.
  auto trivial = [&](int i) {
    const auto k = static_cast<size_t>(i);
    return layout.block[k] == 1 && amounts[k].first == 0 && amounts[k].second == 0;
  };
  int first = 0;
  while (first < m && trivial(first)) ++first;
  int last = m;
  while (last > first && trivial(last - 1)) --last;
  if (last - first > kMaxInternalBlockDims) {
    return ctx.error("Maximum number of non-combined block dimensions is " +
                     std::to_string(last - first) + " but must not exceed " +
                     std::to_string(kMaxInternalBlockDims) + " (as in TensorFlow)");
  }
  return amounts;
}

Expected<int64_t> block_product(const KernelContext& ctx, const BlockLayout& layout) {
  int64_t product = 1;
  for (int64_t b : layout.block) {
    if (__builtin_mul_overflow(product, b, &product)) {
      return ctx.error(StatusCode::kOutOfRange,
                       "the product of block_shape " + dims_to_string(layout.block) + " overflows");
    }
  }
  return product;
}

// Copies between the space tensor and the batch tensor: batch <- space when kToBatch (grid
// positions in the padding become zeros), else space <- batch (grid positions in the crops are
// dropped; every space element is written exactly once).
template <typename U, bool kToBatch>
void move_blocks(const BlockLayout& layout, std::conditional_t<kToBatch, const U*, U*> space,
                 std::conditional_t<kToBatch, U*, const U*> batch) {
  const size_t m = layout.block.size();
  Dims space_strides(m, layout.depth);  // of spatial dim i, in elements
  for (size_t i = m; i-- > 1;) space_strides[i - 1] = space_strides[i] * layout.space_spatial[i];
  const int64_t space_row = m == 0 ? layout.depth : space_strides[0] * layout.space_spatial[0];
  int64_t grid_positions = 1;
  for (int64_t g : layout.grid) grid_positions *= g;
  int64_t block_count = 1;
  for (int64_t b : layout.block) block_count *= b;
  const int64_t depth = layout.depth;

  std::vector<int64_t> offset_in_block(m);
  std::vector<int64_t> grid_index(m);
  int64_t batch_at = 0;  // element offset of the current grid position in the batch tensor
  for (int64_t k = 0; k < block_count; ++k) {
    int64_t rest = k;
    for (size_t i = m; i-- > 0;) {
      offset_in_block[i] = rest % layout.block[i];
      rest /= layout.block[i];
    }
    for (int64_t b = 0; b < layout.space_batch; ++b) {
      std::fill(grid_index.begin(), grid_index.end(), 0);
      for (int64_t p = 0; p < grid_positions; ++p, batch_at += depth) {
        int64_t space_at = b * space_row;
        bool inside = true;
        for (size_t i = 0; i < m && inside; ++i) {
          const int64_t pos =
              grid_index[i] * layout.block[i] + offset_in_block[i] - layout.space_start[i];
          inside = pos >= 0 && pos < layout.space_spatial[i];
          space_at += pos * space_strides[i];
        }
        if constexpr (kToBatch) {
          if (inside) {
            std::copy_n(space + space_at, depth, batch + batch_at);
          } else {
            std::fill_n(batch + batch_at, depth, U{});
          }
        } else if (inside) {
          std::copy_n(batch + batch_at, depth, space + space_at);
        }
        for (size_t i = m; i-- > 0;) {
          if (++grid_index[i] < layout.grid[i]) break;
          grid_index[i] = 0;
        }
      }
    }
  }
}

// Both kernels' last step: the remaining dims appended to `out_shape` (batch and spatial dims
// so far), the output allocated and every element moved (space -> batch when `to_batch`).
Status move_all_blocks(KernelContext& ctx, BlockLayout& layout, Dims out_shape, bool to_batch) {
  const Tensor& input = ctx.input(0);
  for (int k = static_cast<int>(layout.block.size()) + 1; k < input.rank(); ++k) {
    out_shape.push_back(input.dim(k));
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, allocate(ctx, input.dtype(), std::move(out_shape)));
  if (out.num_elements() > 0) {
    layout.depth = remaining_elements(out, layout.block.size());
    HUBIMG_RETURN_IF_ERROR(dispatch_by_width(ctx, input.dtype(), [&]<typename U>() -> Status {
      if (to_batch) {
        move_blocks<U, true>(layout, elements<U>(input), mutable_elements<U>(out));
      } else {
        move_blocks<U, false>(layout, mutable_elements<U>(out), elements<U>(input));
      }
      return {};
    }));
  }
  ctx.set_output(0, std::move(out));
  return {};
}

Status space_to_batch_nd_kernel(KernelContext& ctx) {
  BlockLayout layout;
  HUBIMG_ASSIGN_OR_RETURN(auto paddings, read_block_args(ctx, "paddings", layout));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(const int64_t block_count, block_product(ctx, layout));
  layout.space_batch = input.dim(0);
  Dims out_shape = {0};
  if (__builtin_mul_overflow(input.dim(0), block_count, &out_shape[0])) {
    return ctx.error(StatusCode::kOutOfRange, "the output batch " + std::to_string(input.dim(0)) +
                                                  " * " + std::to_string(block_count) +
                                                  " overflows");
  }
  for (size_t i = 0; i < layout.block.size(); ++i) {
    const int64_t size = input.dim(static_cast<int>(i) + 1);
    int64_t padded = 0;
    if (__builtin_add_overflow(size, paddings[i].first, &padded) ||
        __builtin_add_overflow(padded, paddings[i].second, &padded)) {
      return ctx.error(StatusCode::kOutOfRange,
                       "paddings of spatial dim " + std::to_string(i) + " overflow its size");
    }
    if (padded % layout.block[i] != 0) {
      return ctx.error("padded_shape[" + std::to_string(i) + "]=" + std::to_string(padded) +
                       " is not divisible by block_shape[" + std::to_string(i) +
                       "]=" + std::to_string(layout.block[i]));
    }
    layout.space_spatial.push_back(size);
    layout.grid.push_back(padded / layout.block[i]);
    out_shape.push_back(padded / layout.block[i]);
  }
  return move_all_blocks(ctx, layout, std::move(out_shape), /*to_batch=*/true);
}

Status batch_to_space_nd_kernel(KernelContext& ctx) {
  BlockLayout layout;
  HUBIMG_ASSIGN_OR_RETURN(auto crops, read_block_args(ctx, "crops", layout));
  const Tensor& input = ctx.input(0);
  HUBIMG_ASSIGN_OR_RETURN(const int64_t block_count, block_product(ctx, layout));
  if (input.dim(0) % block_count != 0) {
    return ctx.error("Input batch dimension (" + std::to_string(input.dim(0)) +
                     ") is not divisible by product of block sizes (" +
                     std::to_string(block_count) + ")");
  }
  layout.space_batch = input.dim(0) / block_count;
  Dims out_shape = {layout.space_batch};
  for (size_t i = 0; i < layout.block.size(); ++i) {
    const int64_t size = input.dim(static_cast<int>(i) + 1);
    int64_t uncropped = 0;
    if (__builtin_mul_overflow(size, layout.block[i], &uncropped)) {
      return ctx.error(StatusCode::kOutOfRange, "spatial dim " + std::to_string(i) + " (" +
                                                    std::to_string(size) + ") * block_shape[" +
                                                    std::to_string(i) + "] overflows");
    }
    // Both crops are non-negative: checked one at a time, the subtractions cannot overflow.
    if (crops[i].first > uncropped || crops[i].second > uncropped - crops[i].first) {
      return ctx.error("crops[" + std::to_string(i) + "]=[" + std::to_string(crops[i].first) +
                       ", " + std::to_string(crops[i].second) + "] exceed the size " +
                       std::to_string(uncropped) + " of spatial dim " + std::to_string(i) + " (" +
                       std::to_string(size) + " * block_shape[" + std::to_string(i) +
                       "]=" + std::to_string(layout.block[i]) + ")");
    }
    const int64_t cropped = uncropped - crops[i].first - crops[i].second;
    layout.grid.push_back(size);
    layout.space_spatial.push_back(cropped);
    out_shape.push_back(cropped);
  }
  return move_all_blocks(ctx, layout, std::move(out_shape), /*to_batch=*/false);
}

// ---------------------------------------------------------------------------------------------
// SpaceToDepth, DepthToSpace.

// A "deep" [n, h, w, bs * bs * c] tensor and a "wide" [n, h * bs, w * bs, c] one: channels
// [(dy * bs + dx) * c, +c) of deep pixel (y, x) are wide pixel (y * bs + dy, x * bs + dx).
// Copies wide -> deep when kToDeep (SpaceToDepth), else deep -> wide (DepthToSpace).
template <typename U, bool kToDeep>
void move_depth_blocks(const Dims& deep_shape, int64_t block,
                       std::conditional_t<kToDeep, U*, const U*> deep,
                       std::conditional_t<kToDeep, const U*, U*> wide) {
  const int64_t n = deep_shape[0];
  const int64_t h = deep_shape[1];
  const int64_t w = deep_shape[2];
  const int64_t deep_depth = deep_shape[3];
  const int64_t wide_depth = deep_depth / (block * block);
  const int64_t wide_row = w * block * wide_depth;
  // For one dy the block's bs pixels (dx = 0 .. bs-1) are side by side in both tensors.
  const int64_t run = block * wide_depth;
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        const int64_t deep_at = ((b * h + y) * w + x) * deep_depth;
        for (int64_t dy = 0; dy < block; ++dy) {
          const int64_t wide_at = ((b * h + y) * block + dy) * wide_row + x * run;
          if constexpr (kToDeep) {
            std::copy_n(wide + wide_at, run, deep + deep_at + dy * run);
          } else {
            std::copy_n(deep + deep_at + dy * run, run, wide + wide_at);
          }
        }
      }
    }
  }
}

// The checks SpaceToDepth and DepthToSpace share: one input of rank 4, NHWC, block_size >= 2.
Expected<int64_t> read_block_size(const KernelContext& ctx) {
  HUBIMG_RETURN_IF_ERROR(expect_num_inputs(ctx, 1));
  HUBIMG_RETURN_IF_ERROR(nn::require_nhwc(ctx));
  HUBIMG_ASSIGN_OR_RETURN(int64_t block, ctx.attrs().get_int("block_size"));
  if (block < 2) return ctx.error("Block size should be > 1, but was: " + std::to_string(block));
  const Tensor& input = ctx.input(0);
  if (input.rank() != 4) {
    return ctx.error("Input rank should be 4 instead of " + std::to_string(input.rank()) + " (" +
                     input.description() + ")");
  }
  return block;
}

Status space_to_depth_kernel(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(const int64_t block, read_block_size(ctx));
  const Tensor& input = ctx.input(0);
  const int64_t h = input.dim(1);
  const int64_t w = input.dim(2);
  if (h % block != 0 || w % block != 0) {
    return ctx.error("Image width " + std::to_string(w) + " and height " + std::to_string(h) +
                     " should be divisible by block_size: " + std::to_string(block));
  }
  int64_t depth = 0;
  if (__builtin_mul_overflow(block, block, &depth) ||
      __builtin_mul_overflow(depth, input.dim(3), &depth)) {
    return ctx.error(StatusCode::kOutOfRange,
                     "block_size " + std::to_string(block) + " overflows the output depth");
  }
  HUBIMG_ASSIGN_OR_RETURN(
      Tensor out, allocate(ctx, input.dtype(), {input.dim(0), h / block, w / block, depth}));
  if (out.num_elements() > 0) {
    HUBIMG_RETURN_IF_ERROR(dispatch_by_width(ctx, input.dtype(), [&]<typename U>() -> Status {
      move_depth_blocks<U, true>(out.shape(), block, mutable_elements<U>(out), elements<U>(input));
      return {};
    }));
  }
  ctx.set_output(0, std::move(out));
  return {};
}

Status depth_to_space_kernel(KernelContext& ctx) {
  HUBIMG_ASSIGN_OR_RETURN(const int64_t block, read_block_size(ctx));
  const Tensor& input = ctx.input(0);
  int64_t block_area = 0;
  int64_t h = 0;
  int64_t w = 0;
  if (__builtin_mul_overflow(block, block, &block_area) ||
      __builtin_mul_overflow(input.dim(1), block, &h) ||
      __builtin_mul_overflow(input.dim(2), block, &w)) {
    return ctx.error(StatusCode::kOutOfRange,
                     "block_size " + std::to_string(block) + " overflows the output shape");
  }
  if (input.dim(3) % block_area != 0) {
    return ctx.error("Input depth dimension " + std::to_string(input.dim(3)) +
                     " should be divisible by: " + std::to_string(block_area));
  }
  HUBIMG_ASSIGN_OR_RETURN(
      Tensor out, allocate(ctx, input.dtype(), {input.dim(0), h, w, input.dim(3) / block_area}));
  if (out.num_elements() > 0) {
    HUBIMG_RETURN_IF_ERROR(dispatch_by_width(ctx, input.dtype(), [&]<typename U>() -> Status {
      move_depth_blocks<U, false>(input.shape(), block, elements<U>(input),
                                  mutable_elements<U>(out));
      return {};
    }));
  }
  ctx.set_output(0, std::move(out));
  return {};
}

}  // namespace

// TensorFlow's OpDefs (tensorflow/core/ops/array_ops.cc), without allowed_values lists.
constexpr char kSpaceBatchOpDefs[] = R"pb(
  op {
    name: "BatchToSpaceND"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "block_shape" type_attr: "Tblock_shape" }
    input_arg { name: "crops" type_attr: "Tcrops" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tblock_shape"
      type: "type"
      default_value { type: DT_INT32 }
    }
    attr {
      name: "Tcrops"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "DepthToSpace"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr { name: "block_size" type: "int" has_minimum: true minimum: 2 }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
  }
  op {
    name: "SpaceToBatchND"
    input_arg { name: "input" type_attr: "T" }
    input_arg { name: "block_shape" type_attr: "Tblock_shape" }
    input_arg { name: "paddings" type_attr: "Tpaddings" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr {
      name: "Tblock_shape"
      type: "type"
      default_value { type: DT_INT32 }
    }
    attr {
      name: "Tpaddings"
      type: "type"
      default_value { type: DT_INT32 }
    }
  }
  op {
    name: "SpaceToDepth"
    input_arg { name: "input" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" }
    attr { name: "T" type: "type" }
    attr { name: "block_size" type: "int" has_minimum: true minimum: 2 }
    attr {
      name: "data_format"
      type: "string"
      default_value { s: "NHWC" }
    }
  }
)pb";

void register_space_batch_ops(OpRegistry& r) {
  add_op(r, {"SpaceToBatchND", {}, space_to_batch_nd_kernel});
  add_op(r, {"BatchToSpaceND", {}, batch_to_space_nd_kernel});
  add_op(r, {"SpaceToDepth", {}, space_to_depth_kernel});
  add_op(r, {"DepthToSpace", {}, depth_to_space_kernel});
  // SpaceToBatchND and BatchToSpaceND have no row rule (RowRule::kUnknown): they move elements
  // across batch rows, so the batch-split analysis (src/graph/batch_split.cc) refuses every
  // graph that contains them. The depth ops keep each image to itself.
  r.set_row_rule(RowRule::kSpatial, {"SpaceToDepth", "DepthToSpace"});
  r.set_op_defs(kSpaceBatchOpDefs);
}

}  // namespace hubimg::ops
