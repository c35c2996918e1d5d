// GIF through giflib: the first frame, as tf.io.decode_image(..., expand_animations=False) gives
// it (what Keras's image_dataset_from_directory decodes a .gif with). TensorFlow's gif_io.cc
// sizes the canvas to the widest and the tallest frame of the file (not the logical screen),
// fills what the first frame leaves uncovered, and its transparent pixels, with black, and
// refuses a color index outside the frame's color map.
//
// TensorFlow decodes every frame (DGifSlurp) to get there; here the record loop decodes the
// first frame only and skips the data of the others, reading just their descriptors, so a long
// animation costs its file size, not its frame count times its canvas. Where a file breaks off
// or turns to garbage after the first frame, the frames described up to there size the canvas
// (TensorFlow, which logs and goes on after such errors, gives the same image).
#include <gif_lib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "image/decoders.h"

namespace hubimg::image_internal {
namespace {

struct GifSource {
  std::span<const uint8_t> bytes;
  size_t pos = 0;
};

int read_gif_bytes(GifFileType* gif, GifByteType* out, int wanted) {
  auto* src = static_cast<GifSource*>(gif->UserData);
  const size_t n = std::min(static_cast<size_t>(std::max(wanted, 0)), src->bytes.size() - src->pos);
  std::memcpy(out, src->bytes.data() + src->pos, n);
  src->pos += n;
  return static_cast<int>(n);
}

struct GifCloser {
  void operator()(GifFileType* gif) const {
    int error = D_GIF_SUCCEEDED;
    DGifCloseFile(gif, &error);
  }
};

std::string gif_error_name(int code) {
  const char* name = GifErrorString(code);
  return name != nullptr ? name : "error " + std::to_string(code);
}

Status gif_failure(const GifFileType& gif, const std::string& while_doing) {
  return data_loss("GIF: " + while_doing + ": " + gif_error_name(gif.Error));
}

// Skips the LZW data of an image whose pixels are not needed.
bool skip_image_data(GifFileType* gif) {
  int code_size = 0;
  GifByteType* block = nullptr;
  if (DGifGetCode(gif, &code_size, &block) == GIF_ERROR) return false;
  while (block != nullptr) {
    if (DGifGetCodeNext(gif, &block) == GIF_ERROR) return false;
  }
  return true;
}

struct FirstFrame {
  GifImageDesc desc{};
  std::vector<GifColorType> colors;  // its local color map, else the global one; may be empty
  std::vector<GifByteType> indices;  // desc.Height rows of desc.Width color indices, top down
  int transparent = NO_TRANSPARENT_COLOR;
};

// Reads the first frame's color indices, putting the rows of an interlaced image in place (its
// four passes store rows 0, 8, 16, ...; then 4, 12, ...; then 2, 6, ...; then 1, 3, ...).
Status read_first_frame(GifFileType* gif, FirstFrame& frame) {
  frame.desc = gif->Image;
  const ColorMapObject* map = gif->Image.ColorMap ? gif->Image.ColorMap : gif->SColorMap;
  if (map != nullptr && map->Colors != nullptr && map->ColorCount > 0) {
    frame.colors.assign(map->Colors, map->Colors + map->ColorCount);
  }
  const int64_t width = frame.desc.Width, height = frame.desc.Height;
  if (width <= 0 || height <= 0) {
    if (!skip_image_data(gif)) return gif_failure(*gif, "reading the first frame");
    return {};
  }
  HUBIMG_RETURN_IF_ERROR(check_dimensions(width, height, "GIF"));
  frame.indices.resize(static_cast<size_t>(width * height));
  auto read_row = [&](int64_t y) {
    return DGifGetLine(gif, frame.indices.data() + y * width, static_cast<int>(width)) == GIF_OK;
  };
  if (frame.desc.Interlace) {
    static constexpr int64_t kPassStart[] = {0, 4, 2, 1};
    static constexpr int64_t kPassStep[] = {8, 8, 4, 2};
    for (int pass = 0; pass < 4; ++pass) {
      for (int64_t y = kPassStart[pass]; y < height; y += kPassStep[pass]) {
        if (!read_row(y)) return gif_failure(*gif, "reading the first frame");
      }
    }
  } else {
    for (int64_t y = 0; y < height; ++y) {
      if (!read_row(y)) return gif_failure(*gif, "reading the first frame");
    }
  }
  return {};
}

}  // namespace

Expected<DecodedImage> decode_gif(std::span<const uint8_t> bytes) {
  GifSource source{bytes};
  int open_error = D_GIF_SUCCEEDED;
  std::unique_ptr<GifFileType, GifCloser> gif(DGifOpen(&source, read_gif_bytes, &open_error));
  if (gif == nullptr)
    return data_loss("GIF: cannot read the header: " + gif_error_name(open_error));

  FirstFrame first;
  bool have_first = false;
  int64_t canvas_width = 0, canvas_height = 0;
  bool first_gce_seen = false;
  for (bool more = true; more;) {
    GifRecordType record = UNDEFINED_RECORD_TYPE;
    if (DGifGetRecordType(gif.get(), &record) == GIF_ERROR) {
      if (!have_first) return gif_failure(*gif, "reading the first frame's records");
      break;
    }
    switch (record) {
      case TERMINATE_RECORD_TYPE: more = false; break;
      case EXTENSION_RECORD_TYPE: {
        int code = 0;
        GifByteType* block = nullptr;
        bool ok = DGifGetExtension(gif.get(), &code, &block) == GIF_OK;
        // The first frame's transparent index: the first graphic control extension before it
        // (DGifSavedExtensionToGCB); one of the wrong length means no transparency.
        if (ok && !have_first && code == GRAPHICS_EXT_FUNC_CODE && !first_gce_seen &&
            block != nullptr) {
          first_gce_seen = true;
          GraphicsControlBlock gcb{};
          if (DGifExtensionToGCB(block[0], block + 1, &gcb) == GIF_OK) {
            first.transparent = gcb.TransparentColor;
          }
        }
        while (ok && block != nullptr) ok = DGifGetExtensionNext(gif.get(), &block) == GIF_OK;
        if (!ok) {
          if (!have_first) return gif_failure(*gif, "reading an extension block");
          more = false;
        }
        break;
      }
      case IMAGE_DESC_RECORD_TYPE: {
        if (DGifGetImageDesc(gif.get()) == GIF_ERROR) {
          if (!have_first) return gif_failure(*gif, "reading the first frame's descriptor");
          more = false;
          break;
        }
        canvas_width = std::max<int64_t>(canvas_width, gif->Image.Width);
        canvas_height = std::max<int64_t>(canvas_height, gif->Image.Height);
        if (!have_first) {
          HUBIMG_RETURN_IF_ERROR(read_first_frame(gif.get(), first));
          have_first = true;
        } else if (!skip_image_data(gif.get())) {
          more = false;
        }
        break;
      }
      default: more = false; break;
    }
  }
  if (!have_first) return data_loss("GIF: the file holds no image");
  HUBIMG_RETURN_IF_ERROR(check_dimensions(canvas_width, canvas_height, "GIF"));
  if (first.colors.empty()) return data_loss("GIF: missing color map for frame 0");

  DecodedImage img;
  img.width = canvas_width;
  img.height = canvas_height;
  img.rgb8.assign(static_cast<size_t>(canvas_width * canvas_height * 3), 0);
  const int64_t left = first.desc.Left, top = first.desc.Top;
  const int64_t right = std::min<int64_t>(left + first.desc.Width, canvas_width);
  const int64_t bottom = std::min<int64_t>(top + first.desc.Height, canvas_height);
  for (int64_t y = top; y < bottom; ++y) {
    const GifByteType* row = first.indices.data() + (y - top) * first.desc.Width;
    uint8_t* out = img.rgb8.data() + (y * canvas_width) * 3;
    for (int64_t x = left; x < right; ++x) {
      const int index = row[x - left];
      if (index == first.transparent) continue;
      if (index >= static_cast<int>(first.colors.size())) {
        return data_loss("GIF: found color index " + std::to_string(index) +
                         " outside of color map range " + std::to_string(first.colors.size()));
      }
      const GifColorType& color = first.colors[static_cast<size_t>(index)];
      out[x * 3 + 0] = color.Red;
      out[x * 3 + 1] = color.Green;
      out[x * 3 + 2] = color.Blue;
    }
  }
  return img;
}

}  // namespace hubimg::image_internal
