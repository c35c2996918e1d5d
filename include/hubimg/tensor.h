// Tensor: a dtype, a shape and a shared buffer. A tensor can own its memory (64-byte aligned)
// or view memory it does not own (a memory-mapped checkpoint shard, a caller's array) without
// copying; copies of a Tensor share the buffer, clone() makes an independent one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hubimg/status.h"

namespace hubimg {

// TensorFlow's DataType numbering (tensorflow/core/framework/types.proto).
enum class DType : int32_t {
  kInvalid = 0,
  kFloat32 = 1,
  kFloat64 = 2,
  kInt32 = 3,
  kUInt8 = 4,
  kInt16 = 5,
  kInt8 = 6,
  kString = 7,
  kComplex64 = 8,
  kInt64 = 9,
  kBool = 10,
  kQInt8 = 11,
  kQUInt8 = 12,
  kQInt32 = 13,
  kBFloat16 = 14,
  kQInt16 = 15,
  kQUInt16 = 16,
  kUInt16 = 17,
  kComplex128 = 18,
  kFloat16 = 19,
  kResource = 20,
  kVariant = 21,
  kUInt32 = 22,
  kUInt64 = 23,
};

// TensorFlow's Python name ("float32", "int64", ...); "invalid" for kInvalid, "dtype_N" for
// numbers TensorFlow does not define.
std::string dtype_name(DType dtype);
Expected<DType> dtype_from_name(std::string_view name);
// Converts a DataType number read from a file; strips the _REF (+100) offset.
Expected<DType> dtype_from_proto(int value);
// Bytes per element; 0 for types without a fixed-size element (string, resource, variant).
size_t dtype_size(DType dtype);
bool dtype_is_numeric(DType dtype);  // fixed-size element we can compute with or store

// IEEE half and bfloat16 storage types, converted through float.
struct Float16 {
  uint16_t bits = 0;
  float to_float() const;
  static Float16 from_float(float f);
};
struct BFloat16 {
  uint16_t bits = 0;
  float to_float() const;
  static BFloat16 from_float(float f);  // round to nearest even, like TensorFlow
};

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::kFloat32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::kFloat64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::kInt32;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::kUInt8;
}
template <>
constexpr DType dtype_of<int16_t>() {
  return DType::kInt16;
}
template <>
constexpr DType dtype_of<int8_t>() {
  return DType::kInt8;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::kInt64;
}
template <>
constexpr DType dtype_of<bool>() {
  return DType::kBool;
}
template <>
constexpr DType dtype_of<BFloat16>() {
  return DType::kBFloat16;
}
template <>
constexpr DType dtype_of<uint16_t>() {
  return DType::kUInt16;
}
template <>
constexpr DType dtype_of<Float16>() {
  return DType::kFloat16;
}
template <>
constexpr DType dtype_of<uint32_t>() {
  return DType::kUInt32;
}
template <>
constexpr DType dtype_of<uint64_t>() {
  return DType::kUInt64;
}

using Dims = std::vector<int64_t>;

std::string dims_to_string(const Dims& dims);  // "[2, 3]"
// Product of the dims; an error for negative dims or a product above 2^48 elements.
Expected<int64_t> checked_num_elements(const Dims& dims);

// The largest tensor a model may create, in bytes (strings count sizeof(std::string) per
// element): constants, kernel outputs, anything made through Tensor::create. A shape computed
// from model data (a Const's declared shape, Fill/Pad/Tile/BroadcastTo sizes) past it is an
// error before anything is allocated. Default 1 GiB, or the environment variable
// HUBIMG_MAX_TENSOR_BYTES (a byte count) read once at first use; set_max_tensor_bytes()
// overrides both for the whole process.
int64_t max_tensor_bytes();
void set_max_tensor_bytes(int64_t bytes);
// An error naming the shape and the limit when `dtype` x `dims` is not a valid tensor shape or
// exceeds max_tensor_bytes().
Status check_tensor_size(DType dtype, const Dims& dims);

