// swish(x) = x * sigmoid(x) = x / (1 + exp(-x)) over a float32 buffer, in place.
//
// oneDNN 2.6's swish post-op costs about one cycle per output element inside a convolution
// (measured on the EfficientNet-B0 layers: 112x112x16->96 1x1 conv 0.175 ms plain, 0.468 ms
// with the post-op). This pass, run on the primitive's output while it is still in cache, costs
// about 0.6 cycles per element with AVX-512 (polynomial exp, scalef, one division), so the fast
// kernels run their convolutions without the post-op and call it afterwards.
//
// Accuracy: relative error <= 4e-7 against x / (1 + exp(-x)) in double over [-100, 100];
// -0 below x = -88.7 (where exp(-x) overflows float; the exact value is < 1e-36);
// swish(+inf) = +inf, swish(-inf) = NaN (as -inf * sigmoid(-inf) is in TensorFlow), NaN stays NaN.
#pragma once

#include <cstdint>

namespace hubimg::ops::fast {

// On the calling thread.
void swish_in_place(float* data, int64_t count);

// Spread over the global thread pool when the buffer is large enough to pay for it (and on the
// calling thread inside a parallel region).
void swish_in_place_parallel(float* data, int64_t count);

// For data [images, pixels, channels]: applies swish in place when `apply_swish`, and writes
// each image's per-channel mean over its pixels (after swish) to means[images, channels] — the
// global average pooling (Mean over height and width) that squeeze-and-excitation and
// classifier heads read, computed while the values are in registers instead of in another pass.
// Sums accumulate in float over blocks of 64 pixels, then in double. Spread over the global
// thread pool like swish_in_place_parallel.
void swish_and_channel_means(float* data, int64_t images, int64_t pixels, int64_t channels,
                             bool apply_swish, float* means);

// The portable formula, x / (1 + exp(-x)); the oracle in tests.
float swish_reference(float x);

}  // namespace hubimg::ops::fast
