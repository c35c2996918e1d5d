#include "format/tensor_bundle.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "checkpoint.pb.h"
#include "format/coding.h"
#include "format/crc32c.h"
#include "format/table.h"

namespace hubimg::format {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the bundle reader and writer assume a little-endian host");

constexpr int kBundleVersion = 1;  // kTensorBundleVersion: what we write and can read
constexpr int kMaxShards = 99999;  // the data file names have room for five digits
constexpr size_t kMaxRank = 254;   // TensorShape's limit

std::string quoted_key(std::string_view key) {
  std::string out(1, '\'');
  out += printable_key(key);
  out += '\'';
  return out;
}

// Feeds a string length to the CRC the way TensorFlow's WriteStringTensor does: as a
// little-endian uint32 when it fits, else as a uint64.
uint32_t extend_crc_with_length(uint32_t crc, uint64_t length) {
  char bytes[8];
  if (length <= std::numeric_limits<uint32_t>::max()) {
    const auto narrow = static_cast<uint32_t>(length);
    std::memcpy(bytes, &narrow, 4);
    return crc32c_extend(crc, bytes, 4);
  }
  std::memcpy(bytes, &length, 8);
  return crc32c_extend(crc, bytes, 8);
}

Status check_header(const tf::BundleHeaderProto& header, const std::string& index_name) {
  if (header.num_shards() < 1 || header.num_shards() > kMaxShards) {
    return data_loss(index_name + ": header declares " + std::to_string(header.num_shards()) +
                     " shards (expected 1 to " + std::to_string(kMaxShards) + ")");
  }
  if (header.endianness() == tf::BundleHeaderProto::BIG) {
    return unimplemented(index_name + ": big-endian checkpoints are not supported");
  }
  if (header.endianness() != tf::BundleHeaderProto::LITTLE) {
    return data_loss(index_name + ": header has unknown endianness " +
                     std::to_string(static_cast<int>(header.endianness())));
  }
  const tf::VersionDef& version = header.version();
  if (version.producer() < 0) {
    return data_loss(index_name + ": header has negative producer version " +
                     std::to_string(version.producer()));
  }
  if (version.min_consumer() > kBundleVersion) {
    return failed_precondition(index_name + ": checkpoint needs a reader of version " +
                               std::to_string(version.min_consumer()) + " or newer; this is " +
                               std::to_string(kBundleVersion));
  }
  for (int bad : version.bad_consumers()) {
    if (bad == kBundleVersion) {
      return failed_precondition(index_name + ": checkpoint disallows reader version " +
                                 std::to_string(kBundleVersion));
    }
  }
  return Status::ok_status();
}

Expected<BundleEntry> entry_from_proto(std::string_view key, const tf::BundleEntryProto& proto,
                                       int num_shards, const std::string& index_name) {
  const std::string where = index_name + ": tensor " + quoted_key(key);
  BundleEntry entry;
  entry.key.assign(key);
  const int dtype_number = static_cast<int>(proto.dtype());
  if (dtype_number <= 0)
    return data_loss(where + ": invalid dtype " + std::to_string(dtype_number));
  auto known = dtype_from_proto(dtype_number);
  entry.dtype = known.ok() ? *known : static_cast<DType>(dtype_number);

  const tf::TensorShapeProto& shape = proto.shape();
  if (shape.unknown_rank()) return data_loss(where + ": shape has unknown rank");
  if (static_cast<size_t>(shape.dim_size()) > kMaxRank) {
    return data_loss(where + ": shape has rank " + std::to_string(shape.dim_size()) +
                     ", more than " + std::to_string(kMaxRank));
  }
  for (const auto& dim : shape.dim()) entry.shape.push_back(dim.size());
  if (auto n = checked_num_elements(entry.shape); !n.ok()) {
    return data_loss(where + ": invalid shape: " + n.status().message());
  }

  entry.partitioned = proto.slices_size() > 0;
  entry.shard_id = proto.shard_id();
  entry.offset = proto.offset();
  entry.size = proto.size();
  entry.masked_crc32c = proto.crc32c();
  if (!entry.partitioned && (entry.shard_id < 0 || entry.shard_id >= num_shards)) {
    return data_loss(where + ": shard id " + std::to_string(entry.shard_id) +
                     " is not below the header's " + std::to_string(num_shards) + " shards");
  }
  if (entry.offset < 0 || entry.size < 0) {
    return data_loss(where + ": negative offset " + std::to_string(entry.offset) + " or size " +
                     std::to_string(entry.size));
  }
  return entry;
}

}  // namespace

