#include "hubimg/dataset.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <set>

#include "hubimg/image.h"
#include "image/encode_util.h"
#include "util/test_util.h"

namespace hubimg {
namespace {
namespace fs = std::filesystem;

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

void write_gz(const fs::path& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

// n images of 2x3 pixels; pixel k of image i is 10 * i + k; label i % 3.
void write_idx(const fs::path& dir, const std::string& prefix, int n, bool gz) {
  std::string images = std::string("\0\0\x08\x03", 4) + be32(n) + be32(2) + be32(3);
  std::string labels = std::string("\0\0\x08\x01", 4) + be32(n);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < 6; ++k) images += static_cast<char>(10 * i + k);
    labels += static_cast<char>(i % 3);
  }
  if (gz) {
    write_gz(dir / (prefix + "-images-idx3-ubyte.gz"), images);
    write_gz(dir / (prefix + "-labels-idx1-ubyte.gz"), labels);
  } else {
    testing::write_file(dir / (prefix + "-images-idx3-ubyte"), images);
    testing::write_file(dir / (prefix + "-labels-idx1-ubyte"), labels);
  }
}

TEST(ImageDataset, ReadsGzipAndPlainIdx) {
  for (bool gz : {true, false}) {
    testing::TempDir dir;
    write_idx(dir.path(), "train", 9, gz);
    auto ds = ImageDataset::open(dir.path());
    ASSERT_TRUE(ds.ok()) << ds.status().to_string();
    EXPECT_EQ(ds->size(), 9);
    EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"0", "1", "2"}));
    EXPECT_EQ(ds->label(4), 1);
    auto image = ds->load(4, 2, 3);
    ASSERT_TRUE(image.ok());
    EXPECT_EQ(image->shape(), (Dims{2, 3, 3}));
    // Gray replicated to RGB, scaled by 1/255.
    EXPECT_FLOAT_EQ(image->data<float>()[3 * 5 + 1], 45.0f / 255.0f);
    EXPECT_FLOAT_EQ(image->data<float>()[3 * 5 + 2], 45.0f / 255.0f);
    // At its own size: the same values.
    auto own = ds->load(4);
    ASSERT_TRUE(own.ok());
    ASSERT_EQ(own->shape(), (Dims{2, 3, 3}));
    for (int64_t k = 0; k < 18; ++k) {
      EXPECT_EQ(own->data<float>()[k], image->data<float>()[k]) << k;
      EXPECT_FLOAT_EQ(own->data<float>()[k], static_cast<float>(40 + k / 3) / 255.0f) << k;
    }
    EXPECT_FALSE(ds->load(9).ok());
    EXPECT_FALSE(ds->load(-1).ok());
    auto resized = ds->load(4, 4, 6);
    ASSERT_TRUE(resized.ok());
    EXPECT_EQ(resized->shape(), (Dims{4, 6, 3}));
    // The test prefix is a different pair.
    EXPECT_FALSE(ImageDataset::open(dir.path(), "t10k").ok());
  }
}

TEST(ImageDataset, DamagedIdxIsAnErrorNamingTheFile) {
  testing::TempDir dir;
  write_idx(dir.path(), "train", 4, false);
  const fs::path images = dir.path() / "train-images-idx3-ubyte";
  std::string bytes = testing::read_file(images);
  testing::write_file(images, bytes.substr(0, bytes.size() - 1));
  auto truncated = ImageDataset::open(dir.path());
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("train-images-idx3-ubyte"), std::string::npos);
  bytes[2] = 0x0d;  // float elements
  testing::write_file(images, bytes);
  EXPECT_FALSE(ImageDataset::open(dir.path()).ok());
  write_idx(dir.path(), "train", 4, false);
  write_idx(dir.path(), "other", 5, false);
  fs::rename(dir.path() / "other-labels-idx1-ubyte", dir.path() / "train-labels-idx1-ubyte");
  auto mismatch = ImageDataset::open(dir.path());
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("5 labels"), std::string::npos)
      << mismatch.status().message();
}

// A FIFO in place of an IDX file is refused without blocking (zlib's own open would wait for a
// writer forever).
TEST(ImageDataset, FifoInPlaceOfAnIdxFileIsRefused) {
  testing::TempDir dir;
  write_idx(dir.path(), "train", 4, false);
  const fs::path labels = dir.path() / "train-labels-idx1-ubyte";
  fs::remove(labels);
  ASSERT_EQ(::mkfifo(labels.c_str(), 0600), 0);
  auto refused = ImageDataset::open(dir.path());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find(labels.string() + ": not a regular file"),
            std::string::npos)
      << refused.status().message();
}

