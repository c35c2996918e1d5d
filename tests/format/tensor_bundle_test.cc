#include "format/tensor_bundle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "checkpoint.pb.h"
#include "format/coding.h"
#include "format/crc32c.h"
#include "format/table.h"
#include "util/test_util.h"

namespace hubimg::format {
namespace {

using ::hubimg::testing::read_file;
using ::hubimg::testing::TempDir;
using ::hubimg::testing::write_file;
using ::testing::HasSubstr;

const std::vector<DType> kNumericDTypes = {
    DType::kFloat16, DType::kBFloat16, DType::kFloat32, DType::kFloat64, DType::kInt8,
    DType::kInt16,   DType::kInt32,    DType::kInt64,   DType::kUInt8,   DType::kUInt16,
    DType::kUInt32,  DType::kUInt64,   DType::kBool};

Tensor random_tensor(DType dtype, Dims shape, std::mt19937& rng) {
  Tensor t(dtype, std::move(shape));
  auto* bytes = static_cast<uint8_t*>(t.raw_mutable_data());
  for (size_t i = 0; i < t.byte_size(); ++i) {
    bytes[i] =
        dtype == DType::kBool ? static_cast<uint8_t>(rng() & 1u) : static_cast<uint8_t>(rng());
  }
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.byte_size() == b.byte_size() &&
         (a.byte_size() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()) == 0);
}

std::string entry_proto(DType dtype, const Dims& shape, int64_t offset, int64_t size,
                        uint32_t masked_crc, int shard_id = 0) {
  tf::BundleEntryProto proto;
  proto.set_dtype(static_cast<tf::DataType>(dtype));
  for (int64_t d : shape) proto.mutable_shape()->add_dim()->set_size(d);
  proto.set_shard_id(shard_id);
  proto.set_offset(offset);
  proto.set_size(size);
  proto.set_crc32c(masked_crc);
  return proto.SerializeAsString();
}

std::string header_proto(
    int num_shards = 1,
    tf::BundleHeaderProto::Endianness endianness = tf::BundleHeaderProto::LITTLE,
    int min_consumer = 0) {
  tf::BundleHeaderProto header;
  header.set_num_shards(num_shards);
  header.set_endianness(endianness);
  header.mutable_version()->set_producer(1);
  header.mutable_version()->set_min_consumer(min_consumer);
  return header.SerializeAsString();
}

// An index with the given header and entries (sorted by key).
std::string index_with(const std::string& header,
                       const std::vector<std::pair<std::string, std::string>>& entries) {
  TableBuilder builder;
  EXPECT_TRUE(builder.add("", header).ok());
  for (const auto& [k, v] : entries) EXPECT_TRUE(builder.add(k, v).ok());
  return builder.finish();
}

TEST(TensorBundleTest, DataFileNames) {
  EXPECT_EQ(bundle_data_path("/a/variables", 0, 1).string(), "/a/variables.data-00000-of-00001");
  EXPECT_EQ(bundle_data_path("v", 12, 345).string(), "v.data-00012-of-00345");
  EXPECT_EQ(bundle_index_path("/a/variables").string(), "/a/variables.index");
}

TEST(TensorBundleTest, RoundTripsEveryNumericDTypeZeroCopy) {
  TempDir dir;
  const auto prefix = dir.path() / "variables" / "variables";
  std::mt19937 rng(42);
  std::map<std::string, Tensor> written;
  {
    TensorBundleWriter writer(prefix);
    for (DType dtype : kNumericDTypes) {
      for (const Dims& shape : {Dims{3, 5}, Dims{}, Dims{0, 4}, Dims{7}}) {
        const std::string key = dtype_name(dtype) + dims_to_string(shape);
        written[key] = random_tensor(dtype, shape, rng);
        ASSERT_TRUE(writer.add(key, written[key]).ok()) << key;
      }
    }
    ASSERT_TRUE(writer.finish().ok());
  }
  auto reader = TensorBundleReader::open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  EXPECT_EQ((*reader)->num_shards(), 1);
  ASSERT_EQ((*reader)->entries().size(), written.size());

  const Tensor first = *(*reader)->read((*reader)->entries()[0].key);
  const auto* mapping_base =
      static_cast<const char*>(first.raw_data()) - (*reader)->entries()[0].offset;
  for (const BundleEntry& entry : (*reader)->entries()) {
    SCOPED_TRACE(entry.key);
    const Tensor& expected = written.at(entry.key);
    EXPECT_EQ(entry.dtype, expected.dtype());
    EXPECT_EQ(entry.shape, expected.shape());
    EXPECT_EQ(entry.offset % 64, 0);
    EXPECT_EQ(static_cast<size_t>(entry.size), expected.byte_size());
    auto got = (*reader)->read(entry.key);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_EQ(got->dtype(), expected.dtype());
    EXPECT_EQ(got->shape(), expected.shape());
    EXPECT_TRUE(same_bytes(*got, expected));
    // Zero-copy: every tensor sits in one mapping at its file offset.
    EXPECT_EQ(static_cast<const char*>(got->raw_data()), mapping_base + entry.offset);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(got->raw_data()) % 64, 0u);
  }
  // The sorted order is the bytewise key order.
  for (size_t i = 1; i < (*reader)->entries().size(); ++i) {
    EXPECT_LT((*reader)->entries()[i - 1].key, (*reader)->entries()[i].key);
  }
}

