// Element type conversion with TensorFlow's CPU results (tf.cast / the Cast kernel).
#pragma once

#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::ops {

// Converts every element of `src` to `dst`. Semantics:
//  - integer -> integer wraps modulo 2^bits (two's complement);
//  - float -> integer truncates toward zero. NaN and values outside the target range give
//    what TensorFlow's x86-64 kernels give: int32 and narrower targets convert through int32,
//    where NaN/out-of-range becomes INT32_MIN, then wrap (100000.0 -> int16 -31072);
//    int64 gets INT64_MIN; uint32 takes the low 32 bits of the int64 conversion; uint64
//    converts values >= 2^63 by subtracting 2^63 first;
//  - anything -> bool is `x != 0` (NaN is true); bool -> number is 0 or 1;
//  - to float16/bfloat16 rounds to nearest even through float (doubles round twice, as Eigen
//    does); with `truncate`, float -> bfloat16 drops the low 16 bits instead.
Expected<Tensor> cast_tensor(const Tensor& src, DType dst, bool truncate = false);

}  // namespace hubimg::ops
