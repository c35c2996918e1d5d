// Training checkpoints: named numeric tensors in one file, written atomically (temporary file,
// fsync, rename, fsync of the folder), so a crash, Ctrl-C or a full disk while writing leaves
// the previous checkpoint intact.
//
// Layout: "HUBIMG-CKPT-1\n", uint64 count, then per tensor: uint32 name length, name, int32
// dtype, uint32 rank, int64 dims, the raw little-endian data; then the CRC32C (masked) of all
// preceding bytes.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::train {

Status write_checkpoint(const std::filesystem::path& path,
                        const std::map<std::string, Tensor>& tensors);
Expected<std::map<std::string, Tensor>> read_checkpoint(const std::filesystem::path& path);

}  // namespace hubimg::train
