// Hostile models and inputs through the CLI: names a model controls never lead outside the
// output folder, output rows are checked before they are copied, special files never block,
// archives stay within their budgets and leave nothing behind, and nothing aborts.
#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "format/saved_model_writer.h"
#include "hubimg/image.h"
#include "hubimg/npy.h"
#include "ops/op_registry.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using ::hubimg::testing::cli_path;
using ::hubimg::testing::read_file;
using ::hubimg::testing::run_command;
using ::hubimg::testing::shell_quote;
using ::hubimg::testing::TempDir;
using ::hubimg::testing::write_file;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// Every command runs under `timeout`, so a hang fails the test (exit 124) instead of the run.
testing::CommandResult hubimg_cli(const std::string& args, const std::string& env = "") {
  return run_command(env + " timeout 60 " + shell_quote(cli_path()) + " " + args);
}

// --- TF1 text-format SavedModels ---------------------------------------------------------

std::string type_attr(const std::string& key, const std::string& type = "DT_FLOAT") {
  return "attr { key: \"" + key + "\" value { type: " + type + " } }";
}

std::string node(const std::string& name, const std::string& op,
                 const std::vector<std::string>& inputs, const std::string& attrs = "") {
  std::string n = "node { name: \"" + name + "\" op: \"" + op + "\"";
  for (const auto& i : inputs) n += " input: \"" + i + "\"";
  return n + " " + attrs + " }\n";
}

std::string int_const(const std::string& name, const std::vector<int64_t>& values,
                      bool scalar = false) {
  std::string t = "tensor { dtype: DT_INT32 tensor_shape { ";
  if (!scalar) t += "dim { size: " + std::to_string(values.size()) + " } ";
  t += "} ";
  for (auto v : values) t += "int_val: " + std::to_string(v) + " ";
  t += "} ";
  return node(name, "Const", {},
              type_attr("dtype", "DT_INT32") + " attr { key: \"value\" value { " + t + "} }");
}

std::string float_const(const std::string& name, const std::vector<int64_t>& shape, float value) {
  std::string t = "tensor { dtype: DT_FLOAT tensor_shape { ";
  for (auto d : shape) t += "dim { size: " + std::to_string(d) + " } ";
  t += "} float_val: " + std::to_string(value) + " } ";
  return node(name, "Const", {},
              type_attr("dtype") + " attr { key: \"value\" value { " + t + "} }");
}

// Escapes bytes for a text-format string literal.
std::string text_literal(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\%03o", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// A TF1 SavedModel: placeholder "x" (float [-1, 28, 28, 1] unless `input_dims` says otherwise)
// plus `nodes`, serving_default outputs {key: tensor}.
void write_tf1_model(const fs::path& dir, const std::string& nodes,
                     const std::vector<std::pair<std::string, std::string>>& outputs,
                     const std::string& input_dims =
                         "dim { size: -1 } dim { size: 28 } "
                         "dim { size: 28 } dim { size: 1 }",
                     const std::string& signature_key = "serving_default") {
  std::string t = "meta_graphs { meta_info_def { tags: \"serve\" } graph_def {\n";
  t += node("x", "Placeholder", {}, type_attr("dtype"));
  t += nodes;
  t += "}\nsignature_def { key: \"" + text_literal(signature_key) +
       "\" value {\n  inputs { key: \"x\" value { name: \"x:0\" dtype: DT_FLOAT tensor_shape { " +
       input_dims + "} } }\n";
  for (const auto& [key, tensor] : outputs) {
    t += "  outputs { key: \"" + text_literal(key) + "\" value { name: \"" + tensor +
         "\" dtype: DT_FLOAT } }\n";
  }
  t += "} } }\n";
  fs::create_directories(dir);
  write_file(dir / "saved_model.pbtxt", t);
}

void write_input(const fs::path& path, int64_t batch = 1) {
  Tensor x(DType::kFloat32, {batch, 28, 28, 1});
  float* p = x.mutable_data<float>();
  for (int64_t i = 0; i < x.num_elements(); ++i) p[i] = static_cast<float>(i % 7) / 7.0f;
  ASSERT_TRUE(write_npy(path, x).ok());
}

void write_image(const fs::path& path, float value = 0.5f) {
  Tensor image(DType::kFloat32, {28, 28, 3});
  float* p = image.mutable_data<float>();
  for (int64_t i = 0; i < image.num_elements(); ++i) p[i] = value;
  Status s = write_png(path, image);
  ASSERT_TRUE(s.ok()) << s.to_string();
}

// Every regular file below `dir`, relative to it.
std::set<std::string> files_below(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_directory()) out.insert(fs::relative(e.path(), dir).string());
  }
  return out;
}

