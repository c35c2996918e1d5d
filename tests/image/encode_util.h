// Test-only encoders (libpng, libjpeg, libwebp, giflib) and byte builders, to make images with
// known pixels. Encoding valid input does not fail, so these use the libraries' default error
// handling.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <jpeglib.h>
// clang-format on
#include <gif_lib.h>
#include <png.h>
#include <webp/encode.h>

namespace hubimg::testing {

using Bytes = std::vector<uint8_t>;

struct PngSpec {
  uint32_t width = 0;
  uint32_t height = 0;
  int color_type = PNG_COLOR_TYPE_RGB;
  int bit_depth = 8;
  bool interlaced = false;
  std::vector<png_color> palette;
  std::vector<png_byte> trns;  // palette alpha values
  // Rows packed as PNG stores them (16-bit samples big-endian, low bit depths packed).
  std::vector<Bytes> rows;
};

// Appends bytes (push_back rather than insert: GCC 12 reports false -Wstringop-overflow
// warnings for small vector inserts).
inline void append(Bytes& b, std::initializer_list<uint8_t> v) {
  for (uint8_t x : v) b.push_back(x);
}
inline void append(Bytes& b, const Bytes& v) {
  for (uint8_t x : v) b.push_back(x);
}

inline void png_append(png_structp png, png_bytep data, size_t n) {
  auto* out = static_cast<Bytes*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}

inline Bytes encode_png(const PngSpec& spec) {
  Bytes out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(png, &out, png_append, nullptr);
  png_set_IHDR(png, info, spec.width, spec.height, spec.bit_depth, spec.color_type,
               spec.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!spec.palette.empty()) {
    png_set_PLTE(png, info, spec.palette.data(), static_cast<int>(spec.palette.size()));
  }
  if (!spec.trns.empty()) {
    png_set_tRNS(png, info, spec.trns.data(), static_cast<int>(spec.trns.size()), nullptr);
  }
  png_write_info(png, info);
  std::vector<png_bytep> rows;
  for (const auto& r : spec.rows) rows.push_back(const_cast<png_bytep>(r.data()));
  png_write_image(png, rows.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

// RGB, gray (components 1) or CMYK (components 4, written with an Adobe marker) JPEG; `app1`
// is written as an APP1 marker when not empty.
inline Bytes encode_jpeg(int width, int height, int components, const Bytes& pixels,
                         int quality = 95, const Bytes& app1 = {}, bool progressive = false) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = width;
  cinfo.image_height = height;
  cinfo.input_components = components;
  cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 4 ? JCS_CMYK : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  if (progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  if (!app1.empty()) {
    jpeg_write_marker(&cinfo, JPEG_APP0 + 1, app1.data(), static_cast<unsigned>(app1.size()));
  }
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(&pixels[cinfo.next_scanline * width * components]);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  Bytes out(buffer, buffer + size);
  std::free(buffer);
  return out;
}

// An APP1 payload with a one-entry IFD0 holding the orientation tag.
inline Bytes exif_orientation_app1(int orientation, bool big_endian) {
  Bytes b = {'E', 'x', 'i', 'f', 0, 0};
  auto u16 = [&](uint16_t v) {
    if (big_endian) {
      b.push_back(v >> 8), b.push_back(v & 0xff);
    } else {
      b.push_back(v & 0xff), b.push_back(v >> 8);
    }
  };
  auto u32 = [&](uint32_t v) {
    if (big_endian) {
      u16(v >> 16), u16(v & 0xffff);
    } else {
      u16(v & 0xffff), u16(v >> 16);
    }
  };
  b.push_back(big_endian ? 'M' : 'I');
  b.push_back(big_endian ? 'M' : 'I');
  u16(42);
  u32(8);       // IFD0 offset
  u16(1);       // entry count
  u16(0x0112);  // orientation
  u16(3);       // SHORT
  u32(1);
  u16(static_cast<uint16_t>(orientation));
  u16(0);
  u32(0);  // no next IFD
  return b;
}

inline Bytes webp_bytes(uint8_t* data, size_t size) {
  Bytes out(data, data + size);
  WebPFree(data);
  return out;
}

inline Bytes encode_webp_lossless_rgb(int w, int h, const Bytes& rgb) {
  uint8_t* data = nullptr;
  size_t size = WebPEncodeLosslessRGB(rgb.data(), w, h, w * 3, &data);
  return webp_bytes(data, size);
}
inline Bytes encode_webp_lossless_rgba(int w, int h, const Bytes& rgba) {
  uint8_t* data = nullptr;
  size_t size = WebPEncodeLosslessRGBA(rgba.data(), w, h, w * 4, &data);
  return webp_bytes(data, size);
}
inline Bytes encode_webp_lossy_rgb(int w, int h, const Bytes& rgb, float quality) {
  uint8_t* data = nullptr;
  size_t size = WebPEncodeRGB(rgb.data(), w, h, w * 3, quality, &data);
  return webp_bytes(data, size);
}

inline void put_le16(Bytes& b, size_t at, uint32_t v) {
  if (at + 2 > b.size()) std::abort();
  b[at] = v & 0xff;
  b[at + 1] = (v >> 8) & 0xff;
}
inline void put_le32(Bytes& b, size_t at, uint32_t v) {
  if (at + 4 > b.size()) std::abort();
  for (int i = 0; i < 4; ++i) b[at + i] = (v >> (8 * i)) & 0xff;
}

// File header + BITMAPINFOHEADER (40 bytes) + `extra` (masks, palette) + pixel rows as given.
inline Bytes make_bmp(int32_t width, int32_t height, uint16_t bpp, uint32_t compression,
                      const Bytes& extra, const Bytes& pixel_data, uint32_t colors_used = 0) {
  Bytes b(14 + 40, 0);
  b[0] = 'B';
  b[1] = 'M';
  const uint32_t offset = static_cast<uint32_t>(14 + 40 + extra.size());
  put_le32(b, 2, static_cast<uint32_t>(offset + pixel_data.size()));
  put_le32(b, 10, offset);
  put_le32(b, 14, 40);
  put_le32(b, 18, static_cast<uint32_t>(width));
  put_le32(b, 22, static_cast<uint32_t>(height));
  put_le16(b, 26, 1);
  put_le16(b, 28, bpp);
  put_le32(b, 30, compression);
  put_le32(b, 34, static_cast<uint32_t>(pixel_data.size()));
  put_le32(b, 46, colors_used);
  append(b, extra);
  append(b, pixel_data);
  return b;
}

struct GifFrameSpec {
  int left = 0, top = 0, width = 0, height = 0;
  bool interlaced = false;
  std::vector<GifColorType> palette;       // local color map (a power of 2 entries), or none
  int transparent = NO_TRANSPARENT_COLOR;  // written as a graphic control extension
  Bytes indices;                           // height rows of width color indices, top down
};

struct GifSpec {
  int screen_width = 0, screen_height = 0;
  std::vector<GifColorType> palette;  // global color map (a power of 2 entries), or none
  std::vector<GifFrameSpec> frames;
};

inline int gif_append(GifFileType* gif, const GifByteType* data, int n) {
  auto* out = static_cast<Bytes*>(gif->UserData);
  out->insert(out->end(), data, data + n);
  return n;
}

// The frames written in order; interlaced frames have their rows stored in the four passes'
// order, as GIF requires (giflib's encoder writes the rows in the order it is given them).
inline Bytes encode_gif(const GifSpec& spec) {
  Bytes out;
  int error = 0;
  GifFileType* gif = EGifOpen(&out, gif_append, &error);
  EGifSetGifVersion(gif, true);
  auto color_map = [](const std::vector<GifColorType>& colors) -> ColorMapObject* {
    return colors.empty() ? nullptr
                          : GifMakeMapObject(static_cast<int>(colors.size()), colors.data());
  };
  ColorMapObject* global = color_map(spec.palette);
  EGifPutScreenDesc(gif, spec.screen_width, spec.screen_height, 8, 0, global);
  for (const GifFrameSpec& f : spec.frames) {
    if (f.transparent != NO_TRANSPARENT_COLOR) {
      GraphicsControlBlock gcb{DISPOSAL_UNSPECIFIED, false, 0, f.transparent};
      GifByteType extension[4];
      const size_t length = EGifGCBToExtension(&gcb, extension);
      EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(length), extension);
    }
    ColorMapObject* local = color_map(f.palette);
    EGifPutImageDesc(gif, f.left, f.top, f.width, f.height, f.interlaced, local);
    std::vector<int> rows;
    if (f.interlaced) {
      for (auto [start, step] : {std::pair{0, 8}, {4, 8}, {2, 4}, {1, 2}}) {
        for (int y = start; y < f.height; y += step) rows.push_back(y);
      }
    } else {
      for (int y = 0; y < f.height; ++y) rows.push_back(y);
    }
    for (int y : rows) {
      Bytes row(f.indices.begin() + y * f.width, f.indices.begin() + (y + 1) * f.width);
      EGifPutLine(gif, row.data(), f.width);
    }
    GifFreeMapObject(local);
  }
  EGifCloseFile(gif, &error);
  GifFreeMapObject(global);
  return out;
}

}  // namespace hubimg::testing
