#include <cstring>

#include "image/decoders.h"

namespace hubimg::image_internal {

int exif_orientation(std::span<const uint8_t> app1) {
  static constexpr uint8_t kExifId[6] = {'E', 'x', 'i', 'f', 0, 0};
  if (app1.size() < 6 || std::memcmp(app1.data(), kExifId, 6) != 0) return 1;
  std::span<const uint8_t> tiff = app1.subspan(6);
  if (tiff.size() < 8) return 1;
  bool little;
  if (tiff[0] == 'I' && tiff[1] == 'I') {
    little = true;
  } else if (tiff[0] == 'M' && tiff[1] == 'M') {
    little = false;
  } else {
    return 1;
  }
  auto u16 = [&](size_t off) -> uint32_t {
    return little ? tiff[off] | (tiff[off + 1] << 8) : (tiff[off] << 8) | tiff[off + 1];
  };
  auto u32 = [&](size_t off) -> uint64_t {
    return little ? (u16(off) | (static_cast<uint64_t>(u16(off + 2)) << 16))
                  : ((static_cast<uint64_t>(u16(off)) << 16) | u16(off + 2));
  };
  if (u16(2) != 42) return 1;
  uint64_t ifd = u32(4);
  if (ifd + 2 > tiff.size()) return 1;
  uint32_t count = u16(ifd);
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t entry = ifd + 2 + 12 * uint64_t{i};
    if (entry + 12 > tiff.size()) return 1;
    constexpr uint32_t kOrientationTag = 0x0112;
    constexpr uint32_t kShort = 3;
    if (u16(entry) != kOrientationTag) continue;
    if (u16(entry + 2) != kShort || u32(entry + 4) != 1) return 1;
    uint32_t value = u16(entry + 8);
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
  }
  return 1;
}

DecodedImage apply_orientation(const DecodedImage& in, int orientation) {
  if (orientation < 2 || orientation > 8 || in.bits != 8) return in;
  const int64_t h = in.height;
  const int64_t w = in.width;
  const bool swaps = orientation >= 5;  // 5..8 exchange rows and columns
  DecodedImage out;
  out.bits = 8;
  out.height = swaps ? w : h;
  out.width = swaps ? h : w;
  out.rgb8.resize(in.rgb8.size());
  for (int64_t r = 0; r < out.height; ++r) {
    for (int64_t c = 0; c < out.width; ++c) {
      int64_t sr = 0;  // source row and column of output pixel (r, c)
      int64_t sc = 0;
      switch (orientation) {
        case 2: sr = r, sc = w - 1 - c; break;          // mirrored left-right
        case 3: sr = h - 1 - r, sc = w - 1 - c; break;  // rotated 180
        case 4: sr = h - 1 - r, sc = c; break;          // mirrored top-bottom
        case 5: sr = c, sc = r; break;                  // transposed
        case 6: sr = h - 1 - c, sc = r; break;          // needs 90 degrees clockwise
        case 7: sr = h - 1 - c, sc = w - 1 - r; break;  // transversed
        case 8: sr = c, sc = w - 1 - r; break;          // needs 90 degrees counter-clockwise
      }
      std::memcpy(&out.rgb8[static_cast<size_t>((r * out.width + c) * 3)],
                  &in.rgb8[static_cast<size_t>((sr * w + sc) * 3)], 3);
    }
  }
  return out;
}

}  // namespace hubimg::image_internal
