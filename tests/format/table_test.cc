#include "format/table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <snappy.h>

#include <map>
#include <string>
#include <vector>

#include "format/coding.h"
#include "format/crc32c.h"

namespace hubimg::format {
namespace {

using ::testing::HasSubstr;

std::string hex_bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

using Entries = std::vector<std::pair<std::string, std::string>>;

Expected<Entries> read_all(std::string_view file, TableReaderOptions options = {}) {
  HUBIMG_ASSIGN_OR_RETURN(TableReader reader, TableReader::open(file, "t.index", options));
  Entries entries;
  HUBIMG_RETURN_IF_ERROR(reader.for_each([&](std::string_view k, std::string_view v) {
    entries.emplace_back(std::string(k), std::string(v));
    return Status::ok_status();
  }));
  return entries;
}

// Appends `contents` and its trailer (type byte + masked CRC32C of contents and type).
void append_block(std::string& file, const std::string& contents, uint8_t type) {
  std::string with_type = contents;
  with_type.push_back(static_cast<char>(type));
  const uint32_t crc = crc32c(with_type.data(), with_type.size());
  file += with_type;
  put_fixed32(file, crc32c_mask(crc));
}

std::string footer(uint64_t meta_offset, uint64_t meta_size, uint64_t index_offset,
                   uint64_t index_size) {
  std::string out;
  put_varint64(out, meta_offset);
  put_varint64(out, meta_size);
  put_varint64(out, index_offset);
  put_varint64(out, index_size);
  out.resize(40, '\0');
  out += hex_bytes({0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb});
  return out;
}

// Entries "a"->"1", "ab"->"22", "b"->"" with a restart point before "b", written out by hand.
const std::string kHandDataBlock = hex_bytes({
    0x00, 0x01, 0x01, 'a',  '1',                     // offset 0: shared 0, key "a", value "1"
    0x01, 0x01, 0x02, 'b',  '2',  '2',               // offset 5: shares "a", adds "b", value "22"
    0x00, 0x01, 0x00, 'b',                           // offset 11: restart, key "b", empty value
    0x00, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00,  // restarts 0, 11
    0x02, 0x00, 0x00, 0x00,                          // 2 restarts
});
const std::string kEmptyBlock = hex_bytes({0, 0, 0, 0, 1, 0, 0, 0});

// A complete table around `data_block` (stored with compression `type`, `stored_size` bytes).
std::string hand_built_table(const std::string& stored_data_block, uint8_t type) {
  std::string file;
  append_block(file, stored_data_block, type);
  const uint64_t meta_offset = file.size();
  append_block(file, kEmptyBlock, 0);
  const uint64_t index_offset = file.size();
  std::string index_block;
  index_block += hex_bytes({0x00, 0x01});  // shared 0, key length 1
  index_block.push_back(static_cast<char>(1 + varint_length(stored_data_block.size())));
  index_block += "b";
  put_varint64(index_block, 0);
  put_varint64(index_block, stored_data_block.size());
  index_block += hex_bytes({0, 0, 0, 0, 1, 0, 0, 0});
  append_block(file, index_block, 0);
  file += footer(meta_offset, kEmptyBlock.size(), index_offset, index_block.size());
  return file;
}

const Entries kHandEntries = {{"a", "1"}, {"ab", "22"}, {"b", ""}};

TEST(TableReaderTest, ReadsAHandBuiltTable) {
  const std::string file = hand_built_table(kHandDataBlock, kNoCompression);
  auto entries = read_all(file);
  ASSERT_TRUE(entries.ok()) << entries.status().to_string();
  EXPECT_EQ(*entries, kHandEntries);
}

TEST(TableReaderTest, ReadsASnappyCompressedDataBlock) {
  std::string compressed;
  snappy::Compress(kHandDataBlock.data(), kHandDataBlock.size(), &compressed);
  ASSERT_NE(compressed, kHandDataBlock);
  const std::string file = hand_built_table(compressed, kSnappyCompression);
  auto entries = read_all(file);
  ASSERT_TRUE(entries.ok()) << entries.status().to_string();
  EXPECT_EQ(*entries, kHandEntries);
}

TEST(TableReaderTest, RejectsCorruptSnappyData) {
  std::string compressed;
  snappy::Compress(kHandDataBlock.data(), kHandDataBlock.size(), &compressed);
  compressed.resize(compressed.size() - 3);  // CRC is recomputed, so only Snappy can notice
  auto entries = read_all(hand_built_table(compressed, kSnappyCompression));
  ASSERT_FALSE(entries.ok());
  EXPECT_THAT(entries.status().message(), HasSubstr("Snappy"));
}

TEST(TableReaderTest, RejectsSnappyBlockClaimingAHugeSize) {
  // Length header 0xffffffff, then nothing.
  const std::string bomb = hex_bytes({0xff, 0xff, 0xff, 0xff, 0x0f, 0x00});
  auto entries = read_all(hand_built_table(bomb, kSnappyCompression));
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(entries.status().message(), HasSubstr("4294967295 uncompressed bytes"));
}

TEST(TableReaderTest, RejectsUnknownCompressionType) {
  auto entries = read_all(hand_built_table(kHandDataBlock, 2));
  ASSERT_FALSE(entries.ok());
  EXPECT_THAT(entries.status().message(), HasSubstr("unknown compression type 2"));
}

TEST(TableReaderTest, ReportsCrcMismatchWithFileBlockAndValues) {
  std::string file = hand_built_table(kHandDataBlock, kNoCompression);
  file[3] ^= 0x01;  // key "a" becomes "`"
  auto entries = read_all(file);
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(entries.status().message(),
              HasSubstr("t.index: block at offset 0 size 27: CRC mismatch (stored 0x"));
  EXPECT_THAT(entries.status().message(), HasSubstr(", computed 0x"));

  // Without checksum verification the damaged key comes through.
  TableReaderOptions lenient;
  lenient.verify_checksums = false;
  auto unchecked = read_all(file, lenient);
  ASSERT_TRUE(unchecked.ok()) << unchecked.status().to_string();
  EXPECT_EQ((*unchecked)[0].first, "`");
}

TEST(TableReaderTest, RejectsBadMagic) {
  std::string file = hand_built_table(kHandDataBlock, kNoCompression);
  file[file.size() - 1] = 0x00;
  auto reader = TableReader::open(file, "t.index");
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("t.index: bad table magic number"));
}

TEST(TableReaderTest, RejectsFileShorterThanFooter) {
  const std::string file = hand_built_table(kHandDataBlock, kNoCompression);
  auto reader = TableReader::open(std::string_view(file).substr(file.size() - 47), "t.index");
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("47 bytes is too short"));
  EXPECT_FALSE(TableReader::open("", "t.index").ok());
}

