#include "hubimg/tensor.h"

#include <atomic>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "core/buffer_pool.h"

namespace hubimg {
namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kFloat32, "float32", 4}, {DType::kFloat64, "float64", 8},
    {DType::kInt32, "int32", 4},     {DType::kUInt8, "uint8", 1},
    {DType::kInt16, "int16", 2},     {DType::kInt8, "int8", 1},
    {DType::kString, "string", 0},   {DType::kComplex64, "complex64", 8},
    {DType::kInt64, "int64", 8},     {DType::kBool, "bool", 1},
    {DType::kQInt8, "qint8", 1},     {DType::kQUInt8, "quint8", 1},
    {DType::kQInt32, "qint32", 4},   {DType::kBFloat16, "bfloat16", 2},
    {DType::kQInt16, "qint16", 2},   {DType::kQUInt16, "quint16", 2},
    {DType::kUInt16, "uint16", 2},   {DType::kComplex128, "complex128", 16},
    {DType::kFloat16, "float16", 2}, {DType::kResource, "resource", 0},
    {DType::kVariant, "variant", 0}, {DType::kUInt32, "uint32", 4},
    {DType::kUInt64, "uint64", 8},
};

const DTypeInfo* find_info(DType d) {
  for (const auto& info : kDTypes) {
    if (info.dtype == d) return &info;
  }
  return nullptr;
}

constexpr int64_t kMaxElements = int64_t{1} << 48;
constexpr int64_t kDefaultMaxTensorBytes = int64_t{1} << 30;

std::atomic<int64_t>& tensor_byte_limit() {
  static std::atomic<int64_t> limit = [] {
    int64_t bytes = kDefaultMaxTensorBytes;
    if (const char* env = std::getenv("HUBIMG_MAX_TENSOR_BYTES")) {
      char* end = nullptr;
      const long long value = std::strtoll(env, &end, 10);
      if (end != env && *end == '\0' && value > 0) bytes = value;
    }
    return bytes;
  }();
  return limit;
}

std::string bytes_to_string(double bytes) {
  char buf[32];
  if (bytes >= double(int64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / double(int64_t{1} << 30));
  } else if (bytes >= double(1 << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / double(1 << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%.0f bytes", bytes);
  }
  return buf;
}

std::shared_ptr<void> aligned_zeroed(size_t bytes) {
  auto buffer = BufferPool::global().allocate(bytes);
  std::memset(buffer.get(), 0, bytes);
  return buffer;
}

}  // namespace

std::string dtype_name(DType dtype) {
  if (dtype == DType::kInvalid) return "invalid";
  if (const auto* info = find_info(dtype)) return info->name;
  return "dtype_" + std::to_string(static_cast<int>(dtype));
}

Expected<DType> dtype_from_name(std::string_view name) {
  for (const auto& info : kDTypes) {
    if (name == info.name) return info.dtype;
  }
  if (name == "float") return DType::kFloat32;
  if (name == "double") return DType::kFloat64;
  if (name == "half") return DType::kFloat16;
  return invalid_argument("unknown dtype name '" + std::string(name) + "'");
}

Expected<DType> dtype_from_proto(int value) {
  if (value > 100) value -= 100;  // reference types
  auto d = static_cast<DType>(value);
  if (find_info(d) == nullptr) {
    return invalid_argument("unknown DataType number " + std::to_string(value));
  }
  return d;
}

size_t dtype_size(DType dtype) {
  const auto* info = find_info(dtype);
  return info ? info->size : 0;
}

bool dtype_is_numeric(DType dtype) {
  switch (dtype) {
    case DType::kFloat32:
    case DType::kFloat64:
    case DType::kInt32:
    case DType::kUInt8:
    case DType::kInt16:
    case DType::kInt8:
    case DType::kInt64:
    case DType::kBool:
    case DType::kBFloat16:
    case DType::kUInt16:
    case DType::kFloat16:
    case DType::kUInt32:
    case DType::kUInt64: return true;
    default: return false;
  }
}

float Float16::to_float() const {
  uint32_t sign = (bits & 0x8000u) << 16;
  uint32_t exp = (bits >> 10) & 0x1f;
  uint32_t mant = bits & 0x3ffu;
  uint32_t out;
  if (exp == 0) {
    if (mant == 0) {
      out = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      out = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    out = sign | 0x7f800000u | (mant << 13);
  } else {
    out = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(out);
}

Float16 Float16::from_float(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xffu;
  uint32_t mant = x & 0x7fffffu;
  if (exp == 0xff) return {static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u))};
  int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31) return {static_cast<uint16_t>(sign | 0x7c00u)};
  if (e <= 0) {
    if (e < -10) return {static_cast<uint16_t>(sign)};
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
    return {static_cast<uint16_t>(sign | half)};
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;
  return {static_cast<uint16_t>(half)};
}

float BFloat16::to_float() const {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

BFloat16 BFloat16::from_float(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if (std::isnan(f)) return {static_cast<uint16_t>((x >> 16) | 0x40u)};
  uint32_t rounding_bias = 0x7fffu + ((x >> 16) & 1u);
  return {static_cast<uint16_t>((x + rounding_bias) >> 16)};
}

std::string dims_to_string(const Dims& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

Expected<int64_t> checked_num_elements(const Dims& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return invalid_argument("negative dimension in shape " + dims_to_string(dims));
    if (d != 0 && n > kMaxElements / d) {
      return out_of_range("shape " + dims_to_string(dims) + " has too many elements");
    }
    n *= d;
  }
  return n;
}

bool PartialShape::is_fully_defined() const {
  if (unknown_rank) return false;
  for (int64_t d : dims) {
    if (d < 0) return false;
  }
  return true;
}

bool PartialShape::is_compatible_with(const Dims& concrete) const {
  if (unknown_rank) return true;
  if (dims.size() != concrete.size()) return false;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] >= 0 && dims[i] != concrete[i]) return false;
  }
  return true;
}

