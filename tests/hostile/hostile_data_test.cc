// Hostile data (docs/hostile-inputs.md D7, D10): image headers that promise more pixels than
// the budget, and NaN through every fused Conv2D/MatMul(+BiasAdd)(+residual)+Relu/Relu6 path.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "hubimg/image.h"
#include "hubimg/model.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using hubimg::testing::TempDir;
using hubimg::testing::write_file;

void put_be32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
}
void put_le32(std::string& s, uint32_t v) {
  for (int shift = 0; shift < 32; shift += 8) s += static_cast<char>((v >> shift) & 0xff);
}
void put_le16(std::string& s, uint16_t v) {
  s += static_cast<char>(v & 0xff);
  s += static_cast<char>(v >> 8);
}

uint32_t crc32_of(const std::string& bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string png_chunk(const std::string& type, const std::string& data) {
  std::string s;
  put_be32(s, static_cast<uint32_t>(data.size()));
  const std::string body = type + data;
  s += body;
  put_be32(s, crc32_of(body));
  return s;
}

// A PNG header claiming width x height RGBA 16-bit, with 100 zero bytes of image data.
std::string png_bomb(uint32_t width, uint32_t height, bool interlaced = false) {
  std::string ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr += std::string("\x10\x06\x00\x00", 4);
  ihdr += static_cast<char>(interlaced ? 1 : 0);
  // A zlib stream of one stored block of 100 zero bytes (adler32 of zeros: 100 << 16 | 1).
  std::string z = std::string("\x78\x01\x01\x64\x00\x9b\xff", 7) + std::string(100, '\0');
  put_be32(z, (100u << 16) | 1u);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", z) +
         png_chunk("IEND", "");
}

// A lossless WebP header (VP8L) for width x height, without image data.
std::string webp_header(uint32_t width, uint32_t height) {
  std::string vp8l = "\x2f";
  const uint32_t bits = (width - 1) | ((height - 1) << 14);
  put_le32(vp8l, bits);
  vp8l += std::string(16, '\0');
  std::string chunk = "VP8L";
  put_le32(chunk, static_cast<uint32_t>(vp8l.size()));
  chunk += vp8l;
  std::string s = "RIFF";
  put_le32(s, static_cast<uint32_t>(4 + chunk.size()));
  return s + "WEBP" + chunk;
}

// A 24-bit BMP header for width x height, without pixel data.
std::string bmp_header(int32_t width, int32_t height) {
  std::string s = "BM";
  put_le32(s, 54);
  put_le32(s, 0);
  put_le32(s, 54);
  put_le32(s, 40);
  put_le32(s, static_cast<uint32_t>(width));
  put_le32(s, static_cast<uint32_t>(height));
  put_le16(s, 1);
  put_le16(s, 24);
  put_le32(s, 0);
  for (int i = 0; i < 5; ++i) put_le32(s, 0);
  return s;
}

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Restores the process-wide pixel budget when a test changes it.
struct PixelBudget {
  int64_t saved = max_image_pixels();
  ~PixelBudget() { set_max_image_pixels(saved); }
};

TEST(HostileImages, HeadersOverThePixelBudgetAreRefusedByEveryDecoder) {
  PixelBudget restore;
  EXPECT_EQ(max_image_pixels(), kDefaultMaxImagePixels);
  // 8000 x 8000 = 64 megapixels: within the old 2^28 ceiling, over the 50-megapixel default.
  for (const auto& [name, file] : std::vector<std::pair<std::string, std::string>>{
           {"bomb.png", png_bomb(8000, 8000)},
           {"bomb_interlaced.png", png_bomb(8000, 8000, true)},
           {"bomb.webp", webp_header(8000, 8000)},
           {"bomb.bmp", bmp_header(8000, 8000)}}) {
    auto t = decode_image(bytes_of(file), name);
    ASSERT_FALSE(t.ok()) << name;
    EXPECT_NE(t.status().message().find("HUBIMG_MAX_IMAGE_PIXELS"), std::string::npos)
        << t.status().message();
    EXPECT_NE(t.status().message().find(name), std::string::npos) << t.status().message();
  }
  // A smaller budget applies to smaller images; a larger one is clamped to kMaxImagePixels.
  set_max_image_pixels(100 * 100);
  EXPECT_FALSE(decode_image(bytes_of(png_bomb(101, 100)), "p.png").ok());
  set_max_image_pixels(int64_t{1} << 40);
  EXPECT_EQ(max_image_pixels(), kMaxImagePixels);
}

TEST(HostileImages, TruncatedPngWithinTheBudgetFailsWithoutTouchingItsFullSize) {
  PixelBudget restore;
  set_max_image_pixels(kMaxImagePixels);
  // 16384^2 RGBA16 would be 2 GiB of rows; rows are read as the data arrives, so the error for
  // the missing data comes first.
  for (bool interlaced : {false, true}) {
    auto t = decode_image(bytes_of(png_bomb(16384, 16384, interlaced)), "hdr.png");
    ASSERT_FALSE(t.ok());
    EXPECT_NE(t.status().message().find("hdr.png"), std::string::npos) << t.status().message();
  }
}

TEST(HostileImages, PngBombPeakMemoryThroughTheCli) {
  HUBIMG_REQUIRE_SHARED();
  TempDir tmp;
  write_file(tmp.path() / "bomb.png", png_bomb(16384, 16384));
  const auto model = hubimg::testing::real_fixture("mnist_cnn_tf231/saved_model");
  for (const char* budget : {"", "HUBIMG_MAX_IMAGE_PIXELS=268435456"}) {
    const auto log = tmp.path() / "out.txt";
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      if (*budget) putenv(const_cast<char*>(budget));
      const std::string cli = hubimg::testing::cli_path().string();
      const std::string img = (tmp.path() / "bomb.png").string();
      const std::string out = (tmp.path() / "e.npy").string();
      execl(cli.c_str(), cli.c_str(), "embed", model.c_str(), img.c_str(), "--output", out.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    rusage usage{};
    wait4(pid, &status, 0, &usage);
    const std::string output = hubimg::testing::read_file(log);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << output;
    EXPECT_NE(output.find("bomb.png"), std::string::npos) << output;
    EXPECT_LT(usage.ru_maxrss, testing::kFailingCliRssLimitKb) << budget << "\n" << output;
  }
}

// ----------------------------------------------------------------------------------------------
// D10: NaN through fused layers.

const float kNaN = std::numeric_limits<float>::quiet_NaN();

std::string floats_const(const std::string& name, const std::vector<int64_t>& dims,
                         const std::vector<float>& values) {
  std::string s = "node { name: \"" + name +
                  "\" op: \"Const\" attr { key: \"dtype\" value { type: DT_FLOAT } } attr { key: "
                  "\"value\" value { tensor { dtype: DT_FLOAT tensor_shape { ";
  for (int64_t d : dims) s += "dim { size: " + std::to_string(d) + " } ";
  s += "} ";
  for (float v : values)
    s += std::isnan(v) ? "float_val: nan " : "float_val: " + std::to_string(v) + " ";
  return s + "} } } }";
}

std::string op(const std::string& name, const std::string& type, const std::vector<std::string>& in,
               const std::string& attrs = "") {
  std::string s = "node { name: \"" + name + "\" op: \"" + type + "\" ";
  for (const auto& i : in) s += "input: \"" + i + "\" ";
  return s + "attr { key: \"T\" value { type: DT_FLOAT } } " + attrs + " }";
}

const std::string kConvAttrs =
    "attr { key: \"strides\" value { list { i: 1 i: 1 i: 1 i: 1 } } } attr { key: \"padding\" "
    "value { s: \"SAME\" } } attr { key: \"data_format\" value { s: \"NHWC\" } }";

// x [n, 4] -> matmul layer and x [n, 2, 2, 1] -> conv layers, each ending in Relu or Relu6.
std::string nan_model(const std::vector<float>& filter_values) {
  std::string g =
      "meta_graphs { meta_info_def { tags: \"serve\" } graph_def { node { name: \"x\" op: "
      "\"Placeholder\" attr { key: \"dtype\" value { type: DT_FLOAT } } } ";
  g += floats_const("w", {4, 3}, {0.5f, -1, 2, 1, 0.25f, -0.5f, -2, 1, 1, 0.5f, 0.5f, 0.5f});
  g += floats_const("b", {3}, {0.1f, -0.2f, 0.3f});
  g += op("mm", "MatMul", {"x", "w"}) + op("mmb", "BiasAdd", {"mm", "b"}) +
       op("mm_relu", "Relu", {"mmb"}) + op("mm_relu6", "Relu6", {"mmb"});
  g += "node { name: \"shape\" op: \"Const\" attr { key: \"dtype\" value { type: DT_INT32 } } "
       "attr { key: \"value\" value { tensor { dtype: DT_INT32 tensor_shape { dim { size: 4 } } "
       "int_val: -1 int_val: 2 int_val: 2 int_val: 1 } } } }";
  g += op("img", "Reshape", {"x", "shape"}, "attr { key: \"Tshape\" value { type: DT_INT32 } }");
  g += floats_const("f", {1, 1, 1, 3}, filter_values);
  g += op("conv", "Conv2D", {"img", "f"}, kConvAttrs) + op("convb", "BiasAdd", {"conv", "b"}) +
       op("conv_relu", "Relu", {"convb"}) + op("conv_relu6", "Relu6", {"convb"});
  // Residual: conv + bias + (conv of the same image) + Relu.
  g += floats_const("f2", {1, 1, 1, 3}, {1, -1, 0.5f});
  g += op("conv2", "Conv2D", {"img", "f2"}, kConvAttrs) + op("conv2b", "BiasAdd", {"conv2", "b"}) +
       op("res", "AddV2", {"conv2b", "conv_relu6"}) + op("res_relu", "Relu", {"res"});
  g += "} signature_def { key: \"serving_default\" value { inputs { key: \"x\" value { name: "
       "\"x:0\" dtype: DT_FLOAT tensor_shape { dim { size: -1 } dim { size: 4 } } } } ";
  for (const char* out : {"mm_relu", "mm_relu6", "conv_relu", "conv_relu6", "res_relu"}) {
    g += std::string("outputs { key: \"") + out + "\" value { name: \"" + out +
         ":0\" dtype: DT_FLOAT } } ";
  }
  return g + "} } }";
}

std::map<std::string, Tensor> run_nan_model(const std::filesystem::path& dir, bool optimize,
                                            const Tensor& x) {
  LoadOptions options;
  options.optimize = optimize;
  auto model = Model::load(dir, options);
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  if (!model.ok()) return {};
  auto out = model->call_signature("serving_default", {{"x", x}});
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? *out : std::map<std::string, Tensor>{};
}

void expect_same_with_nan(const std::map<std::string, Tensor>& fused,
                          const std::map<std::string, Tensor>& reference) {
  ASSERT_EQ(fused.size(), reference.size());
  for (const auto& [key, ref] : reference) {
    const auto got = fused.at(key).values<float>();
    const auto want = ref.values<float>();
    ASSERT_EQ(got.size(), want.size()) << key;
    for (size_t i = 0; i < want.size(); ++i) {
      if (std::isnan(want[i])) {
        EXPECT_TRUE(std::isnan(got[i])) << key << "[" << i << "] = " << got[i];
      } else if (std::isinf(want[i])) {
        EXPECT_EQ(got[i], want[i]) << key << "[" << i << "]";
      } else {
        EXPECT_NEAR(got[i], want[i], 1e-5f) << key << "[" << i << "]";
      }
    }
  }
}

TEST(HostileNaN, FusedLayersKeepNaNLikeTensorFlow) {
  TempDir tmp;
  const auto dir = tmp.path() / "nan";
  std::filesystem::create_directories(dir);
  write_file(dir / "saved_model.pbtxt", nan_model({1, -2, 0.5f}));
  // Row 0 holds a NaN, row 1 an Inf, row 2 is finite.
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor x =
      Tensor::from_vector<float>({3, 4}, {1, kNaN, -3, 4, inf, -1, 2, 0.5f, -1, 2, -3, 4});
  const auto reference = run_nan_model(dir, false, x);
  const auto fused = run_nan_model(dir, true, x);
  ASSERT_FALSE(reference.empty());
  // What TensorFlow gives: NaN in, NaN out (Relu and Relu6 keep it).
  for (const char* key : {"mm_relu", "mm_relu6"}) {
    for (int j = 0; j < 3; ++j)
      EXPECT_TRUE(std::isnan(reference.at(key).values<float>()[j])) << key;
    for (int j = 6; j < 9; ++j)
      EXPECT_FALSE(std::isnan(reference.at(key).values<float>()[j])) << key;
  }
  for (const char* key : {"conv_relu", "conv_relu6", "res_relu"}) {
    // Pixel 1 of image 0 is the NaN; its three channels are NaN, the other pixels are not.
    for (int c = 0; c < 3; ++c)
      EXPECT_TRUE(std::isnan(reference.at(key).values<float>()[3 + c])) << key;
    EXPECT_FALSE(std::isnan(reference.at(key).values<float>()[0])) << key;
  }
  expect_same_with_nan(fused, reference);
  // All finite: the fast kernels' own results, equal to the reference.
  const Tensor finite = Tensor::from_vector<float>({2, 4}, {1, -2, -3, 4, 0.5f, -1, 2, 0.5f});
  expect_same_with_nan(run_nan_model(dir, true, finite), run_nan_model(dir, false, finite));
}

TEST(HostileNaN, NaNWeightsUnderReluStayNaN) {
  TempDir tmp;
  const auto dir = tmp.path() / "nan_w";
  std::filesystem::create_directories(dir);
  write_file(dir / "saved_model.pbtxt", nan_model({1, kNaN, 0.5f}));
  const Tensor x = Tensor::from_vector<float>({1, 4}, {1, -2, -3, 4});
  const auto reference = run_nan_model(dir, false, x);
  const auto fused = run_nan_model(dir, true, x);
  ASSERT_FALSE(reference.empty());
  for (int p = 0; p < 4; ++p) {
    EXPECT_TRUE(std::isnan(reference.at("conv_relu").values<float>()[p * 3 + 1]));
  }
  expect_same_with_nan(fused, reference);
}

// NaN made inside a dot product from finite operands. With fused multiply-adds a product never
// overflows on its own; an accumulator reaches +Inf or -Inf and stays there, and NaN comes from
// adding two partial sums that overflowed with opposite signs (vector lanes, unrolled or blocked
// accumulators). Where that happens depends on the kernel's summation order, in TensorFlow as
// here, so the oracle is the same fast kernel without the activation followed by a separate Relu
// (which keeps NaN): fused and unfused must have NaN at the same places. oneDNN's relu post-op
// would give 0 there (src/ops/fast/prepare_fused.cc, kOverflowFree, decides this).
const float kHuge = 3e38f;    // finite; 10 * kHuge overflows
constexpr int64_t kC = 512;   // image channels
constexpr int64_t kK = 4096;  // matmul inner size

// Each layer twice with the same weights: "<name>_fused" (op [+ BiasAdd] + activation, fused
// into one kernel) and "<name>_split" (the pre-activation is also an output, so the activation
// stays separate ops). Operands alternate in sign so that partial sums overflow both ways. With
// `swish` every activation is x * Sigmoid(x) (the optimizer's Swish) instead of Relu/Relu6, and
// the 1x1 convolution's result also goes through a global average pool (the fused kernel's
// spatial mean output).
std::string overflow_model(bool swish = false) {
  std::string g =
      "meta_graphs { meta_info_def { tags: \"serve\" } graph_def { "
      "node { name: \"x\" op: \"Placeholder\" attr { key: \"dtype\" value { type: DT_FLOAT } } } "
      "node { name: \"img\" op: \"Placeholder\" attr { key: \"dtype\" value { type: DT_FLOAT } } "
      "} "
      "node { name: \"hw\" op: \"Const\" attr { key: \"dtype\" value { type: DT_INT32 } } attr { "
      "key: \"value\" value { tensor { dtype: DT_INT32 tensor_shape { dim { size: 2 } } int_val: 1 "
      "int_val: 2 } } } } ";
  std::vector<std::string> outputs;
  auto layer = [&](const std::string& name, const std::string& type, const std::string& input,
                   const std::string& attrs, const std::vector<int64_t>& filter_dims,
                   int64_t bias_size, const std::string& activation, bool mean = false) {
    int64_t n = 1;
    for (int64_t d : filter_dims) n *= d;
    std::vector<float> w(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) w[static_cast<size_t>(i)] = 8.0f + static_cast<float>(i % 5);
    g += floats_const(name + "_w", filter_dims, w);
    if (bias_size > 0)
      g += floats_const(name + "_b", {bias_size}, std::vector<float>(bias_size, 1));
    for (const char* variant : {"_fused", "_split"}) {
      const std::string v = name + variant;
      std::string pre = v + "_op";
      g += op(pre, type, {input, name + "_w"}, attrs);
      if (bias_size > 0) {
        g += op(v + "_bias", "BiasAdd", {pre, name + "_b"});
        pre = v + "_bias";
      }
      if (swish) {
        g += op(v + "_sigmoid", "Sigmoid", {pre}) + op(v, "Mul", {pre, v + "_sigmoid"});
      } else {
        g += op(v, activation, {pre});
      }
      outputs.push_back(v);
      if (std::string(variant) == "_split") outputs.push_back(pre);
      if (mean) {
        g += op(v + "_mean", "Mean", {v, "hw"},
                "attr { key: \"Tidx\" value { type: DT_INT32 } } attr { key: \"keep_dims\" value "
                "{ b: false } }");
        outputs.push_back(v + "_mean");
      }
    }
  };
  layer("conv1x1", "Conv2D", "img", kConvAttrs, {1, 1, kC, 16}, 16, "Relu", swish);
  layer("conv3x3", "Conv2D", "img", kConvAttrs, {3, 3, kC, 16}, 16, "Relu6");
  layer("depthwise", "DepthwiseConv2dNative", "img", kConvAttrs, {3, 3, kC, 1}, kC, "Relu");
  layer("matmul", "MatMul", "x", "", {kK, 16}, 16, "Relu");
  layer("matmul_nobias", "MatMul", "x", "", {kK, 16}, 0, "Relu6");
  g += "} signature_def { key: \"serving_default\" value { inputs { key: \"x\" value { name: "
       "\"x:0\" dtype: DT_FLOAT tensor_shape { dim { size: -1 } dim { size: " +
       std::to_string(kK) +
       " } } } } "
       "inputs { key: \"img\" value { name: \"img:0\" dtype: DT_FLOAT tensor_shape { dim { size: "
       "-1 } dim { size: 5 } dim { size: 5 } dim { size: " +
       std::to_string(kC) + " } } } } ";
  for (const auto& out : outputs) {
    g += "outputs { key: \"" + out + "\" value { name: \"" + out + ":0\" dtype: DT_FLOAT } } ";
  }
  return g + "} } }";
}

std::map<std::string, Tensor> run_overflow_model(const std::filesystem::path& dir, bool optimize,
                                                 const Tensor& x, const Tensor& img) {
  LoadOptions options;
  options.optimize = optimize;
  auto model = Model::load(dir, options);
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  if (!model.ok()) return {};
  auto out = model->call_signature("serving_default", {{"x", x}, {"img", img}});
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? *out : std::map<std::string, Tensor>{};
}

// +-kHuge, the sign alternating along channels and pixels; a few ordinary values. The first half
// of the channels (inputs) +kHuge, the second half -kHuge, flipped on every other pixel; pixel
// 12 and row 1 scaled down to ordinary values. Returns {x [2, kK], img [1, 5, 5, kC]}.
std::pair<Tensor, Tensor> overflow_operands() {
  std::vector<float> pixels(5 * 5 * kC), row(2 * kK);
  for (size_t i = 0; i < pixels.size(); ++i) {
    const size_t c = i % kC, p = i / kC;
    pixels[i] = ((c >= kC / 2) != (p % 2 == 1) ? -kHuge : kHuge) * (p == 12 ? 1e-38f : 1.0f);
  }
  for (size_t i = 0; i < row.size(); ++i) {
    row[i] = (i % kK >= kK / 2 ? -kHuge : kHuge) * (i >= kK ? 1e-38f : 1);
  }
  return {Tensor::from_vector<float>({2, kK}, row),
          Tensor::from_vector<float>({1, 5, 5, kC}, pixels)};
}

TEST(HostileNaN, OverflowInsideFusedDotProductsStaysNaN) {
  TempDir tmp;
  const auto dir = tmp.path() / "overflow";
  std::filesystem::create_directories(dir);
  write_file(dir / "saved_model.pbtxt", overflow_model());
  const auto [x, img] = overflow_operands();
  const auto out = run_overflow_model(dir, true, x, img);
  ASSERT_FALSE(out.empty());
  size_t nans = 0;
  for (const char* name : {"conv1x1", "conv3x3", "depthwise", "matmul", "matmul_nobias"}) {
    const auto fused = out.at(std::string(name) + "_fused").values<float>();
    const auto split = out.at(std::string(name) + "_split").values<float>();
    ASSERT_EQ(fused.size(), split.size()) << name;
    for (size_t i = 0; i < fused.size(); ++i) {
      if (std::isnan(split[i])) {
        ++nans;
        EXPECT_TRUE(std::isnan(fused[i])) << name << "[" << i << "] = " << fused[i];
      } else {
        EXPECT_EQ(fused[i], split[i]) << name << "[" << i << "]";
      }
    }
  }
  // Which sums overflow both ways is the kernels' business, but with these operands some do
  // (otherwise this test would show nothing).
  EXPECT_GT(nans, 0u);
  // The pixel and row of ordinary values: finite results equal to the reference kernels'.
  const auto reference = run_overflow_model(dir, false, x, img);
  ASSERT_FALSE(reference.empty());
  for (const auto& [key, t] : reference) {
    const auto want = t.values<float>();
    const auto got = out.at(key).values<float>();
    const int64_t per_row =
        key.rfind("matmul", 0) == 0 ? 16 : (key.rfind("depth", 0) == 0 ? kC : 16);
    const size_t first = key.rfind("matmul", 0) == 0 ? 16 : 12 * static_cast<size_t>(per_row);
    for (size_t i = first; i < first + static_cast<size_t>(per_row); ++i) {
      if (key.rfind("conv3x3", 0) == 0 || key.rfind("depthwise", 0) == 0) break;  // neighbours
      EXPECT_TRUE(std::isfinite(want[i])) << key << "[" << i << "]";
      EXPECT_NEAR(got[i], want[i], 1e-3f * (1 + std::fabs(want[i]))) << key << "[" << i << "]";
    }
  }
}

// The same overflow under a fused Swish. The fast kernels apply swish as a pass of their own
// over the activation-free result (src/ops/fast/swish.h), so no overflow check is needed as long
// as that pass maps the overflowed pre-activations as TensorFlow's x * sigmoid(x) does:
// +Inf -> +Inf, -Inf -> NaN (-Inf * 0), NaN -> NaN. The oracle is that formula applied to the
// split layers' pre-activations (same kernel, same summation order), and the split layers'
// Sigmoid and Mul ops.
TEST(HostileNaN, OverflowInsideFusedSwishLayersIsLikeTensorFlow) {
  TempDir tmp;
  const auto dir = tmp.path() / "overflow_swish";
  std::filesystem::create_directories(dir);
  write_file(dir / "saved_model.pbtxt", overflow_model(/*swish=*/true));
  const auto [x, img] = overflow_operands();
  const auto out = run_overflow_model(dir, true, x, img);
  ASSERT_FALSE(out.empty());
  auto x_sigmoid_x = [](float v) { return v * (1.0f / (1.0f + std::exp(-v))); };
  size_t nans = 0, minus_inf_inputs = 0, plus_inf = 0;
  for (const char* name : {"conv1x1", "conv3x3", "depthwise", "matmul", "matmul_nobias"}) {
    const std::string layer(name);
    const bool has_bias = layer != "matmul_nobias";
    const auto fused = out.at(layer + "_fused").values<float>();
    const auto split = out.at(layer + "_split").values<float>();
    const auto pre = out.at(layer + (has_bias ? "_split_bias" : "_split_op")).values<float>();
    ASSERT_EQ(fused.size(), pre.size()) << name;
    for (size_t i = 0; i < fused.size(); ++i) {
      const float want = x_sigmoid_x(pre[i]);
      if (pre[i] == -std::numeric_limits<float>::infinity()) ++minus_inf_inputs;
      if (std::isnan(want)) {
        ++nans;
        EXPECT_TRUE(std::isnan(fused[i]))
            << name << "[" << i << "] = " << fused[i] << " for x = " << pre[i];
        EXPECT_TRUE(std::isnan(split[i])) << name << "[" << i << "] = " << split[i];
      } else if (std::isinf(want)) {
        ++plus_inf;
        EXPECT_EQ(fused[i], want) << name << "[" << i << "] for x = " << pre[i];
        EXPECT_EQ(split[i], want) << name << "[" << i << "]";
      } else {
        EXPECT_NEAR(fused[i], want, 1e-5f * (1 + std::fabs(want))) << name << "[" << i << "]";
        EXPECT_NEAR(split[i], want, 1e-5f * (1 + std::fabs(want))) << name << "[" << i << "]";
      }
    }
  }
  // These operands give overflowed pre-activations of both signs, and NaN ones.
  EXPECT_GT(nans, 0u);
  EXPECT_GT(minus_inf_inputs, 0u);
  EXPECT_GT(plus_inf, 0u);
  // The fused global average pool (computed in the swish pass) against Mean of the split layer.
  const auto fused_mean = out.at("conv1x1_fused_mean").values<float>();
  const auto split_mean = out.at("conv1x1_split_mean").values<float>();
  ASSERT_EQ(fused_mean.size(), split_mean.size());
  for (size_t i = 0; i < fused_mean.size(); ++i) {
    if (std::isnan(split_mean[i])) {
      EXPECT_TRUE(std::isnan(fused_mean[i])) << "mean[" << i << "] = " << fused_mean[i];
    } else if (std::isinf(split_mean[i])) {
      EXPECT_EQ(fused_mean[i], split_mean[i]) << "mean[" << i << "]";
    } else {
      EXPECT_NEAR(fused_mean[i], split_mean[i], 1e-5f * (1 + std::fabs(split_mean[i])))
          << "mean[" << i << "]";
    }
  }
}

}  // namespace
}  // namespace hubimg
