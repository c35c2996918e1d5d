// PNG through libpng. libpng reports fatal errors through our error callback, which longjmps
// to png_jmpbuf; the setjmp calls sit in small step functions with only trivially destructible
// locals, and every C++ object lives in decode_png, which no jump crosses.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "image/decoders.h"

namespace hubimg::image_internal {
namespace {

struct PngSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
  char message[256];
};

void on_png_read(png_structp png, png_bytep out, size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "unexpected end of file (file is truncated)");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

void on_png_error(png_structp png, png_const_charp message) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(src->message, sizeof src->message, "%s", message);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

struct PngState {
  PngSource src{};
  png_structp png = nullptr;
  png_infop info = nullptr;

  PngState() = default;
  ~PngState() {
    if (png != nullptr) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
  PngState(const PngState&) = delete;
  PngState& operator=(const PngState&) = delete;
};

struct PngLayout {
  png_uint_32 width;
  png_uint_32 height;
  int channels;   // after our transforms: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
  int bit_depth;  // after our transforms: 8 or 16
  size_t rowbytes;
  bool interlaced;
};

// Landing frame for longjmp: trivially destructible locals only.
bool png_read_header_step(PngState* s, PngLayout* layout) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_set_read_fn(s->png, &s->src, on_png_read);
  // Dimensions are checked against max_image_pixels() by the caller; this only stops absurd
  // single dimensions early.
  png_set_user_limits(s->png, 1u << 28, 1u << 28);
  png_read_info(s->png, s->info);
  png_uint_32 width = png_get_image_width(s->png, s->info);
  png_uint_32 height = png_get_image_height(s->png, s->info);
  int color_type = png_get_color_type(s->png, s->info);
  int bit_depth = png_get_bit_depth(s->png, s->info);
  // Palette -> RGB and low-bit gray -> 8 bit. A tRNS chunk may add an alpha channel, which
  // the caller drops, as decode_png(channels=3) does.
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
  png_set_interlace_handling(s->png);
  png_read_update_info(s->png, s->info);
  layout->width = width;
  layout->height = height;
  layout->channels = png_get_channels(s->png, s->info);
  layout->bit_depth = png_get_bit_depth(s->png, s->info);
  layout->rowbytes = png_get_rowbytes(s->png, s->info);
  layout->interlaced = png_get_interlace_type(s->png, s->info) != PNG_INTERLACE_NONE;
  return true;
}

bool png_read_row_step(PngState* s, png_bytep row) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_read_row(s->png, row, nullptr);
  return true;
}

bool png_read_end_step(PngState* s) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_read_end(s->png, nullptr);
  return true;
}

bool png_read_rows_step(PngState* s, png_bytepp rows) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  png_read_image(s->png, rows);
  png_read_end(s->png, nullptr);
  return true;
}

}  // namespace

Expected<DecodedImage> decode_png(std::span<const uint8_t> bytes) {
  auto s = std::make_unique<PngState>();
  s->src.data = bytes.data();
  s->src.size = bytes.size();
  s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s->src, on_png_error, on_png_warning);
  if (s->png == nullptr) return internal_error("PNG: cannot create the libpng reader");
  s->info = png_create_info_struct(s->png);
  if (s->info == nullptr) return internal_error("PNG: cannot create the libpng info struct");
  auto fail = [&] { return data_loss(std::string("PNG: ") + s->src.message); };

  PngLayout layout{};
  if (!png_read_header_step(s.get(), &layout)) return fail();
  HUBIMG_RETURN_IF_ERROR(check_dimensions(layout.width, layout.height, "PNG"));
  const int channels = layout.channels;
  const int sample_bytes = layout.bit_depth == 16 ? 2 : 1;
  if (channels < 1 || channels > 4 || (layout.bit_depth != 8 && layout.bit_depth != 16) ||
      layout.rowbytes != size_t{layout.width} * channels * sample_bytes) {
    return unimplemented("PNG: unexpected pixel layout (" + std::to_string(channels) +
                         " channels, " + std::to_string(layout.bit_depth) + " bits)");
  }
  const size_t width = layout.width;
  const size_t height = layout.height;
  DecodedImage img;
  img.width = static_cast<int64_t>(width);
  img.height = static_cast<int64_t>(height);
  img.bits = layout.bit_depth;
  // Gray (with or without alpha) is replicated to RGB; alpha is dropped.
  const int color_channels = channels >= 3 ? 3 : 1;
  auto append_rows = [&](const uint8_t* raw, size_t pixels) {
    if (sample_bytes == 1) {
      const size_t at = img.rgb8.size();
      img.rgb8.resize(at + pixels * 3);
      uint8_t* out = img.rgb8.data() + at;
      for (size_t i = 0; i < pixels; ++i) {
        const uint8_t* p = raw + i * channels;
        for (int ch = 0; ch < 3; ++ch) out[i * 3 + ch] = p[color_channels == 3 ? ch : 0];
      }
    } else {
      const size_t at = img.rgb16.size();
      img.rgb16.resize(at + pixels * 3);
      uint16_t* out = img.rgb16.data() + at;
      for (size_t i = 0; i < pixels; ++i) {
        const uint8_t* p = raw + i * channels * 2;
        for (int ch = 0; ch < 3; ++ch) {
          const uint8_t* q = p + 2 * (color_channels == 3 ? ch : 0);
          out[i * 3 + ch] = static_cast<uint16_t>((q[0] << 8) | q[1]);  // big-endian
        }
      }
    }
  };
  // Reserved, not filled: memory is only touched as rows arrive, so a header that promises
  // more pixels than the file holds costs little before libpng reports the missing data.
  if (sample_bytes == 1) {
    img.rgb8.reserve(width * height * 3);
  } else {
    img.rgb16.reserve(width * height * 3);
  }
  if (layout.interlaced) {
    // Adam7 passes revisit every row, so the whole image is read first (within the budget),
    // into memory left uninitialised: pages are touched as the passes reach them.
    auto raw = std::make_unique_for_overwrite<uint8_t[]>(layout.rowbytes * height);
    std::vector<png_bytep> rows(height);
    for (size_t y = 0; y < height; ++y) rows[y] = raw.get() + y * layout.rowbytes;
    if (!png_read_rows_step(s.get(), rows.data())) return fail();
    append_rows(raw.get(), width * height);
    return img;
  }
  std::vector<uint8_t> row(layout.rowbytes);
  for (size_t y = 0; y < height; ++y) {
    if (!png_read_row_step(s.get(), row.data())) return fail();
    append_rows(row.data(), width);
  }
  if (!png_read_end_step(s.get())) return fail();
  return img;
}

}  // namespace hubimg::image_internal
