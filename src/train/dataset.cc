#include "hubimg/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "core/file_io.h"
#include "hubimg/image.h"
#include "image/decoders.h"
#include "train/random.h"

namespace hubimg {
namespace fs = std::filesystem;
namespace {

// Reads a file, gunzipping it when it is gzip'd (zlib reads plain files as they are). Only a
// regular file is opened, so a FIFO or device in the dataset folder cannot block the read.
Expected<std::vector<uint8_t>> read_maybe_gzip(const fs::path& path, size_t max_bytes) {
  HUBIMG_ASSIGN_OR_RETURN(RegularFile file, open_regular_file(path));
  gzFile f = gzdopen(file.fd.get(), "rb");
  if (f == nullptr) return not_found(path.string() + ": cannot open");
  file.fd.release();  // gzclose closes it
  std::vector<uint8_t> data;
  std::vector<uint8_t> chunk(1 << 20);
  while (true) {
    const int n = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      return data_loss(path.string() + ": " + msg);
    }
    if (n == 0) break;
    data.insert(data.end(), chunk.begin(), chunk.begin() + n);
    if (data.size() > max_bytes) {
      gzclose(f);
      return out_of_range(path.string() + ": larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  gzclose(f);
  return data;
}

uint32_t big_endian32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

// IDX: magic (0, 0, type 0x08 = ubyte, rank), rank big-endian uint32 dims, then the data.
Expected<std::pair<std::vector<int64_t>, size_t>> idx_header(const std::vector<uint8_t>& d,
                                                             int rank, const std::string& name) {
  if (d.size() < 4 || d[0] != 0 || d[1] != 0) return data_loss(name + ": not an IDX file");
  if (d[2] != 0x08) {
    return unimplemented(name + ": IDX element type 0x" + std::to_string(d[2]) +
                         " (only unsigned bytes, 0x08)");
  }
  if (d[3] != rank) {
    return data_loss(name + ": IDX rank " + std::to_string(d[3]) + ", expected " +
                     std::to_string(rank));
  }
  const size_t header = 4 + 4 * static_cast<size_t>(rank);
  if (d.size() < header) return data_loss(name + ": truncated IDX header");
  std::vector<int64_t> dims;
  uint64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    dims.push_back(big_endian32(&d[4 + 4 * static_cast<size_t>(i)]));
    count *= static_cast<uint64_t>(dims.back());
    if (count > (uint64_t{1} << 40)) return data_loss(name + ": IDX dimensions too large");
  }
  if (d.size() - header != count) {
    return data_loss(name + ": IDX data holds " + std::to_string(d.size() - header) +
                     " bytes, its dimensions need " + std::to_string(count));
  }
  return std::pair{dims, header};
}

fs::path idx_file(const fs::path& dir, const std::string& stem) {
  if (fs::exists(dir / (stem + ".gz"))) return dir / (stem + ".gz");
  return dir / stem;
}

}  // namespace

Expected<ImageDataset> ImageDataset::from_idx(const fs::path& images, const fs::path& labels) {
  HUBIMG_ASSIGN_OR_RETURN(auto image_bytes, read_maybe_gzip(images, size_t{8} << 30));
  HUBIMG_ASSIGN_OR_RETURN(auto label_bytes, read_maybe_gzip(labels, size_t{1} << 30));
  HUBIMG_ASSIGN_OR_RETURN(auto ih, idx_header(image_bytes, 3, images.string()));
  HUBIMG_ASSIGN_OR_RETURN(auto lh, idx_header(label_bytes, 1, labels.string()));
  if (ih.first[0] != lh.first[0]) {
    return invalid_argument(images.string() + " holds " + std::to_string(ih.first[0]) +
                            " images, " + labels.string() + " " + std::to_string(lh.first[0]) +
                            " labels");
  }
  if (ih.first[0] == 0) return invalid_argument(images.string() + ": no images");
  if (ih.first[1] == 0 || ih.first[2] == 0) return data_loss(images.string() + ": empty images");
  ImageDataset ds;
  auto idx = std::make_shared<Idx>();
  idx->rows = ih.first[1];
  idx->cols = ih.first[2];
  idx->name = images.filename().string();
  idx->pixels.assign(image_bytes.begin() + static_cast<std::ptrdiff_t>(ih.second),
                     image_bytes.end());
  int64_t max_label = 0;
  for (size_t i = lh.second; i < label_bytes.size(); ++i) {
    ds.labels_.push_back(label_bytes[i]);
    max_label = std::max<int64_t>(max_label, label_bytes[i]);
  }
  if (max_label < 1) return invalid_argument(labels.string() + ": a single class");
  for (int64_t c = 0; c <= max_label; ++c) ds.class_names_.push_back(std::to_string(c));
  ds.idx_ = std::move(idx);
  return ds;
}

Expected<ImageDataset> ImageDataset::from_folder(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return not_found(dir.string() + ": no such file or directory");
  if (!fs::is_directory(dir, ec)) {
    return invalid_argument(dir.string() +
                            ": not a folder (the data is a folder with one subfolder of images "
                            "per class, or with IDX files; extract an archive first)");
  }
  std::vector<fs::path> classes;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory() && e.path().filename().string()[0] != '.') classes.push_back(e.path());
  }
  if (ec) return not_found(dir.string() + ": " + ec.message());
  std::sort(classes.begin(), classes.end());
  if (classes.size() < 2) {
    return invalid_argument(dir.string() + ": " + std::to_string(classes.size()) +
                            " class folder(s); an image folder needs one subfolder per class, "
                            "at least two");
  }
  ImageDataset ds;
  for (const fs::path& c : classes) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(c, ec)) {
      if (e.is_regular_file() && e.path().filename().string()[0] != '.' &&
          has_image_extension(e.path())) {
        files.push_back(e.path());
      }
    }
    if (ec) return not_found(c.string() + ": " + ec.message());
    if (files.empty()) {
      return invalid_argument(c.string() +
                              ": class folder holds no images (.jpg, .jpeg, .png, "
                              ".webp, .bmp, .gif)");
    }
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      ds.files_.push_back(std::move(f));
      ds.labels_.push_back(static_cast<int64_t>(ds.class_names_.size()));
    }
    ds.class_names_.push_back(c.filename().string());
  }
  return ds;
}

