// Labelled image datasets for retraining: an image folder (one subfolder per class, as
// make_image_classifier --image_dir reads it) or IDX files (MNIST, Fashion-MNIST), batches
// decoded and resized on worker threads ahead of the training step, and make_image_classifier's
// augmentation (Keras ImageDataGenerator: rotation, shifts, shear, zoom, horizontal flip).
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg {

class ImageDataset {
 public:
  // IDX files (optionally gzip'd): images uint8 [N, rows, cols] (magic 0x803), labels uint8 [N]
  // (magic 0x801). Classes are "0" .. "max label".
  static Expected<ImageDataset> from_idx(const std::filesystem::path& images,
                                         const std::filesystem::path& labels);
  // One subfolder per class (sorted by name), JPEG/PNG/WebP/BMP/GIF files in each (sorted). An
  // empty class folder or fewer than two classes is an error naming the folder.
  static Expected<ImageDataset> from_folder(const std::filesystem::path& dir);
  // A folder holding <prefix>-images-idx3-ubyte[.gz] and <prefix>-labels-idx1-ubyte[.gz]
  // (prefix "train" or "t10k") is read as IDX; any other folder as an image folder (prefix
  // ignored).
  static Expected<ImageDataset> open(const std::filesystem::path& path,
                                     const std::string& idx_prefix = "train");
  static bool is_idx_folder(const std::filesystem::path& path, const std::string& prefix);

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  const std::vector<std::string>& class_names() const { return class_names_; }
  int64_t num_classes() const { return static_cast<int64_t>(class_names_.size()); }
  int64_t label(int64_t i) const { return labels_[static_cast<size_t>(i)]; }
  // What example i is, for messages ("train-images-idx3-ubyte.gz[17]" or the file's path).
  std::string describe(int64_t i) const;

  // Example i as float32 [height, width, 3] in [0, 1]: decoded, gray replicated to RGB,
  // resized with tf.image.resize (bilinear) when its size differs.
  Expected<Tensor> load(int64_t i, int64_t height, int64_t width) const;
  // Example i at its own size: float32 [rows, cols, 3] for IDX (gray replicated), the decoded
  // file's [H, W, 3] for an image folder.
  Expected<Tensor> load(int64_t i) const;

  // Keras's validation_split of each class's examples in order: the first int(fraction * n) go
  // to validation, the rest to training. Returns {training, validation} example indices. With
  // `limit` >= 0 only examples [0, limit) take part.
  std::pair<std::vector<int64_t>, std::vector<int64_t>> split(double validation_fraction,
                                                              int64_t limit = -1) const;

 private:
  struct Idx {
    std::vector<uint8_t> pixels;
    int64_t rows = 0, cols = 0;
    std::string name;
  };
  std::shared_ptr<const Idx> idx_;
  std::vector<std::filesystem::path> files_;
  std::vector<int64_t> labels_;
  std::vector<std::string> class_names_;
};

// make_image_classifier's augmentation (ImageDataGenerator arguments).
struct Augmentation {
  bool enabled = false;
  double rotation_range = 40;                                // degrees
  double width_shift_range = 0.2, height_shift_range = 0.2;  // fractions of the size
  double shear_range = 0.2;                                  // degrees, as Keras takes it
  double zoom_range = 0.2;                                   // zoom in [1 - z, 1 + z] per axis
  bool horizontal_flip = true;
};

// Applies a random transform drawn from (seed, stream) to float32 [H, W, C]: the map from
// output to input pixel is Keras's apply_affine_transform (rotation . shift . shear . zoom about
// the centre), bilinear sampling, 'nearest' fill; then a horizontal flip with probability 1/2.
Tensor augment_image(const Tensor& image, const Augmentation& augmentation, uint64_t seed,
                     uint64_t stream);

// A deterministic permutation of [0, n) for (seed, epoch) (Fisher-Yates on train::Random).
std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed, int64_t epoch);

struct Batch {
  Tensor images;                  // float32 [b, H, W, 3]
  Tensor labels;                  // int64 [b]
  std::vector<int64_t> examples;  // dataset indices of the rows
};

// Decodes the batches of `order` on worker threads, up to `prefetch` batches ahead of the
// consumer. An example that fails to decode is left out of its batch with a warning (counted in
// skipped()); a batch that loses every example is dropped.
class BatchStream {
 public:
  struct Options {
    int64_t batch_size = 32;
    int64_t height = 0, width = 0;
    Augmentation augmentation;
    uint64_t seed = 1;  // augmentation draws: (seed, epoch * 2^32 + example)
    int64_t epoch = 0;
    int prefetch = 2;
  };
  BatchStream(std::shared_ptr<const ImageDataset> dataset, std::vector<int64_t> order,
              Options options);
  ~BatchStream();
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;

  int64_t num_batches() const;
  // The next batch, or nullopt at the end.
  Expected<std::optional<Batch>> next();
  int64_t skipped() const;
  std::vector<std::string> warnings() const;

 private:
  void launch(int64_t batch);
  Expected<Batch> build(int64_t batch);

  std::shared_ptr<const ImageDataset> dataset_;
  std::vector<int64_t> order_;
  Options options_;
  int64_t next_to_launch_ = 0;
  int64_t next_to_return_ = 0;
  std::deque<std::future<Expected<Batch>>> in_flight_;
  mutable std::mutex mu_;
  int64_t skipped_ = 0;
  std::vector<std::string> warnings_;
};

}  // namespace hubimg
