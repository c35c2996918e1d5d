#include <webp/decode.h>

#include <string>

#include "image/decoders.h"

namespace hubimg::image_internal {
namespace {

const char* vp8_status_name(VP8StatusCode code) {
  switch (code) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "user abort";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "not enough data (file is truncated)";
  }
  return "unknown error";
}

}  // namespace

Expected<DecodedImage> decode_webp(std::span<const uint8_t> bytes) {
  WebPBitstreamFeatures features;
  VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &features);
  if (status != VP8_STATUS_OK) {
    return data_loss(std::string("WebP: ") + vp8_status_name(status));
  }
  if (features.has_animation) return unimplemented("WebP: animated WebP is not supported");
  HUBIMG_RETURN_IF_ERROR(check_dimensions(features.width, features.height, "WebP"));
  DecodedImage img;
  img.width = features.width;
  img.height = features.height;
  const size_t stride = static_cast<size_t>(img.width) * 3;
  img.rgb8.resize(stride * static_cast<size_t>(img.height));
  // Decodes straight to RGB: alpha, if any, is dropped without premultiplying.
  if (WebPDecodeRGBInto(bytes.data(), bytes.size(), img.rgb8.data(), img.rgb8.size(),
                        static_cast<int>(stride)) == nullptr) {
    return data_loss("WebP: cannot decode the image data (corrupted or truncated)");
  }
  return img;
}

}  // namespace hubimg::image_internal
