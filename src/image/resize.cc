// TensorFlow's CPU resize kernels (resize_bilinear_op.cc, resize_nearest_neighbor_op.cc,
// resize_bicubic_op.cc, scale_and_translate_op.cc), reproduced operation for operation in float32
// so results match bit for bit.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/file_io.h"
#include "hubimg/image.h"
#include "image/decoders.h"

namespace hubimg {
namespace {

template <typename T>
inline float to_float(T v) {
  return static_cast<float>(v);
}
inline float to_float(Float16 v) {
  return v.to_float();
}
inline float to_float(BFloat16 v) {
  return v.to_float();
}

// Calls f(T{}) with the element type of a real-valued dtype TensorFlow's resize ops accept.
template <typename F>
Status dispatch_real(DType dtype, F&& f) {
  switch (dtype) {
    case DType::kFloat32: return f(float{});
    case DType::kFloat64: return f(double{});
    case DType::kFloat16: return f(Float16{});
    case DType::kBFloat16: return f(BFloat16{});
    case DType::kUInt8: return f(uint8_t{});
    case DType::kInt8: return f(int8_t{});
    case DType::kUInt16: return f(uint16_t{});
    case DType::kInt16: return f(int16_t{});
    case DType::kInt32: return f(int32_t{});
    case DType::kInt64: return f(int64_t{});
    default: return invalid_argument("resize: unsupported image dtype " + dtype_name(dtype));
  }
}

struct Geometry {
  int64_t batch, in_h, in_w, channels;
};

Status check_output_size(int64_t height, int64_t width, std::string_view op) {
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  if (height <= 0 || width <= 0 || height > kInt32Max || width > kInt32Max) {
    return invalid_argument(std::string(op) +
                            ": output dimensions must be positive int32 values, got " +
                            std::to_string(height) + "x" + std::to_string(width));
  }
  return {};
}

Expected<Geometry> check_nhwc(const Tensor& images, int64_t height, int64_t width,
                              std::string_view op) {
  const std::string name(op);
  if (images.rank() != 4) {
    return invalid_argument(name + ": images must be 4-D [N, H, W, C], got " +
                            images.description());
  }
  Geometry g{images.dim(0), images.dim(1), images.dim(2), images.dim(3)};
  if (g.channels <= 0) return invalid_argument(name + ": image must have at least one channel");
  if (g.in_h <= 0 || g.in_w <= 0) {
    return invalid_argument(name + ": input image must be of non-zero size, got " +
                            images.description());
  }
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  if (g.in_h > kInt32Max || g.in_w > kInt32Max) {
    return invalid_argument(name + ": input sizes must be below 2^31");
  }
  HUBIMG_RETURN_IF_ERROR(check_output_size(height, width, op));
  return g;
}

// CalculateResizeScale in image_resizer_state.h.
float resize_scale(int64_t in_size, int64_t out_size, bool align_corners) {
  return (align_corners && out_size > 1) ? (in_size - 1) / static_cast<float>(out_size - 1)
                                         : in_size / static_cast<float>(out_size);
}

struct CachedInterpolation {
  int64_t lower;  // source indices, pre-multiplied by the channel count for columns
  int64_t upper;
  float lerp;
};

std::vector<CachedInterpolation> interpolation_weights(int64_t out_size, int64_t in_size,
                                                       float scale, bool half_pixel_centers) {
  std::vector<CachedInterpolation> v(static_cast<size_t>(out_size));
  for (int64_t i = 0; i < out_size; ++i) {
    const float in = half_pixel_centers ? (static_cast<float>(i) + 0.5f) * scale - 0.5f
                                        : static_cast<float>(i) * scale;
    const float in_f = std::floor(in);
    auto& c = v[static_cast<size_t>(i)];
    // TensorFlow clamps only the lower index below and the upper above; the extra clamp of
    // the lower index to in_size - 1 never changes a result and guards the memory access.
    c.lower = std::min(std::max(static_cast<int64_t>(in_f), int64_t{0}), in_size - 1);
    c.upper = std::min(static_cast<int64_t>(std::ceil(in)), in_size - 1);
    c.lerp = in - in_f;
  }
  return v;
}

// The source index of each of `out_size` destinations (compute_indices in
// resize_nearest_neighbor_op.cc); the forward op and its gradient share it.
std::vector<int64_t> nearest_indices(int64_t out_size, int64_t in_size, float scale,
                                     ResizeOpAttrs attrs) {
  std::vector<int64_t> idx(static_cast<size_t>(out_size));
  for (int64_t i = 0; i < out_size; ++i) {
    // The half-pixel scaler omits the -0.5: the floor that follows does the rounding.
    const float s = attrs.half_pixel_centers ? (static_cast<float>(i) + 0.5f) * scale
                                             : static_cast<float>(i) * scale;
    int64_t x = std::min(attrs.align_corners ? static_cast<int64_t>(std::roundf(s))
                                             : static_cast<int64_t>(std::floor(s)),
                         in_size - 1);
    idx[static_cast<size_t>(i)] = std::max(int64_t{0}, x);
  }
  return idx;
}

inline float compute_lerp(float top_left, float top_right, float bottom_left, float bottom_right,
                          float x_lerp, float y_lerp) {
  const float top = top_left + (top_right - top_left) * x_lerp;
  const float bottom = bottom_left + (bottom_right - bottom_left) * x_lerp;
  return top + (bottom - top) * y_lerp;
}

// One output row: the 2x2 neighbourhoods of rows `lower_row` and `upper_row` of the input.
template <typename T>
void bilinear_row(const T* lower_row, const T* upper_row, const CachedInterpolation* xs,
                  float y_lerp, int64_t out_w, int64_t c, float* output) {
  for (int64_t x = 0; x < out_w; ++x) {
    const T* tl = lower_row + xs[x].lower * c;
    const T* tr = lower_row + xs[x].upper * c;
    const T* bl = upper_row + xs[x].lower * c;
    const T* br = upper_row + xs[x].upper * c;
    for (int64_t ch = 0; ch < c; ++ch) {
      *output++ = compute_lerp(to_float(tl[ch]), to_float(tr[ch]), to_float(bl[ch]),
                               to_float(br[ch]), xs[x].lerp, y_lerp);
    }
  }
}

template <typename T>
void resize_bilinear_kernel(const T* input, const Geometry& g, int64_t out_h, int64_t out_w,
                            float height_scale, float width_scale, bool half_pixel_centers,
                            float* output) {
  const int64_t c = g.channels;
  if (out_h == g.in_h && out_w == g.in_w) {
    const int64_t n = g.batch * g.in_h * g.in_w * c;
    for (int64_t i = 0; i < n; ++i) output[i] = to_float(input[i]);
    return;
  }
  auto ys = interpolation_weights(out_h, g.in_h, height_scale, half_pixel_centers);
  auto xs = interpolation_weights(out_w, g.in_w, width_scale, half_pixel_centers);
  const int64_t in_row = g.in_w * c;
  for (int64_t b = 0; b < g.batch; ++b) {
    const T* image = input + b * g.in_h * in_row;
    for (int64_t y = 0; y < out_h; ++y) {
      bilinear_row(image + ys[y].lower * in_row, image + ys[y].upper * in_row, xs.data(),
                   ys[y].lerp, out_w, c, output);
      output += out_w * c;
    }
  }
}

// resize_bilinear_kernel (half-pixel centers) of an image of integer samples that the op sees
// as sample * `unit_scale` in float32. Only the input rows an output row reads are converted,
// into two row buffers, and always through memory: converting inside the lerp would let the
// compiler fuse the scaling multiply into it (FMA) and change the last bit.
template <typename T>
void resize_scaled_samples(const T* input, const Geometry& g, int64_t out_h, int64_t out_w,
                           float unit_scale, float* output) {
  const int64_t c = g.channels;
  const int64_t in_row = g.in_w * c;
  if (out_h == g.in_h && out_w == g.in_w) {
    for (int64_t i = 0; i < g.in_h * in_row; ++i)
      output[i] = static_cast<float>(input[i]) * unit_scale;
    return;
  }
  auto ys = interpolation_weights(out_h, g.in_h, resize_scale(g.in_h, out_h, false), true);
  auto xs = interpolation_weights(out_w, g.in_w, resize_scale(g.in_w, out_w, false), true);
  std::vector<float> rows[2] = {std::vector<float>(static_cast<size_t>(in_row)),
                                std::vector<float>(static_cast<size_t>(in_row))};
  int64_t row_in_buffer[2] = {-1, -1};
  auto buffer_of = [&](int64_t r) {
    return row_in_buffer[0] == r ? 0 : row_in_buffer[1] == r ? 1 : -1;
  };
  auto convert_into = [&](int64_t r, int k) {
    const T* src = input + r * in_row;
    float* dst = rows[k].data();
    for (int64_t i = 0; i < in_row; ++i) dst[i] = static_cast<float>(src[i]) * unit_scale;
    row_in_buffer[k] = r;
  };
  for (int64_t y = 0; y < out_h; ++y) {
    int lower = buffer_of(ys[y].lower);
    if (lower < 0) {
      lower = buffer_of(ys[y].upper) == 0 ? 1 : 0;  // keep the upper row if it is there
      convert_into(ys[y].lower, lower);
    }
    int upper = buffer_of(ys[y].upper);
    if (upper < 0) {
      upper = 1 - lower;
      convert_into(ys[y].upper, upper);
    }
    bilinear_row(rows[lower].data(), rows[upper].data(), xs.data(), ys[y].lerp, out_w, c, output);
    output += out_w * c;
  }
}

// --- ScaleAndTranslate -------------------------------------------------------------------

struct LanczosKernel {
  float radius;
  float operator()(float x) const {
    constexpr float kPI = 3.14159265359;
    x = std::abs(x);
    if (x > radius) return 0.0;
    if (x <= 1e-3) return 1.0;
    return radius * std::sin(kPI * x) * std::sin(kPI * x / radius) / (kPI * kPI * x * x);
  }
  float Radius() const { return radius; }
};

struct GaussianKernel {
  float radius = 1.5f;
  float sigma = 1.5f / 3.0f;
  float operator()(float x) const {
    x = std::abs(x);
    if (x >= radius) return 0.0;
    return std::exp(-x * x / (2.0 * sigma * sigma));
  }
  float Radius() const { return radius; }
};

struct BoxKernel {
  float operator()(float x) const {
    x = std::abs(x);
    return x < 0.5f ? 1. : x == 0.5f ? 0.5f : 0.0f;
  }
  float Radius() const { return 1.f; }
};

struct TriangleKernel {
  float operator()(float x) const {
    x = std::abs(x);
    return x < 1.0f ? 1.0f - x : 0.0f;
  }
  float Radius() const { return 1.f; }
};

struct KeysCubicKernel {
  float operator()(float x) const {
    x = std::abs(x);
    if (x >= 2.0f) return 0.0f;
    if (x >= 1.0f) return ((-0.5f * x + 2.5f) * x - 4.0f) * x + 2.0f;
    return ((1.5f * x - 2.5f) * x) * x + 1.0f;
  }
  float Radius() const { return 2.f; }
};

struct MitchellCubicKernel {
  float operator()(float x) const {
    x = std::abs(x);
    if (x >= 2.0f) return 0.0f;
    if (x >= 1.0f) {
      return (((-7.0f / 18.0f) * x + 2.0f) * x - 10.0f / 3.0f) * x + 16.0f / 9.0f;
    }
    return (((7.0f / 6.0f) * x - 2.0f) * x) * x + 8.0f / 9.0f;
  }
  float Radius() const { return 2.f; }
};

struct Spans {
  int64_t span_size = 0;
  std::vector<int64_t> starts;
  std::vector<float> weights;  // span_size per output index, zero-padded
};

template <typename Kernel>
Expected<Spans> compute_spans(const Kernel& kernel, int64_t output_size, int64_t input_size,
                              float scale, float translate, bool antialias) {
  const float inv_scale = 1.0 / scale;
  const float inv_translate = -inv_scale * translate;
  // Downsampling widens the kernel (low-pass filter); upsampling only interpolates.
  const float kernel_scale = antialias ? std::max(inv_scale, 1.0f) : 1.0f;
  const float reach = kernel.Radius() * kernel_scale;
  Spans spans;
  spans.span_size = reach >= static_cast<float>(input_size)
                        ? input_size
                        : std::min(2 * static_cast<int64_t>(std::ceil(reach)) + 1, input_size);
  spans.starts.assign(static_cast<size_t>(output_size), 0);
  spans.weights.assign(static_cast<size_t>(spans.span_size * output_size), 0.0f);
  const float one_over_kernel_scale = 1.0f / kernel_scale;
  std::vector<float> temp_weights;
  for (int64_t x = 0; x < output_size; ++x) {
    const float col_f = x + 0.5f;
    const float sample_f = col_f * inv_scale + inv_translate;
    // Outside the source image: an empty span (all weights zero).
    if (sample_f < 0 || sample_f > input_size) continue;
    // Clamped before the conversion: a tiny scale widens the kernel beyond int64's range.
    const auto last = static_cast<float>(input_size - 1);
    const auto span_start = static_cast<int64_t>(
        std::clamp(std::ceil(sample_f - kernel.Radius() * kernel_scale - 0.5f), 0.0f, last));
    const int64_t span_end =
        static_cast<int64_t>(
            std::clamp(std::floor(sample_f + kernel.Radius() * kernel_scale - 0.5f), 0.0f, last)) +
        1;
    const int64_t this_span_size = span_end - span_start;
    if (this_span_size > spans.span_size) {
      return internal_error(
          "scale_and_translate: span is too large: " + std::to_string(this_span_size) + " vs " +
          std::to_string(spans.span_size));
    }
    float total_weight_sum = 0.0f;
    temp_weights.clear();
    for (int64_t source = span_start; source < span_end; ++source) {
      float kernel_pos = static_cast<float>(source) + 0.5f - sample_f;
      float weight = kernel(std::abs(kernel_pos * one_over_kernel_scale));
      total_weight_sum += weight;
      temp_weights.push_back(weight);
    }
    if (std::abs(total_weight_sum) >= 1000.0f * std::numeric_limits<float>::min()) {
      const float one_over_total_weight_sum = 1.0f / total_weight_sum;
      float* out = &spans.weights[static_cast<size_t>(spans.span_size * x)];
      for (float weight : temp_weights) *out++ = weight * one_over_total_weight_sum;
    }
    spans.starts[static_cast<size_t>(x)] = span_start;
  }
  return spans;
}

Expected<Spans> compute_spans_for(SamplingKernel kernel, int64_t output_size, int64_t input_size,
                                  float scale, float translate, bool antialias) {
  switch (kernel) {
    case SamplingKernel::kLanczos1:
      return compute_spans(LanczosKernel{1.0f}, output_size, input_size, scale, translate,
                           antialias);
    case SamplingKernel::kLanczos3:
      return compute_spans(LanczosKernel{3.0f}, output_size, input_size, scale, translate,
                           antialias);
    case SamplingKernel::kLanczos5:
      return compute_spans(LanczosKernel{5.0f}, output_size, input_size, scale, translate,
                           antialias);
    case SamplingKernel::kGaussian:
      return compute_spans(GaussianKernel{}, output_size, input_size, scale, translate, antialias);
    case SamplingKernel::kBox:
      return compute_spans(BoxKernel{}, output_size, input_size, scale, translate, antialias);
    case SamplingKernel::kTriangle:
      return compute_spans(TriangleKernel{}, output_size, input_size, scale, translate, antialias);
    case SamplingKernel::kKeysCubic:
      return compute_spans(KeysCubicKernel{}, output_size, input_size, scale, translate, antialias);
    case SamplingKernel::kMitchellCubic:
      return compute_spans(MitchellCubicKernel{}, output_size, input_size, scale, translate,
                           antialias);
  }
  return invalid_argument("scale_and_translate: unknown kernel");
}

// Rows first into [out_h, in_w, C], then columns, accumulating in the order TensorFlow does.
template <typename T>
void gather_spans(const T* image, const Geometry& g, int64_t out_h, int64_t out_w,
                  const Spans& rows, const Spans& cols, float* intermediate, float* output) {
  const int64_t c = g.channels;
  const int64_t in_row_size = g.in_w * c;
  for (int64_t y = 0; y < out_h; ++y) {
    float* out_row = intermediate + in_row_size * y;
    std::fill(out_row, out_row + in_row_size, 0.0f);
    const int64_t start = rows.starts[static_cast<size_t>(y)];
    const T* in_row = image + in_row_size * start;
    const float* w = &rows.weights[static_cast<size_t>(y * rows.span_size)];
    const int64_t real_span = std::min(start + rows.span_size, g.in_h) - start;
    for (int64_t k = 0; k < real_span; ++k, in_row += in_row_size) {
      for (int64_t i = 0; i < in_row_size; ++i) out_row[i] += w[k] * to_float(in_row[i]);
    }
  }
  for (int64_t y = 0; y < out_h; ++y) {
    const float* in_row = intermediate + in_row_size * y;
    float* out_pix = output + out_w * c * y;
    for (int64_t x = 0; x < out_w; ++x, out_pix += c) {
      const int64_t start = cols.starts[static_cast<size_t>(x)];
      const float* in_pix = in_row + start * c;
      const float* w = &cols.weights[static_cast<size_t>(x * cols.span_size)];
      const int64_t real_span = std::min(start + cols.span_size, g.in_w) - start;
      std::fill(out_pix, out_pix + c, 0.0f);
      for (int64_t k = 0; k < real_span; ++k, in_pix += c) {
        for (int64_t ch = 0; ch < c; ++ch) out_pix[ch] += w[k] * in_pix[ch];
      }
    }
  }
}

// Runs a 4-D op on a 3-D [H, W, C] image by adding and removing the batch dimension.
template <typename F>
Expected<Tensor> with_optional_batch(const Tensor& images, std::string_view op, F&& f) {
  if (images.rank() == 4) return f(images);
  if (images.rank() != 3) {
    return invalid_argument(std::string(op) + ": images must be [H, W, C] or [N, H, W, C], got " +
                            images.description());
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor batched,
                          images.reshaped({1, images.dim(0), images.dim(1), images.dim(2)}));
  HUBIMG_ASSIGN_OR_RETURN(Tensor out, f(batched));
  return out.reshaped({out.dim(1), out.dim(2), out.dim(3)});
}

// Shared checks of the two gradient ops: a 4-D cotangent and a positive original size.
Status check_resize_grad(const Tensor& grads, int64_t original_h, int64_t original_w,
                         ResizeOpAttrs attrs, const std::string& op) {
  if (attrs.half_pixel_centers && attrs.align_corners) {
    return invalid_argument(op + ": if half_pixel_centers is True, align_corners must be False");
  }
  if (grads.rank() != 4) {
    return invalid_argument(op + ": input_grad must be 4-dimensional, got " + grads.description());
  }
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  if (original_h <= 0 || original_w <= 0 || original_h > kInt32Max || original_w > kInt32Max) {
    return invalid_argument(op + ": original size must be positive int32 values, got " +
                            std::to_string(original_h) + "x" + std::to_string(original_w));
  }
  return {};
}

// ResizeBilinear and ResizeBicubic: TensorFlow's checks, a float32 result, and
// kernel(input as T*, geometry, out_h, out_w, height_scale, width_scale, half_pixel_centers,
// output) for the input's element type T.
template <typename Kernel>
Expected<Tensor> interpolating_resize(const Tensor& images, int64_t height, int64_t width,
                                      ResizeOpAttrs attrs, const std::string& op, Kernel&& kernel) {
  return catch_exceptions(op, [&]() -> Expected<Tensor> {
    if (attrs.half_pixel_centers && attrs.align_corners) {
      return invalid_argument(op + ": if half_pixel_centers is True, align_corners must be False");
    }
    HUBIMG_ASSIGN_OR_RETURN(Geometry g, check_nhwc(images, height, width, op));
    HUBIMG_ASSIGN_OR_RETURN(Tensor out,
                            Tensor::create(DType::kFloat32, {g.batch, height, width, g.channels}));
    const float height_scale = resize_scale(g.in_h, height, attrs.align_corners);
    const float width_scale = resize_scale(g.in_w, width, attrs.align_corners);
    HUBIMG_RETURN_IF_ERROR(dispatch_real(images.dtype(), [&](auto tag) -> Status {
      using T = decltype(tag);
      kernel(static_cast<const T*>(images.raw_data()), g, height, width, height_scale, width_scale,
             attrs.half_pixel_centers, out.mutable_data<float>());
      return {};
    }));
    return out;
  });
}

// ResizeBilinearGrad and ResizeBicubicGrad: float32 `grads` [N, h, w, C] back to
// original_image's shape and dtype (float32 or float64) by kernel(grads, N, h, w, C,
// original_h, original_w, height_scale, width_scale, half_pixel_centers, output as T*).
template <typename Kernel>
Expected<Tensor> interpolating_resize_grad(const Tensor& grads, const Tensor& original_image,
                                           ResizeOpAttrs attrs, const std::string& op,
                                           Kernel&& kernel) {
  return catch_exceptions(op, [&]() -> Expected<Tensor> {
    if (original_image.rank() != 4) {
      return invalid_argument(op + ": original_image must be 4-dimensional, got " +
                              original_image.description());
    }
    const int64_t original_h = original_image.dim(1);
    const int64_t original_w = original_image.dim(2);
    HUBIMG_RETURN_IF_ERROR(check_resize_grad(grads, original_h, original_w, attrs, op));
    if (grads.dtype() != DType::kFloat32) {
      return invalid_argument(op + ": input_grad must be of type float, got " +
                              grads.description());
    }
    const DType t = original_image.dtype();
    if (t != DType::kFloat32 && t != DType::kFloat64) {
      return invalid_argument(op + ": original_image must be float32 or float64, got " +
                              original_image.description());
    }
    if (grads.dim(0) != original_image.dim(0) || grads.dim(3) != original_image.dim(3)) {
      return invalid_argument(op + ": input_grad " + grads.description() + " and original_image " +
                              original_image.description() + " differ in batch or channels");
    }
    const int64_t batch = grads.dim(0), resized_h = grads.dim(1), resized_w = grads.dim(2),
                  channels = grads.dim(3);
    HUBIMG_ASSIGN_OR_RETURN(Tensor out,
                            Tensor::create(t, {batch, original_h, original_w, channels}));
    if (out.num_elements() == 0 || grads.num_elements() == 0) return out;  // zeros
    // ImageResizerGradientState: the scales of the forward resize original -> resized.
    const float height_scale = resize_scale(original_h, resized_h, attrs.align_corners);
    const float width_scale = resize_scale(original_w, resized_w, attrs.align_corners);
    if (t == DType::kFloat32) {
      kernel(grads.data<float>(), batch, resized_h, resized_w, channels, original_h, original_w,
             height_scale, width_scale, attrs.half_pixel_centers, out.mutable_data<float>());
    } else {
      kernel(grads.data<float>(), batch, resized_h, resized_w, channels, original_h, original_w,
             height_scale, width_scale, attrs.half_pixel_centers, out.mutable_data<double>());
    }
    return out;
  });
}

}  // namespace

Expected<Tensor> resize_bilinear_op(const Tensor& images, int64_t height, int64_t width,
                                    ResizeOpAttrs attrs) {
  return interpolating_resize(
      images, height, width, attrs, "ResizeBilinear",
      [](const auto* in, auto&&... rest) { resize_bilinear_kernel(in, rest...); });
}

Expected<Tensor> resize_nearest_neighbor_op(const Tensor& images, int64_t height, int64_t width,
                                            ResizeOpAttrs attrs) {
  return catch_exceptions("ResizeNearestNeighbor", [&]() -> Expected<Tensor> {
    if (attrs.half_pixel_centers && attrs.align_corners) {
      return invalid_argument(
          "ResizeNearestNeighbor: if half_pixel_centers is True, align_corners must be False");
    }
    HUBIMG_ASSIGN_OR_RETURN(Geometry g, check_nhwc(images, height, width, "ResizeNearestNeighbor"));
    if (!dtype_is_numeric(images.dtype())) {
      return invalid_argument("ResizeNearestNeighbor: unsupported dtype " +
                              dtype_name(images.dtype()));
    }
    if (g.in_h >= (int64_t{1} << 24) || g.in_w >= (int64_t{1} << 24)) {
      return invalid_argument("ResizeNearestNeighbor: requires max height & width of 2^24");
    }
    HUBIMG_ASSIGN_OR_RETURN(Tensor out,
                            Tensor::create(images.dtype(), {g.batch, height, width, g.channels}));
    const float height_scale = resize_scale(g.in_h, height, attrs.align_corners);
    const float width_scale = resize_scale(g.in_w, width, attrs.align_corners);
    const auto ys = nearest_indices(height, g.in_h, height_scale, attrs);
    const auto xs = nearest_indices(width, g.in_w, width_scale, attrs);
    const size_t pixel_bytes = static_cast<size_t>(g.channels) * dtype_size(images.dtype());
    const auto* in = static_cast<const uint8_t*>(images.raw_data());
    auto* o = static_cast<uint8_t*>(out.raw_mutable_data());
    for (int64_t b = 0; b < g.batch; ++b) {
      for (int64_t y = 0; y < height; ++y) {
        const uint8_t* row = in + ((b * g.in_h + ys[y]) * g.in_w) * pixel_bytes;
        for (int64_t x = 0; x < width; ++x, o += pixel_bytes) {
          std::memcpy(o, row + xs[x] * pixel_bytes, pixel_bytes);
        }
      }
    }
    return out;
  });
}

namespace {

// ResizeGradCore in resize_bilinear_op.cc: each resized pixel's cotangent goes back to the four
// source pixels in the proportions they were blended with (products in float, sums in T).
template <typename T>
void resize_bilinear_grad_kernel(const float* grads, int64_t batch, int64_t resized_h,
                                 int64_t resized_w, int64_t channels, int64_t original_h,
                                 int64_t original_w, float height_scale, float width_scale,
                                 bool half_pixel_centers, T* output) {
  std::fill(output, output + batch * original_h * original_w * channels, T(0));
  const auto ys = interpolation_weights(resized_h, original_h, height_scale, half_pixel_centers);
  const auto xs = interpolation_weights(resized_w, original_w, width_scale, half_pixel_centers);
  const int64_t row = original_w * channels;
  for (int64_t b = 0; b < batch; ++b) {
    T* image = output + b * original_h * row;
    for (int64_t y = 0; y < resized_h; ++y) {
      T* top = image + ys[static_cast<size_t>(y)].lower * row;
      T* bottom = image + ys[static_cast<size_t>(y)].upper * row;
      const float y_lerp = ys[static_cast<size_t>(y)].lerp;
      const float inverse_y_lerp = 1.0f - y_lerp;
      for (int64_t x = 0; x < resized_w; ++x) {
        const auto& cx = xs[static_cast<size_t>(x)];
        const float x_lerp = cx.lerp;
        const float inverse_x_lerp = 1.0f - x_lerp;
        const float* g = grads + ((b * resized_h + y) * resized_w + x) * channels;
        T* tl = top + cx.lower * channels;
        T* tr = top + cx.upper * channels;
        T* bl = bottom + cx.lower * channels;
        T* br = bottom + cx.upper * channels;
        for (int64_t c = 0; c < channels; ++c) {
          tl[c] += T(g[c] * inverse_y_lerp * inverse_x_lerp);
          tr[c] += T(g[c] * inverse_y_lerp * x_lerp);
          bl[c] += T(g[c] * y_lerp * inverse_x_lerp);
          br[c] += T(g[c] * y_lerp * x_lerp);
        }
      }
    }
  }
}

}  // namespace

Expected<Tensor> resize_bilinear_grad_op(const Tensor& grads, const Tensor& original_image,
                                         ResizeOpAttrs attrs) {
  return interpolating_resize_grad(
      grads, original_image, attrs, "ResizeBilinearGrad",
      [](const float* g, auto&&... rest) { resize_bilinear_grad_kernel(g, rest...); });
}

Expected<Tensor> resize_nearest_neighbor_grad_op(const Tensor& grads, int64_t height, int64_t width,
                                                 ResizeOpAttrs attrs) {
  return catch_exceptions("ResizeNearestNeighborGrad", [&]() -> Expected<Tensor> {
    const std::string op = "ResizeNearestNeighborGrad";
    HUBIMG_RETURN_IF_ERROR(check_resize_grad(grads, height, width, attrs, op));
    const DType t = grads.dtype();
    if (t != DType::kFloat32 && t != DType::kFloat64) {
      return invalid_argument(op + ": grads must be float32 or float64, got " +
                              grads.description());
    }
    const int64_t batch = grads.dim(0), in_h = grads.dim(1), in_w = grads.dim(2),
                  channels = grads.dim(3);
    HUBIMG_ASSIGN_OR_RETURN(Tensor out, Tensor::create(t, {batch, height, width, channels}));
    if (out.num_elements() == 0) return out;
    // As in ResizeNearestNeighborOpGrad: the forward scales (original -> resized), each resized
    // pixel added to the original pixel it was copied from.
    const float height_scale = resize_scale(height, in_h, attrs.align_corners);
    const float width_scale = resize_scale(width, in_w, attrs.align_corners);
    const auto ys = nearest_indices(in_h, height, height_scale, attrs);
    const auto xs = nearest_indices(in_w, width, width_scale, attrs);
    auto run = [&](auto tag) {
      using T = decltype(tag);
      const T* in = grads.data<T>();
      T* o = out.mutable_data<T>();
      for (int64_t b = 0; b < batch; ++b) {
        for (int64_t y = 0; y < in_h; ++y) {
          T* out_row = o + (b * height + ys[static_cast<size_t>(y)]) * width * channels;
          for (int64_t x = 0; x < in_w; ++x) {
            const T* src = in + ((b * in_h + y) * in_w + x) * channels;
            T* dst = out_row + xs[static_cast<size_t>(x)] * channels;
            for (int64_t c = 0; c < channels; ++c) dst[c] += src[c];
          }
        }
      }
    };
    if (t == DType::kFloat32) {
      run(float{});
    } else {
      run(double{});
    }
    return out;
  });
}

namespace {

// ResizeBicubic (resize_bicubic_op.cc): Keys' cubic convolution kernel, sampled in a table of
// 1024 steps per pixel; an output pixel's fractional source position is rounded to the nearest
// step, so results match TensorFlow's only with that table, not with the exact kernel.
constexpr int64_t kBicubicTableSize = 1024;

// Entry 2i: the kernel's weight at distance i/1024 (taps 1 and 2); 2i + 1: at 1 + i/1024 (taps 0
// and 3). Computed as TensorFlow does: `a` and the polynomials in double, x and entries in float.
std::vector<float> bicubic_table(double a) {
  std::vector<float> table(static_cast<size_t>((kBicubicTableSize + 1) * 2));
  for (int64_t i = 0; i <= kBicubicTableSize; ++i) {
    auto x = static_cast<float>(static_cast<double>(i) / kBicubicTableSize);
    table[static_cast<size_t>(2 * i)] = static_cast<float>(((a + 2) * x - (a + 3)) * x * x + 1);
    x = static_cast<float>(x + 1.0);
    table[static_cast<size_t>(2 * i + 1)] =
        static_cast<float>(((a * x - 5 * a) * x + 8 * a) * x - 4 * a);
  }
  return table;
}

// The four source indices and weights of one output row or column.
struct CubicTaps {
  std::array<int64_t, 4> index;
  std::array<float, 4> weight;
};

// half_pixel_centers: Keys' a = -0.5; taps outside the image get weight 0 and the rest are
// renormalized to sum to 1 (as ScaleAndTranslate does). Otherwise the legacy a = -0.75 with the
// outside taps clamped to the edge pixel.
std::vector<CubicTaps> cubic_taps(int64_t out_size, int64_t in_size, float scale,
                                  bool half_pixel_centers) {
  static const std::vector<float> keys = bicubic_table(-0.5f);
  static const std::vector<float> legacy = bicubic_table(-0.75f);
  const std::vector<float>& table = half_pixel_centers ? keys : legacy;
  std::vector<CubicTaps> taps(static_cast<size_t>(out_size));
  for (int64_t i = 0; i < out_size; ++i) {
    const float in_f = half_pixel_centers ? (static_cast<float>(i) + 0.5f) * scale - 0.5f
                                          : static_cast<float>(i) * scale;
    const auto in = static_cast<int64_t>(std::floor(in_f));
    const float delta = in_f - static_cast<float>(in);
    const int64_t offset = std::lrintf(delta * kBicubicTableSize);
    const std::array<size_t, 4> entry = {static_cast<size_t>(offset * 2 + 1),
                                         static_cast<size_t>(offset * 2),
                                         static_cast<size_t>((kBicubicTableSize - offset) * 2),
                                         static_cast<size_t>((kBicubicTableSize - offset) * 2 + 1)};
    CubicTaps& t = taps[static_cast<size_t>(i)];
    for (size_t k = 0; k < 4; ++k) {
      const int64_t source = in - 1 + static_cast<int64_t>(k);
      t.index[k] = std::clamp<int64_t>(source, 0, in_size - 1);
      t.weight[k] = table[entry[k]];
      if (half_pixel_centers && t.index[k] != source) t.weight[k] = 0.0f;
    }
    if (half_pixel_centers) {
      const float sum = t.weight[0] + t.weight[1] + t.weight[2] + t.weight[3];
      if (std::abs(sum) >= 1000.0f * std::numeric_limits<float>::min()) {
        const float inverse = 1.0f / sum;
        for (float& w : t.weight) w *= inverse;
      }
    }
  }
  return taps;
}

// Columns first within each of the four rows, then the rows, in float, as TensorFlow's kernel.
template <typename T>
void resize_bicubic_kernel(const T* input, const Geometry& g, int64_t out_h, int64_t out_w,
                           float height_scale, float width_scale, bool half_pixel_centers,
                           float* output) {
  const auto ys = cubic_taps(out_h, g.in_h, height_scale, half_pixel_centers);
  const auto xs = cubic_taps(out_w, g.in_w, width_scale, half_pixel_centers);
  const int64_t c = g.channels;
  const int64_t in_row = g.in_w * c;
  for (int64_t b = 0; b < g.batch; ++b) {
    const T* image = input + b * g.in_h * in_row;
    for (int64_t y = 0; y < out_h; ++y) {
      const CubicTaps& ty = ys[static_cast<size_t>(y)];
      for (int64_t x = 0; x < out_w; ++x) {
        const CubicTaps& tx = xs[static_cast<size_t>(x)];
        for (int64_t ch = 0; ch < c; ++ch) {
          std::array<float, 4> column{};  // each x tap interpolated over the y taps
          for (size_t j = 0; j < 4; ++j) {
            const int64_t at = tx.index[j] * c + ch;
            column[j] = to_float(image[ty.index[0] * in_row + at]) * ty.weight[0] +
                        to_float(image[ty.index[1] * in_row + at]) * ty.weight[1] +
                        to_float(image[ty.index[2] * in_row + at]) * ty.weight[2] +
                        to_float(image[ty.index[3] * in_row + at]) * ty.weight[3];
          }
          *output++ = column[0] * tx.weight[0] + column[1] * tx.weight[1] +
                      column[2] * tx.weight[2] + column[3] * tx.weight[3];
        }
      }
    }
  }
}

// ResizeBicubicGrad: each resized pixel's cotangent goes back to its 16 source pixels with the
// product of their row and column weights (products in float, sums in T).
template <typename T>
void resize_bicubic_grad_kernel(const float* grads, int64_t batch, int64_t resized_h,
                                int64_t resized_w, int64_t channels, int64_t original_h,
                                int64_t original_w, float height_scale, float width_scale,
                                bool half_pixel_centers, T* output) {
  std::fill(output, output + batch * original_h * original_w * channels, T(0));
  const auto ys = cubic_taps(resized_h, original_h, height_scale, half_pixel_centers);
  const auto xs = cubic_taps(resized_w, original_w, width_scale, half_pixel_centers);
  const int64_t row = original_w * channels;
  for (int64_t b = 0; b < batch; ++b) {
    T* image = output + b * original_h * row;
    for (int64_t y = 0; y < resized_h; ++y) {
      const CubicTaps& ty = ys[static_cast<size_t>(y)];
      for (int64_t x = 0; x < resized_w; ++x) {
        const CubicTaps& tx = xs[static_cast<size_t>(x)];
        const float* g = grads + ((b * resized_h + y) * resized_w + x) * channels;
        for (int64_t ch = 0; ch < channels; ++ch) {
          for (size_t i = 0; i < 4; ++i) {
            for (size_t j = 0; j < 4; ++j) {
              image[ty.index[i] * row + tx.index[j] * channels + ch] +=
                  T(g[ch] * ty.weight[i] * tx.weight[j]);
            }
          }
        }
      }
    }
  }
}

}  // namespace

namespace {

// One output row or column of ResizeArea: the source cells [start, end) its span
// [i * scale, (i + 1) * scale) covers, and the covered fraction of the first and last.
struct AreaSpan {
  int64_t start = 0, end = 0;
  float start_scale = 0, end_minus_one_scale = 0;
};

// The fraction of source cell v inside [in0, in1), as resize_area_op.cc computes it (a span
// inside one cell gets `scale`, its own length).
float covered(int64_t v, float in0, float in1, float scale) {
  const auto fv = static_cast<float>(v);
  if (fv < in0) return fv + 1 > in1 ? scale : fv + 1 - in0;
  return fv + 1 > in1 ? in1 - fv : 1.0f;
}

AreaSpan area_span(int64_t i, float scale) {
  AreaSpan s;
  const float in0 = static_cast<float>(i) * scale;
  const float in1 = static_cast<float>(i + 1) * scale;
  s.start = static_cast<int64_t>(std::floor(in0));
  s.start_scale = covered(s.start, in0, in1, scale);
  s.end = static_cast<int64_t>(std::ceil(in1));
  s.end_minus_one_scale = covered(s.end - 1, in0, in1, scale);
  return s;
}

template <typename T>
void resize_area_kernel(const T* input, const Geometry& g, int64_t out_h, int64_t out_w,
                        float height_scale, float width_scale, float* output) {
  auto bound = [](int64_t v, int64_t limit) { return std::clamp<int64_t>(v, 0, limit - 1); };
  std::vector<AreaSpan> xs(static_cast<size_t>(out_w));
  for (int64_t x = 0; x < out_w; ++x) xs[static_cast<size_t>(x)] = area_span(x, width_scale);
  const float scale = 1.0f / (height_scale * width_scale);
  const int64_t c = g.channels;
  for (int64_t b = 0; b < g.batch; ++b) {
    const T* image = input + b * g.in_h * g.in_w * c;
    for (int64_t y = 0; y < out_h; ++y) {
      const float in_y = static_cast<float>(y) * height_scale;
      const float in_y1 = static_cast<float>(y + 1) * height_scale;
      const auto y_start = static_cast<int64_t>(std::floor(in_y));
      const auto y_end = static_cast<int64_t>(std::ceil(in_y1));
      for (int64_t x = 0; x < out_w; ++x) {
        const AreaSpan& sx = xs[static_cast<size_t>(x)];
        for (int64_t ch = 0; ch < c; ++ch) {
          float sum = 0;
          for (int64_t i = y_start; i < y_end; ++i) {
            const T* row = image + bound(i, g.in_h) * g.in_w * c;
            auto at = [&](int64_t col) { return to_float(row[bound(col, g.in_w) * c + ch]); };
            float sum_y = at(sx.start) * sx.start_scale;
            if (sx.start + 1 != sx.end) {
              for (int64_t col = sx.start + 1; col < sx.end - 1; ++col) sum_y += at(col);
              sum_y += at(sx.end - 1) * sx.end_minus_one_scale;
            }
            sum += sum_y * covered(i, in_y, in_y1, height_scale);
          }
          *output++ = sum * scale;
        }
      }
    }
  }
}

}  // namespace

Expected<Tensor> resize_area_op(const Tensor& images, int64_t height, int64_t width,
                                bool align_corners) {
  return interpolating_resize(
      images, height, width, {.align_corners = align_corners}, "ResizeArea",
      [](const auto* in, const Geometry& g, int64_t out_h, int64_t out_w, float height_scale,
         float width_scale, bool /*half_pixel*/,
         float* out) { resize_area_kernel(in, g, out_h, out_w, height_scale, width_scale, out); });
}

Expected<Tensor> resize_bicubic_op(const Tensor& images, int64_t height, int64_t width,
                                   ResizeOpAttrs attrs) {
  return interpolating_resize(
      images, height, width, attrs, "ResizeBicubic",
      [](const auto* in, auto&&... rest) { resize_bicubic_kernel(in, rest...); });
}

Expected<Tensor> resize_bicubic_grad_op(const Tensor& grads, const Tensor& original_image,
                                        ResizeOpAttrs attrs) {
  return interpolating_resize_grad(
      grads, original_image, attrs, "ResizeBicubicGrad",
      [](const float* g, auto&&... rest) { resize_bicubic_grad_kernel(g, rest...); });
}

Expected<SamplingKernel> sampling_kernel_from_name(std::string_view name) {
  static constexpr std::pair<std::string_view, SamplingKernel> kNames[] = {
      {"lanczos1", SamplingKernel::kLanczos1},
      {"lanczos3", SamplingKernel::kLanczos3},
      {"lanczos5", SamplingKernel::kLanczos5},
      {"gaussian", SamplingKernel::kGaussian},
      {"box", SamplingKernel::kBox},
      {"triangle", SamplingKernel::kTriangle},
      {"keyscubic", SamplingKernel::kKeysCubic},
      {"mitchellcubic", SamplingKernel::kMitchellCubic},
  };
  for (const auto& [n, k] : kNames) {
    if (n == name) return k;
  }
  return invalid_argument("unknown sampling kernel '" + std::string(name) + "'");
}

Expected<Tensor> scale_and_translate(const Tensor& images, int64_t height, int64_t width,
                                     float scale_y, float scale_x, float translate_y,
                                     float translate_x, SamplingKernel kernel, bool antialias) {
  return catch_exceptions("ScaleAndTranslate", [&]() -> Expected<Tensor> {
    HUBIMG_ASSIGN_OR_RETURN(Geometry g, check_nhwc(images, height, width, "ScaleAndTranslate"));
    if (!(scale_y > 0) || !(scale_x > 0) || !std::isfinite(scale_y) || !std::isfinite(scale_x)) {
      return invalid_argument("ScaleAndTranslate: scale must be finite and greater than zero");
    }
    if (!std::isfinite(translate_y) || !std::isfinite(translate_x)) {
      return invalid_argument("ScaleAndTranslate: translation must be finite");
    }
    HUBIMG_ASSIGN_OR_RETURN(
        Spans cols, compute_spans_for(kernel, width, g.in_w, scale_x, translate_x, antialias));
    HUBIMG_ASSIGN_OR_RETURN(
        Spans rows, compute_spans_for(kernel, height, g.in_h, scale_y, translate_y, antialias));
    HUBIMG_ASSIGN_OR_RETURN(Tensor out,
                            Tensor::create(DType::kFloat32, {g.batch, height, width, g.channels}));
    std::vector<float> intermediate(static_cast<size_t>(height * g.in_w * g.channels));
    HUBIMG_RETURN_IF_ERROR(dispatch_real(images.dtype(), [&](auto tag) -> Status {
      using T = decltype(tag);
      const T* in = static_cast<const T*>(images.raw_data());
      float* o = out.mutable_data<float>();
      for (int64_t b = 0; b < g.batch; ++b) {
        gather_spans(in + b * g.in_h * g.in_w * g.channels, g, height, width, rows, cols,
                     intermediate.data(), o + b * height * width * g.channels);
      }
      return {};
    }));
    return out;
  });
}

Expected<Tensor> scale_and_translate_grad(const Tensor& grads, int64_t original_height,
                                          int64_t original_width, float scale_y, float scale_x,
                                          float translate_y, float translate_x,
                                          SamplingKernel kernel, bool antialias) {
  return catch_exceptions("ScaleAndTranslateGrad", [&]() -> Expected<Tensor> {
    const std::string op = "ScaleAndTranslateGrad";
    HUBIMG_RETURN_IF_ERROR(check_resize_grad(grads, original_height, original_width, {}, op));
    if (grads.dtype() != DType::kFloat32) {
      return invalid_argument(op + ": grads must be float32, got " + grads.description());
    }
    if (!(scale_y > 0) || !(scale_x > 0) || !std::isfinite(scale_y) || !std::isfinite(scale_x)) {
      return invalid_argument(op + ": scale must be finite and greater than zero");
    }
    if (!std::isfinite(translate_y) || !std::isfinite(translate_x)) {
      return invalid_argument(op + ": translation must be finite");
    }
    const int64_t batch = grads.dim(0), out_h = grads.dim(1), out_w = grads.dim(2),
                  c = grads.dim(3);
    HUBIMG_ASSIGN_OR_RETURN(
        Tensor result,
        Tensor::create(DType::kFloat32, {batch, original_height, original_width, c}));  // zeros
    if (result.num_elements() == 0 || grads.num_elements() == 0) return result;
    HUBIMG_ASSIGN_OR_RETURN(Spans cols, compute_spans_for(kernel, out_w, original_width, scale_x,
                                                          translate_x, antialias));
    HUBIMG_ASSIGN_OR_RETURN(Spans rows, compute_spans_for(kernel, out_h, original_height, scale_y,
                                                          translate_y, antialias));
    // The forward's two passes transposed: each output pixel's cotangent spread over its
    // columns into [out_h, original_width, C], then each of those rows over its source rows.
    const int64_t in_row = original_width * c;
    std::vector<float> intermediate(static_cast<size_t>(out_h * in_row));
    for (int64_t b = 0; b < batch; ++b) {
      std::fill(intermediate.begin(), intermediate.end(), 0.0f);
      const float* g = grads.data<float>() + b * out_h * out_w * c;
      for (int64_t y = 0; y < out_h; ++y) {
        float* row = intermediate.data() + y * in_row;
        for (int64_t x = 0; x < out_w; ++x) {
          const int64_t start = cols.starts[static_cast<size_t>(x)];
          const float* w = &cols.weights[static_cast<size_t>(x * cols.span_size)];
          const int64_t span = std::min(start + cols.span_size, original_width) - start;
          const float* gp = g + (y * out_w + x) * c;
          for (int64_t k = 0; k < span; ++k) {
            for (int64_t ch = 0; ch < c; ++ch) row[(start + k) * c + ch] += w[k] * gp[ch];
          }
        }
      }
      float* image = result.mutable_data<float>() + b * original_height * in_row;
      for (int64_t y = 0; y < out_h; ++y) {
        const int64_t start = rows.starts[static_cast<size_t>(y)];
        const float* w = &rows.weights[static_cast<size_t>(y * rows.span_size)];
        const int64_t span = std::min(start + rows.span_size, original_height) - start;
        const float* from = intermediate.data() + y * in_row;
        for (int64_t k = 0; k < span; ++k) {
          float* to = image + (start + k) * in_row;
          for (int64_t i = 0; i < in_row; ++i) to[i] += w[k] * from[i];
        }
      }
    }
    return result;
  });
}

Expected<Tensor> resize_image(const Tensor& images, int64_t height, int64_t width,
                              ResizeOptions options) {
  return catch_exceptions("resize_image", [&]() -> Expected<Tensor> {
    return with_optional_batch(images, "resize_image", [&](const Tensor& nhwc) -> Expected<Tensor> {
      const ResizeOpAttrs half_pixel{.half_pixel_centers = true};
      std::optional<SamplingKernel> kernel;  // ScaleAndTranslate's, when it does the resize
      switch (options.method) {
        case ResizeMethod::kBilinear:
          if (!options.antialias) return resize_bilinear_op(nhwc, height, width, half_pixel);
          kernel = SamplingKernel::kTriangle;
          break;
        case ResizeMethod::kBicubic:
          if (!options.antialias) return resize_bicubic_op(nhwc, height, width, half_pixel);
          kernel = SamplingKernel::kKeysCubic;
          break;
        case ResizeMethod::kNearest:
          return resize_nearest_neighbor_op(nhwc, height, width, half_pixel);
        case ResizeMethod::kArea: return resize_area_op(nhwc, height, width, false);
        case ResizeMethod::kLanczos3: kernel = SamplingKernel::kLanczos3; break;
        case ResizeMethod::kLanczos5: kernel = SamplingKernel::kLanczos5; break;
        case ResizeMethod::kGaussian: kernel = SamplingKernel::kGaussian; break;
        case ResizeMethod::kMitchellCubic: kernel = SamplingKernel::kMitchellCubic; break;
      }
      if (!kernel) return invalid_argument("resize_image: unknown method");
      if (nhwc.dim(1) <= 0 || nhwc.dim(2) <= 0) {
        return invalid_argument("resize_image: empty input image " + nhwc.description());
      }
      // tf.image.resize: scale = float32(new_size) / float32(input_size), no translation.
      const float scale_y = static_cast<float>(height) / static_cast<float>(nhwc.dim(1));
      const float scale_x = static_cast<float>(width) / static_cast<float>(nhwc.dim(2));
      return scale_and_translate(nhwc, height, width, scale_y, scale_x, 0.0f, 0.0f, *kernel,
                                 options.antialias);
    });
  });
}

Expected<Tensor> resize_bilinear(const Tensor& images, int64_t height, int64_t width,
                                 ResizeOptions options) {
  options.method = ResizeMethod::kBilinear;
  return resize_image(images, height, width, options);
}

Expected<ResizeMethod> resize_method_from_name(std::string_view name) {
  static constexpr std::pair<std::string_view, ResizeMethod> kNames[] = {
      {"bilinear", ResizeMethod::kBilinear}, {"nearest", ResizeMethod::kNearest},
      {"bicubic", ResizeMethod::kBicubic},   {"area", ResizeMethod::kArea},
      {"lanczos3", ResizeMethod::kLanczos3}, {"lanczos5", ResizeMethod::kLanczos5},
      {"gaussian", ResizeMethod::kGaussian}, {"mitchellcubic", ResizeMethod::kMitchellCubic}};
  for (const auto& [n, m] : kNames) {
    if (n == name) return m;
  }
  return invalid_argument("unknown resize method '" + std::string(name) +
                          "' (bilinear, nearest, bicubic, area, lanczos3, lanczos5, gaussian or "
                          "mitchellcubic)");
}

Expected<Tensor> image_internal::resize_decoded_bilinear(const DecodedImage& image, int64_t height,
                                                         int64_t width) {
  HUBIMG_RETURN_IF_ERROR(check_output_size(height, width, "resize_bilinear"));
  const Geometry g{1, image.height, image.width, 3};
  const size_t samples = static_cast<size_t>(g.in_h * g.in_w * 3);
  if (g.in_h <= 0 || g.in_w <= 0 ||
      (image.bits == 16 ? image.rgb16.size() : image.rgb8.size()) != samples) {
    return internal_error("resize_bilinear: decoded image of " + std::to_string(g.in_w) + "x" +
                          std::to_string(g.in_h) + " holds the wrong number of samples");
  }
  // Every element is written by the kernel.
  Tensor out = Tensor::uninitialized(DType::kFloat32, {height, width, 3});
  if (image.bits == 16) {
    resize_scaled_samples(image.rgb16.data(), g, height, width, kUnitScale16,
                          out.mutable_data<float>());
  } else {
    resize_scaled_samples(image.rgb8.data(), g, height, width, kUnitScale8,
                          out.mutable_data<float>());
  }
  return out;
}

Expected<Tensor> resize_nearest(const Tensor& images, int64_t height, int64_t width) {
  return catch_exceptions("resize_nearest", [&]() -> Expected<Tensor> {
    return with_optional_batch(images, "resize_nearest", [&](const Tensor& nhwc) {
      return resize_nearest_neighbor_op(nhwc, height, width, {.half_pixel_centers = true});
    });
  });
}

}  // namespace hubimg