// --- D1: names from the model never leave the output folder --------------------------------

TEST(HostileOutputNames, SignatureOutputKeysAreEscapedInsideTheOutputFolder) {
  TempDir tmp;
  const fs::path model = tmp.path() / "model";
  const fs::path absolute_target = tmp.path() / "abs_escape";
  const std::vector<std::pair<std::string, std::string>> keys = {
      {"dense_3", "y:0"},
      {"probs", "y:0"},
      {"model/dense/kernel:0", "y:0"},
      {"../../../../../../../../" + (tmp.path() / "rel_escape").string().substr(1), "y:0"},
      {absolute_target.string(), "y:0"},
      {"..", "y:0"},
      {".", "y:0"},
      {".hidden", "y:0"},
      {std::string("nul\0byte", 8), "y:0"},
      {"back\\slash", "y:0"},
      {"new\nline", "y:0"},
      {std::string(300, 'k'), "y:0"},
      {std::string(299, 'k') + "/", "y:0"},
  };
  write_tf1_model(model, node("y", "Identity", {"x"}, type_attr("T")), keys);
  write_input(tmp.path() / "x.npy");
  const fs::path out = tmp.path() / "a" / "b" / "out";
  auto r = hubimg_cli("run " + shell_quote(model) + " --signature serving_default --input x=" +
                      shell_quote(tmp.path() / "x.npy") + " --output " + shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // Nothing outside the output folder: only model/, x.npy and a/b/out/ exist.
  for (const auto& f : files_below(tmp.path())) {
    EXPECT_TRUE(f.starts_with("model/") || f == "x.npy" || f.starts_with("a/b/out/")) << f;
  }
  EXPECT_FALSE(fs::exists(absolute_target.string() + ".npy"));
  // One file per key, all directly in the folder; legitimate keys keep readable names.
  auto written = files_below(out);
  EXPECT_EQ(written.size(), keys.size()) << r.out;
  for (const auto& f : written) {
    EXPECT_EQ(f.find('/'), std::string::npos) << f;
    EXPECT_LE(f.size(), 255u) << f;
  }
  EXPECT_TRUE(written.count("dense_3.npy"));
  EXPECT_TRUE(written.count("probs.npy"));
  EXPECT_TRUE(written.count("model%2Fdense%2Fkernel%3A0.npy"));
  EXPECT_TRUE(written.count("%2E..npy"));
  EXPECT_TRUE(written.count("%2E.npy"));
  EXPECT_TRUE(written.count("%2Ehidden.npy"));
  EXPECT_TRUE(written.count("nul%00byte.npy"));
  auto probs = read_npy(out / "probs.npy");
  ASSERT_TRUE(probs.ok()) << probs.status().to_string();
  EXPECT_EQ(probs->shape(), (Dims{1, 28, 28, 1}));
  // The printed mapping names the file each key went to.
  EXPECT_THAT(r.out, HasSubstr("model%2Fdense%2Fkernel%3A0.npy"));
}

TEST(HostileOutputNames, ASymlinkInTheOutputFolderIsNotFollowedOutside) {
  TempDir tmp;
  const fs::path model = tmp.path() / "model";
  write_tf1_model(model, node("y", "Identity", {"x"}, type_attr("T")), {{"probs", "y:0"}});
  write_input(tmp.path() / "x.npy");
  const fs::path out = tmp.path() / "out";
  fs::create_directories(out);
  fs::create_symlink(tmp.path() / "elsewhere.npy", out / "probs.npy");
  auto r = hubimg_cli("run " + shell_quote(model) + " --signature serving_default --input x=" +
                      shell_quote(tmp.path() / "x.npy") + " --output " + shell_quote(out));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("outside the output folder"));
  EXPECT_FALSE(fs::exists(tmp.path() / "elsewhere.npy"));
}

