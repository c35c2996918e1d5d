#include "hubimg/npy.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "core/file_io.h"

namespace hubimg {
namespace {

static_assert(std::endian::native == std::endian::little, "the .npy code assumes little-endian");

constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kPreludeV1 = 10;  // magic, version, uint16 header length
constexpr size_t kPreludeV2 = 12;  // magic, version, uint32 header length
constexpr size_t kMaxHeaderLen = size_t{1} << 20;
constexpr size_t kMaxRank = 32;

struct NpyHeader {
  DType dtype = DType::kInvalid;
  Dims shape;
  size_t data_offset = 0;  // bytes from the start of the file to the array data
  uint64_t data_bytes = 0;
};

std::string quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (std::isprint(static_cast<unsigned char>(c))) {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    }
  }
  return out + "'";
}

// A parser for the Python dict literal NumPy writes, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : s_(text) {}

  struct Fields {
    std::optional<std::string> descr;
    std::optional<bool> fortran_order;
    std::optional<Dims> shape;
  };

  Expected<Fields> parse() {
    Fields f;
    skip_ws();
    if (!eat('{')) return error("expected '{'");
    for (;;) {
      skip_ws();
      if (eat('}')) break;
      HUBIMG_ASSIGN_OR_RETURN(std::string key, parse_string());
      skip_ws();
      if (!eat(':')) return error("expected ':' after key " + quote(key));
      skip_ws();
      if (key == "descr") {
        if (peek() == '[') return unsupported("structured dtypes are not supported");
        HUBIMG_ASSIGN_OR_RETURN(f.descr, parse_string());
      } else if (key == "fortran_order") {
        HUBIMG_ASSIGN_OR_RETURN(f.fortran_order, parse_bool());
      } else if (key == "shape") {
        HUBIMG_ASSIGN_OR_RETURN(f.shape, parse_shape());
      } else {
        return error("unexpected key " + quote(key));
      }
      skip_ws();
      if (eat(',')) continue;
      skip_ws();
      if (eat('}')) break;
      return error("expected ',' or '}'");
    }
    skip_ws();
    if (pos_ != s_.size()) return error("unexpected text after the closing '}'");
    if (!f.descr || !f.fortran_order || !f.shape) {
      return error("missing 'descr', 'fortran_order' or 'shape'");
    }
    return f;
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  Status error(const std::string& what) const {
    return data_loss("bad .npy header (" + what + " at offset " + std::to_string(pos_) +
                     "): " + quote(s_.substr(0, 200)));
  }
  Status unsupported(const std::string& what) const { return unimplemented(what); }

  Expected<std::string> parse_string() {
    char q = peek();
    if (q != '\'' && q != '"') return error("expected a string");
    ++pos_;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != q) {
      if (s_[pos_] == '\\') return error("escape sequences are not supported");
      out += s_[pos_++];
    }
    if (!eat(q)) return error("unterminated string");
    return out;
  }

  Expected<bool> parse_bool() {
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    return error("expected True or False");
  }

  Expected<Dims> parse_shape() {
    char close;
    if (eat('(')) {
      close = ')';
    } else if (eat('[')) {
      close = ']';
    } else {
      return error("expected a tuple for 'shape'");
    }
    Dims dims;
    for (;;) {
      skip_ws();
      if (eat(close)) break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) return error("expected a dimension");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        int digit = s_[pos_++] - '0';
        if (v > (INT64_MAX - digit) / 10) return error("dimension too large");
        v = v * 10 + digit;
      }
      eat('L');  // Python 2 long literal
      dims.push_back(v);
      if (dims.size() > kMaxRank) return error("more than " + std::to_string(kMaxRank) + " dims");
      skip_ws();
      if (eat(',')) continue;
      skip_ws();
      if (eat(close)) break;
      return error("expected ',' or the end of 'shape'");
    }
    return dims;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

struct DescrEntry {
  char kind;
  int size;
  DType dtype;
};
constexpr DescrEntry kDescrs[] = {
    {'f', 2, DType::kFloat16}, {'f', 4, DType::kFloat32}, {'f', 8, DType::kFloat64},
    {'i', 1, DType::kInt8},    {'i', 2, DType::kInt16},   {'i', 4, DType::kInt32},
    {'i', 8, DType::kInt64},   {'u', 1, DType::kUInt8},   {'u', 2, DType::kUInt16},
    {'u', 4, DType::kUInt32},  {'u', 8, DType::kUInt64},  {'b', 1, DType::kBool},
};