TEST(TensorBundleTest, ViewsStayValidAfterTheReaderIsGoneAndAreWritableInMemoryOnly) {
  TempDir dir;
  const auto prefix = dir.path() / "v";
  TensorBundleWriter writer(prefix);
  ASSERT_TRUE(writer.add("w", Tensor::from_vector<float>({2}, {1.5f, -2.0f})).ok());
  ASSERT_TRUE(writer.finish().ok());
  const std::string data_before = read_file(bundle_data_path(prefix, 0, 1));
  Tensor view;
  {
    auto reader = TensorBundleReader::open(prefix);
    ASSERT_TRUE(reader.ok());
    view = *(*reader)->read("w");
  }
  EXPECT_EQ(view.values<float>()[1], -2.0f);
  view.mutable_data<float>()[0] = 9.0f;
  EXPECT_EQ(view.values<float>()[0], 9.0f);
  EXPECT_EQ(read_file(bundle_data_path(prefix, 0, 1)), data_before);
}

TEST(TensorBundleTest, OverwritingABundleLeavesMappedViewsIntact) {
  TempDir dir;
  const auto prefix = dir.path() / "v";
  {
    TensorBundleWriter writer(prefix);
    ASSERT_TRUE(writer.add("w", Tensor::from_vector<float>({3}, {1, 2, 3})).ok());
    ASSERT_TRUE(writer.finish().ok());
  }
  auto old_reader = TensorBundleReader::open(prefix);
  ASSERT_TRUE(old_reader.ok());
  const Tensor old_view = *(*old_reader)->read("w");
  {
    // Fine-tuned values saved over the same prefix, smaller than before.
    TensorBundleWriter writer(prefix);
    ASSERT_TRUE(writer.add("w", Tensor::from_vector<int8_t>({1}, {7})).ok());
    ASSERT_TRUE(writer.finish().ok());
  }
  EXPECT_EQ(std::vector<float>(old_view.values<float>().begin(), old_view.values<float>().end()),
            (std::vector<float>{1, 2, 3}));
  auto new_reader = TensorBundleReader::open(prefix);
  ASSERT_TRUE(new_reader.ok());
  EXPECT_EQ((*new_reader)->read("w")->values<int8_t>()[0], 7);
  EXPECT_FALSE(std::filesystem::exists(bundle_data_path(prefix, 0, 1).string() + ".tempstate"));
}

