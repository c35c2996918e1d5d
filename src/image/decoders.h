// Format decoders behind decode_image. Errors do not name the file; decode_image adds it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::image_internal {

// Interleaved RGB samples, 8-bit or (PNG only) 16-bit.
struct DecodedImage {
  int64_t height = 0;
  int64_t width = 0;
  int bits = 8;
  std::vector<uint8_t> rgb8;
  std::vector<uint16_t> rgb16;
};

// tf.image.convert_image_dtype to float32 multiplies by the float32 constant 1 / max.
inline constexpr float kUnitScale8 = static_cast<float>(1.0 / 255.0);
inline constexpr float kUnitScale16 = static_cast<float>(1.0 / 65535.0);

// Positive dimensions and at most max_image_pixels() pixels.
Status check_dimensions(int64_t width, int64_t height, std::string_view format);

Expected<DecodedImage> decode_jpeg(std::span<const uint8_t> bytes);
Expected<DecodedImage> decode_png(std::span<const uint8_t> bytes);
Expected<DecodedImage> decode_webp(std::span<const uint8_t> bytes);
Expected<DecodedImage> decode_bmp(std::span<const uint8_t> bytes);
// The first frame of an animation.
Expected<DecodedImage> decode_gif(std::span<const uint8_t> bytes);

// The EXIF orientation (1..8) in the payload of an APP1 segment ("Exif\0\0" + TIFF); 1 when
// the segment is not EXIF, has no orientation tag or is malformed.
int exif_orientation(std::span<const uint8_t> app1_payload);

// Turns an 8-bit image stored with EXIF `orientation` upright.
DecodedImage apply_orientation(const DecodedImage& image, int orientation);

// `image` resized to float32 [height, width, 3] (bilinear, half-pixel centers, no antialiasing),
// each sample scaled to [0, 1] as it is read: bit for bit what converting the whole image to
// float (decode_image) and then resize_bilinear give, without writing the full-size float image
// (72 MB for a 6-megapixel photo, of which a 224x224 resize reads 600 000 samples).
Expected<Tensor> resize_decoded_bilinear(const DecodedImage& image, int64_t height, int64_t width);

// decode_image_file + resize_bilinear (no antialiasing) through resize_decoded_bilinear; errors
// name the file.
Expected<Tensor> decode_file_resized(const std::filesystem::path& path, int64_t height,
                                     int64_t width);

}  // namespace hubimg::image_internal
