// JPEG through libjpeg-turbo. libjpeg reports fatal errors by calling error_exit, which must
// not return; ours longjmps back into the small step functions below. Those functions hold
// only trivially destructible locals, so the jump skips no C++ destructors; every C++ object
// lives in decode_jpeg, which is never jumped over.
#include <csetjmp>
#include <cstring>
#include <memory>
#include <string>

// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include "image/decoders.h"

namespace hubimg::image_internal {
namespace {

struct JpegErrorManager {
  jpeg_error_mgr pub;  // first member: libjpeg sees a jpeg_error_mgr*
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool hit_end_of_data;
};

void on_jpeg_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (corrupt-data messages) are not printed; running out of data is remembered, so a
// truncated file is an error rather than an image padded with gray.
void on_jpeg_message(j_common_ptr cinfo, int level) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  if (level < 0) {
    ++cinfo->err->num_warnings;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
      err->hit_end_of_data = true;
      (*cinfo->err->format_message)(cinfo, err->message);
    }
  }
}

struct JpegState {
  jpeg_decompress_struct cinfo;
  JpegErrorManager err;
  bool created = false;

  JpegState() {
    std::memset(&cinfo, 0, sizeof cinfo);
    std::memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_jpeg_error;
    err.pub.emit_message = on_jpeg_message;
  }
  ~JpegState() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
  JpegState(const JpegState&) = delete;
  JpegState& operator=(const JpegState&) = delete;
};

struct JpegHeaderInfo {
  JDIMENSION width;
  JDIMENSION height;
  int components;  // of the output: 3 (RGB) or 4 (CMYK)
  bool cmyk;
  bool adobe;
};

// Landing frame for longjmp: trivially destructible locals only.
bool jpeg_read_header_step(JpegState* s, const uint8_t* data, size_t size, JpegHeaderInfo* info) {
  if (setjmp(s->err.jump)) return false;
  jpeg_create_decompress(&s->cinfo);
  s->created = true;
  jpeg_mem_src(&s->cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&s->cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&s->cinfo, TRUE);
  jpeg_decompress_struct& c = s->cinfo;
  info->cmyk = c.jpeg_color_space == JCS_CMYK || c.jpeg_color_space == JCS_YCCK;
  info->adobe = c.saw_Adobe_marker;
  // tf.io.decode_jpeg defaults: integer slow IDCT, fancy upsampling, full scale.
  c.out_color_space = info->cmyk ? JCS_CMYK : JCS_RGB;
  c.dct_method = JDCT_ISLOW;
  c.do_fancy_upsampling = TRUE;
  c.scale_num = 1;
  c.scale_denom = 1;
  jpeg_calc_output_dimensions(&c);
  info->width = c.output_width;
  info->height = c.output_height;
  info->components = c.output_components;
  return true;
}

// Sets *truncated when the data ran out before the last row was decoded. Running out while
// looking for the end-of-image marker after the last row is tolerated.
bool jpeg_decode_step(JpegState* s, uint8_t* out, size_t stride, bool* truncated) {
  if (setjmp(s->err.jump)) return false;
  jpeg_decompress_struct& c = s->cinfo;
  jpeg_start_decompress(&c);
  while (c.output_scanline < c.output_height) {
    JSAMPROW row = out + static_cast<size_t>(c.output_scanline) * stride;
    if (jpeg_read_scanlines(&c, &row, 1) != 1 || s->err.hit_end_of_data) {
      *truncated = true;
      return true;
    }
  }
  jpeg_finish_decompress(&c);
  return true;
}

}  // namespace

Expected<DecodedImage> decode_jpeg(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return data_loss("JPEG: empty file");
  auto state = std::make_unique<JpegState>();
  JpegHeaderInfo info{};
  if (!jpeg_read_header_step(state.get(), bytes.data(), bytes.size(), &info)) {
    return data_loss(std::string("JPEG: ") + state->err.message);
  }
  if (state->err.hit_end_of_data) return data_loss("JPEG: file is truncated in its header");
  HUBIMG_RETURN_IF_ERROR(check_dimensions(info.width, info.height, "JPEG"));
  if (info.components != 3 && info.components != 4) {
    return unimplemented("JPEG: unexpected output component count " +
                         std::to_string(info.components));
  }
  int orientation = 1;
  for (jpeg_saved_marker_ptr m = state->cinfo.marker_list; m != nullptr; m = m->next) {
    if (m->marker != JPEG_APP0 + 1) continue;
    int o = exif_orientation({m->data, m->data_length});
    if (o != 1) {
      orientation = o;
      break;
    }
  }

  const size_t width = info.width;
  const size_t height = info.height;
  const size_t stride = width * static_cast<size_t>(info.components);
  std::vector<uint8_t> raw(stride * height);
  bool truncated = false;
  if (!jpeg_decode_step(state.get(), raw.data(), stride, &truncated)) {
    return data_loss(std::string("JPEG: ") + state->err.message);
  }
  if (truncated) {
    return data_loss("JPEG: file is truncated (image data ends at row " +
                     std::to_string(state->cinfo.output_scanline) + " of " +
                     std::to_string(height) + ")");
  }

  DecodedImage img;
  img.width = static_cast<int64_t>(width);
  img.height = static_cast<int64_t>(height);
  if (info.cmyk) {
    // As TensorFlow: Adobe files store inverted CMYK.
    img.rgb8.resize(width * height * 3);
    for (size_t i = 0; i < width * height; ++i) {
      const uint8_t* p = &raw[i * 4];
      unsigned k = p[3];
      for (int ch = 0; ch < 3; ++ch) {
        unsigned c = p[ch];
        img.rgb8[i * 3 + ch] =
            static_cast<uint8_t>(info.adobe ? c * k / 255 : (255 - c) * (255 - k) / 255);
      }
    }
  } else {
    img.rgb8 = std::move(raw);
  }
  if (orientation != 1) img = apply_orientation(img, orientation);
  return img;
}

}  // namespace hubimg::image_internal
