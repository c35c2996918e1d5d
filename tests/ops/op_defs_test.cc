// TensorFlow's OpDefs in the op table (OpSpec::op_def): every TensorFlow op of the table has
// one, the entries' output args are the OpDefs', and the OpDefs agree with the ones TensorFlow
// itself wrote into the fixtures' meta_info_def.stripped_op_list.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "graph.pb.h"
#include "ops/op_registry.h"
#include "saved_model.pb.h"
#include "util/test_util.h"

namespace hubimg::ops {
namespace {

using ::testing::ElementsAre;

bool is_hubimg_op(const std::string& name) {
  return name.starts_with("_Hubimg");
}

TEST(OpDefs, EveryTensorFlowOpOfTheTableHasOne) {
  const OpRegistry& r = OpRegistry::global();
  int with = 0;
  for (const std::string& name : r.names()) {
    const OpSpec* spec = r.find(name);
    if (is_hubimg_op(name)) {
      EXPECT_EQ(spec->op_def, nullptr) << name << ": TensorFlow has no such op";
      continue;
    }
    ASSERT_NE(spec->op_def, nullptr) << name;
    EXPECT_EQ(spec->op_def->name(), name);
    EXPECT_EQ(r.find_op_def(name), spec->op_def.get());
    ++with;
  }
  std::cout << "[ OpDefs   ] " << with << " of " << r.names().size() << " table ops and "
            << r.graph_op_names().size() << " graph-level ops have TensorFlow's OpDef\n";
}

// Step "one op table": the outputs the executor sizes and names come from the OpDef, so the two
// cannot drift apart.
TEST(OpDefs, EntryOutputsAreTheOpDefsOutputArgs) {
  const OpRegistry& r = OpRegistry::global();
  for (const std::string& name : r.names()) {
    const OpSpec* spec = r.find(name);
    if (spec->op_def == nullptr) continue;
    const std::vector<OutputArg> want = output_args_of(*spec->op_def);
    ASSERT_EQ(spec->outputs.size(), want.size()) << name;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(spec->outputs[i].name, want[i].name) << name << " output " << i;
      EXPECT_EQ(spec->outputs[i].list_size_attr, want[i].list_size_attr) << name << " output " << i;
    }
  }
  // List outputs take their size attribute from the OpDef's number_attr / type_list_attr.
  auto sizes = [&](const char* op) {
    std::vector<std::string> out;
    for (const auto& a : r.find(op)->outputs) out.push_back(a.name + "[" + a.list_size_attr + "]");
    return out;
  };
  EXPECT_THAT(sizes("Split"), ElementsAre("output[num_split]"));
  EXPECT_THAT(sizes("IdentityN"), ElementsAre("output[T]"));
  EXPECT_THAT(sizes("If"), ElementsAre("output[Tout]"));
  EXPECT_THAT(sizes("FusedBatchNormV3"),
              ElementsAre("y[]", "batch_mean[]", "batch_variance[]", "reserve_space_1[]",
                          "reserve_space_2[]", "reserve_space_3[]"));
  EXPECT_THAT(sizes("AssignVariableOp"), ElementsAre());
}

constexpr char kSplitOpDef[] = R"pb(
  op {
    name: "Split"
    input_arg { name: "split_dim" type: DT_INT32 }
    input_arg { name: "value" type_attr: "T" }
    output_arg { name: "output" type_attr: "T" number_attr: "num_split" }
    attr { name: "num_split" type: "int" has_minimum: true minimum: 1 }
    attr { name: "T" type: "type" }
  }
)pb";

TEST(OpDefs, SetOpDefsDerivesOutputsAndRejectsDisagreeingOnes) {
  OpRegistry derived;
  derived.add({"Split", {}, nullptr});
  derived.set_op_defs(kSplitOpDef);
  ASSERT_EQ(derived.find("Split")->outputs.size(), 1u);
  EXPECT_EQ(derived.find("Split")->outputs[0].name, "output");
  EXPECT_EQ(derived.find("Split")->outputs[0].list_size_attr, "num_split");

  // Outputs listed by hand must be the OpDef's: a wrong list size aborts at registration.
  EXPECT_DEATH(
      {
        OpRegistry r;
        r.add({"Split", {{"output", ""}}, nullptr});
        r.set_op_defs(kSplitOpDef);
      },
      "OpDef of op Split: the entry's outputs \\(output\\) disagree with the OpDef's "
      "\\(output\\[num_split\\]\\)");
  EXPECT_DEATH(
      {
        OpRegistry r;
        r.set_op_defs(kSplitOpDef);
      },
      "OpDef: op Split not registered");
}

