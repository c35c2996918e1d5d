// BMP: uncompressed BI_RGB (1/4/8-bit palette, 16, 24, 32 bits) and BI_BITFIELDS /
// BI_ALPHABITFIELDS (16 and 32 bits); bottom-up and top-down. Every offset and size is checked
// against the file length before it is used.
#include <algorithm>
#include <bit>
#include <cstdio>
#include <string>

#include "image/decoders.h"

namespace hubimg::image_internal {
namespace {

constexpr uint32_t kBiRgb = 0;
constexpr uint32_t kBiBitfields = 3;
constexpr uint32_t kBiAlphaBitfields = 6;

uint32_t le16(const uint8_t* p) {
  return p[0] | (p[1] << 8);
}
uint32_t le32(const uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// Extracts one channel described by a contiguous bit mask and scales it to 0..255.
struct Channel {
  uint32_t mask = 0;
  int shift = 0;
  uint32_t max = 0;  // largest value after shifting; 0 when the mask is empty

  static Expected<Channel> from_mask(uint32_t mask) {
    Channel c;
    c.mask = mask;
    if (mask == 0) return c;
    c.shift = std::countr_zero(mask);
    uint32_t bits = mask >> c.shift;
    if ((bits & (bits + 1)) != 0) {
      char hex[16];
      std::snprintf(hex, sizeof hex, "0x%08x", mask);
      return data_loss(std::string("BMP: non-contiguous color mask ") + hex);
    }
    c.max = bits;
    return c;
  }
  uint8_t operator()(uint32_t pixel) const {
    if (max == 0) return 0;
    uint64_t v = (pixel & mask) >> shift;
    return static_cast<uint8_t>((v * 255 + max / 2) / max);
  }
};

}  // namespace

Expected<DecodedImage> decode_bmp(std::span<const uint8_t> bytes) {
  const uint8_t* file = bytes.data();
  const uint64_t file_size = bytes.size();
  if (file_size < 14 + 12) return data_loss("BMP: file is truncated in its header");
  const uint64_t data_offset = le32(file + 10);
  const uint64_t dib_size = le32(file + 14);
  if (dib_size < 12 || 14 + dib_size > file_size) {
    return data_loss("BMP: bad or truncated DIB header (size " + std::to_string(dib_size) + ")");
  }
  const uint8_t* dib = file + 14;
  int64_t width;
  int64_t height;
  uint32_t bpp;
  uint32_t compression = kBiRgb;
  uint64_t colors_used = 0;
  uint64_t palette_entry = 4;
  if (dib_size == 12) {  // BITMAPCOREHEADER
    width = le16(dib + 4);
    height = le16(dib + 6);
    bpp = le16(dib + 10);
    palette_entry = 3;
  } else if (dib_size >= 40) {
    width = static_cast<int32_t>(le32(dib + 4));
    height = static_cast<int32_t>(le32(dib + 8));
    bpp = le16(dib + 14);
    compression = le32(dib + 16);
    colors_used = le32(dib + 32);
  } else {
    return data_loss("BMP: unsupported DIB header size " + std::to_string(dib_size));
  }
  bool top_down = height < 0;
  if (top_down) height = -height;
  HUBIMG_RETURN_IF_ERROR(check_dimensions(width, height, "BMP"));

  uint32_t masks[3] = {0, 0, 0};  // red, green, blue
  uint64_t after_header = 14 + dib_size;
  if (compression == kBiBitfields || compression == kBiAlphaBitfields) {
    if (bpp != 16 && bpp != 32) {
      return data_loss("BMP: bit fields need 16 or 32 bits per pixel, not " + std::to_string(bpp));
    }
    const uint8_t* m;
    if (dib_size >= 52) {
      m = dib + 40;  // inside BITMAPV2INFOHEADER and later
    } else {
      uint64_t n = compression == kBiAlphaBitfields ? 16 : 12;
      if (after_header + n > file_size) return data_loss("BMP: truncated color masks");
      m = file + after_header;
      after_header += n;
    }
    masks[0] = le32(m);
    masks[1] = le32(m + 4);
    masks[2] = le32(m + 8);
  } else if (compression != kBiRgb) {
    return unimplemented("BMP: compression type " + std::to_string(compression) +
                         " (RLE, JPEG or PNG in BMP) is not supported");
  } else if (bpp == 16) {
    masks[0] = 0x7c00, masks[1] = 0x03e0, masks[2] = 0x001f;
  } else if (bpp == 24 || bpp == 32) {
    masks[0] = 0x00ff0000, masks[1] = 0x0000ff00, masks[2] = 0x000000ff;
  } else if (bpp != 1 && bpp != 4 && bpp != 8) {
    return unimplemented("BMP: " + std::to_string(bpp) + " bits per pixel is not supported");
  }

  // Palette (1, 4 and 8 bits): BGR(X) entries right after the header.
  std::vector<uint8_t> palette;  // RGB triples
  if (bpp <= 8) {
    uint64_t max_colors = uint64_t{1} << bpp;
    uint64_t count = colors_used == 0 ? max_colors : std::min(colors_used, max_colors);
    if (after_header + count * palette_entry > file_size) {
      return data_loss("BMP: truncated color palette");
    }
    palette.resize(max_colors * 3, 0);  // indices past the palette read black
    for (uint64_t i = 0; i < count; ++i) {
      const uint8_t* e = file + after_header + i * palette_entry;
      palette[i * 3 + 0] = e[2];
      palette[i * 3 + 1] = e[1];
      palette[i * 3 + 2] = e[0];
    }
  }

  const uint64_t stride = (static_cast<uint64_t>(width) * bpp + 31) / 32 * 4;
  const uint64_t pixel_bytes = stride * static_cast<uint64_t>(height);
  if (data_offset > file_size || pixel_bytes > file_size - data_offset) {
    return data_loss("BMP: pixel data is truncated (needs " + std::to_string(pixel_bytes) +
                     " bytes at offset " + std::to_string(data_offset) + ", file has " +
                     std::to_string(file_size) + ")");
  }
  Channel channels[3];
  for (int i = 0; i < 3; ++i) {
    HUBIMG_ASSIGN_OR_RETURN(channels[i], Channel::from_mask(masks[i]));
  }

  DecodedImage img;
  img.width = width;
  img.height = height;
  img.rgb8.resize(static_cast<size_t>(width * height * 3));
  for (int64_t y = 0; y < height; ++y) {
    const int64_t src_row = top_down ? y : height - 1 - y;
    const uint8_t* row = file + data_offset + static_cast<uint64_t>(src_row) * stride;
    uint8_t* out = &img.rgb8[static_cast<size_t>(y * width * 3)];
    for (int64_t x = 0; x < width; ++x, out += 3) {
      if (bpp <= 8) {
        uint64_t bit = static_cast<uint64_t>(x) * bpp;
        uint32_t index = (row[bit / 8] >> (8 - bpp - bit % 8)) & ((1u << bpp) - 1);
        out[0] = palette[index * 3 + 0];
        out[1] = palette[index * 3 + 1];
        out[2] = palette[index * 3 + 2];
        continue;
      }
      uint32_t pixel;
      if (bpp == 16) {
        pixel = le16(row + x * 2);
      } else if (bpp == 24) {
        const uint8_t* p = row + x * 3;
        pixel = p[0] | (p[1] << 8) | (p[2] << 16);
      } else {
        pixel = le32(row + x * 4);
      }
      for (int ch = 0; ch < 3; ++ch) out[ch] = channels[ch](pixel);
    }
  }
  return img;
}

}  // namespace hubimg::image_internal
