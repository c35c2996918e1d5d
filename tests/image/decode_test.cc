#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "hubimg/image.h"
#include "image/encode_util.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using testing::Bytes;

// What tf.image.convert_image_dtype makes of an 8-bit / 16-bit sample.
float u8(int v) {
  return static_cast<float>(v) * static_cast<float>(1.0 / 255.0);
}
float u16(int v) {
  return static_cast<float>(v) * static_cast<float>(1.0 / 65535.0);
}

Tensor decode_ok(const Bytes& b) {
  auto t = decode_image(b, "img");
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return t.ok() ? *t : Tensor();
}

// Pixel (y, x) of a decoded [H, W, 3] image.
std::array<float, 3> px(const Tensor& t, int64_t y, int64_t x) {
  const float* p = t.data<float>() + (y * t.dim(1) + x) * 3;
  return {p[0], p[1], p[2]};
}

void expect_rgb8(const Tensor& t, int64_t y, int64_t x, int r, int g, int b) {
  auto p = px(t, y, x);
  EXPECT_EQ(p[0], u8(r)) << "at " << y << "," << x;
  EXPECT_EQ(p[1], u8(g)) << "at " << y << "," << x;
  EXPECT_EQ(p[2], u8(b)) << "at " << y << "," << x;
}

// A 5x3 RGB test pattern with distinct values per pixel.
Bytes pattern_rgb(int w, int h) {
  Bytes b;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      b.push_back(static_cast<uint8_t>(10 * x + 3 * y));
      b.push_back(static_cast<uint8_t>(255 - 7 * x));
      b.push_back(static_cast<uint8_t>(40 * y + x));
    }
  }
  return b;
}

void expect_pattern(const Tensor& t, int w, int h) {
  ASSERT_EQ(t.shape(), (Dims{h, w, 3}));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) expect_rgb8(t, y, x, 10 * x + 3 * y, 255 - 7 * x, 40 * y + x);
  }
}

testing::PngSpec rgb_png_spec(int w, int h, bool interlaced) {
  testing::PngSpec s;
  s.width = w;
  s.height = h;
  s.interlaced = interlaced;
  Bytes all = pattern_rgb(w, h);
  for (int y = 0; y < h; ++y)
    s.rows.emplace_back(all.begin() + y * w * 3, all.begin() + (y + 1) * w * 3);
  return s;
}

// --- PNG -------------------------------------------------------------------------------------

TEST(DecodePng, Rgb8Exact) {
  Tensor t = decode_ok(testing::encode_png(rgb_png_spec(5, 3, false)));
  EXPECT_EQ(t.dtype(), DType::kFloat32);
  expect_pattern(t, 5, 3);
}

TEST(DecodePng, InterlacedExact) {
  expect_pattern(decode_ok(testing::encode_png(rgb_png_spec(9, 7, true))), 9, 7);
}

TEST(DecodePng, GrayIsReplicated) {
  testing::PngSpec s;
  s.width = 3, s.height = 1, s.color_type = PNG_COLOR_TYPE_GRAY;
  s.rows = {{0, 128, 255}};
  Tensor t = decode_ok(testing::encode_png(s));
  ASSERT_EQ(t.shape(), (Dims{1, 3, 3}));
  expect_rgb8(t, 0, 0, 0, 0, 0);
  expect_rgb8(t, 0, 1, 128, 128, 128);
  expect_rgb8(t, 0, 2, 255, 255, 255);
}

TEST(DecodePng, TwoBitGrayIsScaledTo8Bits) {
  testing::PngSpec s;
  s.width = 4, s.height = 1, s.color_type = PNG_COLOR_TYPE_GRAY, s.bit_depth = 2;
  s.rows = {{0b00011011}};  // samples 0, 1, 2, 3
  Tensor t = decode_ok(testing::encode_png(s));
  ASSERT_EQ(t.shape(), (Dims{1, 4, 3}));
  expect_rgb8(t, 0, 0, 0, 0, 0);
  expect_rgb8(t, 0, 1, 85, 85, 85);
  expect_rgb8(t, 0, 2, 170, 170, 170);
  expect_rgb8(t, 0, 3, 255, 255, 255);
}

TEST(DecodePng, GrayAlphaDropsAlpha) {
  testing::PngSpec s;
  s.width = 2, s.height = 1, s.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  s.rows = {{50, 0, 200, 255}};
  Tensor t = decode_ok(testing::encode_png(s));
  expect_rgb8(t, 0, 0, 50, 50, 50);
  expect_rgb8(t, 0, 1, 200, 200, 200);
}

TEST(DecodePng, RgbaDropsAlphaWithoutPremultiplying) {
  testing::PngSpec s;
  s.width = 2, s.height = 1, s.color_type = PNG_COLOR_TYPE_RGB_ALPHA;
  s.rows = {{10, 20, 30, 0, 200, 100, 50, 128}};
  Tensor t = decode_ok(testing::encode_png(s));
  ASSERT_EQ(t.shape(), (Dims{1, 2, 3}));
  expect_rgb8(t, 0, 0, 10, 20, 30);
  expect_rgb8(t, 0, 1, 200, 100, 50);
}