TEST(TableReaderTest, RejectsTruncatedFile) {
  std::string file = hand_built_table(kHandDataBlock, kNoCompression);
  // Dropping the first 10 bytes keeps a valid-looking footer whose handles now point past EOF.
  auto reader = TableReader::open(std::string_view(file).substr(10), "t.index");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kDataLoss);
}

TEST(TableReaderTest, RejectsIndexHandlePastEndOfFile) {
  std::string file = hand_built_table(kHandDataBlock, kNoCompression);
  const size_t body = file.size() - kTableFooterSize;
  file.replace(body, kTableFooterSize, footer(0, 8, 50, 1000));
  auto reader = TableReader::open(file, "t.index");
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(),
              HasSubstr("index block at offset 50 size 1000 (+5 trailer bytes) runs past"));
}

TEST(TableReaderTest, RejectsHugeHandleWithoutOverflow) {
  std::string file = hand_built_table(kHandDataBlock, kNoCompression);
  const size_t body = file.size() - kTableFooterSize;
  file.replace(body, kTableFooterSize, footer(0, 8, 10, ~uint64_t{0} - 5));
  EXPECT_FALSE(TableReader::open(file, "t.index").ok());
  file.replace(body, kTableFooterSize, footer(~uint64_t{0} - 2, 8, 10, 8));
  EXPECT_FALSE(TableReader::open(file, "t.index").ok());
}