// A TF2 model (hubimg's own writer): y = w * x, the variable named "model/dense/kernel:0", the
// signature's input and output keys climbing out of the folder.
Status write_hostile_keys_model(const fs::path& dir) {
  using format::FunctionBuilder;
  using format::TensorSpec;
  format::SavedModelWriter writer(ops::find_op_def);
  HUBIMG_ASSIGN_OR_RETURN(
      format::VariableHandle w,
      writer.add_variable({"w"}, "model/dense/kernel:0", Tensor::scalar(2.0f), true));
  FunctionBuilder f(writer.unique_function_name("__call__"), writer.op_defs());
  const auto x = f.add_input("x", DType::kFloat32, PartialShape::known({-1}));
  const auto w_value =
      f.read_variable(writer.add_resource_input(f, "mul_readvariableop_resource", w), "mul");
  f.add_output(f.add("Mul", {w_value, x}, {}, "mul"));
  HUBIMG_ASSIGN_OR_RETURN(format::FunctionSignature call, writer.add_function(std::move(f)));
  TensorSpec in{"x", DType::kFloat32, PartialShape::known({-1})};
  TensorSpec out{"output_0", DType::kFloat32, PartialShape::known({-1})};
  HUBIMG_RETURN_IF_ERROR(writer.set_call({{call.name, in, std::nullopt, {w}, out}}));
  HUBIMG_RETURN_IF_ERROR(writer.add_signature({"serving_default",
                                               call.name,
                                               {{"../../in_escape", in}},
                                               {{"../../grad_escape", out}},
                                               {w}}));
  return writer.write(dir);
}

TEST(HostileOutputNames, GradWritesModelNamedFilesInsideTheOutputFolder) {
  TempDir tmp;
  const fs::path model = tmp.path() / "model";
  Status written = write_hostile_keys_model(model);
  ASSERT_TRUE(written.ok()) << written.to_string();
  Tensor x(DType::kFloat32, {3});
  for (int i = 0; i < 3; ++i) x.mutable_data<float>()[i] = static_cast<float>(i + 1);
  ASSERT_TRUE(write_npy(tmp.path() / "x.npy", x).ok());
  const fs::path out = tmp.path() / "a" / "out";
  auto r = hubimg_cli("grad " + shell_quote(model) + " --signature serving_default --input " +
                      "'../../in_escape'=" + shell_quote(tmp.path() / "x.npy") +
                      " --cotangent '../../grad_escape'=" + shell_quote(tmp.path() / "x.npy") +
                      " --output " + shell_quote(out));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const auto& f : files_below(tmp.path())) {
    EXPECT_TRUE(f.starts_with("model/") || f == "x.npy" || f.starts_with("a/out/")) << f;
  }
  EXPECT_TRUE(fs::exists(out / "%2E.%2F..%2Fgrad_escape.npy")) << r.out;
  EXPECT_TRUE(fs::exists(out / "input_gradients" / "%2E.%2F..%2Fin_escape.npy")) << r.out;
  const std::string index = read_file(out / "gradients.json");
  EXPECT_THAT(index, HasSubstr("\"variable\": \"model/dense/kernel:0\""));
  EXPECT_THAT(index, HasSubstr("\"file\": \"gradients/000_model_dense_kernel_0.npy\""));
  auto gradient = read_npy(out / "gradients" / "000_model_dense_kernel_0.npy");
  ASSERT_TRUE(gradient.ok()) << gradient.status().to_string();
  EXPECT_FLOAT_EQ(gradient->data<float>()[0], 1.0f + 4.0f + 9.0f);  // sum(x * x)
}

// --- D2, D3: output rows are checked before they are copied --------------------------------