// Thrown by the Tensor constructor and Tensor::uninitialized, which cannot return an error, for
// a tensor over max_tensor_bytes(). Kernels check sizes first (Tensor::create); the executor
// turns this into an error naming the node, for kernels that size an output some other way.
class TensorTooLarge : public std::bad_alloc {
 public:
  explicit TensorTooLarge(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// A shape that may have unknown dimensions (-1) or unknown rank, as in a TensorSpec.
struct PartialShape {
  bool unknown_rank = true;
  Dims dims;

  static PartialShape unknown() { return {}; }
  static PartialShape known(Dims d) { return {false, std::move(d)}; }
  bool is_fully_defined() const;
  bool is_compatible_with(const Dims& concrete) const;
  std::string to_string() const;  // "[-1, 224, 224, 3]" or "<unknown rank>"
  bool operator==(const PartialShape&) const = default;
};

class Tensor {
 public:
  Tensor() = default;
  // Zero-initialised tensor; dims must be valid (see checked_num_elements). Strings start empty.
  Tensor(DType dtype, Dims shape);
  // A tensor whose contents are unspecified, for outputs a kernel overwrites entirely (strings:
  // as the constructor). Large buffers come from a cache of recently freed ones.
  static Tensor uninitialized(DType dtype, Dims shape);
  // As the constructor, but returns an error instead of asserting on invalid dims or sizes.
  static Expected<Tensor> create(DType dtype, Dims shape);
  // Views `data` (num_elements * dtype_size bytes) without copying. `owner` keeps the memory
  // alive as long as any Tensor refers to it; pass nullptr when the caller guarantees it.
  static Tensor wrap(DType dtype, Dims shape, void* data, std::shared_ptr<const void> owner);

  template <typename T>
  static Tensor scalar(T value) {
    Tensor t(dtype_of<T>(), {});
    *t.mutable_data<T>() = value;
    return t;
  }
  // `values` holds exactly the shape's element count; another count is a programming error
  // and aborts with a message, as an access with the wrong dtype does.
  template <typename T>
  static Tensor from_vector(Dims shape, std::span<const T> values) {
    Tensor t(dtype_of<T>(), std::move(shape));
    if (static_cast<size_t>(t.num_elements()) != values.size()) {
      abort_on_count_mismatch(t, values.size());
    }
    if (t.byte_size() != 0) std::memcpy(t.raw_mutable_data(), values.data(), t.byte_size());
    return t;
  }
  template <typename T>
  static Tensor from_vector(Dims shape, const std::vector<T>& values) {
    return from_vector<T>(std::move(shape), std::span<const T>(values));
  }
  static Tensor from_strings(Dims shape, std::vector<std::string> values);

  bool valid() const { return dtype_ != DType::kInvalid; }
  DType dtype() const { return dtype_; }
  const Dims& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[static_cast<size_t>(i)]; }
  int64_t num_elements() const { return num_elements_; }
  size_t byte_size() const { return static_cast<size_t>(num_elements_) * dtype_size(dtype_); }

  const void* raw_data() const { return data_; }
  void* raw_mutable_data() { return data_; }
  template <typename T>
  const T* data() const {
    check_type(dtype_of<T>());
    return static_cast<const T*>(data_);
  }
  template <typename T>
  T* mutable_data() {
    check_type(dtype_of<T>());
    return static_cast<T*>(data_);
  }
  template <typename T>
  std::span<const T> values() const {
    return {data<T>(), static_cast<size_t>(num_elements_)};
  }
  const std::vector<std::string>& strings() const;
  std::vector<std::string>& mutable_strings();

  Tensor clone() const;
  // Same buffer, new shape with the same number of elements.
  Expected<Tensor> reshaped(Dims shape) const;
  // Rows [begin, end) of dimension 0, viewing this tensor's memory (numeric dtypes, rank >= 1).
  Expected<Tensor> rows(int64_t begin, int64_t end) const;
  // True when both tensors view the same memory.
  bool shares_buffer_with(const Tensor& other) const { return data_ && data_ == other.data_; }

  // True when this tensor is the only holder of a buffer it allocated (not a view of a file, a
  // variable or a caller's memory): a kernel may then overwrite it in place.
  bool owns_buffer_exclusively() const { return owns_allocation_ && owner_.use_count() == 1; }

  // "float32[2, 3]"
  std::string description() const;

 private:
  void check_type(DType requested) const;
  [[noreturn]] static void abort_on_count_mismatch(const Tensor& t, size_t given);

  DType dtype_ = DType::kInvalid;
  Dims shape_;
  int64_t num_elements_ = 0;
  void* data_ = nullptr;
  std::shared_ptr<const void> owner_;
  std::shared_ptr<std::vector<std::string>> strings_;
  bool owns_allocation_ = false;
};

// Reads element i of a numeric tensor as double (for printing and comparisons in tests/tools).
double element_as_double(const Tensor& t, int64_t i);

}  // namespace hubimg