Expected<DType> dtype_from_descr(const std::string& descr) {
  std::string_view d = descr;
  char order = '=';
  if (!d.empty() && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=')) {
    order = d[0];
    d.remove_prefix(1);
  }
  if (d.size() < 2 || d.size() > 3) return unimplemented("unsupported dtype " + quote(descr));
  char kind = d[0];
  int size = 0;
  for (char c : d.substr(1)) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      return unimplemented("unsupported dtype " + quote(descr));
    }
    size = size * 10 + (c - '0');
  }
  for (const auto& e : kDescrs) {
    if (e.kind != kind || e.size != size) continue;
    if (size > 1 && order == '>') {
      return unimplemented("big-endian dtype " + quote(descr) +
                           " is not supported (save the array as little-endian)");
    }
    if (size > 1 && order == '|') return data_loss("invalid dtype " + quote(descr));
    return e.dtype;
  }
  return unimplemented("unsupported dtype " + quote(descr));
}

Expected<std::string> descr_for(DType dtype) {
  for (const auto& e : kDescrs) {
    if (e.dtype != dtype) continue;
    std::string s(1, e.size == 1 ? '|' : '<');
    s += e.kind;
    s += std::to_string(e.size);
    return s;
  }
  return unimplemented("cannot write a " + dtype_name(dtype) + " tensor to .npy");
}

uint32_t load_le(const uint8_t* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}

// How many bytes the header occupies (prelude + dict), from the first 12 bytes of the file.
Expected<size_t> header_extent(std::span<const uint8_t> prefix, uint64_t file_size) {
  if (prefix.size() < kPreludeV1 || std::memcmp(prefix.data(), kMagic, 6) != 0) {
    return data_loss("not a .npy file (bad magic)");
  }
  uint8_t major = prefix[6];
  size_t prelude;
  size_t header_len;
  if (major == 1) {
    prelude = kPreludeV1;
    header_len = load_le(prefix.data() + 8, 2);
  } else if (major == 2 || major == 3) {
    if (prefix.size() < kPreludeV2) return data_loss("truncated .npy header");
    prelude = kPreludeV2;
    header_len = load_le(prefix.data() + 8, 4);
  } else {
    return unimplemented("unsupported .npy format version " + std::to_string(major) + "." +
                         std::to_string(prefix[7]));
  }
  if (header_len > kMaxHeaderLen) {
    return data_loss(".npy header length " + std::to_string(header_len) + " is implausible");
  }
  if (prelude + header_len > file_size) {
    return data_loss("truncated .npy header (" + std::to_string(prelude + header_len) +
                     " header bytes, file has " + std::to_string(file_size) + ")");
  }
  return prelude + header_len;
}

Expected<NpyHeader> parse_header(std::span<const uint8_t> header_bytes, uint64_t file_size) {
  HUBIMG_ASSIGN_OR_RETURN(size_t extent, header_extent(header_bytes, file_size));
  size_t prelude = header_bytes[6] == 1 ? kPreludeV1 : kPreludeV2;
  std::string_view text(reinterpret_cast<const char*>(header_bytes.data()) + prelude,
                        extent - prelude);
  HUBIMG_ASSIGN_OR_RETURN(auto fields, HeaderParser(text).parse());
  if (*fields.fortran_order) {
    return unimplemented("Fortran-order arrays are not supported (save with C order)");
  }
  NpyHeader h;
  HUBIMG_ASSIGN_OR_RETURN(h.dtype, dtype_from_descr(*fields.descr));
  h.shape = std::move(*fields.shape);
  HUBIMG_ASSIGN_OR_RETURN(int64_t n, checked_num_elements(h.shape));
  h.data_offset = extent;
  h.data_bytes = static_cast<uint64_t>(n) * dtype_size(h.dtype);
  uint64_t available = file_size - extent;
  if (h.data_bytes > available) {
    return data_loss("truncated .npy data: shape " + dims_to_string(h.shape) + " of " +
                     dtype_name(h.dtype) + " needs " + std::to_string(h.data_bytes) +
                     " bytes, the file has " + std::to_string(available));
  }
  if (h.data_bytes < available) {
    return data_loss(std::to_string(available - h.data_bytes) +
                     " unexpected bytes after the array data of shape " + dims_to_string(h.shape));
  }
  return h;
}

void normalise_bools(Tensor& t) {
  if (t.dtype() != DType::kBool) return;
  auto* p = static_cast<uint8_t*>(t.raw_mutable_data());
  for (int64_t i = 0; i < t.num_elements(); ++i) p[i] = p[i] != 0;
}

Expected<Tensor> allocate(const NpyHeader& h) {
  return Tensor::create(h.dtype, h.shape);
}

}  // namespace