TEST(DecodePng, PaletteWithTransparency) {
  testing::PngSpec s;
  s.width = 3, s.height = 2, s.color_type = PNG_COLOR_TYPE_PALETTE;
  s.palette = {{255, 0, 0}, {0, 255, 0}, {1, 2, 3}};
  s.trns = {0, 128};  // entry 0 fully transparent, 1 half, 2 opaque
  s.rows = {{0, 1, 2}, {2, 2, 0}};
  Tensor t = decode_ok(testing::encode_png(s));
  ASSERT_EQ(t.shape(), (Dims{2, 3, 3}));
  expect_rgb8(t, 0, 0, 255, 0, 0);
  expect_rgb8(t, 0, 1, 0, 255, 0);
  expect_rgb8(t, 0, 2, 1, 2, 3);
  expect_rgb8(t, 1, 2, 255, 0, 0);
}

TEST(DecodePng, FourBitPalette) {
  testing::PngSpec s;
  s.width = 3, s.height = 1, s.color_type = PNG_COLOR_TYPE_PALETTE, s.bit_depth = 4;
  s.palette.resize(16);
  for (int i = 0; i < 16; ++i) s.palette[i] = {static_cast<png_byte>(i * 16), 7, 9};
  s.rows = {{0xf3, 0xa0}};  // indices 15, 3, 10
  Tensor t = decode_ok(testing::encode_png(s));
  expect_rgb8(t, 0, 0, 240, 7, 9);
  expect_rgb8(t, 0, 1, 48, 7, 9);
  expect_rgb8(t, 0, 2, 160, 7, 9);
}

TEST(DecodePng, SixteenBitScaledBy65535) {
  testing::PngSpec s;
  s.width = 2, s.height = 1, s.bit_depth = 16;
  // Big-endian samples: (65535, 0, 12345), (256, 1, 65534).
  s.rows = {{0xff, 0xff, 0x00, 0x00, 0x30, 0x39, 0x01, 0x00, 0x00, 0x01, 0xff, 0xfe}};
  Tensor t = decode_ok(testing::encode_png(s));
  ASSERT_EQ(t.shape(), (Dims{1, 2, 3}));
  EXPECT_EQ(px(t, 0, 0)[0], 1.0f);
  EXPECT_EQ(px(t, 0, 0)[1], 0.0f);
  EXPECT_EQ(px(t, 0, 0)[2], u16(12345));
  EXPECT_EQ(px(t, 0, 1)[0], u16(256));
  EXPECT_EQ(px(t, 0, 1)[1], u16(1));
  EXPECT_EQ(px(t, 0, 1)[2], u16(65534));
  // Not the 8-bit value: 16-bit precision survives.
  EXPECT_NE(u16(12345), u8(12345 >> 8));
}

TEST(DecodePng, SixteenBitGray) {
  testing::PngSpec s;
  s.width = 1, s.height = 1, s.bit_depth = 16, s.color_type = PNG_COLOR_TYPE_GRAY;
  s.rows = {{0x80, 0x01}};
  Tensor t = decode_ok(testing::encode_png(s));
  EXPECT_EQ(px(t, 0, 0)[0], u16(0x8001));
  EXPECT_EQ(px(t, 0, 0)[2], u16(0x8001));
}

// --- JPEG ------------------------------------------------------------------------------------

TEST(DecodeJpeg, FlatColorsRoundTripClosely) {
  // 16x16 blocks of flat color survive JPEG almost exactly.
  const int w = 32, h = 16;
  Bytes rgb;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      bool left = x < 16;
      rgb.push_back(left ? 200 : 30);
      rgb.push_back(left ? 60 : 120);
      rgb.push_back(left ? 40 : 220);
    }
  }
  Tensor t = decode_ok(testing::encode_jpeg(w, h, 3, rgb, 95));
  ASSERT_EQ(t.shape(), (Dims{h, w, 3}));
  auto l = px(t, 8, 4), r = px(t, 8, 27);
  EXPECT_NEAR(l[0] * 255, 200, 3);
  EXPECT_NEAR(l[1] * 255, 60, 3);
  EXPECT_NEAR(l[2] * 255, 40, 3);
  EXPECT_NEAR(r[0] * 255, 30, 3);
  EXPECT_NEAR(r[1] * 255, 120, 3);
  EXPECT_NEAR(r[2] * 255, 220, 3);
}

TEST(DecodeJpeg, GrayscaleJpegIsReplicated) {
  Bytes gray(8 * 8, 77);
  Tensor t = decode_ok(testing::encode_jpeg(8, 8, 1, gray, 95));
  ASSERT_EQ(t.shape(), (Dims{8, 8, 3}));
  auto p = px(t, 3, 3);
  EXPECT_EQ(p[0], p[1]);
  EXPECT_EQ(p[1], p[2]);
  EXPECT_NEAR(p[0] * 255, 77, 1.5);
}

TEST(DecodeJpeg, AdobeCmykIsConvertedAsTensorFlowDoes) {
  // Adobe CMYK JPEGs store inverted inks; RGB = stored C/M/Y * stored K / 255.
  Bytes cmyk;
  for (int i = 0; i < 16 * 16; ++i) testing::append(cmyk, {200, 100, 50, 128});
  Tensor t = decode_ok(testing::encode_jpeg(16, 16, 4, cmyk, 98));
  ASSERT_EQ(t.shape(), (Dims{16, 16, 3}));
  auto p = px(t, 8, 8);
  EXPECT_NEAR(p[0] * 255, 200 * 128 / 255, 2);
  EXPECT_NEAR(p[1] * 255, 100 * 128 / 255, 2);
  EXPECT_NEAR(p[2] * 255, 50 * 128 / 255, 2);
}