TEST(OpDefs, GraphLevelOpsHaveOpDefsButNoEntries) {
  const OpRegistry& r = OpRegistry::global();
  for (const char* op : {"NoOp", "Placeholder", "PlaceholderWithDefault", "VarHandleOp",
                         "VarIsInitializedOp", "StatefulPartitionedCall", "PartitionedCall",
                         "SaveV2", "RestoreV2", "MergeV2Checkpoints", "StringJoin"}) {
    EXPECT_EQ(r.find(op), nullptr) << op << " is no runnable op";
    ASSERT_NE(r.find_op_def(op), nullptr) << op;
    EXPECT_EQ(r.find_op_def(op)->name(), op);
    EXPECT_EQ(find_op_def(op), r.find_op_def(op));
  }
  EXPECT_EQ(find_op_def("_HubimgFusedConv2D"), nullptr);
  EXPECT_EQ(find_op_def("NoSuchOpXyz"), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Against TensorFlow's own OpDefs.

struct TfOpDef {
  std::string fixture;  // path under fixtures/real
  std::string version;  // meta_info_def.tensorflow_version
  tf::OpDef def;
};

std::tuple<int, int, int> parse_version(const std::string& v) {
  std::smatch m;
  if (!std::regex_search(v, m, std::regex(R"((\d+)\.(\d+)\.(\d+))"))) return {0, 0, 0};
  return {std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3])};
}

// Every stripped_op_list entry of every saved_model.pb under fixtures/real, by op name.
std::map<std::string, std::vector<TfOpDef>> fixture_op_defs() {
  std::map<std::string, std::vector<TfOpDef>> out;
  const auto root = ::hubimg::testing::shared_dir() / "fixtures" / "real";
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.is_regular_file() && e.path().filename() == "saved_model.pb") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    tf::SavedModel model;
    EXPECT_TRUE(model.ParseFromString(::hubimg::testing::read_file(file))) << file;
    for (const auto& meta : model.meta_graphs()) {
      for (const auto& op : meta.meta_info_def().stripped_op_list().op()) {
        out[op.name()].push_back({std::filesystem::relative(file, root).string(),
                                  meta.meta_info_def().tensorflow_version(), op});
      }
    }
  }
  return out;
}

std::string describe_arg(const tf::OpDef::ArgDef& a) {
  std::string s = a.name() + ": ";
  if (!a.number_attr().empty()) s += a.number_attr() + " * ";
  if (!a.type_list_attr().empty()) s += a.type_list_attr();
  if (!a.type_attr().empty()) s += a.type_attr();
  if (a.type() != tf::DT_INVALID) s += tf::DataType_Name(a.type());
  if (a.is_ref()) s += " (ref)";
  return s;
}

std::string describe_args(const google::protobuf::RepeatedPtrField<tf::OpDef::ArgDef>& args) {
  std::string s;
  for (const auto& a : args) s += (s.empty() ? "" : ", ") + describe_arg(a);
  return "(" + s + ")";
}

std::set<std::string> allowed(const tf::OpDef::AttrDef& a) {
  std::set<std::string> out;
  for (int t : a.allowed_values().list().type()) out.insert(tf::DataType_Name(t));
  for (const auto& s : a.allowed_values().list().s()) out.insert(s);
  return out;
}