TEST(TableReaderTest, RejectsDataHandlePastEndOfFile) {
  // Index entry pointing at a data block of 4000 bytes.
  std::string file;
  append_block(file, kEmptyBlock, 0);
  const uint64_t index_offset = file.size();
  std::string index_block = hex_bytes({0x00, 0x01, 0x03, 'z', 0x00, 0xa0, 0x1f});
  index_block += hex_bytes({0, 0, 0, 0, 1, 0, 0, 0});
  append_block(file, index_block, 0);
  file += footer(0, kEmptyBlock.size(), index_offset, index_block.size());
  auto reader = TableReader::open(file, "t.index");
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("data block at offset 0 size 4000"));
}

// Builds a table with one hand-written data block of arbitrary contents.
std::string table_with_raw_data_block(const std::string& block) {
  return hand_built_table(block, kNoCompression);
}

TEST(TableReaderTest, RejectsRestartCountLargerThanBlock) {
  std::string block = kHandDataBlock;
  block[block.size() - 4] = 0x40;
  auto entries = read_all(table_with_raw_data_block(block));
  ASSERT_FALSE(entries.ok());
  EXPECT_THAT(entries.status().message(), HasSubstr("restart count 64 does not fit"));
}

TEST(TableReaderTest, RejectsRestartPointOutsideEntries) {
  std::string block = kHandDataBlock;
  block[block.size() - 8] = 0x30;  // second restart at 48 > 15 bytes of entries
  auto entries = read_all(table_with_raw_data_block(block));
  ASSERT_FALSE(entries.ok());
  EXPECT_THAT(entries.status().message(), HasSubstr("restart point 1"));
}

TEST(TableReaderTest, RejectsRestartPointInsideAnEntry) {
  std::string block = kHandDataBlock;
  block[block.size() - 8] = 0x0c;  // 12 is inside the third entry
  auto entries = read_all(table_with_raw_data_block(block));
  ASSERT_FALSE(entries.ok());
  EXPECT_THAT(entries.status().message(), HasSubstr("is not at an entry"));
}

TEST(TableReaderTest, RejectsSharedPrefixLongerThanPreviousKey) {
  std::string block = kHandDataBlock;
  block[5] = 0x05;  // "ab" claims to share 5 bytes with "a"
  auto entries = read_all(table_with_raw_data_block(block));
  ASSERT_FALSE(entries.ok());
  EXPECT_THAT(entries.status().message(), HasSubstr("shares 5 bytes"));
}

TEST(TableReaderTest, RejectsEntryRunningPastTheRestartArray) {
  std::string block = kHandDataBlock;
  block[13] = 0x20;  // value of "b" claims 32 bytes
  auto entries = read_all(table_with_raw_data_block(block));
  ASSERT_FALSE(entries.ok());
  EXPECT_THAT(entries.status().message(), HasSubstr("run past the entries' end"));
}

TEST(TableReaderTest, RejectsKeysOutOfOrder) {
  std::string block = kHandDataBlock;
  block[14] = 'a';  // third key "a" after "ab"
  auto entries = read_all(table_with_raw_data_block(block));
  ASSERT_FALSE(entries.ok());
  EXPECT_THAT(entries.status().message(), HasSubstr("does not sort after"));
}

TEST(TableReaderTest, RejectsKeyAfterItsIndexKey) {
  std::string block = kHandDataBlock;
  block[14] = 'c';  // last key "c" but the index key is "b"
  auto entries = read_all(table_with_raw_data_block(block));
  ASSERT_FALSE(entries.ok());
  EXPECT_THAT(entries.status().message(), HasSubstr("sorts after the block's index key"));
}

TEST(TableBuilderTest, RoundTripsWithTheReader) {
  TableBuilder builder;
  std::map<std::string, std::string> expected;
  for (int i = 0; i < 100; ++i) {
    std::string key = "key/" + std::to_string(1000 + i);
    std::string value(static_cast<size_t>(i * 7), static_cast<char>('a' + i % 26));
    expected[key] = value;
  }
  expected[""] = "header";
  for (const auto& [k, v] : expected) ASSERT_TRUE(builder.add(k, v).ok());
  const std::string file = builder.finish();
  auto reader = TableReader::open(file, "t.index");
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  EXPECT_EQ(reader->num_data_blocks(), 1u);
  auto entries = read_all(file);
  ASSERT_TRUE(entries.ok()) << entries.status().to_string();
  EXPECT_EQ(*entries, Entries(expected.begin(), expected.end()));
}