TEST(DecodeJpeg, ProgressiveDecodesAndTruncatedProgressiveFails) {
  Bytes rgb = pattern_rgb(40, 24);
  Bytes base = testing::encode_jpeg(40, 24, 3, rgb, 90);
  Bytes prog = testing::encode_jpeg(40, 24, 3, rgb, 90, {}, true);
  Tensor a = decode_ok(base), b = decode_ok(prog);
  ASSERT_EQ(b.shape(), (Dims{24, 40, 3}));
  // Same quantised coefficients, so the same pixels.
  EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()), 0);
  for (size_t cut : {prog.size() / 3, prog.size() / 2, prog.size() - 20}) {
    auto t = decode_image(std::span<const uint8_t>(prog.data(), cut), "p.jpg");
    ASSERT_FALSE(t.ok()) << cut;
    EXPECT_NE(t.status().message().find("p.jpg: JPEG"), std::string::npos);
  }
}

TEST(DecodeJpeg, OversizedImageIsRefusedBeforeAllocating) {
  Bytes jpeg = testing::encode_jpeg(8, 8, 3, Bytes(8 * 8 * 3, 100), 90);
  // SOF0: FF C0, length (2), precision (1), height (2), width (2), all big-endian.
  size_t sof = 0;
  for (size_t i = 2; i + 1 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {
      sof = i;
      break;
    }
  }
  ASSERT_NE(sof, 0u);
  jpeg[sof + 5] = 0xea, jpeg[sof + 6] = 0x60;  // height 60000
  jpeg[sof + 7] = 0xea, jpeg[sof + 8] = 0x60;  // width 60000
  auto t = decode_image(jpeg, "big.jpg");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kOutOfRange) << t.status().to_string();
  EXPECT_NE(t.status().message().find("big.jpg"), std::string::npos);
}

// A 48x32 image, red in its top-left 16x16 block, blue elsewhere.
Bytes marked_image() {
  Bytes rgb;
  for (int y = 0; y < 32; ++y) {
    for (int x = 0; x < 48; ++x) {
      bool mark = x < 16 && y < 16;
      rgb.push_back(mark ? 255 : 0);
      rgb.push_back(0);
      rgb.push_back(mark ? 0 : 255);
    }
  }
  return rgb;
}

bool is_red(const Tensor& t, int64_t y, int64_t x) {
  auto p = px(t, y, x);
  return p[0] > 0.8f && p[2] < 0.2f;
}
bool is_blue(const Tensor& t, int64_t y, int64_t x) {
  auto p = px(t, y, x);
  return p[0] < 0.2f && p[2] > 0.8f;
}

TEST(DecodeJpeg, ExifOrientationTurnsTheImageUpright) {
  struct Case {
    int orientation;
    int64_t out_h, out_w;
    int64_t mark_y, mark_x;  // center of where the red block must end up
  };
  // Stored 32 rows x 48 columns, red block centered at (8, 8).
  const Case cases[] = {
      {1, 32, 48, 8, 8},    // as stored
      {2, 32, 48, 8, 39},   // mirrored: top-right
      {3, 32, 48, 23, 39},  // rotated 180: bottom-right
      {4, 32, 48, 23, 8},   // flipped: bottom-left
      {5, 48, 32, 8, 8},    // transposed: top-left
      {6, 48, 32, 8, 23},   // rotate 90 clockwise: top-right
      {7, 48, 32, 39, 23},  // transverse: bottom-right
      {8, 48, 32, 39, 8},   // rotate 90 counter-clockwise: bottom-left
  };
  for (bool big_endian : {true, false}) {
    for (const Case& c : cases) {
      SCOPED_TRACE("orientation " + std::to_string(c.orientation) + (big_endian ? " MM" : " II"));
      Bytes jpeg = testing::encode_jpeg(48, 32, 3, marked_image(), 95,
                                        testing::exif_orientation_app1(c.orientation, big_endian));
      Tensor t = decode_ok(jpeg);
      ASSERT_EQ(t.shape(), (Dims{c.out_h, c.out_w, 3}));
      EXPECT_TRUE(is_red(t, c.mark_y, c.mark_x));
      // The three other corners are blue.
      int red_corners = 0;
      for (int64_t y : {int64_t{2}, c.out_h - 3}) {
        for (int64_t x : {int64_t{2}, c.out_w - 3}) {
          if (is_red(t, y, x)) {
            ++red_corners;
          } else {
            EXPECT_TRUE(is_blue(t, y, x)) << y << "," << x;
          }
        }
      }
      EXPECT_EQ(red_corners, 1);
    }
  }
}

TEST(DecodeJpeg, NonExifApp1AndBadOrientationAreIgnored) {
  Bytes xmp = {'h', 't', 't', 'p', ':', '/', '/'};
  Tensor t = decode_ok(testing::encode_jpeg(48, 32, 3, marked_image(), 95, xmp));
  EXPECT_EQ(t.shape(), (Dims{32, 48, 3}));
  Tensor u = decode_ok(
      testing::encode_jpeg(48, 32, 3, marked_image(), 95, testing::exif_orientation_app1(9, true)));
  EXPECT_EQ(u.shape(), (Dims{32, 48, 3}));
  EXPECT_TRUE(is_red(u, 8, 8));
}