std::filesystem::path bundle_index_path(const std::filesystem::path& prefix) {
  return prefix.string() + ".index";
}

std::filesystem::path bundle_data_path(const std::filesystem::path& prefix, int shard_id,
                                       int num_shards) {
  char suffix[40];
  std::snprintf(suffix, sizeof(suffix), ".data-%05d-of-%05d", shard_id, num_shards);
  return prefix.string() + suffix;
}

// ---------------------------------------------------------------------------------------------
// Reader

Expected<std::shared_ptr<TensorBundleReader>> TensorBundleReader::parse_index(
    std::string_view index_bytes, const std::filesystem::path& prefix,
    TensorBundleReadOptions options) {
  const std::filesystem::path index_path = bundle_index_path(prefix);
  const std::string index_name = index_path.string();
  TableReaderOptions table_options;
  table_options.verify_checksums = options.verify_checksums;
  HUBIMG_ASSIGN_OR_RETURN(TableReader table,
                          TableReader::open(index_bytes, index_name, table_options));

  std::shared_ptr<TensorBundleReader> reader(new TensorBundleReader(index_path, options));
  bool has_header = false;
  int num_shards = 0;
  HUBIMG_RETURN_IF_ERROR(
      table.for_each([&](std::string_view key, std::string_view value) -> Status {
        if (key.empty()) {  // sorts first
          tf::BundleHeaderProto header;
          if (!header.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
            return data_loss(index_name + ": cannot parse the BundleHeaderProto");
          }
          HUBIMG_RETURN_IF_ERROR(check_header(header, index_name));
          num_shards = header.num_shards();
          has_header = true;
          return Status::ok_status();
        }
        if (!has_header) return data_loss(index_name + ": no header entry (empty key)");
        tf::BundleEntryProto proto;
        if (!proto.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          return data_loss(index_name + ": tensor " + quoted_key(key) +
                           ": cannot parse its BundleEntryProto");
        }
        HUBIMG_ASSIGN_OR_RETURN(BundleEntry entry,
                                entry_from_proto(key, proto, num_shards, index_name));
        reader->entries_.push_back(std::move(entry));
        return Status::ok_status();
      }));
  if (!has_header) return data_loss(index_name + ": no header entry (empty key)");

  reader->shards_.resize(static_cast<size_t>(num_shards));
  for (int i = 0; i < num_shards; ++i) {
    reader->shards_[static_cast<size_t>(i)].path = bundle_data_path(prefix, i, num_shards);
  }
  return reader;
}

Expected<std::shared_ptr<TensorBundleReader>> TensorBundleReader::open(
    const std::filesystem::path& prefix, TensorBundleReadOptions options) {
  const std::filesystem::path index_path = bundle_index_path(prefix);
  HUBIMG_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> index, MappedFile::open(index_path));
  HUBIMG_ASSIGN_OR_RETURN(std::shared_ptr<TensorBundleReader> reader,
                          parse_index(index->view(), prefix, options));
  for (const Shard& shard : reader->shards_) {
    std::error_code error;
    if (!std::filesystem::is_regular_file(shard.path, error)) {
      return not_found(shard.path.string() + ": data file named by " + index_path.string() +
                       " is missing");
    }
  }
  return reader;
}

Expected<std::shared_ptr<TensorBundleReader>> TensorBundleReader::open_from_memory(
    std::string_view index_bytes, const std::vector<std::string_view>& shards,
    const std::filesystem::path& prefix, TensorBundleReadOptions options) {
  HUBIMG_ASSIGN_OR_RETURN(std::shared_ptr<TensorBundleReader> reader,
                          parse_index(index_bytes, prefix, options));
  if (shards.size() != reader->shards_.size()) {
    return invalid_argument(reader->index_path_.string() + ": header declares " +
                            std::to_string(reader->shards_.size()) + " shards but " +
                            std::to_string(shards.size()) + " were given");
  }
  for (size_t i = 0; i < shards.size(); ++i) {
    Shard& shard = reader->shards_[i];
    HUBIMG_ASSIGN_OR_RETURN(shard.mapping, MappedFile::from_bytes(shards[i], shard.path));
  }
  return reader;
}

const BundleEntry* TensorBundleReader::find(std::string_view key) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                             [](const BundleEntry& e, std::string_view k) { return e.key < k; });
  if (it == entries_.end() || it->key != key) return nullptr;
  return &*it;
}

