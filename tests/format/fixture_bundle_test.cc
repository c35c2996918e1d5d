// Reads the checkpoints of the real SavedModels in ../shared/fixtures/real and checks them
// against what each fixture's PROVENANCE.md (written from TensorFlow's view of the files) and
// expected/*.npy files say.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint.pb.h"
#include "format/coding.h"
#include "format/table.h"
#include "format/tensor_bundle.h"
#include "util/test_util.h"

namespace hubimg::format {
namespace {

namespace fs = std::filesystem;
using ::hubimg::testing::read_file;
using ::hubimg::testing::real_fixture;
using ::hubimg::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kObjectGraphKey[] = "_CHECKPOINTABLE_OBJECT_GRAPH";

struct Fixture {
  std::string name;  // relative to fixtures/real
  fs::path root;
  fs::path prefix() const { return root / "saved_model" / "variables" / "variables"; }
};

std::vector<Fixture> all_fixtures() {
  std::vector<Fixture> fixtures;
  const fs::path base = real_fixture("");
  for (const fs::path& dir : {base, base / "tf_testdata"}) {
    for (const auto& item : fs::directory_iterator(dir)) {
      if (fs::exists(item.path() / "saved_model" / "variables" / "variables.index")) {
        fixtures.push_back({fs::relative(item.path(), base).string(), item.path()});
      }
    }
  }
  std::sort(fixtures.begin(), fixtures.end(),
            [](const Fixture& a, const Fixture& b) { return a.name < b.name; });
  return fixtures;
}

struct ListedVariable {
  std::string key;
  std::string dtype;
  Dims shape;
};

// The "variable list" block of PROVENANCE.md: "<key> <dtype> [d0, d1, ...]" per line.
std::vector<ListedVariable> listed_variables(const fs::path& provenance) {
  std::istringstream in(read_file(provenance));
  std::vector<ListedVariable> result;
  std::string line;
  bool in_list = false;
  int fences = 0;
  const std::regex entry_line(R"(^(\S+) (\S+) \[([0-9, ]*)\]$)");
  while (std::getline(in, line)) {
    if (line.find("<summary>variable list") != std::string::npos) in_list = true;
    if (!in_list) continue;
    if (line.rfind("```", 0) == 0) {
      if (++fences == 2) break;
      continue;
    }
    std::smatch m;
    if (fences == 1 && std::regex_match(line, m, entry_line)) {
      ListedVariable v{m[1], m[2], {}};
      std::istringstream dims(m[3].str());
      std::string dim;
      while (std::getline(dims, dim, ',')) v.shape.push_back(std::stoll(dim));
      result.push_back(std::move(v));
    }
  }
  return result;
}

TEST(FixtureBundleTest, EveryFixtureMatchesItsProvenanceAndReadsCompletely) {
  HUBIMG_REQUIRE_SHARED();
  const auto fixtures = all_fixtures();
  EXPECT_GE(fixtures.size(), 15u);
  for (const Fixture& fixture : fixtures) {
    SCOPED_TRACE(fixture.name);
    auto reader = TensorBundleReader::open(fixture.prefix());
    ASSERT_TRUE(reader.ok()) << reader.status().to_string();
    const auto listed = listed_variables(fixture.root / "PROVENANCE.md");
    ASSERT_FALSE(listed.empty());
    ASSERT_EQ((*reader)->entries().size(), listed.size());
    for (size_t i = 0; i < listed.size(); ++i) {
      const BundleEntry& entry = (*reader)->entries()[i];
      SCOPED_TRACE(entry.key);
      EXPECT_EQ(entry.key, listed[i].key);
      EXPECT_EQ(dtype_name(entry.dtype), listed[i].dtype);
      EXPECT_EQ(entry.shape, listed[i].shape);
      auto tensor = (*reader)->read(entry.key);
      ASSERT_TRUE(tensor.ok()) << tensor.status().to_string();
      EXPECT_EQ(tensor->dtype(), entry.dtype);
      EXPECT_EQ(tensor->shape(), entry.shape);
    }
    // The object graph is a scalar string holding a TrackableObjectGraph.
    auto graph_tensor = (*reader)->read(kObjectGraphKey);
    ASSERT_TRUE(graph_tensor.ok()) << graph_tensor.status().to_string();
    tf::TrackableObjectGraph graph;
    ASSERT_TRUE(graph.ParseFromString(graph_tensor->strings().at(0)));
    EXPECT_GT(graph.nodes_size(), 1);
  }
}

TEST(FixtureBundleTest, RustRegressionWeight) {
  HUBIMG_REQUIRE_SHARED();
  auto reader = TensorBundleReader::open(
      real_fixture("tf_testdata/rust_regression_savedmodel/saved_model/variables/variables"));
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  auto w = (*reader)->read("w/.ATTRIBUTES/VARIABLE_VALUE");
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  ASSERT_EQ(w->shape(), Dims{1});
  EXPECT_EQ(w->values<float>()[0], 0.20429754f);
  auto iter = (*reader)->read("optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE");
  ASSERT_TRUE(iter.ok());
  EXPECT_EQ(iter->dtype(), DType::kInt64);
  EXPECT_GE(iter->values<int64_t>()[0], 0);
}

TEST(FixtureBundleTest, ServingHalfPlusTwoHasASnappyBlockAndItsValues) {
  HUBIMG_REQUIRE_SHARED();
  const fs::path prefix =
      real_fixture("tf_testdata/serving_half_plus_two_tf2_cpu/saved_model/variables/variables");
  // Independent of TableReader: find the first data block's trailer through the footer and
  // the index block's first entry (a full key, so shared == 0).
  const std::string index = read_file(bundle_index_path(prefix));
  std::string_view footer = std::string_view(index).substr(index.size() - 48);
  uint64_t meta_offset, meta_size, index_offset, index_size;
  ASSERT_TRUE(get_varint64(footer, meta_offset) && get_varint64(footer, meta_size) &&
              get_varint64(footer, index_offset) && get_varint64(footer, index_size));
  std::string_view index_block = std::string_view(index).substr(index_offset, index_size);
  uint32_t shared, non_shared, value_length;
  ASSERT_TRUE(get_varint32(index_block, shared) && get_varint32(index_block, non_shared) &&
              get_varint32(index_block, value_length));
  index_block.remove_prefix(non_shared);
  uint64_t data_offset, data_size;
  ASSERT_TRUE(get_varint64(index_block, data_offset) && get_varint64(index_block, data_size));
  EXPECT_EQ(index[data_offset + data_size], kSnappyCompression);

  auto reader = TensorBundleReader::open(prefix);
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  const std::pair<const char*, float> expected[] = {{"a", 0.5f}, {"b", 2.0f}, {"c", 3.0f}};
  for (const auto& [name, value] : expected) {
    auto t = (*reader)->read(std::string(name) + "/.ATTRIBUTES/VARIABLE_VALUE");
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    EXPECT_EQ(t->shape(), Dims{});
    EXPECT_EQ(t->values<float>()[0], value) << name;
  }
}

// A float32 little-endian C-order .npy file: magic, version, header length, dict, data.
struct Npy {
  Dims shape;
  std::vector<float> values;
};

Npy read_npy_float32(const fs::path& path) {
  const std::string bytes = read_file(path);
  Npy npy;
  EXPECT_EQ(bytes.substr(0, 6), "\x93NUMPY");
  const int major = bytes[6];
  size_t header_length, header_start;
  if (major == 1) {
    header_length = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    header_start = 10;
  } else {
    header_length = decode_fixed32(bytes.data() + 8);
    header_start = 12;
  }
  const std::string header = bytes.substr(header_start, header_length);
  EXPECT_THAT(header, HasSubstr("'descr': '<f4'"));
  EXPECT_THAT(header, HasSubstr("'fortran_order': False"));
  std::smatch m;
  const std::regex shape_re(R"('shape': \(([0-9, ]*)\))");
  EXPECT_TRUE(std::regex_search(header, m, shape_re)) << header;
  std::istringstream dims(m[1].str());
  std::string dim;
  int64_t count = 1;
  while (std::getline(dims, dim, ',')) {
    if (dim.find_first_not_of(' ') == std::string::npos) continue;
    npy.shape.push_back(std::stoll(dim));
    count *= npy.shape.back();
  }
  const size_t data_start = header_start + header_length;
  EXPECT_EQ(bytes.size() - data_start, static_cast<size_t>(count) * 4);
  npy.values.resize(static_cast<size_t>(count));
  std::memcpy(npy.values.data(), bytes.data() + data_start, npy.values.size() * 4);
  return npy;
}

TEST(FixtureBundleTest, TfNetWeightsEqualTheExpectedNpyFiles) {
  HUBIMG_REQUIRE_SHARED();
  const fs::path root = real_fixture("tf_testdata/tfnet_simple_model_from_auto_compile");
  auto reader = TensorBundleReader::open(root / "saved_model" / "variables" / "variables");
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  // PROVENANCE.md: kernel1 is dense_1's kernel (layer_with_weights-1), bias0 dense's bias.
  const std::pair<const char*, const char*> pairs[] = {
      {"expected/kernel1.npy", "layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE"},
      {"expected/bias0.npy", "layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE"}};
  for (const auto& [npy_file, key] : pairs) {
    SCOPED_TRACE(key);
    const Npy expected = read_npy_float32(root / npy_file);
    auto t = (*reader)->read(key);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    EXPECT_EQ(t->shape(), expected.shape);
    const auto got = t->values<float>();
    EXPECT_EQ(std::vector<float>(got.begin(), got.end()), expected.values);
  }
}

TEST(FixtureBundleTest, MobileNetFromTf115ReadsFromBothShards) {
  HUBIMG_REQUIRE_SHARED();
  const fs::path root = real_fixture("tm_mobilenetv2_035_tf115");
  auto reader = TensorBundleReader::open(root / "saved_model" / "variables" / "variables");
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  EXPECT_EQ((*reader)->num_shards(), 2);
  std::set<int> shards_used;
  int64_t float_elements = 0;
  for (const BundleEntry& entry : (*reader)->entries()) {
    shards_used.insert(entry.shard_id);
    auto t = (*reader)->read(entry.key);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    if (t->dtype() == DType::kFloat32) float_elements += t->num_elements();
  }
  EXPECT_EQ(shards_used, (std::set<int>{0, 1}));
  EXPECT_EQ((*reader)->entries().size(), 264u);  // PROVENANCE.md: 264 entries
  EXPECT_EQ(float_elements, 538508);             // and 538508 float32 elements
}

TEST(FixtureBundleTest, CorruptedCopyOfARealDataFileFailsOnlyTheDamagedTensor) {
  HUBIMG_REQUIRE_SHARED();
  const fs::path source =
      real_fixture("tf_testdata/rust_regression_savedmodel/saved_model/variables");
  TempDir dir;
  for (const auto& item : fs::directory_iterator(source)) {
    fs::copy_file(item.path(), dir.path() / item.path().filename());
    fs::permissions(dir.path() / item.path().filename(), fs::perms::owner_write,
                    fs::perm_options::add);
  }
  const fs::path prefix = dir.path() / "variables";
  const std::string key = "w/.ATTRIBUTES/VARIABLE_VALUE";
  int64_t offset = 0;
  {
    auto reader = TensorBundleReader::open(prefix);
    ASSERT_TRUE(reader.ok());
    offset = (*reader)->find(key)->offset;
  }
  const fs::path data_path = bundle_data_path(prefix, 0, 1);
  std::string data = read_file(data_path);
  data[static_cast<size_t>(offset) + 1] ^= 0x40;
  hubimg::testing::write_file(data_path, data);

  auto reader = TensorBundleReader::open(prefix);
  ASSERT_TRUE(reader.ok());
  auto w = (*reader)->read(key);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(w.status().message(), HasSubstr(std::string("'w/.ATTRIBUTES/VARIABLE_VALUE'")));
  EXPECT_THAT(w.status().message(), HasSubstr(data_path.string()));
  EXPECT_THAT(w.status().message(), HasSubstr("CRC mismatch"));
  EXPECT_TRUE((*reader)->read("b/.ATTRIBUTES/VARIABLE_VALUE").ok());
  EXPECT_TRUE((*reader)->read(kObjectGraphKey).ok());
}

TEST(FixtureBundleTest, RewritingAFixtureWithTheWriterPreservesEveryTensor) {
  HUBIMG_REQUIRE_SHARED();
  const fs::path root = real_fixture("tf_testdata/tfnet_simple_model_from_auto_compile");
  auto original = TensorBundleReader::open(root / "saved_model" / "variables" / "variables");
  ASSERT_TRUE(original.ok());
  TempDir dir;
  TensorBundleWriter writer(dir.path() / "variables");
  for (const BundleEntry& entry : (*original)->entries()) {
    ASSERT_TRUE(writer.add(entry.key, *(*original)->read(entry.key)).ok());
  }
  ASSERT_TRUE(writer.finish().ok());
  auto copy = TensorBundleReader::open(dir.path() / "variables");
  ASSERT_TRUE(copy.ok()) << copy.status().to_string();
  ASSERT_EQ((*copy)->entries().size(), (*original)->entries().size());
  for (const BundleEntry& entry : (*original)->entries()) {
    SCOPED_TRACE(entry.key);
    const Tensor a = *(*original)->read(entry.key);
    auto b = (*copy)->read(entry.key);
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    EXPECT_EQ(a.shape(), b->shape());
    if (a.dtype() == DType::kString) {
      EXPECT_EQ(a.strings(), b->strings());
    } else {
      ASSERT_EQ(a.byte_size(), b->byte_size());
      EXPECT_EQ(std::memcmp(a.raw_data(), b->raw_data(), a.byte_size()), 0);
    }
    // The same CRC as TensorFlow wrote: same bytes, same checksum rule.
    EXPECT_EQ((*copy)->find(entry.key)->masked_crc32c, entry.masked_crc32c);
  }
}

}  // namespace
}  // namespace hubimg::format
