#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>

#include "core/file_io.h"
#include "hubimg/image.h"
#include "image/decoders.h"

namespace hubimg {
namespace {

std::atomic<int64_t>& image_pixel_limit() {
  static std::atomic<int64_t> limit = [] {
    int64_t pixels = kDefaultMaxImagePixels;
    if (const char* env = std::getenv("HUBIMG_MAX_IMAGE_PIXELS")) {
      char* end = nullptr;
      const long long value = std::strtoll(env, &end, 10);
      if (end != env && *end == '\0' && value > 0)
        pixels = std::min<int64_t>(value, kMaxImagePixels);
    }
    return pixels;
  }();
  return limit;
}

}  // namespace

int64_t max_image_pixels() {
  return image_pixel_limit().load(std::memory_order_relaxed);
}

void set_max_image_pixels(int64_t pixels) {
  image_pixel_limit().store(std::clamp<int64_t>(pixels, 1, kMaxImagePixels),
                            std::memory_order_relaxed);
}

namespace image_internal {

Status check_dimensions(int64_t width, int64_t height, std::string_view format) {
  if (width <= 0 || height <= 0) {
    return data_loss(std::string(format) + ": invalid dimensions " + std::to_string(width) + "x" +
                     std::to_string(height));
  }
  const int64_t limit = max_image_pixels();
  if (width > limit || height > limit || width * height > limit) {
    return out_of_range(std::string(format) + ": image of " + std::to_string(width) + "x" +
                        std::to_string(height) + " pixels is larger than the limit of " +
                        std::to_string(limit) + " pixels (HUBIMG_MAX_IMAGE_PIXELS)");
  }
  return {};
}

}  // namespace image_internal

namespace {

using image_internal::DecodedImage;

bool starts_with(std::span<const uint8_t> b, std::string_view magic, size_t at = 0) {
  return b.size() >= at + magic.size() &&
         std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
}

Expected<DecodedImage> decode_any(std::span<const uint8_t> b) {
  if (starts_with(b, "\xff\xd8\xff")) return image_internal::decode_jpeg(b);
  if (starts_with(b, "\x89PNG\r\n\x1a\n")) return image_internal::decode_png(b);
  if (starts_with(b, "RIFF") && starts_with(b, "WEBP", 8)) return image_internal::decode_webp(b);
  if (starts_with(b, "BM")) return image_internal::decode_bmp(b);
  if (starts_with(b, "GIF87a") || starts_with(b, "GIF89a")) return image_internal::decode_gif(b);
  if (b.empty()) return data_loss("empty file");
  std::string head;
  for (size_t i = 0; i < std::min<size_t>(b.size(), 8); ++i) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x", b[i]);
    head += buf;
  }
  return invalid_argument("unknown image format (not JPEG, PNG, WebP, BMP or GIF; starts with " +
                          head + ")");
}

Expected<Tensor> to_float_tensor(const DecodedImage& img) {
  // Every element is written below; the buffer may be a recycled one (decoding a folder of
  // photos allocates the same large size again and again).
  Tensor t = Tensor::uninitialized(DType::kFloat32, {img.height, img.width, 3});
  float* out = t.mutable_data<float>();
  const size_t n = static_cast<size_t>(t.num_elements());
  if (img.bits == 16) {
    for (size_t i = 0; i < n; ++i)
      out[i] = static_cast<float>(img.rgb16[i]) * image_internal::kUnitScale16;
  } else {
    for (size_t i = 0; i < n; ++i)
      out[i] = static_cast<float>(img.rgb8[i]) * image_internal::kUnitScale8;
  }
  return t;
}

Expected<std::string> read_image_file(const std::filesystem::path& path) {
  constexpr uint64_t kMaxFileBytes = uint64_t{1} << 31;
  return catch_exceptions(path.string(), [&] { return read_regular_file(path, kMaxFileBytes); });
}

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

Expected<Tensor> decode_image(std::span<const uint8_t> bytes, std::string_view name_for_errors) {
  auto decoded = catch_exceptions("decoding", [&] { return decode_any(bytes); });
  if (!decoded.ok()) return decoded.status().with_context(name_for_errors);
  auto rgb = catch_exceptions(name_for_errors,
                              [&]() -> Expected<Tensor> { return to_float_tensor(*decoded); });
  if (!rgb.ok()) return rgb.status().with_context(name_for_errors);
  return rgb;
}

Expected<Tensor> decode_image_file(const std::filesystem::path& path) {
  HUBIMG_ASSIGN_OR_RETURN(const std::string bytes, read_image_file(path));
  return decode_image(as_bytes(bytes), path.string());
}

Expected<Tensor> image_internal::decode_file_resized(const std::filesystem::path& path,
                                                     int64_t height, int64_t width) {
  HUBIMG_ASSIGN_OR_RETURN(const std::string bytes, read_image_file(path));
  const std::string name = path.string();
  auto decoded = catch_exceptions("decoding", [&] { return decode_any(as_bytes(bytes)); });
  if (!decoded.ok()) return decoded.status().with_context(name);
  auto resized = catch_exceptions("resize_bilinear",
                                  [&] { return resize_decoded_bilinear(*decoded, height, width); });
  if (!resized.ok()) return resized.status().with_context(name);
  return resized;
}

bool has_image_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp" ||
         ext == ".gif";
}

Expected<Tensor> rgb_to_luma(const Tensor& rgb) {
  return catch_exceptions("rgb_to_luma", [&]() -> Expected<Tensor> {
    if (rgb.dtype() != DType::kFloat32 || rgb.rank() < 1 || rgb.dim(rgb.rank() - 1) != 3) {
      return invalid_argument("rgb_to_luma needs float32 [..., 3], got " + rgb.description());
    }
    Dims shape = rgb.shape();
    shape.back() = 1;
    Tensor out(DType::kFloat32, shape);
    const float* in = rgb.data<float>();
    float* o = out.mutable_data<float>();
    for (int64_t i = 0; i < out.num_elements(); ++i) {
      o[i] = 0.299f * in[3 * i] + 0.587f * in[3 * i + 1] + 0.114f * in[3 * i + 2];
    }
    return out;
  });
}

}  // namespace hubimg