bool ImageDataset::is_idx_folder(const fs::path& path, const std::string& prefix) {
  return fs::exists(idx_file(path, prefix + "-images-idx3-ubyte")) &&
         fs::exists(idx_file(path, prefix + "-labels-idx1-ubyte"));
}

Expected<ImageDataset> ImageDataset::open(const fs::path& path, const std::string& idx_prefix) {
  if (is_idx_folder(path, idx_prefix)) {
    return from_idx(idx_file(path, idx_prefix + "-images-idx3-ubyte"),
                    idx_file(path, idx_prefix + "-labels-idx1-ubyte"));
  }
  if (is_idx_folder(path, "train") || is_idx_folder(path, "t10k")) {
    return not_found(path.string() + ": no " + idx_prefix + "-images-idx3-ubyte[.gz] / " +
                     idx_prefix + "-labels-idx1-ubyte[.gz] pair");
  }
  return from_folder(path);
}

std::string ImageDataset::describe(int64_t i) const {
  if (idx_) return idx_->name + "[" + std::to_string(i) + "]";
  return files_[static_cast<size_t>(i)].string();
}

Expected<Tensor> ImageDataset::load(int64_t i, int64_t height, int64_t width) const {
  if (!idx_ && i >= 0 && i < size()) {
    return image_internal::decode_file_resized(files_[static_cast<size_t>(i)], height, width);
  }
  HUBIMG_ASSIGN_OR_RETURN(Tensor image, load(i));
  if (image.dim(0) == height && image.dim(1) == width) return image;
  auto resized = resize_bilinear(image, height, width);
  if (!resized.ok()) return resized.status().with_context(describe(i));
  return resized;
}

