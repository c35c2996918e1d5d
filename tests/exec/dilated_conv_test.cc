// Dilated convolution as TensorFlow 2 writes it: tf.nn.convolution (Keras Conv2D with
// dilation_rate > 1) lowers it to SpaceToBatchND -> Conv2D (VALID) -> BatchToSpaceND, with
// paddings and crops from _WithSpaceToBatch / required_space_to_batch_paddings (nn_ops.py). A
// SavedModel in that form must compute what one Conv2D with `dilations` computes, forward and
// backward, and must never be run as independent chunks of batch rows (SpaceToBatchND moves
// spatial blocks into the batch). Inference graphs rewrite the three ops into that one
// convolution (graph/optimize.cc, fold_space_to_batch_convs); models are loaded both ways.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "format/saved_model_writer.h"
#include "hubimg/model.h"
#include "ops/op_registry.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using testing::TempDir;

// --- tf.nn.convolution's paddings and crops -----------------------------------------------

struct SpaceToBatchArgs {
  std::vector<int64_t> paddings;  // [M, 2], row-major
  std::vector<int64_t> crops;     // [M, 2]
};

// _WithSpaceToBatch: the base paddings turn SAME into VALID ((k - 1) * rate, the odd one more
// at the end; none for VALID); required_space_to_batch_paddings then pads the end up to a
// multiple of the rate and crops that extra off the result.
SpaceToBatchArgs with_space_to_batch(const std::vector<int64_t>& spatial,
                                     const std::vector<int64_t>& filter_spatial,
                                     const std::vector<int64_t>& rate, bool same) {
  SpaceToBatchArgs args;
  for (size_t i = 0; i < spatial.size(); ++i) {
    const int64_t base = same ? (filter_spatial[i] - 1) * rate[i] : 0;
    const int64_t start = base / 2;
    const int64_t end = base - start;
    const int64_t full = spatial[i] + start + end;
    const int64_t extra = (rate[i] - full % rate[i]) % rate[i];
    args.paddings.insert(args.paddings.end(), {start, end + extra});
    args.crops.insert(args.crops.end(), {0, extra});
  }
  return args;
}

// --- Writing the SavedModel ----------------------------------------------------------------

// How a model's __call__(inputs) computes from the image and the filter variable.
enum class Form {
  kSpaceToBatch,  // SpaceToBatchND -> Conv2D (VALID) -> BatchToSpaceND, as tf.nn.convolution
  kDilations,     // one Conv2D with dilations = [1, rate, 1]
  kRegroup,       // SpaceToBatchND (no padding) -> Reshape [-1, h * w * c]
};

struct ModelSpec {
  Form form = Form::kSpaceToBatch;
  Dims image;  // [h, w, c]; the batch is left open
  std::vector<int64_t> rate;
  bool same = true;
  Tensor filter;  // [kh, kw, c, out] (depthwise: [kh, kw, c, multiplier]), a trainable variable
  bool depthwise = false;  // DepthwiseConv2dNative instead of Conv2D
  // Paddings and crops other than tf.nn.convolution's (kSpaceToBatch); kDilations then pads
  // explicitly by paddings - crops, which computes the same.
  std::optional<SpaceToBatchArgs> custom;
};

std::vector<int64_t> filter_spatial(const ModelSpec& spec) {
  return {spec.filter.dim(0), spec.filter.dim(1)};
}

