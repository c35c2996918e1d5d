// LevelDB-format sorted string table, as TensorFlow writes it for a checkpoint's `.index` file
// (tensorflow/core/lib/io/table_format.txt): data blocks of prefix-compressed key/value
// entries, an index block mapping each data block's last key to its location, an (unused)
// metaindex block and a 48-byte footer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "hubimg/status.h"

namespace hubimg::format {

inline constexpr uint64_t kTableMagicNumber = 0xdb4775248b80fb57ull;
inline constexpr size_t kTableFooterSize = 48;  // two padded BlockHandles + 8-byte magic
inline constexpr size_t kBlockTrailerSize = 5;  // compression type byte + masked CRC32C
inline constexpr uint8_t kNoCompression = 0;
inline constexpr uint8_t kSnappyCompression = 1;

struct BlockHandle {
  uint64_t offset = 0;
  uint64_t size = 0;  // excluding the trailer
};

struct TableReaderOptions {
  // Off only for fuzzing or salvaging a damaged file.
  bool verify_checksums = true;
  // A Snappy block claiming to inflate to more than this is rejected before allocating.
  size_t max_uncompressed_block_bytes = size_t{64} << 20;
};

class TableReader {
 public:
  using Visitor = std::function<Status(std::string_view key, std::string_view value)>;

  // Checks the footer, the magic number, both block handles against the file size and reads
  // the index block. `bytes` is the whole file and must outlive the reader; `name` (usually
  // the path) starts every error message.
  static Expected<TableReader> open(std::string_view bytes, std::string name,
                                    TableReaderOptions options = {});

  // Calls `visit` for every entry in key order, checking each data block as it is read.
  // Stops at and returns the first error, from the table or from `visit`.
  Status for_each(const Visitor& visit) const;

  size_t num_data_blocks() const { return data_blocks_.size(); }
  const std::string& name() const { return name_; }

 private:
  struct DataBlock {
    std::string index_key;  // >= every key in the block, < every key in the next
    BlockHandle handle;
  };

  TableReader(std::string_view bytes, std::string name, TableReaderOptions options)
      : bytes_(bytes), name_(std::move(name)), options_(options) {}

  std::string_view bytes_;
  std::string name_;
  TableReaderOptions options_;
  std::vector<DataBlock> data_blocks_;
};

struct TableBuilderOptions {
  size_t block_size = 256 * 1024;  // a data block is closed once it reaches this size
  int restart_interval = 16;       // keys between full (not prefix-compressed) keys
};

// Writes an uncompressed table that TensorFlow's and LevelDB's readers accept.
class TableBuilder {
 public:
  explicit TableBuilder(TableBuilderOptions options = {});

  // Keys must be added in strictly increasing bytewise order.
  Status add(std::string_view key, std::string_view value);
  // Returns the complete file contents; the builder must not be used afterwards.
  std::string finish();

 private:
  class BlockBuilder {
   public:
    explicit BlockBuilder(int restart_interval) : restart_interval_(restart_interval) {}
    void add(std::string_view key, std::string_view value);
    size_t estimated_size() const;
    bool empty() const { return buffer_.empty(); }
    std::string finish();  // returns the block contents and resets the builder

   private:
    int restart_interval_;
    std::string buffer_;
    std::vector<uint32_t> restarts_{0};
    int entries_since_restart_ = 0;
    std::string last_key_;
  };

  void flush_data_block();
  BlockHandle write_block(std::string contents);

  TableBuilderOptions options_;
  std::string file_;
  BlockBuilder data_block_;
  BlockBuilder index_block_;
  std::string last_key_;
  bool has_keys_ = false;
  bool finished_ = false;
};

// Renders a key for an error message: printable ASCII kept, other bytes as \xNN, long keys cut.
std::string printable_key(std::string_view key);

}  // namespace hubimg::format
