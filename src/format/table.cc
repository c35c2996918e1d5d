#include "format/table.h"

#include <snappy.h>

#include <cstdio>
#include <limits>

#include "format/coding.h"
#include "format/crc32c.h"

namespace hubimg::format {
namespace {

std::string describe_block(const BlockHandle& handle) {
  return "block at offset " + std::to_string(handle.offset) + " size " +
         std::to_string(handle.size);
}

// Decodes a BlockHandle that must make up all of `input`.
bool decode_block_handle(std::string_view& input, BlockHandle& handle) {
  return get_varint64(input, handle.offset) && get_varint64(input, handle.size);
}

void encode_block_handle(std::string& out, const BlockHandle& handle) {
  put_varint64(out, handle.offset);
  put_varint64(out, handle.size);
}

// A block's contents: a view into the file, or the inflated bytes of a Snappy block.
class BlockContents {
 public:
  explicit BlockContents(std::string_view raw) : raw_(raw) {}
  explicit BlockContents(std::string inflated) : inflated_(std::move(inflated)), owns_(true) {}
  std::string_view view() const { return owns_ ? std::string_view(inflated_) : raw_; }

 private:
  std::string_view raw_;
  std::string inflated_;
  bool owns_ = false;
};

// Walks the entries of one block, checking its restart array and prefix compression, and
// calls `visit` with each full key and value. `where` prefixes error messages.
Status parse_block(std::string_view block, const std::string& where,
                   const TableReader::Visitor& visit) {
  if (block.size() < sizeof(uint32_t)) {
    return data_loss(where + ": " + std::to_string(block.size()) +
                     " bytes is too short to hold a restart count");
  }
  const uint32_t num_restarts = decode_fixed32(block.data() + block.size() - sizeof(uint32_t));
  const size_t max_restarts = (block.size() - sizeof(uint32_t)) / sizeof(uint32_t);
  if (num_restarts > max_restarts) {
    return data_loss(where + ": restart count " + std::to_string(num_restarts) +
                     " does not fit in a block of " + std::to_string(block.size()) + " bytes");
  }
  const size_t entries_end = block.size() - (size_t{num_restarts} + 1) * sizeof(uint32_t);
  if (num_restarts == 0 && entries_end != 0) {
    return data_loss(where + ": block has entries but no restart points");
  }

  std::vector<uint32_t> restarts(num_restarts);
  for (uint32_t i = 0; i < num_restarts; ++i) {
    restarts[i] = decode_fixed32(block.data() + entries_end + size_t{i} * sizeof(uint32_t));
    const bool in_order = i == 0 ? restarts[i] == 0 : restarts[i] > restarts[i - 1];
    if (!in_order || (restarts[i] >= entries_end && entries_end != 0) ||
        (entries_end == 0 && restarts[i] != 0)) {
      return data_loss(where + ": restart point " + std::to_string(i) + " (offset " +
                       std::to_string(restarts[i]) + ") is out of order or past the " +
                       std::to_string(entries_end) + " bytes of entries");
    }
  }

  std::string key;
  size_t next_restart = 0;
  size_t offset = 0;
  while (offset < entries_end) {
    std::string_view input = block.substr(offset, entries_end - offset);
    const std::string at = where + ": entry at offset " + std::to_string(offset);
    uint32_t shared = 0, non_shared = 0, value_length = 0;
    if (!get_varint32(input, shared) || !get_varint32(input, non_shared) ||
        !get_varint32(input, value_length)) {
      return data_loss(at + ": truncated or malformed entry header");
    }
    if (shared > key.size()) {
      return data_loss(at + ": shares " + std::to_string(shared) +
                       " bytes with a previous key of " + std::to_string(key.size()) + " bytes");
    }
    if (uint64_t{non_shared} + value_length > input.size()) {
      return data_loss(at + ": key delta " + std::to_string(non_shared) + " + value " +
                       std::to_string(value_length) + " bytes run past the entries' end");
    }
    if (next_restart < restarts.size() && offset > restarts[next_restart]) {
      return data_loss(where + ": restart point at offset " +
                       std::to_string(restarts[next_restart]) + " is not at an entry");
    }
    const bool at_restart = next_restart < restarts.size() && offset == restarts[next_restart];
    if (at_restart) {
      if (shared != 0) return data_loss(at + ": entry at a restart point shares a key prefix");
      ++next_restart;
    }
    const std::string previous_key = key;
    key.resize(shared);
    key.append(input.data(), non_shared);
    if (offset != 0 && key <= previous_key) {
      return data_loss(at + ": key '" + printable_key(key) + "' does not sort after '" +
                       printable_key(previous_key) + "'");
    }
    const std::string_view value(input.data() + non_shared, value_length);
    HUBIMG_RETURN_IF_ERROR(visit(key, value));
    offset = static_cast<size_t>(value.data() + value.size() - block.data());
  }
  if (entries_end != 0 && next_restart != restarts.size()) {
    return data_loss(where + ": restart point at offset " + std::to_string(restarts[next_restart]) +
                     " is not at an entry");
  }
  return Status::ok_status();
}

Status check_handle_in_file(const BlockHandle& handle, size_t file_size, const std::string& name,
                            std::string_view which) {
  const uint64_t blocks_end = file_size - kTableFooterSize;
  if (handle.offset > blocks_end || handle.size > blocks_end - handle.offset ||
      kBlockTrailerSize > blocks_end - handle.offset - handle.size) {
    return data_loss(name + ": " + std::string(which) + " " + describe_block(handle) + " (+" +
                     std::to_string(kBlockTrailerSize) +
                     " trailer bytes) runs past the end of the blocks at offset " +
                     std::to_string(blocks_end));
  }
  return Status::ok_status();
}

Expected<BlockContents> read_block(std::string_view file, const BlockHandle& handle,
                                   const std::string& name, const TableReaderOptions& options) {
  // The handle was checked against the file size when it was decoded.
  const std::string_view stored = file.substr(handle.offset, handle.size + 1);
  const std::string where = name + ": " + describe_block(handle);
  if (options.verify_checksums) {
    const uint32_t stored_crc = crc32c_unmask(decode_fixed32(stored.data() + stored.size()));
    const uint32_t computed_crc = crc32c(stored.data(), stored.size());
    if (stored_crc != computed_crc) {
      return data_loss(where + ": CRC mismatch (stored " + crc32c_hex(stored_crc) + ", computed " +
                       crc32c_hex(computed_crc) + ")");
    }
  }
  const std::string_view contents = stored.substr(0, handle.size);
  const auto compression = static_cast<uint8_t>(stored.back());
  if (compression == kNoCompression) return BlockContents(contents);
  if (compression != kSnappyCompression) {
    return data_loss(where + ": unknown compression type " + std::to_string(compression));
  }
  size_t inflated_size = 0;
  if (!snappy::GetUncompressedLength(contents.data(), contents.size(), &inflated_size)) {
    return data_loss(where + ": Snappy block has a malformed length header");
  }
  if (inflated_size > options.max_uncompressed_block_bytes) {
    return data_loss(where + ": Snappy block claims " + std::to_string(inflated_size) +
                     " uncompressed bytes, more than the " +
                     std::to_string(options.max_uncompressed_block_bytes) + " allowed");
  }
  if (!snappy::IsValidCompressedBuffer(contents.data(), contents.size())) {
    return data_loss(where + ": corrupt Snappy data");
  }
  std::string inflated(inflated_size, '\0');
  if (!snappy::RawUncompress(contents.data(), contents.size(), inflated.data())) {
    return data_loss(where + ": corrupt Snappy data");
  }
  return BlockContents(std::move(inflated));
}

}  // namespace

std::string printable_key(std::string_view key) {
  constexpr size_t kMaxShown = 120;
  std::string out;
  for (size_t i = 0; i < key.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (key.size() > kMaxShown) out += "...";
  return out;
}

Expected<TableReader> TableReader::open(std::string_view bytes, std::string name,
                                        TableReaderOptions options) {
  if (bytes.size() < kTableFooterSize) {
    return data_loss(name + ": file of " + std::to_string(bytes.size()) +
                     " bytes is too short for the " + std::to_string(kTableFooterSize) +
                     "-byte table footer");
  }
  const std::string_view footer = bytes.substr(bytes.size() - kTableFooterSize);
  const uint64_t magic = decode_fixed64(footer.data() + kTableFooterSize - 8);
  if (magic != kTableMagicNumber) {
    char buf[24];
    std::snprintf(buf, sizeof(buf), "0x%016llx", static_cast<unsigned long long>(magic));
    return data_loss(name + ": bad table magic number " + buf + " (not a LevelDB-format table)");
  }
  std::string_view handles = footer.substr(0, kTableFooterSize - 8);
  BlockHandle metaindex, index;
  if (!decode_block_handle(handles, metaindex)) {
    return data_loss(name + ": malformed metaindex block handle in the footer");
  }
  if (!decode_block_handle(handles, index)) {
    return data_loss(name + ": malformed index block handle in the footer");
  }
  HUBIMG_RETURN_IF_ERROR(check_handle_in_file(metaindex, bytes.size(), name, "metaindex"));
  HUBIMG_RETURN_IF_ERROR(check_handle_in_file(index, bytes.size(), name, "index"));

  TableReader reader(bytes, std::move(name), options);
  HUBIMG_ASSIGN_OR_RETURN(BlockContents index_block,
                          read_block(bytes, index, reader.name_, options));
  const std::string where = reader.name_ + ": index " + describe_block(index);
  HUBIMG_RETURN_IF_ERROR(parse_block(
      index_block.view(), where, [&](std::string_view key, std::string_view value) -> Status {
        DataBlock block{std::string(key), {}};
        std::string_view encoded = value;
        if (!decode_block_handle(encoded, block.handle) || !encoded.empty()) {
          return data_loss(where + ": malformed block handle for key '" + printable_key(key) + "'");
        }
        HUBIMG_RETURN_IF_ERROR(
            check_handle_in_file(block.handle, bytes.size(), reader.name_, "data"));
        reader.data_blocks_.push_back(std::move(block));
        return Status::ok_status();
      }));
  return reader;
}

Status TableReader::for_each(const Visitor& visit) const {
  std::string previous_key;
  bool first = true;
  for (const DataBlock& block : data_blocks_) {
    HUBIMG_ASSIGN_OR_RETURN(BlockContents contents,
                            read_block(bytes_, block.handle, name_, options_));
    const std::string where = name_ + ": data " + describe_block(block.handle);
    HUBIMG_RETURN_IF_ERROR(parse_block(
        contents.view(), where, [&](std::string_view key, std::string_view value) -> Status {
          if (!first && key <= previous_key) {
            return data_loss(where + ": key '" + printable_key(key) +
                             "' does not sort after the previous block's last key '" +
                             printable_key(previous_key) + "'");
          }
          if (key > block.index_key) {
            return data_loss(where + ": key '" + printable_key(key) +
                             "' sorts after the block's index key '" +
                             printable_key(block.index_key) + "'");
          }
          first = false;
          previous_key.assign(key);
          return visit(key, value);
        }));
  }
  return Status::ok_status();
}

TableBuilder::TableBuilder(TableBuilderOptions options)
    : options_(options), data_block_(options.restart_interval), index_block_(1) {}

void TableBuilder::BlockBuilder::add(std::string_view key, std::string_view value) {
  size_t shared = 0;
  if (entries_since_restart_ < restart_interval_) {
    const size_t limit = std::min(last_key_.size(), key.size());
    while (shared < limit && last_key_[shared] == key[shared]) ++shared;
  } else {
    restarts_.push_back(static_cast<uint32_t>(buffer_.size()));
    entries_since_restart_ = 0;
  }
  put_varint32(buffer_, static_cast<uint32_t>(shared));
  put_varint32(buffer_, static_cast<uint32_t>(key.size() - shared));
  put_varint32(buffer_, static_cast<uint32_t>(value.size()));
  buffer_.append(key.substr(shared));
  buffer_.append(value);
  last_key_.assign(key);
  ++entries_since_restart_;
}

size_t TableBuilder::BlockBuilder::estimated_size() const {
  return buffer_.size() + (restarts_.size() + 1) * sizeof(uint32_t);
}

std::string TableBuilder::BlockBuilder::finish() {
  std::string contents = std::move(buffer_);
  for (uint32_t restart : restarts_) put_fixed32(contents, restart);
  put_fixed32(contents, static_cast<uint32_t>(restarts_.size()));
  buffer_.clear();
  restarts_.assign(1, 0);
  entries_since_restart_ = 0;
  last_key_.clear();
  return contents;
}

Status TableBuilder::add(std::string_view key, std::string_view value) {
  if (finished_) return failed_precondition("table builder: add() after finish()");
  if (has_keys_ && key <= last_key_) {
    return invalid_argument("table builder: key '" + printable_key(key) +
                            "' does not sort after the previous key '" + printable_key(last_key_) +
                            "'");
  }
  constexpr size_t kMaxPiece = std::numeric_limits<uint32_t>::max();
  if (key.size() > kMaxPiece || value.size() > kMaxPiece) {
    return invalid_argument("table builder: entry for key '" + printable_key(key) +
                            "' is larger than 4 GiB");
  }
  data_block_.add(key, value);
  last_key_.assign(key);
  has_keys_ = true;
  if (data_block_.estimated_size() >= options_.block_size) flush_data_block();
  return Status::ok_status();
}

BlockHandle TableBuilder::write_block(std::string contents) {
  BlockHandle handle{file_.size(), contents.size()};
  contents.push_back(static_cast<char>(kNoCompression));
  const uint32_t crc = crc32c(contents.data(), contents.size());
  file_ += contents;
  put_fixed32(file_, crc32c_mask(crc));
  return handle;
}

void TableBuilder::flush_data_block() {
  if (data_block_.empty()) return;
  const BlockHandle handle = write_block(data_block_.finish());
  std::string encoded_handle;
  encode_block_handle(encoded_handle, handle);
  // The block's last key separates it from the next block's keys.
  index_block_.add(last_key_, encoded_handle);
}

std::string TableBuilder::finish() {
  flush_data_block();
  finished_ = true;
  const BlockHandle metaindex = write_block(BlockBuilder(1).finish());
  const BlockHandle index = write_block(index_block_.finish());
  std::string footer;
  encode_block_handle(footer, metaindex);
  encode_block_handle(footer, index);
  footer.resize(kTableFooterSize - 8, '\0');
  put_fixed64(footer, kTableMagicNumber);
  file_ += footer;
  return std::move(file_);
}

}  // namespace hubimg::format
