// Format decoders behind decode_image. Errors do not name the file; decode_image adds it.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "hubimg/status.h"

namespace hubimg::image_internal {

// Interleaved RGB samples, 8-bit or (PNG only) 16-bit.
struct DecodedImage {
  int64_t height = 0;
  int64_t width = 0;
  int bits = 8;
  std::vector<uint8_t> rgb8;
  std::vector<uint16_t> rgb16;
};

// Positive dimensions and at most max_image_pixels() pixels.
Status check_dimensions(int64_t width, int64_t height, std::string_view format);

Expected<DecodedImage> decode_jpeg(std::span<const uint8_t> bytes);
Expected<DecodedImage> decode_png(std::span<const uint8_t> bytes);
Expected<DecodedImage> decode_webp(std::span<const uint8_t> bytes);
Expected<DecodedImage> decode_bmp(std::span<const uint8_t> bytes);

// The EXIF orientation (1..8) in the payload of an APP1 segment ("Exif\0\0" + TIFF); 1 when
// the segment is not EXIF, has no orientation tag or is malformed.
int exif_orientation(std::span<const uint8_t> app1_payload);

// Turns an 8-bit image stored with EXIF `orientation` upright.
DecodedImage apply_orientation(const DecodedImage& image, int orientation);

}  // namespace hubimg::image_internal
