// Image decoding and resizing with TensorFlow's image-pipeline semantics.
//
// Decoding yields float32 [H, W, 3] RGB in [0, 1] (8-bit samples times float(1/255), 16-bit
// PNG samples times float(1/65535), as tf.image.convert_image_dtype does); gray images are
// replicated to three channels and alpha is dropped. JPEG is decoded as tf.io.decode_jpeg does
// by default (libjpeg-turbo, integer IDCT, fancy upsampling) and then turned upright by its
// EXIF orientation.
//
// Resizing follows TensorFlow's CPU kernels operation for operation, in float32.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg {

// Decoders refuse images with more pixels than this before allocating anything for them: the
// hard ceiling, whatever max_image_pixels() says.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 28;
// The pixel budget per image, checked against the declared dimensions before decoding. A
// decoded image costs about 15 bytes a pixel at its peak (8-bit samples and the float32
// result), so the default of 50 megapixels keeps one image under 0.8 GB. The environment
// variable HUBIMG_MAX_IMAGE_PIXELS (read once at first use) sets it; set_max_image_pixels()
// overrides both for the whole process. Values above kMaxImagePixels are clamped to it.
inline constexpr int64_t kDefaultMaxImagePixels = 50'000'000;
int64_t max_image_pixels();
void set_max_image_pixels(int64_t pixels);

// Detects the format by its magic bytes: JPEG, PNG, WebP, BMP or GIF (its first frame, as
// tf.io.decode_image(expand_animations=False) gives it). Errors start with `name_for_errors`.
Expected<Tensor> decode_image(std::span<const uint8_t> bytes, std::string_view name_for_errors);
Expected<Tensor> decode_image_file(const std::filesystem::path& path);

// Whether the file name ends in an extension of a format decode_image reads (.jpg, .jpeg, .png,
// .webp, .bmp, .gif; any case): what image folders are scanned for.
bool has_image_extension(const std::filesystem::path& path);

enum class ColorMode { kRgb, kGray };

// float32 [H, W, 3] RGB -> [H, W, 1] luma 0.299 R + 0.587 G + 0.114 B (also for rank 4).
Expected<Tensor> rgb_to_luma(const Tensor& rgb);

// tf.image.resize's `method`.
enum class ResizeMethod {
  kBilinear,
  kNearest,
  kBicubic,
  kArea,
  kLanczos3,
  kLanczos5,
  kGaussian,
  kMitchellCubic,
};

struct ResizeOptions {
  bool antialias = false;
  ResizeMethod method = ResizeMethod::kBilinear;
};

// tf.image.resize(images, [height, width], method, antialias) (tf.image.resize v2): images is
// [H, W, C] or [N, H, W, C] of any real dtype; the result has the same rank and is float32
// (nearest: the images' dtype). bilinear / bicubic: ResizeBilinear / ResizeBicubic with half-pixel
// centers, or with antialias ScaleAndTranslate with the triangle / Keys cubic kernel (widened by
// 1/scale when downscaling); nearest: ResizeNearestNeighbor with half-pixel centers; area:
// ResizeArea; lanczos3/5, gaussian, mitchellcubic: ScaleAndTranslate with that kernel. nearest
// and area ignore antialias, as TensorFlow does.
Expected<Tensor> resize_image(const Tensor& images, int64_t height, int64_t width,
                              ResizeOptions options = {});
// tf.image.ResizeMethod's names: "bilinear", "nearest", "bicubic", "area", "lanczos3",
// "lanczos5", "gaussian", "mitchellcubic".
Expected<ResizeMethod> resize_method_from_name(std::string_view name);

// resize_image with method bilinear, whatever `options.method` says.
Expected<Tensor> resize_bilinear(const Tensor& images, int64_t height, int64_t width,
                                 ResizeOptions options = {});

// tf.image.resize(..., method='nearest'): ResizeNearestNeighbor(half_pixel_centers=True).
// The result keeps the input dtype.
Expected<Tensor> resize_nearest(const Tensor& images, int64_t height, int64_t width);

// The attributes of TensorFlow's ResizeBilinear / ResizeNearestNeighbor ops. align_corners
// uses scale (in - 1) / (out - 1); half_pixel_centers maps out -> (out + 0.5) * scale - 0.5;
// neither is the legacy in = out * scale. Both set at once is an error, as in TensorFlow.
struct ResizeOpAttrs {
  bool align_corners = false;
  bool half_pixel_centers = false;
};

// The ResizeBilinear op on [N, H, W, C] of any real dtype; float32 result.
Expected<Tensor> resize_bilinear_op(const Tensor& images_nhwc, int64_t height, int64_t width,
                                    ResizeOpAttrs attrs);