// --- WebP ------------------------------------------------------------------------------------

TEST(DecodeWebp, LosslessRgbExact) {
  expect_pattern(decode_ok(testing::encode_webp_lossless_rgb(5, 3, pattern_rgb(5, 3))), 5, 3);
}

TEST(DecodeWebp, LosslessRgbaDropsAlpha) {
  Bytes rgb = pattern_rgb(5, 3), rgba;
  for (size_t i = 0; i < rgb.size(); i += 3) {
    testing::append(rgba, {rgb[i], rgb[i + 1], rgb[i + 2], static_cast<uint8_t>(10 + i)});
  }
  expect_pattern(decode_ok(testing::encode_webp_lossless_rgba(5, 3, rgba)), 5, 3);
}

TEST(DecodeWebp, LossyIsClose) {
  Bytes rgb(32 * 32 * 3);
  for (size_t i = 0; i < rgb.size(); i += 3) rgb[i] = 180, rgb[i + 1] = 90, rgb[i + 2] = 30;
  Tensor t = decode_ok(testing::encode_webp_lossy_rgb(32, 32, rgb, 95));
  ASSERT_EQ(t.shape(), (Dims{32, 32, 3}));
  auto p = px(t, 16, 16);
  EXPECT_NEAR(p[0] * 255, 180, 4);
  EXPECT_NEAR(p[1] * 255, 90, 4);
  EXPECT_NEAR(p[2] * 255, 30, 4);
}

// --- BMP -------------------------------------------------------------------------------------

TEST(DecodeBmp, TwentyFourBitBottomUpWithRowPadding) {
  // 3x2: rows are 9 bytes of BGR padded to 12; the first stored row is the bottom one.
  Bytes data = {// bottom row: (1,2,3) (4,5,6) (7,8,9) as RGB
                3, 2, 1, 6, 5, 4, 9, 8, 7, 0xee, 0xee, 0xee,
                // top row: (10,20,30) (40,50,60) (70,80,90)
                30, 20, 10, 60, 50, 40, 90, 80, 70, 0xee, 0xee, 0xee};
  Tensor t = decode_ok(testing::make_bmp(3, 2, 24, 0, {}, data));
  ASSERT_EQ(t.shape(), (Dims{2, 3, 3}));
  expect_rgb8(t, 0, 0, 10, 20, 30);
  expect_rgb8(t, 0, 2, 70, 80, 90);
  expect_rgb8(t, 1, 0, 1, 2, 3);
  expect_rgb8(t, 1, 2, 7, 8, 9);
}

TEST(DecodeBmp, ThirtyTwoBitTopDown) {
  // BI_RGB 32-bit is BGRX; negative height means the first row is the top one.
  Bytes data = {3, 2, 1, 99, 6,  5,  4,  99,  // top
                9, 8, 7, 99, 12, 11, 10, 99};
  Tensor t = decode_ok(testing::make_bmp(2, -2, 32, 0, {}, data));
  ASSERT_EQ(t.shape(), (Dims{2, 2, 3}));
  expect_rgb8(t, 0, 0, 1, 2, 3);
  expect_rgb8(t, 0, 1, 4, 5, 6);
  expect_rgb8(t, 1, 1, 10, 11, 12);
}

TEST(DecodeBmp, ThirtyTwoBitBitfields) {
  // Masks for R, G, B in memory order R G B A (little-endian words 0xAABBGGRR).
  Bytes masks(12);
  testing::put_le32(masks, 0, 0x000000ff);
  testing::put_le32(masks, 4, 0x0000ff00);
  testing::put_le32(masks, 8, 0x00ff0000);
  Bytes data = {11, 22, 33, 0, 44, 55, 66, 255};
  Tensor t = decode_ok(testing::make_bmp(2, 1, 32, 3, masks, data));
  expect_rgb8(t, 0, 0, 11, 22, 33);
  expect_rgb8(t, 0, 1, 44, 55, 66);
}

TEST(DecodeBmp, SixteenBit565BitfieldsAnd555Default) {
  Bytes masks(12);
  testing::put_le32(masks, 0, 0xf800);
  testing::put_le32(masks, 4, 0x07e0);
  testing::put_le32(masks, 8, 0x001f);
  // (31, 63, 0) and (16, 1, 31); 2 pixels = 4 bytes, no padding.
  uint16_t a = (31 << 11) | (63 << 5) | 0, b = (16 << 11) | (1 << 5) | 31;
  Bytes data = {static_cast<uint8_t>(a), static_cast<uint8_t>(a >> 8), static_cast<uint8_t>(b),
                static_cast<uint8_t>(b >> 8)};
  Tensor t = decode_ok(testing::make_bmp(2, 1, 16, 3, masks, data));
  expect_rgb8(t, 0, 0, 255, 255, 0);
  // 16/31 -> round(131.6) = 132; 1/63 -> round(4.05) = 4.
  expect_rgb8(t, 0, 1, 132, 4, 255);

  uint16_t c = (31 << 10) | (0 << 5) | 8;  // X1R5G5B5: 8/31 -> round(65.8) = 66
  Bytes d = {static_cast<uint8_t>(c), static_cast<uint8_t>(c >> 8), 0, 0};
  Tensor u = decode_ok(testing::make_bmp(1, 1, 16, 0, {}, d));
  expect_rgb8(u, 0, 0, 255, 0, 66);
}