std::string PartialShape::to_string() const {
  return unknown_rank ? "<unknown rank>" : dims_to_string(dims);
}

Tensor::Tensor(DType dtype, Dims shape) : dtype_(dtype), shape_(std::move(shape)) {
  auto n = checked_num_elements(shape_);
  assert(n.ok() && "invalid tensor shape");
  num_elements_ = n.ok() ? *n : 0;
  if (auto size = check_tensor_size(dtype_, shape_); !size.ok())
    throw TensorTooLarge(size.message());
  if (dtype_ == DType::kString) {
    strings_ = std::make_shared<std::vector<std::string>>(static_cast<size_t>(num_elements_));
    return;
  }
  auto buf = aligned_zeroed(byte_size());
  data_ = buf.get();
  owner_ = std::move(buf);
  owns_allocation_ = true;
}

Tensor Tensor::uninitialized(DType dtype, Dims shape) {
  if (dtype == DType::kString) return Tensor(dtype, std::move(shape));
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  auto n = checked_num_elements(t.shape_);
  assert(n.ok() && "invalid tensor shape");
  t.num_elements_ = n.ok() ? *n : 0;
  if (auto size = check_tensor_size(dtype, t.shape_); !size.ok())
    throw TensorTooLarge(size.message());
  auto buf = BufferPool::global().allocate(t.byte_size());
  t.data_ = buf.get();
  t.owner_ = std::move(buf);
  t.owns_allocation_ = true;
  return t;
}

int64_t max_tensor_bytes() {
  return tensor_byte_limit().load(std::memory_order_relaxed);
}

void set_max_tensor_bytes(int64_t bytes) {
  tensor_byte_limit().store(bytes, std::memory_order_relaxed);
}

Status check_tensor_size(DType dtype, const Dims& dims) {
  HUBIMG_ASSIGN_OR_RETURN(int64_t n, checked_num_elements(dims));
  const size_t element_bytes =
      dtype == DType::kString ? sizeof(std::string) : std::max<size_t>(dtype_size(dtype), 1);
  // n < 2^48 and element_bytes <= 32: the product fits.
  const double bytes = static_cast<double>(n) * static_cast<double>(element_bytes);
  if (bytes > static_cast<double>(max_tensor_bytes())) {
    return out_of_range("tensor " + dtype_name(dtype) + dims_to_string(dims) + " (" +
                        bytes_to_string(bytes) + ") is larger than the tensor size limit of " +
                        bytes_to_string(static_cast<double>(max_tensor_bytes())) +
                        " (HUBIMG_MAX_TENSOR_BYTES)");
  }
  return {};
}

