#include <cstring>

#include "core/file_io.h"
#include "hubimg/image.h"

namespace hubimg {

Expected<Tensor> load_image_batch(std::span<const std::filesystem::path> files, int64_t height,
                                  int64_t width, ColorMode mode, ResizeOptions options) {
  return catch_exceptions("load_image_batch", [&]() -> Expected<Tensor> {
    if (height <= 0 || width <= 0) {
      return invalid_argument("load_image_batch: size must be positive, got " +
                              std::to_string(height) + "x" + std::to_string(width));
    }
    const int64_t channels = mode == ColorMode::kGray ? 1 : 3;
    HUBIMG_ASSIGN_OR_RETURN(
        Tensor batch, Tensor::create(DType::kFloat32, {static_cast<int64_t>(files.size()), height,
                                                       width, channels}));
    const size_t row_bytes = static_cast<size_t>(height * width * channels) * sizeof(float);
    auto* out = static_cast<uint8_t*>(batch.raw_mutable_data());
    for (const auto& file : files) {
      HUBIMG_ASSIGN_OR_RETURN(Tensor image, decode_image_file(file));
      if (mode == ColorMode::kGray) {
        HUBIMG_ASSIGN_OR_RETURN(image, rgb_to_luma(image));
      }
      auto resized = resize_bilinear(image, height, width, options);
      if (!resized.ok()) return resized.status().with_context(file.string());
      std::memcpy(out, resized->raw_data(), row_bytes);
      out += row_bytes;
    }
    return batch;
  });
}

}  // namespace hubimg
