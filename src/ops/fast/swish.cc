#include "ops/fast/swish.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/thread_pool.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized on their own _mm512_undefined_ps
// (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

namespace hubimg::ops::fast {
namespace {

#if defined(__AVX512F__)
// exp(-x) = 2^n * e^r with n = round(-x / ln 2) and r = -x - n ln 2 (ln 2 in two parts, so r is
// nearly exact), e^r by a degree-5 minimax polynomial on [-ln2/2, ln2/2] (relative error 1.1e-7),
// 2^n applied by vscalefps (overflow to +inf, so x / inf = -0 for very negative x).
// Clamping to +-126 keeps n finite and does not change the result in float32.
inline __m512 swish16(__m512 x) {
  const __m512 t = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-126.f)), _mm512_set1_ps(126.f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(-1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmsub_ps(n, _mm512_set1_ps(0.693145752f), t);  // -t - n * ln2_hi
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-06f), r);      //    - n * ln2_lo
  __m512 p = _mm512_set1_ps(8.375128890e-03f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.191752969e-02f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666641548e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.999886911e-01f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.000000038e+00f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.000000075e+00f));
  const __m512 exp_minus_x = _mm512_scalef_ps(p, n);
  // A division, not rcp14 + a Newton step: measured faster on Zen 5, and exact at +inf.
  return _mm512_div_ps(x, _mm512_add_ps(exp_minus_x, _mm512_set1_ps(1.f)));
}
#endif

// Rows [row_begin, row_end) of [images * pixels, channels]: swish in place (if asked) and the
// rows' channel sums added to sums[image * channels + c].
void rows_swish_and_sums(float* data, int64_t row_begin, int64_t row_end, int64_t pixels,
                         int64_t channels, bool apply_swish, double* sums) {
  constexpr int64_t kBlockRows = 64;
  std::vector<float> block(static_cast<size_t>(channels));
  int64_t row = row_begin;
  while (row < row_end) {
    const int64_t image = row / pixels;
    const int64_t block_end = std::min({row_end, (image + 1) * pixels, row + kBlockRows});
    std::fill(block.begin(), block.end(), 0.0f);
    float* acc = block.data();
    for (; row < block_end; ++row) {
      float* x = data + row * channels;
      int64_t c = 0;
#if defined(__AVX512F__)
      for (; c + 16 <= channels; c += 16) {
        __m512 v = _mm512_loadu_ps(x + c);
        if (apply_swish) {
          v = swish16(v);
          _mm512_storeu_ps(x + c, v);
        }
        _mm512_storeu_ps(acc + c, _mm512_add_ps(_mm512_loadu_ps(acc + c), v));
      }
      if (c < channels) {
        const __mmask16 tail = static_cast<__mmask16>((1u << (channels - c)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(tail, x + c);
        if (apply_swish) {
          v = swish16(v);
          _mm512_mask_storeu_ps(x + c, tail, v);
        }
        _mm512_mask_storeu_ps(acc + c, tail,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(tail, acc + c), v));
      }
#else
      for (; c < channels; ++c) {
        if (apply_swish) x[c] = swish_reference(x[c]);
        acc[c] += x[c];
      }
#endif
    }
    double* s = sums + image * channels;
    for (int64_t c = 0; c < channels; ++c) s[c] += static_cast<double>(acc[c]);
  }
}

}  // namespace

float swish_reference(float x) {
  return x / (1.0f + std::exp(-x));
}

void swish_in_place(float* data, int64_t count) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= count; i += 16) _mm512_storeu_ps(data + i, swish16(_mm512_loadu_ps(data + i)));
  if (i < count) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (count - i)) - 1);
    _mm512_mask_storeu_ps(data + i, tail, swish16(_mm512_maskz_loadu_ps(tail, data + i)));
  }
#else
  for (; i < count; ++i) data[i] = swish_reference(data[i]);
#endif
}

void swish_and_channel_means(float* data, int64_t images, int64_t pixels, int64_t channels,
                             bool apply_swish, float* means) {
  const int64_t rows = images * pixels;
  if (images <= 0 || channels <= 0) return;
  constexpr int64_t kGrain = 64 * 1024;
  auto& pool = ThreadPool::global();
  const int64_t ranges = rows * channels < kGrain || in_parallel_region()
                             ? 1
                             : std::min<int64_t>(pool.num_threads(), rows);
  // One partial sum per range and image; each range covers contiguous rows.
  std::vector<double> partial(static_cast<size_t>(ranges * images * channels), 0.0);
  auto run_range = [&](int64_t r) {
    rows_swish_and_sums(data, rows * r / ranges, rows * (r + 1) / ranges, pixels, channels,
                        apply_swish, partial.data() + r * images * channels);
  };
  if (ranges == 1) {
    run_range(0);
  } else {
    pool.parallel_for(ranges, run_range);
  }
  const double count = static_cast<double>(pixels);
  for (int64_t i = 0; i < images * channels; ++i) {
    double total = 0;
    for (int64_t r = 0; r < ranges; ++r)
      total += partial[static_cast<size_t>(r * images * channels + i)];
    means[i] =
        pixels == 0 ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(total / count);
  }
}

void swish_in_place_parallel(float* data, int64_t count) {
  // Below this many elements (~30 us of one thread's work) a fork costs more than it saves.
  constexpr int64_t kGrain = 64 * 1024;
  auto& pool = ThreadPool::global();
  const int threads = pool.num_threads();
  if (count < kGrain || threads <= 1 || in_parallel_region()) {
    swish_in_place(data, count);
    return;
  }
  // Ranges of whole 16-float blocks (cache lines in the pool's 64-byte aligned buffers).
  const int64_t lines = (count + 15) / 16;
  pool.parallel_for_ranges(lines, [&](int64_t begin, int64_t end) {
    const int64_t first = begin * 16;
    swish_in_place(data + first, std::min(count, end * 16) - first);
  });
}

}  // namespace hubimg::ops::fast