// Output [n, 4096 / n]: the row length changes with the batch size.
std::string growing_rows_nodes() {
  return node("shape", "Shape", {"x"}, type_attr("T") + " " + type_attr("out_type", "DT_INT32")) +
         int_const("b0", {0}) + int_const("b1", {1}) +
         node("n", "StridedSlice", {"shape", "b0", "b1", "b1"},
              type_attr("T", "DT_INT32") + " " + type_attr("Index", "DT_INT32") +
                  " attr { key: \"shrink_axis_mask\" value { i: 1 } }") +
         int_const("m1", {-1}, true) +
         node("shp", "Pack", {"n", "m1"},
              type_attr("T", "DT_INT32") + " attr { key: \"N\" value { i: 2 } }") +
         float_const("c", {4096}, 1.0f) +
         node("y", "Reshape", {"c", "shp"}, type_attr("T") + " " + type_attr("Tshape", "DT_INT32"));
}

class HostileRows : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) write_image(tmp_.path() / ("i" + std::to_string(i) + ".png"));
  }
  std::string images() const {
    return shell_quote(tmp_.path() / "i0.png") + " " + shell_quote(tmp_.path() / "i1.png") + " " +
           shell_quote(tmp_.path() / "i2.png");
  }
  TempDir tmp_;
};

TEST_F(HostileRows, RowsThatChangeShapeBetweenBatchesAreAnErrorNamingTheOutput) {
  const fs::path model = tmp_.path() / "grow";
  write_tf1_model(model, growing_rows_nodes(), {{"y", "y:0"}});
  for (const std::string command : {"embed", "classify"}) {
    std::string args = command + " " + shell_quote(model) + " " + images() + " --batch 2";
    if (command == "embed") args += " --output " + shell_quote(tmp_.path() / "g.npy");
    auto r = hubimg_cli(args);
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.out;
    EXPECT_THAT(r.out, HasSubstr("output 'y'")) << command;
    EXPECT_THAT(r.out, HasSubstr("same shape in every batch")) << command;
  }
  // Batches of equal size give rows of one shape: that succeeds.
  auto whole =
      hubimg_cli("embed " + shell_quote(model) + " " + shell_quote(tmp_.path() / "i0.png") + " " +
                 shell_quote(tmp_.path() / "i1.png") + " --batch 2 --output " +
                 shell_quote(tmp_.path() / "w.npy"));
  EXPECT_EQ(whole.exit_code, 0) << whole.out;
  auto rows = read_npy(tmp_.path() / "w.npy");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->shape(), (Dims{2, 2048}));
}

