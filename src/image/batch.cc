#include <cstring>

#include "core/file_io.h"
#include "core/thread_pool.h"
#include "hubimg/image.h"
#include "image/decoders.h"

namespace hubimg {

Expected<Tensor> load_image_batch(std::span<const std::filesystem::path> files, int64_t height,
                                  int64_t width, ColorMode mode, ResizeOptions options,
                                  std::vector<ImageLoadFailure>* failures) {
  return catch_exceptions("load_image_batch", [&]() -> Expected<Tensor> {
    if (height <= 0 || width <= 0) {
      return invalid_argument("load_image_batch: size must be positive, got " +
                              std::to_string(height) + "x" + std::to_string(width));
    }
    const int64_t channels = mode == ColorMode::kGray ? 1 : 3;
    const auto count = static_cast<int64_t>(files.size());
    HUBIMG_RETURN_IF_ERROR(check_tensor_size(DType::kFloat32, {count, height, width, channels}));
    // Rows of unreadable images are never read: they are left out below.
    Tensor batch = Tensor::uninitialized(DType::kFloat32, {count, height, width, channels});
    const size_t row_bytes = static_cast<size_t>(height * width * channels) * sizeof(float);
    auto* rows = static_cast<uint8_t*>(batch.raw_mutable_data());
    std::vector<Status> statuses(files.size());
    ThreadPool::global().parallel_for(count, [&](int64_t i) {
      const std::filesystem::path& file = files[static_cast<size_t>(i)];
      statuses[static_cast<size_t>(i)] = catch_exceptions(file.string(), [&]() -> Status {
        Tensor resized;
        if (mode == ColorMode::kRgb && !options.antialias &&
            options.method == ResizeMethod::kBilinear) {
          HUBIMG_ASSIGN_OR_RETURN(resized,
                                  image_internal::decode_file_resized(file, height, width));
        } else {
          HUBIMG_ASSIGN_OR_RETURN(Tensor image, decode_image_file(file));
          if (mode == ColorMode::kGray) {
            HUBIMG_ASSIGN_OR_RETURN(image, rgb_to_luma(image));
          }
          auto scaled = resize_image(image, height, width, options);
          if (!scaled.ok()) return scaled.status().with_context(file.string());
          resized = std::move(scaled).value();
        }
        std::memcpy(rows + static_cast<size_t>(i) * row_bytes, resized.raw_data(), row_bytes);
        return {};
      });
    });
    int64_t kept = 0;
    for (size_t i = 0; i < statuses.size(); ++i) {
      if (!statuses[i].ok()) {
        if (failures == nullptr) return statuses[i];
        failures->push_back({i, std::move(statuses[i])});
        continue;
      }
      if (kept != static_cast<int64_t>(i)) {
        std::memcpy(rows + static_cast<size_t>(kept) * row_bytes, rows + i * row_bytes, row_bytes);
      }
      ++kept;
    }
    if (kept == count) return batch;
    HUBIMG_ASSIGN_OR_RETURN(Tensor readable,
                            Tensor::create(DType::kFloat32, {kept, height, width, channels}));
    if (kept > 0) std::memcpy(readable.raw_mutable_data(), rows, readable.byte_size());
    return readable;
  });
}

}  // namespace hubimg