void write_solid_png(const fs::path& path, float value) {
  Tensor t(DType::kFloat32, {5, 7, 3});
  for (float& v : std::span<float>(t.mutable_data<float>(), 105)) v = value;
  ASSERT_TRUE(write_png(path, t).ok());
}

TEST(ImageDataset, FolderClassesSplitAndCorruptImagesSkipped) {
  testing::TempDir dir;
  for (const char* c : {"cats", "dogs"}) fs::create_directories(dir.path() / c);
  for (int i = 0; i < 5; ++i) {
    write_solid_png(dir.path() / "cats" / ("c" + std::to_string(i) + ".png"), 0.2f);
    write_solid_png(dir.path() / "dogs" / ("d" + std::to_string(i) + ".PNG"), 0.8f);
  }
  testing::write_file(dir.path() / "dogs" / "d5.jpg", "not a jpeg at all");
  testing::write_file(dir.path() / "dogs" / "notes.txt", "ignored");
  auto ds = ImageDataset::from_folder(dir.path());
  ASSERT_TRUE(ds.ok()) << ds.status().to_string();
  EXPECT_EQ(ds->size(), 11);
  EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"cats", "dogs"}));
  // Keras: the first int(0.4 * n) of each class validate.
  auto [train, val] = ds->split(0.4);
  EXPECT_EQ(val, (std::vector<int64_t>{0, 1, 5, 6}));
  EXPECT_EQ(train.size(), 7u);
  // load(i) without a size: the file as decoded; a corrupt file is an error naming it.
  auto own = ds->load(6);
  ASSERT_TRUE(own.ok()) << own.status().to_string();
  EXPECT_EQ(own->shape(), (Dims{5, 7, 3}));
  EXPECT_NEAR(own->data<float>()[0], 0.8f, 0.003f);
  auto corrupt = ds->load(10);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.status().message().find("d5.jpg"), std::string::npos);

  BatchStream::Options o;
  o.batch_size = 4;
  o.height = 8;
  o.width = 8;
  std::vector<int64_t> order(11);
  for (int i = 0; i < 11; ++i) order[static_cast<size_t>(i)] = 10 - i;  // corrupt one first
  BatchStream stream(std::make_shared<const ImageDataset>(*ds), order, o);
  int64_t rows = 0;
  std::vector<int64_t> seen;
  while (true) {
    auto b = stream.next();
    ASSERT_TRUE(b.ok());
    if (!*b) break;
    rows += (*b)->labels.num_elements();
    EXPECT_EQ((*b)->images.dim(1), 8);
    for (int64_t i = 0; i < (*b)->labels.num_elements(); ++i) {
      const int64_t ex = (*b)->examples[static_cast<size_t>(i)];
      seen.push_back(ex);
      EXPECT_EQ((*b)->labels.data<int64_t>()[i], ex < 5 ? 0 : 1);
      EXPECT_NEAR((*b)->images.data<float>()[i * 8 * 8 * 3], ex < 5 ? 0.2f : 0.8f, 0.003f);
    }
  }
  EXPECT_EQ(rows, 10);
  EXPECT_EQ(stream.skipped(), 1);
  ASSERT_EQ(stream.warnings().size(), 1u);
  EXPECT_NE(stream.warnings()[0].find("d5.jpg"), std::string::npos) << stream.warnings()[0];
  EXPECT_EQ(seen, (std::vector<int64_t>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
}

// Keras's image_dataset_from_directory takes .gif files (their first frame); so do we.
TEST(ImageDataset, GifFilesAreImagesOfTheirClass) {
  testing::TempDir dir;
  for (const char* c : {"animated", "still"}) fs::create_directories(dir.path() / c);
  testing::GifSpec gif{
      .screen_width = 6, .screen_height = 4, .palette = {{200, 100, 50}, {0, 0, 0}}};
  gif.frames = {{.width = 6, .height = 4, .indices = testing::Bytes(24, 0)},
                {.width = 6, .height = 4, .indices = testing::Bytes(24, 1)}};
  const testing::Bytes bytes = testing::encode_gif(gif);
  for (const char* name : {"a.gif", "b.GIF"}) {
    testing::write_file(dir.path() / "animated" / name, std::string(bytes.begin(), bytes.end()));
  }
  write_solid_png(dir.path() / "still" / "s.png", 0.5f);
  auto ds = ImageDataset::from_folder(dir.path());
  ASSERT_TRUE(ds.ok()) << ds.status().to_string();
  ASSERT_EQ(ds->size(), 3);
  auto resized = ds->load(1, 3, 3);
  ASSERT_TRUE(resized.ok()) << resized.status().to_string();
  ASSERT_EQ(resized->shape(), (Dims{3, 3, 3}));
  const float* p = resized->data<float>();
  EXPECT_EQ(p[0], 200.0f * static_cast<float>(1.0 / 255.0));
  EXPECT_EQ(p[1], 100.0f * static_cast<float>(1.0 / 255.0));
  EXPECT_EQ(p[2], 50.0f * static_cast<float>(1.0 / 255.0));
}

TEST(ImageDataset, EmptyClassAndSingleClassAreClearErrors) {
  testing::TempDir dir;
  fs::create_directories(dir.path() / "a");
  write_solid_png(dir.path() / "a" / "x.png", 0.5f);
  auto single = ImageDataset::from_folder(dir.path());
  ASSERT_FALSE(single.ok());
  EXPECT_NE(single.status().message().find("at least two"), std::string::npos);
  fs::create_directories(dir.path() / "b");
  auto empty = ImageDataset::from_folder(dir.path());
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find((dir.path() / "b").string()), std::string::npos)
      << empty.status().message();
  auto missing = ImageDataset::open(dir.path() / "missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing: no such file or directory"),
            std::string::npos)
      << missing.status().message();
  testing::write_file(dir.path() / "flower_photos.tgz", "archive bytes");
  auto archive = ImageDataset::open(dir.path() / "flower_photos.tgz");
  ASSERT_FALSE(archive.ok());
  EXPECT_NE(archive.status().message().find("flower_photos.tgz: not a folder"), std::string::npos)
      << archive.status().message();
  EXPECT_NE(archive.status().message().find("extract an archive first"), std::string::npos);
}

