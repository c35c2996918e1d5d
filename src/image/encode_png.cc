// PNG encoding of float [H, W, C] images in [0, 1] (C = 1 or 3), e.g. to look at inputs.
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "core/file_io.h"
#include "hubimg/image.h"

namespace hubimg {
namespace {

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

// libpng reports errors by longjmp; this function holds no C++ objects with destructors.
bool write_rows(FILE* file, png_uint_32 width, png_uint_32 height, int color_type,
                png_bytep* rows) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (png == nullptr) return false;
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_init_io(png, file);
  png_set_IHDR(png, info, width, height, 8, color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

Status write_png(const std::filesystem::path& path, const Tensor& image) {
  return catch_exceptions(path.string(), [&]() -> Status {
    const std::string where = path.string();
    if (image.dtype() != DType::kFloat32 || image.rank() != 3 ||
        (image.dim(2) != 1 && image.dim(2) != 3) || image.dim(0) <= 0 || image.dim(1) <= 0 ||
        image.dim(0) > (1 << 24) || image.dim(1) > (1 << 24)) {
      return invalid_argument(where + ": write_png wants float32 [height, width, 1 or 3], got " +
                              image.description());
    }
    const int64_t h = image.dim(0), w = image.dim(1), c = image.dim(2);
    std::vector<png_byte> pixels(static_cast<size_t>(h * w * c));
    const float* src = image.data<float>();
    for (size_t i = 0; i < pixels.size(); ++i) {
      float v = std::clamp(src[i], 0.0f, 1.0f);
      pixels[i] = static_cast<png_byte>(std::lround(v * 255.0f));
    }
    std::vector<png_bytep> rows(static_cast<size_t>(h));
    for (int64_t y = 0; y < h; ++y) rows[static_cast<size_t>(y)] = pixels.data() + y * w * c;
    std::unique_ptr<FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
    if (!file) return not_found(where + ": cannot open for writing");
    if (!write_rows(file.get(), static_cast<png_uint_32>(w), static_cast<png_uint_32>(h),
                    c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, rows.data())) {
      return internal_error(where + ": libpng failed to write the image");
    }
    if (std::fflush(file.get()) != 0) return internal_error(where + ": write failed");
    return {};
  });
}

}  // namespace hubimg