TEST(DecodeBmp, EightBitPalette) {
  // Palette entries are BGRX; 3 indices per row padded to 4 bytes.
  Bytes palette = {0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0, 0, 5, 6, 7, 0};
  Bytes data = {0, 1, 2, 0xee, 3, 3, 0, 0xee};
  Tensor t = decode_ok(testing::make_bmp(3, 2, 8, 0, palette, data, 4));
  ASSERT_EQ(t.shape(), (Dims{2, 3, 3}));
  // Bottom-up: the first stored row is the bottom one.
  expect_rgb8(t, 1, 0, 255, 0, 0);
  expect_rgb8(t, 1, 1, 0, 255, 0);
  expect_rgb8(t, 1, 2, 0, 0, 255);
  expect_rgb8(t, 0, 0, 7, 6, 5);
  expect_rgb8(t, 0, 2, 255, 0, 0);
}

TEST(DecodeBmp, OneAndFourBitPalettes) {
  Bytes palette2 = {0, 0, 0, 0, 255, 255, 255, 0};
  Bytes bits = {0b10100000, 0, 0, 0};  // 3 pixels: 1, 0, 1
  Tensor t = decode_ok(testing::make_bmp(3, 1, 1, 0, palette2, bits, 2));
  expect_rgb8(t, 0, 0, 255, 255, 255);
  expect_rgb8(t, 0, 1, 0, 0, 0);
  expect_rgb8(t, 0, 2, 255, 255, 255);

  Bytes palette16(16 * 4, 0);
  palette16[4 * 9 + 2] = 90;  // index 9: red 90
  Bytes nibbles = {0x90, 0x09, 0, 0};
  Tensor u = decode_ok(testing::make_bmp(3, 1, 4, 0, palette16, nibbles));
  expect_rgb8(u, 0, 0, 90, 0, 0);
  expect_rgb8(u, 0, 1, 0, 0, 0);
  expect_rgb8(u, 0, 2, 0, 0, 0);
}

TEST(DecodeBmp, CoreHeader) {
  // BITMAPCOREHEADER (12 bytes), 24-bit, 1x1.
  Bytes b(14 + 12, 0);
  b[0] = 'B', b[1] = 'M';
  testing::put_le32(b, 10, 26);
  testing::put_le32(b, 14, 12);
  testing::put_le16(b, 18, 1);
  testing::put_le16(b, 20, 1);
  testing::put_le16(b, 22, 1);
  testing::put_le16(b, 24, 24);
  testing::append(b, {30, 20, 10, 0});
  expect_rgb8(decode_ok(b), 0, 0, 10, 20, 30);
}

TEST(DecodeBmp, SizeFieldsAreChecked) {
  Bytes data(12 * 2, 1);
  Bytes good = testing::make_bmp(3, 2, 24, 0, {}, data);
  ASSERT_TRUE(decode_image(good, "x.bmp").ok());
  auto expect_err = [](const Bytes& b, const std::string& fragment) {
    auto t = decode_image(b, "x.bmp");
    ASSERT_FALSE(t.ok()) << fragment;
    EXPECT_NE(t.status().message().find("x.bmp"), std::string::npos);
    EXPECT_NE(t.status().message().find(fragment), std::string::npos) << t.status().to_string();
  };
  expect_err(Bytes(good.begin(), good.end() - 1), "truncated");
  Bytes huge_w = good;
  testing::put_le32(huge_w, 18, 0x7fffffff);
  expect_err(huge_w, "larger than the limit");
  Bytes big_pixels = good;
  testing::put_le32(big_pixels, 18, 5000);  // 25 MP: within the pixel budget, data missing
  testing::put_le32(big_pixels, 22, 5000);
  expect_err(big_pixels, "truncated");
  testing::put_le32(big_pixels, 18, 10000);  // 100 MP: over the default 50 MP budget
  testing::put_le32(big_pixels, 22, 10000);
  expect_err(big_pixels, "larger than the limit");
  Bytes zero_w = good;
  testing::put_le32(zero_w, 18, 0);
  expect_err(zero_w, "invalid dimensions");
  Bytes offset = good;
  testing::put_le32(offset, 10, 0xfffffff0);
  expect_err(offset, "truncated");
  Bytes dib = good;
  testing::put_le32(dib, 14, 0xffffff00);
  expect_err(dib, "DIB header");
  Bytes palette = testing::make_bmp(3, 2, 8, 0, {}, data, 256);
  expect_err(palette, "palette");
  Bytes rle = good;
  testing::put_le32(rle, 30, 1);
  expect_err(rle, "not supported");
  Bytes masks(12, 0);
  testing::put_le32(masks, 0, 0x0f0f);
  expect_err(testing::make_bmp(1, 1, 32, 3, masks, Bytes(4, 0)), "non-contiguous");
}

// --- GIF -------------------------------------------------------------------------------------

std::vector<GifColorType> gif_palette(int n, int seed) {
  std::vector<GifColorType> p;
  for (int i = 0; i < n; ++i) {
    p.push_back({static_cast<GifByteType>(17 * i + seed), static_cast<GifByteType>(250 - 9 * i),
                 static_cast<GifByteType>((31 * i + 3 * seed) % 256)});
  }
  return p;
}

testing::GifFrameSpec gif_frame(int left, int top, int width, int height, int colors, int seed) {
  testing::GifFrameSpec f{.left = left, .top = top, .width = width, .height = height};
  for (int i = 0; i < width * height; ++i) f.indices.push_back((i * 7 + seed) % colors);
  return f;
}