TEST(TensorBundleTest, AbandonedWriterLeavesNoFiles) {
  TempDir dir;
  {
    TensorBundleWriter writer(dir.path() / "v");
    ASSERT_TRUE(writer.add("w", Tensor::scalar<float>(1.0f)).ok());
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(TensorBundleTest, UnalignedTensorsAreCopiedWithCorrectValues) {
  TempDir dir;
  const auto prefix = dir.path() / "v";
  const std::vector<double> values = {1.0, -0.25, 3e300};
  TensorBundleWriter writer(prefix, /*alignment=*/1);
  ASSERT_TRUE(writer.add("a", Tensor::from_vector<int8_t>({3}, {1, 2, 3})).ok());
  ASSERT_TRUE(writer.add("b", Tensor::from_vector<double>({3}, values)).ok());
  ASSERT_TRUE(writer.finish().ok());
  auto reader = TensorBundleReader::open(prefix);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->find("b")->offset, 3);
  auto b1 = (*reader)->read("b");
  auto b2 = (*reader)->read("b");
  ASSERT_TRUE(b1.ok() && b2.ok());
  EXPECT_EQ(std::vector<double>(b1->values<double>().begin(), b1->values<double>().end()), values);
  EXPECT_FALSE(b1->shares_buffer_with(*b2));  // copies, not views
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b1->raw_data()) % alignof(double), 0u);
  // The int8 tensor at offset 0 is still a view.
  auto a1 = (*reader)->read("a");
  auto a2 = (*reader)->read("a");
  EXPECT_TRUE(a1->shares_buffer_with(*a2));
}

TEST(TensorBundleTest, RoundTripsStringsWithOneTwoAndThreeByteLengths) {
  TempDir dir;
  const auto prefix = dir.path() / "v";
  std::vector<std::string> strings = {"", "short", std::string(200, 'm'), std::string(20000, 'L')};
  strings[3][12345] = '\0';
  TensorBundleWriter writer(prefix);
  ASSERT_TRUE(writer.add("strings", Tensor::from_strings({2, 2}, strings)).ok());
  ASSERT_TRUE(writer.add("scalar", Tensor::from_strings({}, {"hi"})).ok());
  ASSERT_TRUE(writer.add("empty", Tensor::from_strings({0}, {})).ok());
  ASSERT_TRUE(writer.finish().ok());

  auto reader = TensorBundleReader::open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  auto got = (*reader)->read("strings");
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(got->shape(), (Dims{2, 2}));
  EXPECT_EQ(got->strings(), strings);
  // Lengths 0, 5, 200, 20000 take 1 + 1 + 2 + 3 varint bytes, then 4 bytes of checksum.
  EXPECT_EQ((*reader)->find("strings")->size, 7 + 4 + 0 + 5 + 200 + 20000);
  auto scalar = (*reader)->read("scalar");
  ASSERT_TRUE(scalar.ok());
  EXPECT_EQ(scalar->strings(), std::vector<std::string>{"hi"});
  auto empty = (*reader)->read("empty");
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_EQ(empty->num_elements(), 0);
}

TEST(TensorBundleTest, StringTensorBytesFollowTensorFlowsLayout) {
  TempDir dir;
  const auto prefix = dir.path() / "v";
  TensorBundleWriter writer(prefix);
  ASSERT_TRUE(writer.add("s", Tensor::from_strings({2}, {"hi", "abc"})).ok());
  ASSERT_TRUE(writer.finish().ok());
  const std::string data = read_file(bundle_data_path(prefix, 0, 1));
  // Lengths as varints, the masked CRC of the lengths taken as uint32 LE, then the bytes.
  const char lengths_as_uint32[] = {2, 0, 0, 0, 3, 0, 0, 0};
  const uint32_t lengths_crc = crc32c(lengths_as_uint32, 8);
  std::string expected = {2, 3};
  put_fixed32(expected, crc32c_mask(lengths_crc));
  expected += "hiabc";
  EXPECT_EQ(data, expected);
  // The entry CRC continues from the lengths' CRC over the stored checksum and the bytes.
  auto reader = TensorBundleReader::open(prefix);
  ASSERT_TRUE(reader.ok());
  uint32_t entry_crc = crc32c_extend(lengths_crc, expected.data() + 2, 4);
  entry_crc = crc32c_extend(entry_crc, "hiabc", 5);
  EXPECT_EQ(crc32c_unmask((*reader)->find("s")->masked_crc32c), entry_crc);
}