Status write_model(const std::filesystem::path& dir, const ModelSpec& spec) {
  using namespace format;
  SavedModelWriter writer(ops::find_op_def);
  HUBIMG_ASSIGN_OR_RETURN(
      VariableHandle kernel,
      writer.add_variable({"conv", "kernel"}, "conv/kernel", spec.filter, true));
  FunctionBuilder f(writer.unique_function_name("__call__"), writer.op_defs());
  const PartialShape image_shape =
      PartialShape::known({-1, spec.image[0], spec.image[1], spec.image[2]});
  const auto x = f.add_input("inputs", DType::kFloat32, image_shape);
  const auto filter = f.read_variable(
      writer.add_resource_input(f, "conv2d_readvariableop_resource", kernel), "Conv2D");
  auto ints = [&](Dims shape, const std::vector<int64_t>& values) {
    return f.add_const(Tensor::from_vector<int32_t>(
        std::move(shape), std::vector<int32_t>(values.begin(), values.end())));
  };
  const auto block = ints({2}, spec.rate);
  const Attrs strides = {{"strides", attr::ints({1, 1, 1, 1})}};
  const char* conv_op = spec.depthwise ? "DepthwiseConv2dNative" : "Conv2D";
  const SpaceToBatchArgs args =
      spec.custom ? *spec.custom
                  : with_space_to_batch({spec.image[0], spec.image[1]}, filter_spatial(spec),
                                        spec.rate, spec.same);
  std::string y;
  if (spec.form == Form::kSpaceToBatch) {
    const auto s2b = f.add("SpaceToBatchND", {x, block, ints({2, 2}, args.paddings)});
    Attrs conv_attrs = strides;
    conv_attrs.emplace_back("padding", attr::str("VALID"));
    const auto conv = f.add(conv_op, {s2b, filter}, conv_attrs);
    y = f.add("BatchToSpaceND", {conv, block, ints({2, 2}, args.crops)});
  } else if (spec.form == Form::kDilations) {
    Attrs conv_attrs = strides;
    if (spec.custom) {
      std::vector<int64_t> pads = {0, 0};
      for (size_t i = 0; i < 4; ++i) pads.push_back(args.paddings[i] - args.crops[i]);
      pads.insert(pads.end(), {0, 0});
      conv_attrs.emplace_back("padding", attr::str("EXPLICIT"));
      conv_attrs.emplace_back("explicit_paddings", attr::ints(pads));
    } else {
      conv_attrs.emplace_back("padding", attr::str(spec.same ? "SAME" : "VALID"));
    }
    conv_attrs.emplace_back("dilations", attr::ints({1, spec.rate[0], spec.rate[1], 1}));
    y = f.add(conv_op, {x, filter}, conv_attrs);
  } else {
    const auto s2b = f.add("SpaceToBatchND", {x, block, ints({2, 2}, {0, 0, 0, 0})});
    const int64_t row = spec.image[0] * spec.image[1] * spec.image[2];
    y = f.add("Reshape", {s2b, ints({2}, {-1, row})});
  }
  f.add_output(y);
  HUBIMG_ASSIGN_OR_RETURN(FunctionSignature call, writer.add_function(std::move(f)));
  const TensorSpec in{"inputs", DType::kFloat32, image_shape};
  const TensorSpec out{"output_0", DType::kFloat32, PartialShape::unknown()};
  HUBIMG_RETURN_IF_ERROR(writer.set_call({{call.name, in, std::nullopt, {kernel}, out}}));
  return writer.write(dir);
}

Expected<Model> load_model(const std::filesystem::path& dir, const ModelSpec& spec,
                           bool optimize = true) {
  HUBIMG_RETURN_IF_ERROR(write_model(dir, spec));
  LoadOptions options;
  options.optimize = optimize;
  return Model::load(dir, options);
}

