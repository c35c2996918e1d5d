// What a path handed to SavedModel::load is when it is not a SavedModel: another model format
// (Keras HDF5 or .keras, TensorFlow Lite, TensorFlow.js, ONNX, PyTorch, a frozen GraphDef), a
// checkpoint file, or a folder with a SavedModel further down. Only for error messages: nothing
// here decides what loads.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace hubimg::format {

// A sentence naming the model format of a file (by its first bytes, or its extension where the
// format has no signature) and how to get a SavedModel instead; empty when nothing is
// recognized. Reads at most 16 bytes; never blocks on a FIFO.
std::string describe_foreign_model_file(const std::filesystem::path& file);

// The same for a folder (or an unpacked archive) without saved_model.pb, as a clause about "it":
// a TensorFlow.js model (model.json), an unpacked Keras 3 .keras file (config.json +
// model.weights.h5), a SavedModel in a subfolder (up to `max_depth` levels down; names at most
// three), a model file of a recognized format, or variables/ alone. Reads at most
// `max_entries` folder entries, so a huge tree cannot stall an error message.
std::string describe_folder_without_saved_model(const std::filesystem::path& dir, int max_depth = 3,
                                                int max_entries = 4096);

// Up to `limit` folders below `dir` (breadth first, `dir` itself excluded, at most `max_depth`
// levels, `max_entries` entries read: a loop of symbolic links ends there too) that hold
// saved_model.pb or saved_model.pbtxt, as paths relative to `dir`.
std::vector<std::filesystem::path> saved_models_below(const std::filesystem::path& dir,
                                                      int max_depth, int max_entries, int limit);

}  // namespace hubimg::format