Expected<Tensor> Tensor::create(DType dtype, Dims shape) {
  if (dtype != DType::kString && !dtype_is_numeric(dtype)) {
    return unimplemented("cannot allocate a tensor of dtype " + dtype_name(dtype));
  }
  HUBIMG_RETURN_IF_ERROR(check_tensor_size(dtype, shape));
  return Tensor(dtype, std::move(shape));
}

Tensor Tensor::wrap(DType dtype, Dims shape, void* data, std::shared_ptr<const void> owner) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  auto n = checked_num_elements(t.shape_);
  assert(n.ok());
  t.num_elements_ = n.ok() ? *n : 0;
  t.data_ = data;
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::from_strings(Dims shape, std::vector<std::string> values) {
  Tensor t;
  t.dtype_ = DType::kString;
  t.shape_ = std::move(shape);
  auto n = checked_num_elements(t.shape_);
  t.num_elements_ = n.ok() ? *n : 0;
  assert(static_cast<size_t>(t.num_elements_) == values.size());
  t.strings_ = std::make_shared<std::vector<std::string>>(std::move(values));
  return t;
}

const std::vector<std::string>& Tensor::strings() const {
  check_type(DType::kString);
  return *strings_;
}

std::vector<std::string>& Tensor::mutable_strings() {
  check_type(DType::kString);
  return *strings_;
}

Tensor Tensor::clone() const {
  if (!valid()) return {};
  if (dtype_ == DType::kString) return from_strings(shape_, *strings_);
  Tensor t(dtype_, shape_);
  if (byte_size()) std::memcpy(t.data_, data_, byte_size());
  return t;
}

Expected<Tensor> Tensor::reshaped(Dims shape) const {
  HUBIMG_ASSIGN_OR_RETURN(int64_t n, checked_num_elements(shape));
  if (n != num_elements_) {
    return invalid_argument("cannot reshape " + description() + " to " + dims_to_string(shape));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Expected<Tensor> Tensor::rows(int64_t begin, int64_t end) const {
  if (!valid() || dtype_ == DType::kString || rank() < 1) {
    return invalid_argument("cannot take rows of " + description());
  }
  if (begin < 0 || end < begin || end > shape_[0]) {
    return out_of_range("rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") of " +
                        description());
  }
  const int64_t row_elements = shape_[0] == 0 ? 0 : num_elements_ / shape_[0];
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.num_elements_ = row_elements * (end - begin);
  t.data_ =
      static_cast<char*>(data_) + static_cast<size_t>(begin * row_elements) * dtype_size(dtype_);
  t.owns_allocation_ = false;  // a view: never handed to a kernel to overwrite
  return t;
}

std::string Tensor::description() const {
  return dtype_name(dtype_) + dims_to_string(shape_);
}

void Tensor::check_type(DType requested) const {
  if (requested != dtype_) {
    std::fprintf(stderr, "hubimg: tensor %s accessed as %s\n", description().c_str(),
                 dtype_name(requested).c_str());
    std::abort();
  }
}

void Tensor::abort_on_count_mismatch(const Tensor& t, size_t given) {
  std::fprintf(stderr, "hubimg: tensor %s made from %zu values\n", t.description().c_str(), given);
  std::abort();
}

double element_as_double(const Tensor& t, int64_t i) {
  const void* p = t.raw_data();
  switch (t.dtype()) {
    case DType::kFloat32: return static_cast<const float*>(p)[i];
    case DType::kFloat64: return static_cast<const double*>(p)[i];
    case DType::kInt32: return static_cast<const int32_t*>(p)[i];
    case DType::kUInt8: return static_cast<const uint8_t*>(p)[i];
    case DType::kInt16: return static_cast<const int16_t*>(p)[i];
    case DType::kInt8: return static_cast<const int8_t*>(p)[i];
    case DType::kInt64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::kBool: return static_cast<const bool*>(p)[i] ? 1.0 : 0.0;
    case DType::kBFloat16: return static_cast<const BFloat16*>(p)[i].to_float();
    case DType::kUInt16: return static_cast<const uint16_t*>(p)[i];
    case DType::kFloat16: return static_cast<const Float16*>(p)[i].to_float();
    case DType::kUInt32: return static_cast<const uint32_t*>(p)[i];
    case DType::kUInt64: return static_cast<double>(static_cast<const uint64_t*>(p)[i]);
    default: return std::nan("");
  }
}

}  // namespace hubimg