TEST_F(HostileRows, AnOutputWithTheWrongNumberOfRowsIsAnError) {
  const fs::path model = tmp_.path() / "fixed";
  write_tf1_model(model, float_const("y", {1, 10}, 0.5f), {{"y", "y:0"}});
  auto r = hubimg_cli("embed " + shell_quote(model) + " " + images() + " --batch 2 --output " +
                      shell_quote(tmp_.path() / "f.npy"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("output 'y' is float32[1, 10], not float32 rows for the 2 images"));
}

TEST_F(HostileRows, EmptyRowsAreAnErrorForEmbedAndClassify) {
  const fs::path model = tmp_.path() / "zero";
  write_tf1_model(
      model,
      int_const("s", {-1, 784}) +
          node("f", "Reshape", {"x", "s"}, type_attr("T") + " " + type_attr("Tshape", "DT_INT32")) +
          int_const("b", {0, 0}) + int_const("z", {-1, 0}) +
          node("y", "Slice", {"f", "b", "z"},
               type_attr("T") + " " + type_attr("Index", "DT_INT32")),
      {{"y", "y:0"}});
  for (const std::string command : {"classify", "embed"}) {
    std::string args = command + " " + shell_quote(model) + " " + images();
    if (command == "embed") args += " --output " + shell_quote(tmp_.path() / "z.npy");
    auto r = hubimg_cli(args);
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.out;
    EXPECT_THAT(r.out, HasSubstr("output 'y' is float32[3, 0]")) << command;
    EXPECT_THAT(r.out, HasSubstr("rows are empty")) << command;
  }
}

// --- unreadable images in a folder are skipped and counted ---------------------------------

TEST(HostileImages, ACorruptImageInAFolderIsSkippedWithAWarning) {
  TempDir tmp;
  const fs::path model = tmp.path() / "model";
  write_tf1_model(
      model,
      int_const("s", {-1, 784}) +
          node("y", "Reshape", {"x", "s"}, type_attr("T") + " " + type_attr("Tshape", "DT_INT32")),
      {{"y", "y:0"}});
  const fs::path dir = tmp.path() / "images";
  fs::create_directories(dir);
  write_image(dir / "a.png", 0.25f);
  write_file(dir / "b.png", "not a png at all");
  write_image(dir / "c.png", 0.75f);
  ASSERT_EQ(::mkfifo((dir / "d.png").c_str(), 0600), 0);  // not a regular file: left out
  fs::create_symlink("loop.jpg", dir / "loop.jpg");       // a symlink loop is left out
  const fs::path features = tmp.path() / "f.npy";
  auto r = hubimg_cli("embed " + shell_quote(model) + " " + shell_quote(dir) +
                      " --batch 2 --output " + shell_quote(features));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("warning: skipping " + (dir / "b.png").string()));
  EXPECT_THAT(r.out, HasSubstr("1 of 3 images skipped"));
  auto rows = read_npy(features);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->shape(), (Dims{2, 784}));
  EXPECT_NEAR(rows->data<float>()[0], 0.25f, 0.01f);
  EXPECT_NEAR(rows->data<float>()[784], 0.75f, 0.01f);
  EXPECT_EQ(read_file(features.string() + ".txt"),
            (dir / "a.png").string() + "\n" + (dir / "c.png").string() + "\n");

  auto strict = hubimg_cli("embed " + shell_quote(model) + " " + shell_quote(dir) +
                           " --strict --output " + shell_quote(features));
  EXPECT_EQ(strict.exit_code, 1) << strict.out;
  EXPECT_THAT(strict.out, HasSubstr((dir / "b.png").string()));

  auto none = hubimg_cli("classify " + shell_quote(model) + " " + shell_quote(dir / "b.png"));
  EXPECT_EQ(none.exit_code, 1) << none.out;
  EXPECT_THAT(none.out, HasSubstr("none of the 1 images could be read"));
}

TEST(HostileImages, NonUtf8NamesAndStringsGiveValidJson) {
  TempDir tmp;
  const fs::path model = tmp.path() / "model";
  write_tf1_model(
      model,
      int_const("s", {-1, 784}) +
          node("y", "Reshape", {"x", "s"}, type_attr("T") + " " + type_attr("Tshape", "DT_INT32")),
      {{"y", "y:0"}},
      "dim { size: -1 } dim { size: 28 } dim { size: 28 } "
      "dim { size: 1 }",
      "caf\xe9");
  const fs::path image = tmp.path() / "caf\xe9.png";
  write_image(image);
  write_file(tmp.path() / "labels.txt", "caf\xe9\n");
  auto classify =
      hubimg_cli("classify " + shell_quote(model) + " --signature 'caf\xe9' " + shell_quote(image) +
                 " --json --labels " + shell_quote(tmp.path() / "labels.txt"));
  ASSERT_EQ(classify.exit_code, 0) << classify.out;
  EXPECT_THAT(classify.out, HasSubstr("caf\xef\xbf\xbd.png"));  // U+FFFD for the bad byte
  auto info = hubimg_cli("info " + shell_quote(model) + " --json");
  ASSERT_EQ(info.exit_code, 0) << info.out;
  EXPECT_THAT(info.out, HasSubstr("\"caf\xef\xbf\xbd\""));
}

// --- D12: special files never block ----------------------------------------------------------