// Frame `f` drawn with `palette` at canvas pixel (y, x).
void expect_gif_pixel(const Tensor& t, const testing::GifFrameSpec& f,
                      const std::vector<GifColorType>& palette, int64_t y, int64_t x) {
  const GifColorType& c = palette[f.indices[(y - f.top) * f.width + (x - f.left)]];
  expect_rgb8(t, y, x, c.Red, c.Green, c.Blue);
}

TEST(DecodeGif, FirstFrameOfAnAnimationExact) {
  for (bool interlaced : {false, true}) {
    SCOPED_TRACE(interlaced ? "interlaced" : "progressive rows");
    testing::GifSpec s{.screen_width = 7, .screen_height = 19, .palette = gif_palette(16, 1)};
    s.frames = {gif_frame(0, 0, 7, 19, 16, 0), gif_frame(0, 0, 7, 19, 16, 5)};
    s.frames[0].interlaced = interlaced;
    Tensor t = decode_ok(testing::encode_gif(s));
    ASSERT_EQ(t.shape(), (Dims{19, 7, 3}));
    for (int y = 0; y < 19; ++y) {
      for (int x = 0; x < 7; ++x) expect_gif_pixel(t, s.frames[0], s.palette, y, x);
    }
  }
}

TEST(DecodeGif, LocalColorMapWinsAndTransparentPixelsAreBlack) {
  testing::GifSpec s{.screen_width = 5, .screen_height = 4, .palette = gif_palette(8, 2)};
  s.frames = {gif_frame(0, 0, 5, 4, 4, 1)};
  s.frames[0].palette = gif_palette(4, 90);
  s.frames[0].transparent = 2;
  Tensor t = decode_ok(testing::encode_gif(s));
  ASSERT_EQ(t.shape(), (Dims{4, 5, 3}));
  int transparent = 0;
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 5; ++x) {
      if (s.frames[0].indices[y * 5 + x] == 2) {
        ++transparent;
        expect_rgb8(t, y, x, 0, 0, 0);
      } else {
        expect_gif_pixel(t, s.frames[0], s.frames[0].palette, y, x);
      }
    }
  }
  EXPECT_GT(transparent, 0);
}

TEST(DecodeGif, CanvasIsTheLargestFrameAndTheFirstFrameSitsAtItsOffset) {
  // TensorFlow's canvas: the largest frame's width and height, not the logical screen. The
  // first frame (4x3 at x 3, y 1) is clipped to it; the rest of the canvas is black.
  testing::GifSpec s{.screen_width = 40, .screen_height = 30, .palette = gif_palette(8, 3)};
  s.frames = {gif_frame(3, 1, 4, 3, 8, 0), gif_frame(0, 0, 6, 5, 8, 4),
              gif_frame(1, 1, 2, 2, 8, 0)};
  Tensor t = decode_ok(testing::encode_gif(s));
  ASSERT_EQ(t.shape(), (Dims{5, 6, 3}));
  for (int y = 0; y < 5; ++y) {
    for (int x = 0; x < 6; ++x) {
      if (y >= 1 && y < 4 && x >= 3) {
        expect_gif_pixel(t, s.frames[0], s.palette, y, x);
      } else {
        expect_rgb8(t, y, x, 0, 0, 0);
      }
    }
  }
}

TEST(DecodeGif, MissingTrailerStillDecodesAsInTensorFlow) {
  testing::GifSpec s{.screen_width = 6, .screen_height = 2, .palette = gif_palette(4, 7)};
  s.frames = {gif_frame(0, 0, 6, 2, 4, 3)};
  Bytes b = testing::encode_gif(s);
  ASSERT_EQ(b.back(), ';');
  b.pop_back();
  Tensor t = decode_ok(b);
  ASSERT_EQ(t.shape(), (Dims{2, 6, 3}));
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 6; ++x) expect_gif_pixel(t, s.frames[0], s.palette, y, x);
  }
}

TEST(DecodeGif, BadColorIndexAndMissingColorMapAreErrors) {
  // GIF89a, a 1x1 screen with a 2-color global map, one 1x1 image whose LZW data (minimum code
  // size 2: clear 4, pixel 3, end 5, three bits each) holds color index 3.
  const Bytes bad_index = {'G',  'I', 'F',  '8',  '9', 'a', 1, 0, 1, 0, 0x80, 0, 0,  //
                           1,    2,   3,    4,    5,   6,                            // 2 colors
                           0x2c, 0,   0,    0,    0,   1,   0, 1, 0, 0,              // image
                           2,    2,   0x5c, 0x01, 0,   ';'};
  auto t = decode_image(bad_index, "bad.gif");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "bad.gif: GIF: found color index 3 outside of color map range 2");

  // The same without the global color map, the pixel being index 0 (codes 4, 0, 5).
  const Bytes no_color_map = {'G',  'I', 'F',  '8',  '9', 'a', 1, 0, 1, 0, 0, 0, 0,  //
                              0x2c, 0,   0,    0,    0,   1,   0, 1, 0, 0,           //
                              2,    2,   0x44, 0x01, 0,   ';'};
  auto no_map = decode_image(no_color_map, "nomap.gif");
  ASSERT_FALSE(no_map.ok());
  EXPECT_EQ(no_map.status().message(), "nomap.gif: GIF: missing color map for frame 0");
}