TEST(TensorBundleTest, NumericEntryCrcIsTheMaskedCrcOfTheBytes) {
  TempDir dir;
  const auto prefix = dir.path() / "v";
  TensorBundleWriter writer(prefix);
  const std::vector<int32_t> values = {1, -2, 300000};
  ASSERT_TRUE(writer.add("x", Tensor::from_vector<int32_t>({3}, values)).ok());
  ASSERT_TRUE(writer.finish().ok());
  auto reader = TensorBundleReader::open(prefix);
  ASSERT_TRUE(reader.ok());
  const BundleEntry* entry = (*reader)->find("x");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->masked_crc32c, crc32c_mask(crc32c(values.data(), 12)));
  EXPECT_EQ((*reader)->find("y"), nullptr);
  EXPECT_EQ((*reader)->read("y").status().code(), StatusCode::kNotFound);
}

TEST(TensorBundleTest, WriterRejectsDuplicateEmptyAndUnsupported) {
  TempDir dir;
  TensorBundleWriter writer(dir.path() / "v");
  const Tensor t = Tensor::scalar<float>(1.0f);
  EXPECT_EQ(writer.add("", t).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(writer.add("k", t).ok());
  Status duplicate = writer.add("k", t);
  EXPECT_EQ(duplicate.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(duplicate.message(), HasSubstr("'k'"));
  EXPECT_EQ(writer.add("r", Tensor()).code(), StatusCode::kUnimplemented);
  ASSERT_TRUE(writer.finish().ok());
  EXPECT_EQ(writer.add("z", t).code(), StatusCode::kFailedPrecondition);
}

TEST(TensorBundleTest, EmptyBundleIsValid) {
  TempDir dir;
  TensorBundleWriter writer(dir.path() / "v");
  ASSERT_TRUE(writer.finish().ok());
  auto reader = TensorBundleReader::open(dir.path() / "v");
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  EXPECT_TRUE((*reader)->entries().empty());
}

TEST(TensorBundleTest, MissingShardFileIsNamed) {
  TempDir dir;
  const auto prefix = dir.path() / "v";
  TensorBundleWriter writer(prefix);
  ASSERT_TRUE(writer.add("k", Tensor::scalar<float>(1.0f)).ok());
  ASSERT_TRUE(writer.finish().ok());
  std::filesystem::remove(bundle_data_path(prefix, 0, 1));
  auto reader = TensorBundleReader::open(prefix);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(reader.status().message(), HasSubstr(bundle_data_path(prefix, 0, 1).string()));
}

TEST(TensorBundleTest, MissingIndexIsNamed) {
  TempDir dir;
  auto reader = TensorBundleReader::open(dir.path() / "nothing");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(reader.status().message(), HasSubstr("nothing.index"));
}

TEST(TensorBundleTest, EntryPastTheShardEndIsDataLoss) {
  TempDir dir;
  const auto prefix = dir.path() / "v";
  TensorBundleWriter writer(prefix);
  ASSERT_TRUE(writer.add("a", Tensor::from_vector<float>({4}, {1, 2, 3, 4})).ok());
  ASSERT_TRUE(writer.add("b", Tensor::from_vector<float>({4}, {5, 6, 7, 8})).ok());
  ASSERT_TRUE(writer.finish().ok());
  const auto data_path = bundle_data_path(prefix, 0, 1);
  std::string data = read_file(data_path);
  data.resize(data.size() - 1);
  write_file(data_path, data);
  auto reader = TensorBundleReader::open(prefix);
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE((*reader)->read("a").ok());
  auto b = (*reader)->read("b");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(b.status().message(), HasSubstr("'b'"));
  EXPECT_THAT(b.status().message(), HasSubstr("past the end of " + data_path.string()));
}

// Reads an index built by the test with a one-shard data part in memory.
Expected<std::shared_ptr<TensorBundleReader>> open_crafted(const std::string& index,
                                                           const std::string& data) {
  return TensorBundleReader::open_from_memory(index, {data}, "mem/variables");
}

TEST(TensorBundleTest, CorruptedNumericDataFailsTheCrcCheckNamingKeyAndFile) {
  const std::string data(16, '\x01');
  const uint32_t good_crc = crc32c_mask(crc32c(data.data(), data.size()));
  const std::string index =
      index_with(header_proto(), {{"w", entry_proto(DType::kFloat32, {4}, 0, 16, good_crc)}});
  ASSERT_TRUE((*open_crafted(index, data))->read("w").ok());
  std::string damaged = data;
  damaged[7] ^= 0x10;
  auto reader = open_crafted(index, damaged);
  ASSERT_TRUE(reader.ok());
  auto w = (*reader)->read("w");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(w.status().message(),
              HasSubstr("mem/variables.data-00000-of-00001: tensor 'w': CRC mismatch"));
  // With checks off the damaged bytes come through.
  TensorBundleReadOptions lenient;
  lenient.verify_checksums = false;
  auto unchecked = TensorBundleReader::open_from_memory(index, {damaged}, "mem/variables", lenient);
  ASSERT_TRUE(unchecked.ok());
  EXPECT_TRUE((*unchecked)->read("w").ok());
}

TEST(TensorBundleTest, SizeThatDisagreesWithShapeIsDataLoss) {
  const std::string data(16, '\0');
  const std::string index =
      index_with(header_proto(), {{"w", entry_proto(DType::kFloat32, {3}, 0, 16, 0)}});
  auto w = (*open_crafted(index, data))->read("w");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(w.status().message(), HasSubstr("index says 16 bytes but float32[3] needs 12"));
}

TEST(TensorBundleTest, NegativeShapeIsDataLossAtOpen) {
  const std::string index =
      index_with(header_proto(), {{"w", entry_proto(DType::kFloat32, {2, -1}, 0, 0, 0)}});
  auto reader = open_crafted(index, "");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(reader.status().message(), HasSubstr("'w': invalid shape"));
}

TEST(TensorBundleTest, AbsurdShapeIsDataLossWithoutAllocating) {
  // 2^62 elements overflows the element limit at open.
  const std::string overflow = index_with(
      header_proto(),
      {{"w", entry_proto(DType::kFloat32, {int64_t{1} << 31, int64_t{1} << 31}, 0, 4, 0)}});
  EXPECT_EQ(open_crafted(overflow, "").status().code(), StatusCode::kDataLoss);
  // 2^40 floats is a valid shape, but the entry is far larger than the shard: no allocation.
  const int64_t big = int64_t{1} << 20;
  const std::string huge = index_with(
      header_proto(), {{"s", entry_proto(DType::kString, {big, big}, 0, 8, 0)},
                       {"w", entry_proto(DType::kFloat32, {big, big}, 0, big * big * 4, 0)}});
  auto reader = open_crafted(huge, std::string(8, '\0'));
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  auto w = (*reader)->read("w");
  EXPECT_EQ(w.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(w.status().message(), HasSubstr("past the end"));
  auto s = (*reader)->read("s");
  EXPECT_EQ(s.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.status().message(), HasSubstr("cannot hold the lengths of 1099511627776 strings"));
}

TEST(TensorBundleTest, StringLengthsPastTheEntryAreDataLoss) {
  std::string data;
  put_varint64(data, 1000);  // one string claiming 1000 bytes
  put_fixed32(data, 0);
  data += "abc";
  const std::string index =
      index_with(header_proto(),
                 {{"s", entry_proto(DType::kString, {}, 0, static_cast<int64_t>(data.size()), 0)}});
  auto s = (*open_crafted(index, data))->read("s");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("does not fit"));
}

TEST(TensorBundleTest, StringLengthChecksumMismatchIsDataLoss) {
  std::string data = {3};
  put_fixed32(data, 12345);  // wrong checksum of the lengths
  data += "abc";
  const std::string index =
      index_with(header_proto(),
                 {{"s", entry_proto(DType::kString, {}, 0, static_cast<int64_t>(data.size()), 0)}});
  auto s = (*open_crafted(index, data))->read("s");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("CRC mismatch in the string lengths"));
}

TEST(TensorBundleTest, SlicedEntryIsUnimplementedNamingTheKey) {
  tf::BundleEntryProto proto;
  proto.set_dtype(tf::DT_FLOAT);
  proto.mutable_shape()->add_dim()->set_size(4);
  proto.add_slices()->add_extent()->set_start(0);
  const std::string index = index_with(header_proto(), {{"part", proto.SerializeAsString()}});
  auto reader = open_crafted(index, "");
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  EXPECT_TRUE((*reader)->find("part")->partitioned);
  auto part = (*reader)->read("part");
  EXPECT_EQ(part.status().code(), StatusCode::kUnimplemented);
  EXPECT_THAT(part.status().message(), HasSubstr("'part'"));
}

TEST(TensorBundleTest, BigEndianHeaderIsRejected) {
  const std::string index = index_with(header_proto(1, tf::BundleHeaderProto::BIG), {});
  auto reader = open_crafted(index, "");
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kUnimplemented);
  EXPECT_THAT(reader.status().message(), HasSubstr("big-endian"));
}