Expected<Tensor> ImageDataset::load(int64_t i) const {
  if (i < 0 || i >= size())
    return out_of_range("example " + std::to_string(i) + " of " + std::to_string(size()));
  Tensor image;
  if (idx_) {
    const int64_t r = idx_->rows, c = idx_->cols;
    image = Tensor(DType::kFloat32, {r, c, 3});
    const uint8_t* px = idx_->pixels.data() + i * r * c;
    float* out = image.mutable_data<float>();
    constexpr float kScale = 1.0f / 255.0f;
    for (int64_t k = 0; k < r * c; ++k) {
      const float v = static_cast<float>(px[k]) * kScale;
      out[3 * k] = out[3 * k + 1] = out[3 * k + 2] = v;
    }
  } else {
    HUBIMG_ASSIGN_OR_RETURN(image, decode_image_file(files_[static_cast<size_t>(i)]));
  }
  return image;
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> ImageDataset::split(
    double validation_fraction, int64_t limit) const {
  std::vector<std::vector<int64_t>> by_class(class_names_.size());
  const int64_t n = limit >= 0 ? std::min(limit, size()) : size();
  for (int64_t i = 0; i < n; ++i)
    by_class[static_cast<size_t>(labels_[static_cast<size_t>(i)])].push_back(i);
  std::vector<int64_t> train, validation;
  for (const auto& members : by_class) {
    const auto n_val =
        static_cast<size_t>(validation_fraction * static_cast<double>(members.size()));
    for (size_t k = 0; k < members.size(); ++k)
      (k < n_val ? validation : train).push_back(members[k]);
  }
  std::sort(train.begin(), train.end());
  std::sort(validation.begin(), validation.end());
  return {train, validation};
}

std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  train::Random rng(seed, 0x5f0ff1e000000000ULL + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(order[static_cast<size_t>(i)], order[rng.below(static_cast<uint64_t>(i + 1))]);
  }
  return order;
}

Tensor augment_image(const Tensor& image, const Augmentation& a, uint64_t seed, uint64_t stream) {
  train::Random rng(seed, stream);
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * rng.uniform(); };
  const int64_t h = image.dim(0), w = image.dim(1), ch = image.dim(2);
  const double deg = std::numbers::pi / 180.0;
  const double theta =
      a.rotation_range > 0 ? uniform(-a.rotation_range, a.rotation_range) * deg : 0;
  const double tx =
      a.height_shift_range > 0
          ? uniform(-a.height_shift_range, a.height_shift_range) * static_cast<double>(h)
          : 0;
  const double ty = a.width_shift_range > 0 ? uniform(-a.width_shift_range, a.width_shift_range) *
                                                  static_cast<double>(w)
                                            : 0;
  const double shear = a.shear_range > 0 ? uniform(-a.shear_range, a.shear_range) * deg : 0;
  double zx = 1, zy = 1;
  if (a.zoom_range > 0) {
    zx = uniform(1 - a.zoom_range, 1 + a.zoom_range);
    zy = uniform(1 - a.zoom_range, 1 + a.zoom_range);
  }
  const bool flip = a.horizontal_flip && rng.uniform() < 0.5;
  // Keras: T = rotation . shift . shear . zoom, applied about the centre to (row, col) output
  // coordinates, giving the input coordinates.
  const double c = std::cos(theta), s = std::sin(theta);
  // shear . zoom = [[zx, -sin(shear) zy], [0, cos(shear) zy]]
  const double a00 = zx, a01 = -std::sin(shear) * zy, a10 = 0, a11 = std::cos(shear) * zy;
  // rotation . (shear.zoom | shift)
  const double m00 = c * a00 - s * a10, m01 = c * a01 - s * a11;
  const double m10 = s * a00 + c * a10, m11 = s * a01 + c * a11;
  const double o0 = c * tx - s * ty, o1 = s * tx + c * ty;
  const double cy = static_cast<double>(h) / 2 - 0.5, cx = static_cast<double>(w) / 2 - 0.5;
  Tensor out(DType::kFloat32, {h, w, ch});
  const float* in = image.data<float>();
  float* o = out.mutable_data<float>();
  auto clampi = [](int64_t v, int64_t hi) { return std::clamp<int64_t>(v, 0, hi - 1); };
  for (int64_t r = 0; r < h; ++r) {
    for (int64_t col = 0; col < w; ++col) {
      const double dr = static_cast<double>(r) - cy, dc = static_cast<double>(col) - cx;
      const double sr = m00 * dr + m01 * dc + o0 + cy;
      const double sc = m10 * dr + m11 * dc + o1 + cx;
      const double fr = std::floor(sr), fc = std::floor(sc);
      const double wr = sr - fr, wc = sc - fc;
      const int64_t r0 = clampi(static_cast<int64_t>(fr), h),
                    r1 = clampi(static_cast<int64_t>(fr) + 1, h);
      const int64_t c0 = clampi(static_cast<int64_t>(fc), w),
                    c1 = clampi(static_cast<int64_t>(fc) + 1, w);
      const int64_t dst_col = flip ? w - 1 - col : col;
      float* dst = o + (r * w + dst_col) * ch;
      for (int64_t k = 0; k < ch; ++k) {
        const double v =
            (1 - wr) * ((1 - wc) * in[(r0 * w + c0) * ch + k] + wc * in[(r0 * w + c1) * ch + k]) +
            wr * ((1 - wc) * in[(r1 * w + c0) * ch + k] + wc * in[(r1 * w + c1) * ch + k]);
        dst[k] = static_cast<float>(v);
      }
    }
  }
  return out;
}