Expected<Tensor> parse_npy(std::span<const uint8_t> bytes, std::string_view name_for_errors) {
  return catch_exceptions(name_for_errors, [&]() -> Expected<Tensor> {
    auto fail = [&](const Status& s) { return s.with_context(name_for_errors); };
    auto header = parse_header(bytes, bytes.size());
    if (!header.ok()) return fail(header.status());
    auto tensor = allocate(*header);
    if (!tensor.ok()) return fail(tensor.status());
    if (header->data_bytes) {
      std::memcpy(tensor->raw_mutable_data(), bytes.data() + header->data_offset,
                  header->data_bytes);
    }
    normalise_bools(*tensor);
    return std::move(tensor).value();
  });
}

Expected<Tensor> read_npy(const std::filesystem::path& path) {
  return catch_exceptions("reading " + path.string(), [&]() -> Expected<Tensor> {
    const std::string name = path.string();
    auto fail = [&](const Status& s) { return s.with_context(name); };
    auto opened = open_regular_file(path);
    if (!opened.ok()) return opened.status();
    const RegularFile& file = *opened;
    const uint64_t file_size = file.size;

    std::vector<uint8_t> head(std::min<uint64_t>(file_size, kPreludeV2));
    HUBIMG_RETURN_IF_ERROR(read_exactly(file, 0, head.data(), head.size(), path));
    auto extent = header_extent(head, file_size);
    if (!extent.ok()) return fail(extent.status());
    size_t already = head.size();
    head.resize(*extent);
    if (*extent > already) {
      HUBIMG_RETURN_IF_ERROR(
          read_exactly(file, already, head.data() + already, *extent - already, path));
    }
    auto header = parse_header(head, file_size);
    if (!header.ok()) return fail(header.status());
    auto tensor = allocate(*header);
    if (!tensor.ok()) return fail(tensor.status());
    if (header->data_bytes) {
      HUBIMG_RETURN_IF_ERROR(read_exactly(file, header->data_offset, tensor->raw_mutable_data(),
                                          header->data_bytes, path));
    }
    normalise_bools(*tensor);
    return std::move(tensor).value();
  });
}

Expected<std::vector<uint8_t>> encode_npy(const Tensor& tensor) {
  return catch_exceptions("encoding .npy", [&]() -> Expected<std::vector<uint8_t>> {
    if (!tensor.valid()) return invalid_argument("cannot write an invalid tensor to .npy");
    HUBIMG_ASSIGN_OR_RETURN(std::string descr, descr_for(tensor.dtype()));
    std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
    for (size_t i = 0; i < tensor.shape().size(); ++i) {
      if (i) dict += ", ";
      dict += std::to_string(tensor.shape()[i]);
    }
    if (tensor.shape().size() == 1) dict += ",";
    dict += "), }";
    // The total header (prelude + dict + padding + '\n') is a multiple of 64 bytes.
    size_t prelude = kPreludeV1;
    auto padded = [&](size_t pre) { return (pre + dict.size() + 1 + 63) / 64 * 64 - pre; };
    size_t header_len = padded(prelude);
    if (header_len > 0xffff) {
      prelude = kPreludeV2;
      header_len = padded(prelude);
    }
    std::vector<uint8_t> out;
    out.reserve(prelude + header_len + tensor.byte_size());
    out.insert(out.end(), std::begin(kMagic), std::end(kMagic));
    out.push_back(prelude == kPreludeV1 ? 1 : 2);
    out.push_back(0);
    for (size_t i = 0; i < prelude - 8; ++i)
      out.push_back(static_cast<uint8_t>(header_len >> (8 * i)));
    out.insert(out.end(), dict.begin(), dict.end());
    out.insert(out.end(), header_len - dict.size() - 1, ' ');
    out.push_back('\n');
    const auto* data = static_cast<const uint8_t*>(tensor.raw_data());
    if (tensor.dtype() == DType::kBool) {
      for (int64_t i = 0; i < tensor.num_elements(); ++i) out.push_back(data[i] != 0);
    } else if (tensor.byte_size()) {
      out.insert(out.end(), data, data + tensor.byte_size());
    }
    return out;
  });
}

Status write_npy(const std::filesystem::path& path, const Tensor& tensor) {
  return catch_exceptions(path.string(), [&]() -> Status {
    const std::string name = path.string();
    auto bytes = encode_npy(tensor);
    if (!bytes.ok()) return bytes.status().with_context(name);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return not_found("cannot open for writing").with_context(name);
    out.write(reinterpret_cast<const char*>(bytes->data()),
              static_cast<std::streamsize>(bytes->size()));
    out.close();
    if (!out) return data_loss("write error").with_context(name);
    return {};
  });
}

}  // namespace hubimg