TEST(TensorBundleTest, NewerFormatVersionIsRejected) {
  const std::string index = index_with(header_proto(1, tf::BundleHeaderProto::LITTLE, 2), {});
  auto reader = open_crafted(index, "");
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("version 2"));
}

TEST(TensorBundleTest, MissingHeaderAndBadShardCountsAreDataLoss) {
  TableBuilder builder;
  ASSERT_TRUE(builder.add("w", entry_proto(DType::kFloat32, {}, 0, 4, 0)).ok());
  auto no_header = TensorBundleReader::open_from_memory(builder.finish(), {}, "mem/v");
  ASSERT_FALSE(no_header.ok());
  EXPECT_THAT(no_header.status().message(), HasSubstr("no header entry"));

  EXPECT_EQ(open_crafted(index_with(header_proto(0), {}), "").status().code(),
            StatusCode::kDataLoss);
  const std::string bad_shard =
      index_with(header_proto(1), {{"w", entry_proto(DType::kFloat32, {}, 0, 4, 0, 1)}});
  auto reader = open_crafted(bad_shard, "");
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("shard id 1"));
}

TEST(TensorBundleTest, InvalidBoolBytesAreNormalised) {
  const std::string data = {0, 1, 2, '\xff'};
  const std::string index = index_with(
      header_proto(),
      {{"b", entry_proto(DType::kBool, {4}, 0, 4, crc32c_mask(crc32c(data.data(), 4)))}});
  auto b = (*open_crafted(index, data))->read("b");
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  const auto* bytes = static_cast<const uint8_t*>(b->raw_data());
  EXPECT_EQ(std::vector<uint8_t>(bytes, bytes + 4), (std::vector<uint8_t>{0, 1, 1, 1}));
}

TEST(TensorBundleTest, UnsupportedDTypeIsUnimplementedOnRead) {
  const std::string index =
      index_with(header_proto(), {{"c", entry_proto(DType::kComplex64, {1}, 0, 8, 0)},
                                  {"future", entry_proto(static_cast<DType>(29), {1}, 0, 1, 0)}});
  auto reader = open_crafted(index, std::string(8, '\0'));
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  EXPECT_EQ((*reader)->read("c").status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ((*reader)->read("future").status().code(), StatusCode::kUnimplemented);
}

TEST(TensorBundleTest, InMemoryShardCountMustMatchHeader) {
  const std::string index = index_with(header_proto(2), {});
  auto reader = TensorBundleReader::open_from_memory(index, {""}, "mem/v");
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("2 shards"));
}

}  // namespace
}  // namespace hubimg::format
