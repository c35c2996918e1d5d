#include "hubimg/npy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "util/test_util.h"

namespace hubimg {
namespace {

using Bytes = std::vector<uint8_t>;

// A .npy file built by hand from a header dict, following the format spec (not our encoder).
Bytes npy_bytes(int major, const std::string& dict, const Bytes& data) {
  Bytes b = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  const size_t len_bytes = major == 1 ? 2 : 4;
  std::string header = dict;
  while ((8 + len_bytes + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  for (size_t i = 0; i < len_bytes; ++i) b.push_back((header.size() >> (8 * i)) & 0xff);
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

template <typename T>
Bytes raw(const std::vector<T>& v) {
  Bytes b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

Expected<Tensor> parse(const Bytes& b) {
  return parse_npy(b, "test.npy");
}

TEST(Npy, ParsesHandBuiltVersion1) {
  auto t = parse(npy_bytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }",
                           raw<int32_t>({7, -8, 9})));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->dtype(), DType::kInt32);
  EXPECT_EQ(t->shape(), (Dims{3}));
  EXPECT_EQ(t->data<int32_t>()[0], 7);
  EXPECT_EQ(t->data<int32_t>()[1], -8);
  EXPECT_EQ(t->data<int32_t>()[2], 9);
}

TEST(Npy, ParsesVersion2And3Headers) {
  for (int major : {2, 3}) {
    auto t = parse(npy_bytes(major, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }",
                             raw<double>({1.5, -2.25})));
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    EXPECT_EQ(t->dtype(), DType::kFloat64);
    EXPECT_EQ(t->shape(), (Dims{1, 2}));
    EXPECT_EQ(t->data<double>()[1], -2.25);
  }
}

TEST(Npy, ToleratesKeyOrderQuotesAndPython2Longs) {
  auto t = parse(npy_bytes(1, "{\"shape\": (2L, 1L), \"fortran_order\": False, \"descr\": \"<u2\"}",
                           raw<uint16_t>({65535, 3})));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->dtype(), DType::kUInt16);
  EXPECT_EQ(t->shape(), (Dims{2, 1}));
  EXPECT_EQ(t->data<uint16_t>()[0], 65535);
}

TEST(Npy, ScalarAndEmptyShapes) {
  auto s = parse(
      npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", raw<float>({3.5f})));
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->rank(), 0);
  EXPECT_EQ(s->data<float>()[0], 3.5f);
  auto e = parse(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", {}));
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->shape(), (Dims{0, 4}));
  EXPECT_EQ(e->num_elements(), 0);
}

TEST(Npy, OneByteTypesAcceptAnyByteOrderMark) {
  for (const char* descr : {"|i1", "<i1", ">i1", "|u1", "|b1"}) {
    auto t = parse(npy_bytes(
        1, std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (2,), }",
        {0x80, 0x02}));
    ASSERT_TRUE(t.ok()) << descr << ": " << t.status().to_string();
  }
}

