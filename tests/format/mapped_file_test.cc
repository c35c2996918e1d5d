#include "format/mapped_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "util/test_util.h"

namespace hubimg::format {
namespace {

using ::hubimg::testing::read_file;
using ::hubimg::testing::TempDir;
using ::hubimg::testing::write_file;
using ::testing::HasSubstr;

TEST(MappedFileTest, MapsContentsAndWritesStayInMemory) {
  TempDir dir;
  const auto path = dir.path() / "data.bin";
  write_file(path, "hello mapping");
  auto file = MappedFile::open(path);
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  EXPECT_EQ((*file)->view(), "hello mapping");
  EXPECT_EQ((*file)->size(), 13u);
  EXPECT_EQ((*file)->path(), path);
  (*file)->mutable_data()[0] = 'J';
  EXPECT_EQ((*file)->view(), "Jello mapping");
  EXPECT_EQ(read_file(path), "hello mapping");
}

TEST(MappedFileTest, EmptyFileGivesEmptyMapping) {
  TempDir dir;
  write_file(dir.path() / "empty", "");
  auto file = MappedFile::open(dir.path() / "empty");
  ASSERT_TRUE(file.ok()) << file.status().to_string();
  EXPECT_EQ((*file)->size(), 0u);
  EXPECT_TRUE((*file)->view().empty());
}

TEST(MappedFileTest, MissingFileNamesPathAndReason) {
  TempDir dir;
  auto file = MappedFile::open(dir.path() / "absent.index");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(file.status().message(), HasSubstr((dir.path() / "absent.index").string()));
  EXPECT_THAT(file.status().message(), HasSubstr("No such file or directory"));
}

TEST(MappedFileTest, DirectoryIsNotARegularFile) {
  TempDir dir;
  auto file = MappedFile::open(dir.path());
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), HasSubstr("not a regular file"));
}

TEST(MappedFileTest, FromBytesCopiesIntoAPageAlignedMapping) {
  const std::string bytes = "in memory";
  auto file = MappedFile::from_bytes(bytes, "mem/shard");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->view(), bytes);
  EXPECT_NE(static_cast<const void*>((*file)->data()), static_cast<const void*>(bytes.data()));
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*file)->data()) % 4096, 0u);
  EXPECT_EQ((*file)->path(), "mem/shard");
  auto empty = MappedFile::from_bytes("", "mem/empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)->size(), 0u);
}

}  // namespace
}  // namespace hubimg::format