Expected<std::shared_ptr<MappedFile>> TensorBundleReader::shard(int shard_id) const {
  std::lock_guard<std::mutex> lock(shards_mutex_);
  Shard& shard = shards_[static_cast<size_t>(shard_id)];
  if (!shard.mapping) {
    HUBIMG_ASSIGN_OR_RETURN(shard.mapping, MappedFile::open(shard.path));
  }
  return shard.mapping;
}

Expected<Tensor> TensorBundleReader::read(std::string_view key) const {
  const BundleEntry* entry = find(key);
  if (entry == nullptr) {
    return not_found(index_path_.string() + ": no tensor " + quoted_key(key) +
                     " in the checkpoint");
  }
  const std::string where = index_path_.string() + ": tensor " + quoted_key(key);
  if (entry->partitioned) {
    return unimplemented(where + " is partitioned into slices, which is not supported");
  }
  const bool is_string = entry->dtype == DType::kString;
  if (!is_string && !dtype_is_numeric(entry->dtype)) {
    return unimplemented(where + " has dtype " + dtype_name(entry->dtype) +
                         ", which hubimg cannot read");
  }
  // The shape was checked when the index was read.
  const int64_t num_elements = *checked_num_elements(entry->shape);
  if (!is_string) {
    const auto expected_size = static_cast<uint64_t>(num_elements) * dtype_size(entry->dtype);
    if (static_cast<uint64_t>(entry->size) != expected_size) {
      return data_loss(where + ": index says " + std::to_string(entry->size) + " bytes but " +
                       dtype_name(entry->dtype) + dims_to_string(entry->shape) + " needs " +
                       std::to_string(expected_size));
    }
  }

  HUBIMG_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, shard(entry->shard_id));
  const auto offset = static_cast<uint64_t>(entry->offset);
  const auto size = static_cast<uint64_t>(entry->size);
  if (offset > file->size() || size > file->size() - offset) {
    return data_loss(where + ": bytes [" + std::to_string(offset) + ", " +
                     std::to_string(offset + size) + ") lie past the end of " +
                     file->path().string() + " (" + std::to_string(file->size()) + " bytes)");
  }
  const std::string_view bytes = file->view().substr(offset, size);
  if (is_string) return read_strings(*entry, bytes, file->path());
  return read_numeric(*entry, std::move(file), bytes);
}

Expected<Tensor> TensorBundleReader::read_numeric(const BundleEntry& entry,
                                                  std::shared_ptr<MappedFile> file,
                                                  std::string_view bytes) const {
  if (options_.verify_checksums) {
    const uint32_t stored = crc32c_unmask(entry.masked_crc32c);
    const uint32_t computed = crc32c(bytes.data(), bytes.size());
    if (stored != computed) {
      return data_loss(file->path().string() + ": tensor " + quoted_key(entry.key) +
                       ": CRC mismatch (stored " + crc32c_hex(stored) + ", computed " +
                       crc32c_hex(computed) + ")");
    }
  }
  const size_t element_size = dtype_size(entry.dtype);
  // The bytes lie inside the file's mapping, which is writable (private).
  auto* data = file->mutable_data() + (bytes.data() - file->view().data());
  const bool aligned = reinterpret_cast<uintptr_t>(data) % element_size == 0;
  // A bool byte other than 0 or 1 is not a valid bool; such tensors are copied and normalised.
  const bool valid_bools =
      entry.dtype != DType::kBool ||
      std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0 || c == 1; });
  if (aligned && valid_bools) {
    return Tensor::wrap(entry.dtype, entry.shape, data, std::move(file));
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor copy, Tensor::create(entry.dtype, entry.shape));
  if (!bytes.empty()) std::memcpy(copy.raw_mutable_data(), bytes.data(), bytes.size());
  if (!valid_bools) {
    auto* out = static_cast<uint8_t*>(copy.raw_mutable_data());
    for (size_t i = 0; i < bytes.size(); ++i) out[i] = bytes[i] != 0 ? 1 : 0;
  }
  return copy;
}