TEST(Npy, BoolBytesAreNormalised) {
  auto t =
      parse(npy_bytes(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", {0, 1, 7}));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->dtype(), DType::kBool);
  const auto* p = static_cast<const uint8_t*>(t->raw_data());
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[1], 1);
  EXPECT_EQ(p[2], 1);
}

template <typename T>
void check_round_trip(DType dtype, const std::string& descr, std::vector<T> values) {
  SCOPED_TRACE(descr);
  Tensor t(dtype, {2, static_cast<int64_t>(values.size() / 2)});
  std::memcpy(t.raw_mutable_data(), values.data(), values.size() * sizeof(T));
  auto bytes = encode_npy(t);
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  // The header NumPy expects: v1.0, dict with the descr, padded to a multiple of 64 bytes.
  ASSERT_GE(bytes->size(), 64u);
  EXPECT_EQ((*bytes)[6], 1);
  EXPECT_EQ((*bytes)[7], 0);
  const size_t header_len = (*bytes)[8] | ((*bytes)[9] << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  std::string header(bytes->begin() + 10, bytes->begin() + 10 + header_len);
  EXPECT_EQ(header.back(), '\n');
  EXPECT_EQ(header.rfind("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (2, " +
                             std::to_string(values.size() / 2) + "), }",
                         0),
            0u)
      << header;
  EXPECT_EQ(bytes->size(), 10 + header_len + values.size() * sizeof(T));

  auto back = parse_npy(*bytes, "round trip");
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->dtype(), dtype);
  EXPECT_EQ(back->shape(), t.shape());
  EXPECT_EQ(std::memcmp(back->raw_data(), values.data(), values.size() * sizeof(T)), 0);
}

TEST(Npy, RoundTripEveryDtype) {
  check_round_trip<float>(DType::kFloat32, "<f4", {1.5f, -0.0f, 3e38f, 1e-45f});
  check_round_trip<double>(DType::kFloat64, "<f8", {1.5, -2.0, 1e300, 5e-324});
  check_round_trip<uint16_t>(DType::kFloat16, "<f2", {0x3c00, 0xc000, 0x7bff, 0x0001});
  check_round_trip<int8_t>(DType::kInt8, "|i1", {-128, 127, 0, -1});
  check_round_trip<int16_t>(DType::kInt16, "<i2", {-32768, 32767, 1, -2});
  check_round_trip<int32_t>(DType::kInt32, "<i4", {INT32_MIN, INT32_MAX, 1, -2});
  check_round_trip<int64_t>(DType::kInt64, "<i8", {INT64_MIN, INT64_MAX, 1, -2});
  check_round_trip<uint8_t>(DType::kUInt8, "|u1", {0, 255, 1, 128});
  check_round_trip<uint16_t>(DType::kUInt16, "<u2", {0, 65535, 1, 2});
  check_round_trip<uint32_t>(DType::kUInt32, "<u4", {0, UINT32_MAX, 1, 2});
  check_round_trip<uint64_t>(DType::kUInt64, "<u8", {0, UINT64_MAX, 1, 2});
  check_round_trip<uint8_t>(DType::kBool, "|b1", {0, 1, 1, 0});
}

TEST(Npy, OneDimensionalShapeHasTrailingComma) {
  auto bytes = encode_npy(Tensor::from_vector<float>({3}, {1, 2, 3}));
  ASSERT_TRUE(bytes.ok());
  std::string s(bytes->begin(), bytes->end());
  EXPECT_NE(s.find("'shape': (3,), }"), std::string::npos);
  auto scalar = encode_npy(Tensor::scalar<float>(1.0f));
  ASSERT_TRUE(scalar.ok());
  std::string t(scalar->begin(), scalar->end());
  EXPECT_NE(t.find("'shape': (), }"), std::string::npos);
}

TEST(Npy, RefusesBFloat16AndStrings) {
  EXPECT_FALSE(encode_npy(Tensor(DType::kBFloat16, {2})).ok());
  EXPECT_FALSE(encode_npy(Tensor::from_strings({1}, {"a"})).ok());
}

TEST(Npy, FileRoundTripAndErrorsNameTheFile) {
  testing::TempDir dir;
  auto path = dir.path() / "x.npy";
  Tensor t = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  ASSERT_TRUE(write_npy(path, t).ok());
  auto back = read_npy(path);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->shape(), (Dims{2, 2}));
  EXPECT_EQ(back->data<float>()[3], 4.0f);

  auto missing = read_npy(dir.path() / "missing.npy");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("missing.npy"), std::string::npos);

  std::string bytes = testing::read_file(path);
  testing::write_file(dir.path() / "cut.npy", bytes.substr(0, bytes.size() - 1));
  auto cut = read_npy(dir.path() / "cut.npy");
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(cut.status().message().find("cut.npy"), std::string::npos);
  EXPECT_NE(cut.status().message().find("truncated"), std::string::npos);

  auto bad_dir = write_npy(dir.path() / "no" / "such" / "dir.npy", t);
  EXPECT_FALSE(bad_dir.ok());
  EXPECT_NE(bad_dir.message().find("dir.npy"), std::string::npos);
}

void expect_error(const Bytes& b, StatusCode code, const std::string& fragment) {
  auto t = parse(b);
  ASSERT_FALSE(t.ok()) << "accepted: " << fragment;
  EXPECT_EQ(t.status().code(), code) << t.status().to_string();
  EXPECT_NE(t.status().message().find("test.npy"), std::string::npos) << t.status().to_string();
  EXPECT_NE(t.status().message().find(fragment), std::string::npos) << t.status().to_string();
}