TEST(Shuffling, DeterministicPermutationPerSeedAndEpoch) {
  const auto a = shuffled_order(100, 1, 0);
  EXPECT_EQ(a, shuffled_order(100, 1, 0));
  EXPECT_NE(a, shuffled_order(100, 1, 1));
  EXPECT_NE(a, shuffled_order(100, 2, 0));
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
}

Tensor ramp(int64_t h, int64_t w) {
  Tensor t(DType::kFloat32, {h, w, 3});
  for (int64_t i = 0; i < h * w * 3; ++i)
    t.mutable_data<float>()[i] = static_cast<float>(i % 97) / 97;
  return t;
}

TEST(Augmentation, IdentityFlipAndSeededDraws) {
  const Tensor image = ramp(9, 11);
  Augmentation none;
  none.enabled = true;
  none.rotation_range = none.width_shift_range = none.height_shift_range = 0;
  none.shear_range = none.zoom_range = 0;
  none.horizontal_flip = false;
  Tensor same = augment_image(image, none, 1, 5);
  for (int64_t i = 0; i < image.num_elements(); ++i) {
    ASSERT_NEAR(same.data<float>()[i], image.data<float>()[i], 1e-6) << i;
  }
  Augmentation flip_only = none;
  flip_only.horizontal_flip = true;
  int flipped = 0;
  for (uint64_t stream = 0; stream < 40; ++stream) {
    Tensor t = augment_image(image, flip_only, 1, stream);
    const bool is_flipped = t.data<float>()[0] == image.data<float>()[10 * 3];
    if (is_flipped) {
      ++flipped;
      for (int64_t r = 0; r < 9; ++r)
        for (int64_t c = 0; c < 11; ++c)
          ASSERT_EQ(t.data<float>()[(r * 11 + c) * 3], image.data<float>()[(r * 11 + 10 - c) * 3]);
    }
  }
  EXPECT_GT(flipped, 8);
  EXPECT_LT(flipped, 32);
  // A pure shift moves the content: a horizontal shift of exactly one pixel.
  Augmentation full;
  full.enabled = true;
  Tensor a = augment_image(image, full, 3, 7);
  Tensor b = augment_image(image, full, 3, 7);
  Tensor c = augment_image(image, full, 3, 8);
  int differ_ab = 0, differ_ac = 0;
  for (int64_t i = 0; i < image.num_elements(); ++i) {
    differ_ab += a.data<float>()[i] != b.data<float>()[i];
    differ_ac += a.data<float>()[i] != c.data<float>()[i];
    ASSERT_GE(a.data<float>()[i], 0.0f);
    ASSERT_LE(a.data<float>()[i], 1.0f);
  }
  EXPECT_EQ(differ_ab, 0);
  EXPECT_GT(differ_ac, 0);
}

}  // namespace
}  // namespace hubimg