TEST(DecodeGif, OversizedFramesAreRefused) {
  // A later frame that declares 20000 x 20000 makes the canvas too large (TensorFlow would
  // allocate it); its data is never decoded.
  testing::GifSpec s{.screen_width = 4, .screen_height = 4, .palette = gif_palette(4, 0)};
  s.frames = {gif_frame(0, 0, 4, 4, 4, 0), gif_frame(0, 0, 2, 2, 4, 0)};
  Bytes b = testing::encode_gif(s);
  // The second image descriptor: 0x2c, left, top, width, height (little-endian 16 bits).
  size_t second = 0;
  for (size_t i = 13 + 12; i + 9 < b.size(); ++i) {
    if (b[i] == 0x2c && b[i + 5] == 2 && b[i + 7] == 2 && b[i + 6] == 0 && b[i + 8] == 0)
      second = i;
  }
  ASSERT_NE(second, 0u);
  b[second + 5] = 20000 & 0xff, b[second + 6] = 20000 >> 8;
  b[second + 7] = 20000 & 0xff, b[second + 8] = 20000 >> 8;
  auto t = decode_image(b, "huge.gif");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(t.status().message().find("huge.gif: GIF: image of 20000x20000 pixels is larger"),
            std::string::npos)
      << t.status().to_string();
}

TEST(DecodeGif, ALongAnimationCostsItsFileNotItsFrames) {
  // 300 frames of 512 x 512: decoding them all, as TensorFlow does, would write 236 MB of
  // canvases. Only the first frame is decoded (the others are skipped), so this is fast even
  // under the sanitizers.
  testing::GifSpec s{.screen_width = 512, .screen_height = 512, .palette = gif_palette(2, 0)};
  testing::GifFrameSpec plain{.width = 512, .height = 512, .indices = Bytes(512 * 512, 1)};
  s.frames.assign(300, plain);
  s.frames[0].indices[5] = 0;
  Bytes b = testing::encode_gif(s);
  Tensor t = decode_ok(b);
  ASSERT_EQ(t.shape(), (Dims{512, 512, 3}));
  expect_rgb8(t, 0, 5, s.palette[0].Red, s.palette[0].Green, s.palette[0].Blue);
  expect_rgb8(t, 511, 511, s.palette[1].Red, s.palette[1].Green, s.palette[1].Blue);
}

TEST(DecodeGif, TruncatedAnimationGivesItsFirstFrameOnceThatIsComplete) {
  // As in TensorFlow (which goes on after a read error once frames are in): a file cut inside
  // the first frame is an error naming it; one cut later still gives the first frame.
  testing::GifSpec s{.screen_width = 9, .screen_height = 6, .palette = gif_palette(8, 4)};
  s.frames = {gif_frame(0, 0, 9, 6, 8, 0), gif_frame(1, 2, 5, 4, 8, 3),
              gif_frame(0, 0, 9, 6, 8, 1)};
  const Bytes b = testing::encode_gif(s);
  const Tensor full = decode_ok(b);
  s.frames.resize(1);
  const size_t first_frame_end = testing::encode_gif(s).size() - 1;  // without the trailer
  for (size_t len = 0; len < b.size(); ++len) {
    auto t = decode_image(std::span<const uint8_t>(b.data(), len), "cut.gif");
    if (len < first_frame_end) {
      ASSERT_FALSE(t.ok()) << "prefix of " << len << " accepted";
      EXPECT_EQ(t.status().message().rfind("cut.gif: ", 0), 0u) << t.status().to_string();
    } else {
      ASSERT_TRUE(t.ok()) << "prefix of " << len << ": " << t.status().to_string();
      ASSERT_EQ(t->shape(), full.shape());
      EXPECT_EQ(std::memcmp(t->data<float>(), full.data<float>(), full.num_elements() * 4), 0)
          << "prefix of " << len;
    }
  }
}

TEST(DecodeGif, ImageFoldersAndTheCliTakeGifFiles) {
  EXPECT_TRUE(has_image_extension("a/b.gif"));
  EXPECT_TRUE(has_image_extension("B.GIF"));
  EXPECT_TRUE(has_image_extension("x.JPeg"));
  for (const char* name : {"a.png", "a.jpg", "a.webp", "a.bmp"})
    EXPECT_TRUE(has_image_extension(name));
  for (const char* name : {"a.tiff", "a.gif.txt", "gif", "a.", "README"}) {
    EXPECT_FALSE(has_image_extension(name)) << name;
  }
}

// --- errors of every format ------------------------------------------------------------------

struct Sample {
  std::string name;
  Bytes bytes;
};

std::vector<Sample> samples() {
  std::vector<Sample> s;
  s.push_back({"png", testing::encode_png(rgb_png_spec(40, 30, false))});
  s.push_back({"png-interlaced", testing::encode_png(rgb_png_spec(40, 30, true))});
  Bytes big = pattern_rgb(64, 48);
  s.push_back(
      {"jpeg", testing::encode_jpeg(64, 48, 3, big, 90, testing::exif_orientation_app1(6, false))});
  s.push_back({"webp-lossless", testing::encode_webp_lossless_rgb(64, 48, big)});
  s.push_back({"webp-lossy", testing::encode_webp_lossy_rgb(64, 48, big, 80)});
  Bytes rows(64 * 3 * 48, 9);
  s.push_back({"bmp", testing::make_bmp(64, 48, 24, 0, {}, rows)});
  testing::GifSpec gif{.screen_width = 64, .screen_height = 48, .palette = gif_palette(64, 5)};
  gif.frames = {gif_frame(0, 0, 64, 48, 64, 0)};
  s.push_back({"gif", testing::encode_gif(gif)});
  gif.frames[0].interlaced = true;
  gif.frames.push_back(gif_frame(8, 8, 16, 16, 64, 1));
  s.push_back({"gif-animated-interlaced", testing::encode_gif(gif)});
  return s;
}