BatchStream::BatchStream(std::shared_ptr<const ImageDataset> dataset, std::vector<int64_t> order,
                         Options options)
    : dataset_(std::move(dataset)), order_(std::move(order)), options_(options) {
  options_.prefetch = std::max(1, options_.prefetch);
  while (next_to_launch_ < num_batches() && next_to_launch_ < options_.prefetch) {
    launch(next_to_launch_++);
  }
}

BatchStream::~BatchStream() {
  for (auto& f : in_flight_) {
    if (f.valid()) f.wait();
  }
}

int64_t BatchStream::num_batches() const {
  const auto n = static_cast<int64_t>(order_.size());
  return (n + options_.batch_size - 1) / options_.batch_size;
}

void BatchStream::launch(int64_t batch) {
  in_flight_.push_back(std::async(std::launch::async, [this, batch] { return build(batch); }));
}

Expected<Batch> BatchStream::build(int64_t batch) {
  const int64_t begin = batch * options_.batch_size;
  const int64_t end =
      std::min<int64_t>(begin + options_.batch_size, static_cast<int64_t>(order_.size()));
  const int64_t h = options_.height, w = options_.width;
  std::vector<Tensor> rows;
  Batch out;
  for (int64_t k = begin; k < end; ++k) {
    const int64_t ex = order_[static_cast<size_t>(k)];
    auto image = dataset_->load(ex, h, w);
    if (!image.ok()) {
      std::lock_guard lock(mu_);
      ++skipped_;
      warnings_.push_back("skipped " + dataset_->describe(ex) + ": " + image.status().message());
      continue;
    }
    Tensor img = std::move(image).value();
    if (options_.augmentation.enabled) {
      img =
          augment_image(img, options_.augmentation, options_.seed,
                        (static_cast<uint64_t>(options_.epoch) << 32) + static_cast<uint64_t>(ex));
    }
    rows.push_back(std::move(img));
    out.examples.push_back(ex);
  }
  const auto b = static_cast<int64_t>(rows.size());
  out.images = Tensor(DType::kFloat32, {b, h, w, 3});
  out.labels = Tensor(DType::kInt64, {b});
  const size_t per = static_cast<size_t>(h * w * 3);
  for (int64_t i = 0; i < b; ++i) {
    std::memcpy(out.images.mutable_data<float>() + static_cast<size_t>(i) * per,
                rows[static_cast<size_t>(i)].data<float>(), per * sizeof(float));
    out.labels.mutable_data<int64_t>()[i] = dataset_->label(out.examples[static_cast<size_t>(i)]);
  }
  return out;
}

Expected<std::optional<Batch>> BatchStream::next() {
  while (next_to_return_ < num_batches()) {
    Expected<Batch> b = in_flight_.front().get();
    in_flight_.pop_front();
    ++next_to_return_;
    if (next_to_launch_ < num_batches()) launch(next_to_launch_++);
    if (!b.ok()) return b.status();
    if (b->examples.empty()) continue;
    return std::optional<Batch>(std::move(b).value());
  }
  return std::optional<Batch>();
}

int64_t BatchStream::skipped() const {
  std::lock_guard lock(mu_);
  return skipped_;
}

std::vector<std::string> BatchStream::warnings() const {
  std::lock_guard lock(mu_);
  return warnings_;
}

}  // namespace hubimg