// What must agree between our OpDef and one TensorFlow wrote (any TF version): the input and
// output args exactly (names, types, type/list-size attrs); every attr TensorFlow had, with
// its type and default (TensorFlow never changes those); our minimum no stricter and our
// allowed_values (where we list them) a superset, since TF versions only relax those; attrs
// TensorFlow did not have yet only with a default. Returns the disagreements.
std::vector<std::string> compare(const tf::OpDef& ours, const tf::OpDef& theirs) {
  std::vector<std::string> errors;
  if (describe_args(ours.input_arg()) != describe_args(theirs.input_arg())) {
    errors.push_back("inputs " + describe_args(ours.input_arg()) + " vs TensorFlow's " +
                     describe_args(theirs.input_arg()));
  }
  if (describe_args(ours.output_arg()) != describe_args(theirs.output_arg())) {
    errors.push_back("outputs " + describe_args(ours.output_arg()) + " vs TensorFlow's " +
                     describe_args(theirs.output_arg()));
  }
  std::map<std::string, const tf::OpDef::AttrDef*> mine;
  for (const auto& a : ours.attr()) mine[a.name()] = &a;
  std::set<std::string> theirs_names;
  for (const auto& t : theirs.attr()) {
    theirs_names.insert(t.name());
    auto it = mine.find(t.name());
    if (it == mine.end()) {
      errors.push_back("attr '" + t.name() + "' (" + t.type() + ") missing");
      continue;
    }
    const tf::OpDef::AttrDef& m = *it->second;
    if (m.type() != t.type()) {
      errors.push_back("attr '" + t.name() + "' is " + m.type() + ", TensorFlow's " + t.type());
    }
    if (m.default_value().SerializeAsString() != t.default_value().SerializeAsString()) {
      errors.push_back("attr '" + t.name() + "': default " + m.default_value().ShortDebugString() +
                       " vs TensorFlow's " + t.default_value().ShortDebugString());
    }
    if (m.has_minimum() != t.has_minimum() || m.minimum() > t.minimum()) {
      errors.push_back("attr '" + t.name() + "': minimum " + std::to_string(m.minimum()) +
                       " vs TensorFlow's " + std::to_string(t.minimum()));
    }
    if (m.has_allowed_values()) {
      const auto a = allowed(m);
      for (const auto& v : allowed(t)) {
        if (!a.count(v)) errors.push_back("attr '" + t.name() + "': allowed_values lack " + v);
      }
    }
  }
  for (const auto& [name, a] : mine) {
    if (!theirs_names.count(name) && !a->has_default_value()) {
      errors.push_back("attr '" + name + "' that TensorFlow does not have, without a default");
    }
  }
  return errors;
}

TEST(OpDefs, AgreeWithTheOnesTensorFlowWroteIntoTheFixtures) {
  HUBIMG_REQUIRE_SHARED();
  const auto fixtures = fixture_op_defs();
  ASSERT_FALSE(fixtures.empty()) << "no stripped_op_list found under fixtures/real";
  const OpRegistry& r = OpRegistry::global();
  int checked_ops = 0, checked_defs = 0;
  std::vector<std::string> unknown;
  for (const auto& [name, defs] : fixtures) {
    const tf::OpDef* ours = r.find_op_def(name);
    if (ours == nullptr) {
      // An op the table knows (or the graph builder resolves) must come with its OpDef.
      EXPECT_EQ(r.find(name), nullptr) << name << " is in the op table without an OpDef";
      unknown.push_back(name);
      continue;
    }
    ++checked_ops;
    const TfOpDef* newest = &defs[0];
    for (const TfOpDef& d : defs) {
      ++checked_defs;
      for (const std::string& e : compare(*ours, d.def)) {
        ADD_FAILURE() << name << " vs TensorFlow " << d.version << " (" << d.fixture << "): " << e;
      }
      if (parse_version(d.version) > parse_version(newest->version)) newest = &d;
    }
    // Statefulness, commutativity, distributed communication: as the newest TensorFlow has them.
    EXPECT_EQ(ours->is_stateful(), newest->def.is_stateful())
        << name << " vs TensorFlow " << newest->version;
    EXPECT_EQ(ours->is_commutative(), newest->def.is_commutative())
        << name << " vs TensorFlow " << newest->version;
    EXPECT_EQ(ours->is_aggregate(), newest->def.is_aggregate())
        << name << " vs TensorFlow " << newest->version;
    EXPECT_EQ(ours->is_distributed_communication(), newest->def.is_distributed_communication())
        << name << " vs TensorFlow " << newest->version;
  }
  std::string skipped;
  for (const auto& n : unknown) skipped += " " + n;
  std::cout << "[ OpDefs   ] " << checked_ops << " ops checked against " << checked_defs
            << " OpDefs TensorFlow wrote; not ours:" << skipped << "\n";
}

}  // namespace
}  // namespace hubimg::ops