TEST(TableBuilderTest, WritesTheLevelDbLayout) {
  // One data block of 17 keys: with restart interval 16, two restart points.
  TableBuilder builder;
  for (int i = 100; i < 117; ++i)
    ASSERT_TRUE(builder.add(std::string("k").append(std::to_string(i)), "v").ok());
  const std::string file = builder.finish();
  ASSERT_GE(file.size(), kTableFooterSize);
  EXPECT_EQ(decode_fixed64(file.data() + file.size() - 8), 0xdb4775248b80fb57ull);
  // The data block starts the file: its first entry is a full key "k100" with value "v".
  EXPECT_EQ(file.substr(0, 8), hex_bytes({0x00, 0x04, 0x01, 'k', '1', '0', '0', 'v'}));
  // Second entry shares "k10".
  EXPECT_EQ(file.substr(8, 5), hex_bytes({0x03, 0x01, 0x01, '1', 'v'}));
  std::string_view handles = std::string_view(file).substr(file.size() - kTableFooterSize);
  uint64_t meta_offset, meta_size;
  ASSERT_TRUE(get_varint64(handles, meta_offset));
  ASSERT_TRUE(get_varint64(handles, meta_size));
  // The data block and its trailer come right before the metaindex block.
  const std::string_view data = std::string_view(file).substr(0, meta_offset - kBlockTrailerSize);
  EXPECT_EQ(decode_fixed32(data.data() + data.size() - 4), 2u);  // restart count
  EXPECT_EQ(file[meta_offset - kBlockTrailerSize], 0);           // uncompressed
  EXPECT_EQ(meta_size, 8u);                                      // empty metaindex block
}

TEST(TableBuilderTest, SplitsIntoManyBlocksAndReadsBackInOrder) {
  TableBuilderOptions options;
  options.block_size = 200;
  TableBuilder builder(options);
  Entries expected;
  for (int i = 0; i < 500; ++i) {
    char key[32];
    std::snprintf(key, sizeof(key), "layer_%04d/kernel", i);
    expected.emplace_back(key, std::string(static_cast<size_t>(i % 40), 'x'));
  }
  for (const auto& [k, v] : expected) ASSERT_TRUE(builder.add(k, v).ok());
  const std::string file = builder.finish();
  auto reader = TableReader::open(file, "t.index");
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  EXPECT_GT(reader->num_data_blocks(), 20u);
  auto entries = read_all(file);
  ASSERT_TRUE(entries.ok()) << entries.status().to_string();
  EXPECT_EQ(*entries, expected);
}

TEST(TableBuilderTest, EmptyTableHasNoEntries) {
  TableBuilder builder;
  const std::string file = builder.finish();
  auto entries = read_all(file);
  ASSERT_TRUE(entries.ok()) << entries.status().to_string();
  EXPECT_TRUE(entries->empty());
}

TEST(TableBuilderTest, RejectsKeysOutOfOrderOrRepeated) {
  TableBuilder builder;
  ASSERT_TRUE(builder.add("b", "").ok());
  EXPECT_EQ(builder.add("a", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(builder.add("b", "").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(builder.add("c", "").ok());
}

TEST(TableBuilderTest, KeysSortAsUnsignedBytes) {
  TableBuilder builder;
  ASSERT_TRUE(builder.add("a", "").ok());
  ASSERT_TRUE(builder.add(hex_bytes({0x80}), "").ok());  // 0x80 > 'a' unsigned
  auto entries = read_all(builder.finish());
  ASSERT_TRUE(entries.ok()) << entries.status().to_string();
  EXPECT_EQ(entries->size(), 2u);
}

TEST(TableReaderTest, VisitorErrorStopsIteration) {
  const std::string file = hand_built_table(kHandDataBlock, kNoCompression);
  auto reader = TableReader::open(file, "t.index");
  ASSERT_TRUE(reader.ok());
  int calls = 0;
  Status s = reader->for_each([&](std::string_view, std::string_view) {
    ++calls;
    return not_found("stop");
  });
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace hubimg::format
