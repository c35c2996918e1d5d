// Class-name files: one name per line, in class order. Read for `hubimg classify`, `retrain
// --class-names`, and the labels a model ships (Model::labels_file()).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "hubimg/status.h"

namespace hubimg::format {

class SavedModel;

// One name per line; a final CR is dropped. Teachable Machine writes "0 cat", "1 dog": when
// every line starts with its own 0-based index and a space, the indices are dropped.
std::vector<std::string> parse_labels(std::string_view text);

// parse_labels of a file of at most 64 MiB, read without blocking (a FIFO is refused).
Expected<std::vector<std::string>> read_labels_file(const std::filesystem::path& path);

// assets/labels.txt of the SavedModel folder (hubimg retrain publishes its class names there),
// else labels.txt beside the SavedModel folder (Teachable Machine's converted_savedmodel.zip,
// unpacked or not), never outside an extracted archive. Empty when there is none.
std::filesystem::path shipped_labels_file(const SavedModel& model);

}  // namespace hubimg::format