Expected<Tensor> TensorBundleReader::read_strings(const BundleEntry& entry, std::string_view bytes,
                                                  const std::filesystem::path& file) const {
  const std::string where = file.string() + ": tensor " + quoted_key(entry.key);
  const auto num_elements = static_cast<uint64_t>(*checked_num_elements(entry.shape));
  if (bytes.empty() && num_elements == 0) return Tensor::from_strings(entry.shape, {});
  // Each string needs at least a one-byte length, and the lengths a 4-byte checksum; checking
  // this first bounds the allocations below by the entry's real size.
  if (bytes.size() < 4 || num_elements > bytes.size() - 4) {
    return data_loss(where + ": " + std::to_string(bytes.size()) +
                     " bytes cannot hold the lengths of " + std::to_string(num_elements) +
                     " strings");
  }
  std::string_view input = bytes;
  std::vector<uint64_t> lengths(num_elements);
  uint32_t crc = 0;
  uint64_t total_length = 0;
  for (uint64_t i = 0; i < num_elements; ++i) {
    if (!get_varint64(input, lengths[i])) {
      return data_loss(where + ": malformed length of string " + std::to_string(i));
    }
    if (lengths[i] > bytes.size() || total_length + lengths[i] > bytes.size()) {
      return data_loss(where + ": string " + std::to_string(i) + " of " +
                       std::to_string(lengths[i]) + " bytes does not fit in the entry's " +
                       std::to_string(bytes.size()) + " bytes");
    }
    total_length += lengths[i];
    crc = extend_crc_with_length(crc, lengths[i]);
  }
  uint32_t masked_lengths_crc = 0;
  const std::string_view lengths_crc_bytes = input.substr(0, 4);
  if (!get_fixed32(input, masked_lengths_crc)) {
    return data_loss(where + ": entry ends before the checksum of the string lengths");
  }
  if (options_.verify_checksums && crc32c_unmask(masked_lengths_crc) != crc) {
    return data_loss(where + ": CRC mismatch in the string lengths (stored " +
                     crc32c_hex(crc32c_unmask(masked_lengths_crc)) + ", computed " +
                     crc32c_hex(crc) + ")");
  }
  crc = crc32c_extend(crc, lengths_crc_bytes.data(), lengths_crc_bytes.size());
  if (input.size() != total_length) {
    return data_loss(where + ": strings total " + std::to_string(total_length) + " bytes but " +
                     std::to_string(input.size()) + " bytes follow the lengths");
  }
  std::vector<std::string> values;
  values.reserve(num_elements);
  for (uint64_t length : lengths) {
    values.emplace_back(input.substr(0, length));
    input.remove_prefix(length);
    crc = crc32c_extend(crc, values.back().data(), values.back().size());
  }
  if (options_.verify_checksums && crc32c_unmask(entry.masked_crc32c) != crc) {
    return data_loss(where + ": CRC mismatch (stored " +
                     crc32c_hex(crc32c_unmask(entry.masked_crc32c)) + ", computed " +
                     crc32c_hex(crc) + ")");
  }
  return Tensor::from_strings(entry.shape, std::move(values));
}

// ---------------------------------------------------------------------------------------------
// Writer

TensorBundleWriter::TensorBundleWriter(std::filesystem::path prefix, size_t alignment)
    : prefix_(std::move(prefix)), alignment_(std::max<size_t>(alignment, 1)) {}

TensorBundleWriter::~TensorBundleWriter() {
  if (data_file_open_ && !committed_) {
    data_file_.close();
    std::error_code ignored;
    std::filesystem::remove(temp_path(bundle_data_path(prefix_, 0, 1)), ignored);
  }
}

std::filesystem::path TensorBundleWriter::temp_path(const std::filesystem::path& path) {
  return path.string() + ".tempstate";
}

Status TensorBundleWriter::open_data_file() {
  if (data_file_open_) return Status::ok_status();
  std::error_code error;
  if (prefix_.has_parent_path()) std::filesystem::create_directories(prefix_.parent_path(), error);
  if (error) {
    return failed_precondition(prefix_.parent_path().string() +
                               ": cannot create directory: " + error.message());
  }
  const std::filesystem::path path = temp_path(bundle_data_path(prefix_, 0, 1));
  data_file_.open(path, std::ios::binary | std::ios::trunc);
  if (!data_file_) {
    return failed_precondition(path.string() + ": cannot create: " + std::strerror(errno));
  }
  data_file_open_ = true;
  return Status::ok_status();
}

Status TensorBundleWriter::append(std::string_view bytes) {
  data_file_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!data_file_) {
    return failed_precondition(temp_path(bundle_data_path(prefix_, 0, 1)).string() +
                               ": write failed: " + std::strerror(errno));
  }
  data_size_ += bytes.size();
  return Status::ok_status();
}