TEST(HostileSpecialFiles, FifosAndDevicesAreRefusedWithoutBlocking) {
  TempDir tmp;
  const fs::path model = tmp.path() / "model";
  write_tf1_model(model, node("y", "Identity", {"x"}, type_attr("T")), {{"y", "y:0"}});
  write_image(tmp.path() / "ok.png");
  const fs::path fifo = tmp.path() / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  // .npy input, --arg .npy, image, labels file, archive, saved_model.pbtxt.
  auto npy = hubimg_cli("run " + shell_quote(model) + " --signature serving_default --input x=" +
                        shell_quote(fifo) + " --output " + shell_quote(tmp.path() / "out"));
  EXPECT_EQ(npy.exit_code, 1) << npy.out;
  EXPECT_THAT(npy.out, HasSubstr("FIFO"));
  auto dev = hubimg_cli("run " + shell_quote(model) +
                        " --signature serving_default --input x=/dev/zero --output " +
                        shell_quote(tmp.path() / "out"));
  EXPECT_EQ(dev.exit_code, 1) << dev.out;
  EXPECT_THAT(dev.out, HasSubstr("character device"));
  auto image = hubimg_cli("embed " + shell_quote(model) + " " + shell_quote(fifo) + " --output " +
                          shell_quote(tmp.path() / "e.npy"));
  EXPECT_EQ(image.exit_code, 1) << image.out;
  EXPECT_THAT(image.out, HasSubstr("FIFO"));
  auto labels = hubimg_cli("classify " + shell_quote(model) + " " +
                           shell_quote(tmp.path() / "ok.png") + " --labels " + shell_quote(fifo));
  EXPECT_EQ(labels.exit_code, 1) << labels.out;
  EXPECT_THAT(labels.out, HasSubstr("FIFO"));
  const fs::path fifo_model = tmp.path() / "fifo_model";
  fs::create_directories(fifo_model);
  ASSERT_EQ(::mkfifo((fifo_model / "saved_model.pbtxt").c_str(), 0600), 0);
  auto pbtxt = hubimg_cli("info " + shell_quote(fifo_model));
  EXPECT_EQ(pbtxt.exit_code, 1) << pbtxt.out;
  EXPECT_THAT(pbtxt.out, HasSubstr("FIFO"));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 30.0);
}

TEST(HostileSpecialFiles, AVariablesIndexFifoIsRefusedWithoutBlocking) {
  HUBIMG_REQUIRE_SHARED();
  TempDir tmp;
  const fs::path model = hubimg::testing::copy_fixture_model("mnist_cnn_tf231", tmp);
  fs::remove(model / "variables" / "variables.index");
  ASSERT_EQ(::mkfifo((model / "variables" / "variables.index").c_str(), 0600), 0);
  auto r = hubimg_cli("info " + shell_quote(model));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("variables.index: not a regular file (a FIFO)"));
}

// --- minor CLI items -----------------------------------------------------------------------

TEST(HostileCli, DimensionsBelowMinusOneAreRejected) {
  TempDir tmp;
  const fs::path model = tmp.path() / "model";
  write_tf1_model(model, node("y", "Identity", {"x"}, type_attr("T")), {{"y", "y:0"}},
                  "dim { size: -5 } dim { size: 28 } dim { size: 28 } dim { size: 1 }");
  auto r = hubimg_cli("info " + shell_quote(model));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("signature 'serving_default' input 'x'"));
  EXPECT_THAT(r.out, HasSubstr("-5 (below -1"));
  write_tf1_model(model, node("y", "Identity", {"x"}, type_attr("T")), {{"y", "y:0"}},
                  "dim { size: -4611686018427387904 }");
  auto huge = hubimg_cli("info " + shell_quote(model));
  EXPECT_EQ(huge.exit_code, 1) << huge.out;
}