TEST(DecodeErrors, TruncatedFilesAreErrorsNamingTheFile) {
  for (const Sample& s : samples()) {
    if (s.name.starts_with("gif-animated")) continue;  // DecodeGif.TruncatedAnimation
    SCOPED_TRACE(s.name);
    ASSERT_TRUE(decode_image(s.bytes, "full").ok());
    // Every prefix that cuts into the image data is an error (a JPEG that loses only its
    // final end-of-image marker may still decode; so does a GIF without its trailer byte).
    const size_t tolerated = s.name == "jpeg" ? 2 : s.name == "gif" ? 1 : 0;
    for (size_t len = 0; len + tolerated < s.bytes.size(); ++len) {
      auto t = decode_image(std::span<const uint8_t>(s.bytes.data(), len), "cut/" + s.name);
      ASSERT_FALSE(t.ok()) << "prefix of " << len << " of " << s.bytes.size() << " accepted";
      EXPECT_EQ(t.status().message().rfind("cut/" + s.name + ": ", 0), 0u)
          << t.status().to_string();
    }
  }
}

TEST(DecodeErrors, CorruptedFilesNeverCrash) {
  // Flip bytes all over each file. Decoders may still produce an image (JPEG and WebP have no
  // checksums) but must return, and errors must name the file.
  for (const Sample& s : samples()) {
    SCOPED_TRACE(s.name);
    int errors = 0;
    for (size_t pos = 0; pos < s.bytes.size(); pos += 3) {
      Bytes b = s.bytes;
      b[pos] ^= 0x5a;
      if (pos + 1 < b.size()) b[pos + 1] = 0xff;
      auto t = decode_image(b, "bad");
      if (!t.ok()) {
        ++errors;
        EXPECT_EQ(t.status().message().rfind("bad: ", 0), 0u) << t.status().to_string();
      } else {
        EXPECT_EQ(t->rank(), 3);
        EXPECT_EQ(t->dim(2), 3);
      }
    }
    EXPECT_GT(errors, 0);
  }
}

TEST(DecodeErrors, UnknownAndUnsupportedFormats) {
  auto unknown = decode_image(Bytes{'h', 'e', 'l', 'l', 'o'}, "a.txt");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("a.txt: unknown image format"), std::string::npos);
  auto tiff = decode_image(Bytes{'I', 'I', 42, 0, 8, 0, 0, 0}, "a.tiff");
  ASSERT_FALSE(tiff.ok());
  EXPECT_EQ(tiff.status().message(),
            "a.tiff: unknown image format (not JPEG, PNG, WebP, BMP or GIF; starts with "
            "49492a0008000000)");
  auto empty = decode_image(Bytes{}, "empty.png");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("empty.png"), std::string::npos);
}

uLong crc32_of(const Bytes& b) {
  return crc32(0, b.data(), static_cast<uInt>(b.size()));
}

TEST(DecodeErrors, OversizedPngIsRefusedBeforeAllocating) {
  // A valid IHDR for 30000 x 30000 (9e8 pixels > 2^28) and nothing else.
  testing::PngSpec s = rgb_png_spec(2, 2, false);
  Bytes b = testing::encode_png(s);
  // IHDR data starts at byte 16: width, height (big-endian), then the CRC at 29..32.
  auto put_be32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = (v >> (24 - 8 * i)) & 0xff;
  };
  put_be32(16, 30000);
  put_be32(20, 30000);
  put_be32(29, static_cast<uint32_t>(crc32_of(Bytes(b.begin() + 12, b.begin() + 29))));
  auto t = decode_image(b, "huge.png");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kOutOfRange) << t.status().to_string();
}

TEST(DecodeFile, ReadsFilesAndNamesMissingOnes) {
  testing::TempDir dir;
  Bytes png = testing::encode_png(rgb_png_spec(5, 3, false));
  testing::write_file(dir.path() / "a.png", std::string(png.begin(), png.end()));
  auto t = decode_image_file(dir.path() / "a.png");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  expect_pattern(*t, 5, 3);
  auto missing = decode_image_file(dir.path() / "nope.png");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.png"), std::string::npos);
}

TEST(Luma, WeightsAndShape) {
  Tensor rgb = Tensor::from_vector<float>({1, 2, 3}, {1, 0, 0, 0.5f, 0.25f, 1});
  auto g = rgb_to_luma(rgb);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->shape(), (Dims{1, 2, 1}));
  EXPECT_FLOAT_EQ(g->data<float>()[0], 0.299f);
  EXPECT_FLOAT_EQ(g->data<float>()[1], 0.299f * 0.5f + 0.587f * 0.25f + 0.114f);
  EXPECT_FALSE(rgb_to_luma(Tensor::from_vector<float>({1, 2}, {1, 2})).ok());
}

}  // namespace
}  // namespace hubimg