Status TensorBundleWriter::add(std::string_view key, const Tensor& tensor) {
  if (finished_) return failed_precondition(prefix_.string() + ": add() after finish()");
  if (!status_.ok()) return status_;
  if (key.empty()) return invalid_argument(prefix_.string() + ": the empty key is reserved");
  const std::string where = prefix_.string() + ": tensor " + quoted_key(key);
  if (serialized_entries_.count(key) != 0) return invalid_argument(where + ": duplicate key");
  const bool is_string = tensor.dtype() == DType::kString;
  if (!is_string && !dtype_is_numeric(tensor.dtype())) {
    return unimplemented(where + ": cannot write dtype " + dtype_name(tensor.dtype()));
  }

  auto record = [&](Status s) {
    if (!s.ok()) status_ = s;
    return s;
  };
  HUBIMG_RETURN_IF_ERROR(record(open_data_file()));
  if (const uint64_t over = data_size_ % alignment_; over != 0) {
    HUBIMG_RETURN_IF_ERROR(record(append(std::string(alignment_ - over, '\0'))));
  }

  tf::BundleEntryProto proto;
  proto.set_dtype(static_cast<tf::DataType>(tensor.dtype()));
  for (int64_t dim : tensor.shape()) proto.mutable_shape()->add_dim()->set_size(dim);
  proto.set_shard_id(0);
  proto.set_offset(static_cast<int64_t>(data_size_));
  const uint64_t start = data_size_;
  uint32_t crc = 0;
  if (is_string) {
    std::string lengths;
    for (const std::string& s : tensor.strings()) {
      put_varint64(lengths, s.size());
      crc = extend_crc_with_length(crc, s.size());
    }
    put_fixed32(lengths, crc32c_mask(crc));
    crc = crc32c_extend(crc, lengths.data() + lengths.size() - 4, 4);
    HUBIMG_RETURN_IF_ERROR(record(append(lengths)));
    for (const std::string& s : tensor.strings()) {
      crc = crc32c_extend(crc, s.data(), s.size());
      HUBIMG_RETURN_IF_ERROR(record(append(s)));
    }
  } else {
    const std::string_view bytes(static_cast<const char*>(tensor.raw_data()), tensor.byte_size());
    crc = crc32c(bytes.data(), bytes.size());
    HUBIMG_RETURN_IF_ERROR(record(append(bytes)));
  }
  proto.set_size(static_cast<int64_t>(data_size_ - start));
  proto.set_crc32c(crc32c_mask(crc));
  serialized_entries_.emplace(std::string(key), proto.SerializeAsString());
  return Status::ok_status();
}

Status TensorBundleWriter::finish() {
  if (finished_) return failed_precondition(prefix_.string() + ": finish() called twice");
  finished_ = true;
  if (!status_.ok()) return status_;
  HUBIMG_RETURN_IF_ERROR(open_data_file());
  data_file_.close();
  const std::filesystem::path data_path = bundle_data_path(prefix_, 0, 1);
  if (!data_file_) {
    return failed_precondition(temp_path(data_path).string() +
                               ": close failed: " + std::strerror(errno));
  }

  TableBuilder table;
  tf::BundleHeaderProto header;
  header.set_num_shards(1);
  header.set_endianness(tf::BundleHeaderProto::LITTLE);
  header.mutable_version()->set_producer(kBundleVersion);
  HUBIMG_RETURN_IF_ERROR(table.add("", header.SerializeAsString()));
  for (const auto& [key, serialized] : serialized_entries_) {
    HUBIMG_RETURN_IF_ERROR(table.add(key, serialized));
  }
  const std::string index_bytes = table.finish();
  const std::filesystem::path index_path = bundle_index_path(prefix_);
  {
    std::ofstream out(temp_path(index_path), std::ios::binary | std::ios::trunc);
    out.write(index_bytes.data(), static_cast<std::streamsize>(index_bytes.size()));
    out.close();
    if (!out) {
      return failed_precondition(temp_path(index_path).string() +
                                 ": write failed: " + std::strerror(errno));
    }
  }

  // Both files are written under temporary names and renamed into place: a crash never leaves
  // a partial bundle, and readers that still map the files being replaced keep their contents.
  for (const auto& path : {data_path, index_path}) {
    std::error_code error;
    std::filesystem::rename(temp_path(path), path, error);
    if (error) {
      return failed_precondition(path.string() + ": cannot rename from " +
                                 temp_path(path).string() + ": " + error.message());
    }
  }
  committed_ = true;
  return Status::ok_status();
}

}  // namespace hubimg::format