TEST(HostileCli, AnInputGivenTwiceIsAnError) {
  TempDir tmp;
  const fs::path model = tmp.path() / "model";
  write_tf1_model(model, node("y", "Identity", {"x"}, type_attr("T")), {{"y", "y:0"}});
  write_input(tmp.path() / "a.npy");
  write_input(tmp.path() / "b.npy", 2);
  auto r = hubimg_cli("run " + shell_quote(model) + " --signature serving_default --input x=" +
                      shell_quote(tmp.path() / "a.npy") +
                      " --input x=" + shell_quote(tmp.path() / "b.npy") + " --output " +
                      shell_quote(tmp.path() / "out"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--input x given twice"));
}

TEST(HostileCli, AnUnknownCommandIsNamed) {
  auto r = hubimg_cli("frobnicate --json");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("unknown command 'frobnicate'"));
  EXPECT_THAT(r.out, HasSubstr("classify"));
}

// --- D4, D11: archives ---------------------------------------------------------------------

struct TarEntry {
  std::string name;
  std::string content;  // for files
  bool directory = false;
  uint64_t zeros = 0;  // extra zero bytes after `content`
};

void write_tar_gz(const fs::path& path, const std::vector<TarEntry>& entries) {
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  std::vector<char> zeros(1 << 20, 0);
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_filetype(entry, e.directory ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(entry, e.directory ? 0755 : 0644);
    archive_entry_set_size(entry,
                           e.directory ? 0 : static_cast<la_int64_t>(e.content.size() + e.zeros));
    archive_write_header(a, entry);
    if (!e.directory) {
      archive_write_data(a, e.content.data(), e.content.size());
      for (uint64_t left = e.zeros; left > 0;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(left, zeros.size()));
        archive_write_data(a, zeros.data(), n);
        left -= n;
      }
    }
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
}

std::string tiny_model_text() {
  TempDir tmp;
  write_tf1_model(tmp.path(), node("y", "Identity", {"x"}, type_attr("T")), {{"y", "y:0"}});
  return read_file(tmp.path() / "saved_model.pbtxt");
}

class HostileArchives : public ::testing::Test {
 protected:
  // Runs `hubimg ARGS` with TMPDIR set to a fresh folder that must be empty afterwards.
  testing::CommandResult run_clean(const std::string& args, const std::string& env = "") {
    auto r = hubimg_cli(args, "TMPDIR=" + shell_quote(tmpdir()) + " " + env);
    EXPECT_TRUE(fs::is_empty(tmpdir()))
        << "left behind in TMPDIR: " << *files_below(tmpdir()).begin();
    return r;
  }
  fs::path tmpdir() {
    fs::create_directories(tmp_.path() / "tmpdir");
    return tmp_.path() / "tmpdir";
  }
  TempDir tmp_;
};

TEST_F(HostileArchives, AWellFormedArchiveShowsItsOwnPathAndCleansUp) {
  const fs::path tgz = tmp_.path() / "model.tar.gz";
  write_tar_gz(tgz, {{"m", "", true}, {"m/saved_model.pbtxt", tiny_model_text()}});
  auto r = run_clean("info " + shell_quote(tgz));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("SavedModel " + tgz.string() + "\n"));
}

TEST_F(HostileArchives, ConflictingEntriesAreAnErrorAndCleanUp) {
  const fs::path tgz = tmp_.path() / "conflict.tar.gz";
  write_tar_gz(tgz, {{"x/a", "1"}, {"x/a/saved_model.pbtxt", tiny_model_text()}});
  auto r = run_clean("info " + shell_quote(tgz));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("conflicting archive entries"));
  const fs::path twice = tmp_.path() / "twice.tar.gz";
  write_tar_gz(twice, {{"m/saved_model.pbtxt", tiny_model_text()},
                       {"m/saved_model.pbtxt", tiny_model_text()}});
  auto r2 = run_clean("info " + shell_quote(twice));
  EXPECT_EQ(r2.exit_code, 1) << r2.out;
  EXPECT_THAT(r2.out, HasSubstr("occurs twice"));
}

TEST_F(HostileArchives, TooDeepOrTooLongNamesAreErrors) {
  std::string deep;
  for (int i = 0; i < 3000; ++i) deep += "d/";
  const fs::path tgz = tmp_.path() / "deep.tar.gz";
  write_tar_gz(tgz, {{deep + "saved_model.pbtxt", tiny_model_text()}});
  auto r = run_clean("info " + shell_quote(tgz));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("nested deeper than 64 folders"));
  const fs::path long_name = tmp_.path() / "long.tar.gz";
  write_tar_gz(long_name, {{std::string(300, 'n') + "/saved_model.pbtxt", tiny_model_text()}});
  auto r2 = run_clean("info " + shell_quote(long_name));
  EXPECT_EQ(r2.exit_code, 1) << r2.out;
  EXPECT_THAT(r2.out, HasSubstr("cannot extract"));
}