Tensor random_tensor(Dims shape, uint32_t seed) {
  Tensor t(DType::kFloat32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.mutable_data<float>()[i] = dist(rng);
  return t;
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  for (int64_t i = 0; i < got.num_elements(); ++i) {
    const double a = element_as_double(got, i);
    const double b = element_as_double(want, i);
    ASSERT_NEAR(a, b, 1e-5 * (1 + std::abs(b))) << what << " element " << i;
  }
}

// --- Forward and backward against Conv2D with dilations ----------------------------------

struct DilatedCase {
  std::vector<int64_t> rate;            // rows, columns
  std::vector<int64_t> filter_spatial;  // rows, columns
  bool same = true;
  bool depthwise = false;
  std::optional<SpaceToBatchArgs> custom;
};

int64_t calls_of(const Profile& profile, const std::string& op) {
  auto it = profile.calls_by_op.find(op);
  return it == profile.calls_by_op.end() ? 0 : it->second;
}

TEST(DilatedConvolution, SpaceToBatchFormEqualsConv2DWithDilations) {
  // 9 rows: not a multiple of any rate below, so the paddings grow and the crops are not zero.
  const int64_t batch = 2, rows = 9, cols = 10, in_depth = 2, out_depth = 3;
  const std::vector<DilatedCase> cases = {
      {{2, 2}, {3, 3}, true},
      {{2, 2}, {3, 3}, false},
      {{3, 2}, {3, 2}, true},
      {{3, 2}, {2, 3}, false},
      {{2, 3}, {1, 3}, true},
      {{2, 2}, {3, 3}, true, true},
      {{3, 2}, {2, 3}, false, true},
      // Paddings and crops that are neither SAME nor VALID: rows padded 2 before and 4 after,
      // columns 1 before and 3 after.
      {{2, 2}, {3, 3}, true, false, SpaceToBatchArgs{{3, 4, 1, 3}, {1, 0, 0, 0}}},
      {{2, 2}, {3, 3}, true, true, SpaceToBatchArgs{{3, 4, 1, 3}, {1, 0, 0, 0}}},
  };
  TempDir tmp;
  int index = 0;
  for (const DilatedCase& c : cases) {
    SCOPED_TRACE("rate " + dims_to_string(c.rate) + " filter " + dims_to_string(c.filter_spatial) +
                 (c.same ? " SAME" : " VALID") + (c.depthwise ? " depthwise" : "") +
                 (c.custom ? " custom paddings" : ""));
    ModelSpec spec{
        Form::kSpaceToBatch,
        {rows, cols, in_depth},
        c.rate,
        c.same,
        random_tensor({c.filter_spatial[0], c.filter_spatial[1], in_depth, out_depth}, 12),
        c.depthwise,
        c.custom};
    const std::string name = std::to_string(index++);
    auto dilated = load_model(tmp.path() / ("s2b" + name), spec, /*optimize=*/false);
    auto folded = load_model(tmp.path() / ("folded" + name), spec, /*optimize=*/true);
    spec.form = Form::kDilations;
    auto direct = load_model(tmp.path() / ("conv" + name), spec);
    ASSERT_TRUE(dilated.ok()) << dilated.status().to_string();
    ASSERT_TRUE(folded.ok()) << folded.status().to_string();
    ASSERT_TRUE(direct.ok()) << direct.status().to_string();

    const Tensor x = random_tensor({batch, rows, cols, in_depth}, 11);
    Profile dilated_profile, folded_profile;
    CallOptions dilated_options, folded_options;
    dilated_options.profile = &dilated_profile;
    folded_options.profile = &folded_profile;
    auto y_dilated = (*dilated)(x, dilated_options);
    auto y_folded = (*folded)(x, folded_options);
    auto y_direct = (*direct)(x);
    ASSERT_TRUE(y_dilated.ok()) << y_dilated.status().to_string();
    ASSERT_TRUE(y_folded.ok()) << y_folded.status().to_string();
    ASSERT_TRUE(y_direct.ok()) << y_direct.status().to_string();
    const Tensor& y = (*y_direct)[0];
    const int64_t depth = c.depthwise ? in_depth * out_depth : out_depth;
    if (!c.custom) {
      const int64_t out_rows = c.same ? rows : rows - (c.filter_spatial[0] - 1) * c.rate[0];
      const int64_t out_cols = c.same ? cols : cols - (c.filter_spatial[1] - 1) * c.rate[1];
      ASSERT_EQ(y.shape(), (Dims{batch, out_rows, out_cols, depth}));
    } else {
      ASSERT_EQ(y.shape(), (Dims{batch, rows + 2, cols + 0, depth}));
    }
    expect_close((*y_dilated)[0], y, "forward, three ops");
    expect_close((*y_folded)[0], y, "forward, folded into one convolution");
    EXPECT_EQ(calls_of(dilated_profile, "SpaceToBatchND"), 1);
    EXPECT_EQ(calls_of(folded_profile, "SpaceToBatchND"), 0) << "not folded";
    EXPECT_EQ(calls_of(folded_profile, "BatchToSpaceND"), 0) << "not folded";

    // The gradients of sum(cotangent * y) w.r.t. the image and the filter variable.
    GradientTargets targets;
    targets.cotangents["output_0"] = random_tensor(y.shape(), 13);
    auto g_dilated = dilated->gradients({{"inputs", x}}, targets);
    auto g_direct = direct->gradients({{"inputs", x}}, targets);
    ASSERT_TRUE(g_dilated.ok()) << g_dilated.status().to_string();
    ASSERT_TRUE(g_direct.ok()) << g_direct.status().to_string();
    expect_close(g_dilated->outputs.at("output_0"), y, "forward of the gradient call");
    ASSERT_EQ(g_dilated->input_gradients.count("inputs"), 1u);
    expect_close(g_dilated->input_gradients.at("inputs"), g_direct->input_gradients.at("inputs"),
                 "gradient of the image");
    ASSERT_EQ(g_dilated->gradients.size(), 1u);
    expect_close(g_dilated->gradients[0], g_direct->gradients[0], "gradient of the filter");
  }
}

// --- Batch rows -----------------------------------------------------------------------------

// Sets HUBIMG_BATCH_CHUNK (rows per chunk when a batch is split, exec/batch_runner.h) while it
// lives, so that a split batch runs as one chunk per image whatever the core count.
class ChunkRows {
 public:
  explicit ChunkRows(const char* rows) { ::setenv("HUBIMG_BATCH_CHUNK", rows, 1); }
  ~ChunkRows() { ::unsetenv("HUBIMG_BATCH_CHUNK"); }
  ChunkRows(const ChunkRows&) = delete;
  ChunkRows& operator=(const ChunkRows&) = delete;
};

int64_t kernel_calls(const Profile& profile) {
  int64_t calls = 0;
  for (const auto& [op, n] : profile.calls_by_op) calls += n;
  return calls;
}

TEST(DilatedConvolution, ABatchIsNeverSplitIntoChunksAcrossSpaceToBatch) {
  const int64_t rows = 9, cols = 10, depth = 2;
  TempDir tmp;
  const ModelSpec dilated_spec{
      Form::kSpaceToBatch, {rows, cols, depth}, {2, 2}, true, random_tensor({3, 3, depth, 4}, 21)};
  auto dilated = load_model(tmp.path() / "dilated", dilated_spec, /*optimize=*/false);
  auto folded = load_model(tmp.path() / "folded", dilated_spec, /*optimize=*/true);
  // The control: an undilated convolution keeps rows rows, so its batch is split.
  ModelSpec plain_spec = dilated_spec;
  plain_spec.form = Form::kDilations;
  plain_spec.rate = {1, 1};
  auto plain = load_model(tmp.path() / "plain", plain_spec);
  // SpaceToBatchND's rows regrouped four by four: the whole batch of 4 puts one block offset of
  // every image in an output row, a chunk of one image all of its own offsets. Run as chunks,
  // this would give a wrong answer of the right shape.
  ModelSpec regroup_spec = dilated_spec;
  regroup_spec.form = Form::kRegroup;
  regroup_spec.image = {8, cols, depth};
  auto regroup = load_model(tmp.path() / "regroup", regroup_spec);
  ASSERT_TRUE(dilated.ok()) << dilated.status().to_string();
  ASSERT_TRUE(folded.ok()) << folded.status().to_string();
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  ASSERT_TRUE(regroup.ok()) << regroup.status().to_string();

  ChunkRows one_row_per_chunk("1");
  const Tensor images = random_tensor({4, rows, cols, depth}, 22);

  Profile plain_profile;
  CallOptions plain_options;
  plain_options.profile = &plain_profile;
  auto plain_out = (*plain)(images, plain_options);
  ASSERT_TRUE(plain_out.ok()) << plain_out.status().to_string();
  EXPECT_GE(kernel_calls(plain_profile), 4) << "the batch was not split: the test shows nothing";

  // The dilated model runs whole, and a batch of 4 gives what 4 single-image calls give.
  Profile profile;
  CallOptions options;
  options.profile = &profile;
  auto batched = (*dilated)(images, options);
  ASSERT_TRUE(batched.ok()) << batched.status().to_string();
  EXPECT_EQ(profile.calls_by_op["SpaceToBatchND"], 1);
  EXPECT_EQ(profile.calls_by_op["BatchToSpaceND"], 1);
  const Tensor& y = (*batched)[0];
  ASSERT_EQ(y.shape(), (Dims{4, rows, cols, 4}));
  for (int64_t i = 0; i < 4; ++i) {
    auto single = (*dilated)(*images.rows(i, i + 1));
    ASSERT_TRUE(single.ok()) << single.status().to_string();
    expect_close((*single)[0], *y.rows(i, i + 1), "image " + std::to_string(i));
  }

  // Folded into one dilated convolution, the batch is split again, with the same answer.
  Profile folded_profile;
  CallOptions folded_options;
  folded_options.profile = &folded_profile;
  auto folded_out = (*folded)(images, folded_options);
  ASSERT_TRUE(folded_out.ok()) << folded_out.status().to_string();
  EXPECT_EQ(calls_of(folded_profile, "SpaceToBatchND"), 0);
  EXPECT_GE(kernel_calls(folded_profile), 4) << "the folded model's batch was not split";
  expect_close((*folded_out)[0], y, "folded model");

  // The regrouping model: split_batch on (the default) gives the whole batch's answer.
  const Tensor images8 = random_tensor({4, 8, cols, depth}, 23);
  CallOptions whole;
  whole.split_batch = false;
  auto regrouped_whole = (*regroup)(images8, whole);
  auto regrouped = (*regroup)(images8);
  ASSERT_TRUE(regrouped_whole.ok()) << regrouped_whole.status().to_string();
  ASSERT_TRUE(regrouped.ok()) << regrouped.status().to_string();
  ASSERT_EQ((*regrouped)[0].shape(), (Dims{4, 8 * cols * depth}));
  expect_close((*regrouped)[0], (*regrouped_whole)[0], "regrouped rows");
}

}  // namespace
}  // namespace hubimg