TEST(Npy, Errors) {
  const Bytes four_floats = raw<float>({1, 2, 3, 4});
  const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
  Bytes good = npy_bytes(1, ok_dict, four_floats);
  ASSERT_TRUE(parse(good).ok());

  // Truncated anywhere: in the magic, the header, or the data.
  for (size_t len = 0; len < good.size(); ++len) {
    auto t = parse(Bytes(good.begin(), good.begin() + len));
    ASSERT_FALSE(t.ok()) << "prefix of " << len << " bytes accepted";
    EXPECT_EQ(t.status().code(), StatusCode::kDataLoss) << t.status().to_string();
  }
  expect_error(Bytes(good.begin(), good.end() - 3), StatusCode::kDataLoss, "truncated");
  Bytes longer = good;
  longer.push_back(0);
  expect_error(longer, StatusCode::kDataLoss, "unexpected bytes");

  Bytes bad_magic = good;
  bad_magic[1] = 'X';
  expect_error(bad_magic, StatusCode::kDataLoss, "magic");
  Bytes bad_version = good;
  bad_version[6] = 9;
  expect_error(bad_version, StatusCode::kUnimplemented, "version 9");

  expect_error(
      npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", four_floats),
      StatusCode::kUnimplemented, "Fortran");
  expect_error(
      npy_bytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", four_floats),
      StatusCode::kUnimplemented, "big-endian");
  expect_error(
      npy_bytes(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", four_floats),
      StatusCode::kUnimplemented, "unsupported dtype");
  expect_error(npy_bytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }",
                         four_floats),
               StatusCode::kUnimplemented, "structured");
  expect_error(
      npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2}", four_floats),
      StatusCode::kDataLoss, "bad .npy header");
  expect_error(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False}", four_floats),
               StatusCode::kDataLoss, "missing");
  expect_error(npy_bytes(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 2), }", four_floats),
               StatusCode::kDataLoss, "True or False");
  expect_error(
      npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 2), }", four_floats),
      StatusCode::kDataLoss, "expected a dimension");
  expect_error(npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}",
                         four_floats),
               StatusCode::kDataLoss, "unexpected key");
  expect_error(npy_bytes(1, "garbage", four_floats), StatusCode::kDataLoss, "expected '{'");

  // A shape far beyond the data must be refused before anything is allocated.
  expect_error(npy_bytes(1,
                         "{'descr': '<f8', 'fortran_order': False, "
                         "'shape': (100000, 100000, 1000), }",
                         four_floats),
               StatusCode::kDataLoss, "truncated");
  expect_error(npy_bytes(1,
                         "{'descr': '<f4', 'fortran_order': False, "
                         "'shape': (4294967296, 4294967296, 4294967296), }",
                         four_floats),
               StatusCode::kOutOfRange, "too many elements");
  expect_error(npy_bytes(1,
                         "{'descr': '<f4', 'fortran_order': False, "
                         "'shape': (99999999999999999999,), }",
                         four_floats),
               StatusCode::kDataLoss, "dimension too large");

  // A header length pointing past the end of the file.
  Bytes long_header = good;
  long_header[8] = 0xff;
  long_header[9] = 0xff;
  expect_error(long_header, StatusCode::kDataLoss, "truncated .npy header");
  Bytes v2 = npy_bytes(2, ok_dict, four_floats);
  v2[8] = v2[9] = v2[10] = v2[11] = 0xff;
  expect_error(v2, StatusCode::kDataLoss, "implausible");
}

TEST(Npy, ReadsGoldenSamplesAndMatchesNumpysHeader) {
  HUBIMG_REQUIRE_SHARED();
  auto path = testing::golden_dir() / "potato_cnn_aug_tf25" / "in_samples.npy";
  auto t = read_npy(path);
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->dtype(), DType::kFloat32);
  EXPECT_EQ(t->shape(), (Dims{2, 256, 256, 3}));
  // Pixel values of an image batch scaled by 1: all in [0, 255] and not all equal.
  float lo = 1e9f, hi = -1e9f;
  for (float v : t->values<float>()) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_GE(lo, 0.0f);
  EXPECT_LE(hi, 255.0f);
  EXPECT_GT(hi - lo, 100.0f);

  // parse_npy on the same bytes agrees, and our encoder reproduces NumPy's header exactly.
  std::string bytes = testing::read_file(path);
  Bytes b(bytes.begin(), bytes.end());
  auto parsed = parse_npy(b, path.string());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(std::memcmp(parsed->raw_data(), t->raw_data(), t->byte_size()), 0);
  auto encoded = encode_npy(*t);
  ASSERT_TRUE(encoded.ok());
  ASSERT_EQ(encoded->size(), b.size());
  EXPECT_TRUE(std::equal(b.begin(), b.end(), encoded->begin()));
}

TEST(Npy, ReadsEveryGoldenFile) {
  HUBIMG_REQUIRE_SHARED();
  int count = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(testing::golden_dir())) {
    if (entry.path().extension() != ".npy") continue;
    auto t = read_npy(entry.path());
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    // Re-encoding gives back NumPy's bytes: same header layout and data.
    if (t.ok()) {
      std::string bytes = testing::read_file(entry.path());
      auto encoded = encode_npy(*t);
      ASSERT_TRUE(encoded.ok());
      EXPECT_EQ(std::string(encoded->begin(), encoded->end()), bytes) << entry.path();
    }
    ++count;
  }
  EXPECT_GT(count, 50);
}

}  // namespace
}  // namespace hubimg