TEST_F(HostileArchives, SizeAndEntryBudgetsAreEnforced) {
  const fs::path big = tmp_.path() / "big.tar.gz";
  write_tar_gz(big, {{"m/saved_model.pbtxt", tiny_model_text()}, {"m/zeros", "", false, 3 << 20}});
  auto over = run_clean("info " + shell_quote(big), "HUBIMG_ARCHIVE_MAX_BYTES=2M");
  EXPECT_EQ(over.exit_code, 1) << over.out;
  EXPECT_THAT(over.out, HasSubstr("expands past the limit of 2097152 bytes"));
  auto under = run_clean("info " + shell_quote(big), "HUBIMG_ARCHIVE_MAX_BYTES=4M");
  EXPECT_EQ(under.exit_code, 0) << under.out;

  std::vector<TarEntry> many = {{"m/saved_model.pbtxt", tiny_model_text()}};
  for (int i = 0; i < 50; ++i) many.push_back({"m/empty" + std::to_string(i), ""});
  const fs::path many_path = tmp_.path() / "many.tar.gz";
  write_tar_gz(many_path, many);
  auto too_many = run_clean("info " + shell_quote(many_path), "HUBIMG_ARCHIVE_MAX_ENTRIES=20");
  EXPECT_EQ(too_many.exit_code, 1) << too_many.out;
  EXPECT_THAT(too_many.out, HasSubstr("more than 20 entries"));
  auto bad_setting = run_clean("info " + shell_quote(many_path), "HUBIMG_ARCHIVE_MAX_ENTRIES=lots");
  EXPECT_EQ(bad_setting.exit_code, 1) << bad_setting.out;
  EXPECT_THAT(bad_setting.out, HasSubstr("HUBIMG_ARCHIVE_MAX_ENTRIES='lots'"));
}

TEST_F(HostileArchives, AMissingTmpdirIsAClearError) {
  const fs::path tgz = tmp_.path() / "model.tar.gz";
  write_tar_gz(tgz, {{"m/saved_model.pbtxt", tiny_model_text()}});
  auto r = hubimg_cli("info " + shell_quote(tgz), "TMPDIR=" + shell_quote(tmp_.path() / "absent"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("TMPDIR"));
  write_file(tmp_.path() / "file", "x");
  auto r2 = hubimg_cli("info " + shell_quote(tgz), "TMPDIR=" + shell_quote(tmp_.path() / "file"));
  EXPECT_EQ(r2.exit_code, 1) << r2.out;
  EXPECT_THAT(r2.out, HasSubstr("TMPDIR"));
}

// A signal in the middle of extraction: the temporary folder goes, the process still ends by
// that signal.
TEST_F(HostileArchives, SigtermAndSigintDuringExtractionRemoveTheTemporaryFolder) {
  const fs::path tgz = tmp_.path() / "slow.tar.gz";
  write_tar_gz(tgz, {{"m/saved_model.pbtxt", tiny_model_text()},
                     {"m/zeros", "", false, uint64_t{512} << 20}});
  for (int signal_number : {SIGTERM, SIGINT}) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::setenv("TMPDIR", tmpdir().c_str(), 1);
      ::setenv("HUBIMG_ARCHIVE_MAX_BYTES", "2G", 1);
      ::execl(cli_path().c_str(), "hubimg", "info", tgz.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    // Wait until extraction has begun (the zeros file exists), then interrupt it.
    bool started = false;
    for (int i = 0; i < 20000 && !started; ++i) {
      for (const auto& e : fs::recursive_directory_iterator(tmpdir())) {
        started = started || e.path().filename() == "zeros";
      }
      if (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(started);
    ::kill(pid, signal_number);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "exited with " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), signal_number);
    EXPECT_TRUE(fs::is_empty(tmpdir())) << strsignal(signal_number);
  }
}

}  // namespace
}  // namespace hubimg
