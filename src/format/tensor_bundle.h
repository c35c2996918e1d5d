// TensorFlow's TensorBundle checkpoint format (tensorflow/core/util/tensor_bundle), as stored
// in a SavedModel's variables/: `<prefix>.index`, a LevelDB-format table mapping each tensor
// key to a BundleEntryProto (the empty key holds the BundleHeaderProto), and data files
// `<prefix>.data-NNNNN-of-MMMMM` holding the tensors' bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "format/mapped_file.h"
#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::format {

// The checkpoint entry that holds the serialized TrackableObjectGraph (TF's
// `_CHECKPOINTABLE_OBJECT_GRAPH`).
inline constexpr char kObjectGraphKey[] = "_CHECKPOINTABLE_OBJECT_GRAPH";

struct BundleEntry {
  std::string key;
  DType dtype = DType::kInvalid;  // may be a number TensorFlow defines that hubimg does not
  Dims shape;
  int shard_id = 0;
  int64_t offset = 0;
  int64_t size = 0;
  uint32_t masked_crc32c = 0;
  bool partitioned = false;  // a sliced variable's metadata; its slices are separate entries
};

std::filesystem::path bundle_index_path(const std::filesystem::path& prefix);
// "<prefix>.data-00003-of-00010"
std::filesystem::path bundle_data_path(const std::filesystem::path& prefix, int shard_id,
                                       int num_shards);

struct TensorBundleReadOptions {
  // Off only for fuzzing or salvaging a damaged checkpoint.
  bool verify_checksums = true;
};

class TensorBundleReader {
 public:
  // prefix = ".../variables/variables": reads prefix.index and checks that every shard file
  // the header names exists. Shards are mapped on their first read.
  static Expected<std::shared_ptr<TensorBundleReader>> open(const std::filesystem::path& prefix,
                                                            TensorBundleReadOptions options = {});
  // The same from bytes in memory: `shards[i]` is shard i's contents; `prefix` names them in
  // messages. For tests and fuzzing.
  static Expected<std::shared_ptr<TensorBundleReader>> open_from_memory(
      std::string_view index_bytes, const std::vector<std::string_view>& shards,
      const std::filesystem::path& prefix, TensorBundleReadOptions options = {});

  const std::vector<BundleEntry>& entries() const { return entries_; }  // sorted by key
  const BundleEntry* find(std::string_view key) const;
  int num_shards() const { return static_cast<int>(shards_.size()); }

  // Checks the entry (bounds within its shard, size against shape and dtype) and its CRC, and
  // returns the tensor. Numeric tensors stored at an offset aligned for their dtype view the
  // mapped shard without copying (and keep it mapped); others are copied. Writing into a
  // returned view changes what later reads of the same key see, and their CRC check fails.
  Expected<Tensor> read(std::string_view key) const;

 private:
  struct Shard {
    std::filesystem::path path;
    std::shared_ptr<MappedFile> mapping;  // set on first use (or up front when in memory)
  };

  TensorBundleReader(std::filesystem::path index_path, TensorBundleReadOptions options)
      : index_path_(std::move(index_path)), options_(options) {}

  static Expected<std::shared_ptr<TensorBundleReader>> parse_index(
      std::string_view index_bytes, const std::filesystem::path& prefix,
      TensorBundleReadOptions options);
  Expected<std::shared_ptr<MappedFile>> shard(int shard_id) const;
  Expected<Tensor> read_numeric(const BundleEntry& entry, std::shared_ptr<MappedFile> file,
                                std::string_view bytes) const;
  Expected<Tensor> read_strings(const BundleEntry& entry, std::string_view bytes,
                                const std::filesystem::path& file) const;

  std::filesystem::path index_path_;
  TensorBundleReadOptions options_;
  std::vector<BundleEntry> entries_;
  mutable std::mutex shards_mutex_;
  mutable std::vector<Shard> shards_;
};

// Writes prefix.index and a single prefix.data-00000-of-00001 that TensorFlow can read
// (num_shards 1, version producer 1, little endian). Each tensor starts at a multiple of
// `alignment` bytes, so every tensor written is readable without copying.
class TensorBundleWriter {
 public:
  explicit TensorBundleWriter(std::filesystem::path prefix, size_t alignment = 64);
  ~TensorBundleWriter();  // removes the partial data file unless finish() succeeded
  TensorBundleWriter(const TensorBundleWriter&) = delete;
  TensorBundleWriter& operator=(const TensorBundleWriter&) = delete;

  // Numeric dtypes and strings; keys must be non-empty and unique. After an error the writer
  // keeps failing.
  Status add(std::string_view key, const Tensor& tensor);
  // Writes the index and moves both files into place (replacing an older bundle atomically
  // per file); the bundle is complete only after this returns OK.
  Status finish();

 private:
  static std::filesystem::path temp_path(const std::filesystem::path& path);
  Status open_data_file();
  Status append(std::string_view bytes);

  std::filesystem::path prefix_;
  size_t alignment_;
  std::ofstream data_file_;
  bool data_file_open_ = false;
  uint64_t data_size_ = 0;
  std::map<std::string, std::string, std::less<>> serialized_entries_;
  Status status_;
  bool finished_ = false;
  bool committed_ = false;
};

}  // namespace hubimg::format