// The ResizeNearestNeighbor op on [N, H, W, C] of any numeric dtype; same-dtype result.
Expected<Tensor> resize_nearest_neighbor_op(const Tensor& images_nhwc, int64_t height,
                                            int64_t width, ResizeOpAttrs attrs);

// TensorFlow's ResizeBilinearGrad: the gradient of ResizeBilinear with respect to its images.
// `grads` is the float32 cotangent [N, h, w, C] of the resized images; the result has
// original_image's shape [N, H, W, C] and dtype (float32 or float64).
Expected<Tensor> resize_bilinear_grad_op(const Tensor& grads, const Tensor& original_image,
                                         ResizeOpAttrs attrs);
// TensorFlow's ResizeNearestNeighborGrad: `grads` [N, h, w, C] (float32 or float64) summed back
// into [N, height, width, C], the original images' size.
Expected<Tensor> resize_nearest_neighbor_grad_op(const Tensor& grads, int64_t height, int64_t width,
                                                 ResizeOpAttrs attrs);

// The ResizeBicubic op on [N, H, W, C] of any real dtype; float32 result. half_pixel_centers
// uses Keys' cubic kernel (a = -0.5) with taps outside the image dropped and the rest
// renormalized; otherwise a = -0.75 with edge pixels repeated. The kernel is sampled in 1/1024
// pixel steps, as in TensorFlow.
Expected<Tensor> resize_bicubic_op(const Tensor& images_nhwc, int64_t height, int64_t width,
                                   ResizeOpAttrs attrs);
// The ResizeArea op (tf.image.resize(method='area'), Keras Resizing(interpolation='area')) on
// [N, H, W, C] of any real dtype; float32 result: each output pixel the average of the source
// cells its span [i * scale, (i + 1) * scale) covers, weighted by the covered fraction.
Expected<Tensor> resize_area_op(const Tensor& images_nhwc, int64_t height, int64_t width,
                                bool align_corners);
// TensorFlow's ResizeBicubicGrad: `grads` (float32 [N, h, w, C]) back to original_image's shape
// and dtype (float32 or float64).
Expected<Tensor> resize_bicubic_grad_op(const Tensor& grads, const Tensor& original_image,
                                        ResizeOpAttrs attrs);

// The kernels of TensorFlow's ScaleAndTranslate op (sampling_kernels.h).
enum class SamplingKernel {
  kLanczos1,
  kLanczos3,
  kLanczos5,
  kGaussian,
  kBox,
  kTriangle,
  kKeysCubic,
  kMitchellCubic,
};
// "lanczos1", "lanczos3", "lanczos5", "gaussian", "box", "triangle", "keyscubic",
// "mitchellcubic".
Expected<SamplingKernel> sampling_kernel_from_name(std::string_view name);

// The ScaleAndTranslate op on [N, H, W, C] of any real dtype; float32 result. An output pixel
// x samples the input at (x + 0.5) / scale - translate / scale.
Expected<Tensor> scale_and_translate(const Tensor& images_nhwc, int64_t height, int64_t width,
                                     float scale_y, float scale_x, float translate_y,
                                     float translate_x, SamplingKernel kernel, bool antialias);

// TensorFlow's ScaleAndTranslateGrad: the gradient of scale_and_translate w.r.t. its images,
// `grads` float32 [N, h, w, C] back to float32 [N, original_height, original_width, C].
Expected<Tensor> scale_and_translate_grad(const Tensor& grads, int64_t original_height,
                                          int64_t original_width, float scale_y, float scale_x,
                                          float translate_y, float translate_x,
                                          SamplingKernel kernel, bool antialias);

// An image load_image_batch could not read: its index in `files` and why (naming the file).
struct ImageLoadFailure {
  size_t index = 0;
  Status status;
};

// Decodes each file, converts it to `mode` and resizes it with resize_image:
// float32 [N, height, width, C] (C = 3 for kRgb, 1 for kGray) in [0, 1], rows in the order
// given. The files are decoded on the kernel threads (set_num_threads), one image per thread at
// a time. An unreadable file is an error naming it (the first in `files` order), unless
// `failures` is given: it is then left out of the rows and listed there, in order.
Expected<Tensor> load_image_batch(std::span<const std::filesystem::path> files, int64_t height,
                                  int64_t width, ColorMode mode, ResizeOptions options = {},
                                  std::vector<ImageLoadFailure>* failures = nullptr);

// Writes float32 [H, W, 1 or 3] in [0, 1] as an 8-bit PNG (values clamped and rounded).
Status write_png(const std::filesystem::path& path, const Tensor& image);

}  // namespace hubimg
