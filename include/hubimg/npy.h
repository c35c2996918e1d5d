// NumPy .npy files: read (format versions 1.0, 2.0 and 3.0; little-endian, C order) and
// write (version 1.0, or 2.0 when the header does not fit 1.0's 16-bit length).
//
// Supported element types: <f2 <f4 <f8, |i1 <i2 <i4 <i8, |u1 <u2 <u4 <u8 and |b1 (read as
// bool; any nonzero byte becomes true). One-byte types accept any byte-order character.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg {

// Errors name the file: "<path>: ...". Never allocates more than the file holds.
Expected<Tensor> read_npy(const std::filesystem::path& path);

// Parses a whole .npy file held in memory; `name_for_errors` starts every error message.
Expected<Tensor> parse_npy(std::span<const uint8_t> bytes, std::string_view name_for_errors);

// Serialises `tensor` as a .npy file image (what write_npy writes).
Expected<std::vector<uint8_t>> encode_npy(const Tensor& tensor);

// Writes `tensor` (any numeric dtype except bfloat16, which NumPy has no type for).
Status write_npy(const std::filesystem::path& path, const Tensor& tensor);

}  // namespace hubimg
