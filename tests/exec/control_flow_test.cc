// If / Case: branches inlined when the selector is a constant, run by the executor otherwise.
// The SavedModel is built here by hand: root.__call__(x, c) with one traced function.
#include <gtest/gtest.h>

#include "graph.pb.h"
#include "graph/graph.h"
#include "hubimg/model.h"
#include "saved_model.pb.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using hubimg::testing::TempDir;

tf::NodeDef* add_node(tf::FunctionDef& f, const std::string& name, const std::string& op,
                      std::vector<std::string> inputs) {
  tf::NodeDef* n = f.add_node_def();
  n->set_name(name);
  n->set_op(op);
  for (auto& i : inputs) n->add_input(i);
  (*n->mutable_attr())["T"].set_type(tf::DT_FLOAT);
  return n;
}

void add_arg(tf::OpDef* sig, bool input, const std::string& name, tf::DataType type) {
  auto* a = input ? sig->add_input_arg() : sig->add_output_arg();
  a->set_name(name);
  a->set_type(type);
}

// Branch: y = x * k or y = x + k.
void add_branch(tf::FunctionDefLibrary& lib, const std::string& name, const std::string& op,
                float k) {
  tf::FunctionDef* f = lib.add_function();
  f->mutable_signature()->set_name(name);
  add_arg(f->mutable_signature(), true, "x", tf::DT_FLOAT);
  add_arg(f->mutable_signature(), false, "y", tf::DT_FLOAT);
  tf::NodeDef* c = add_node(*f, "k", "Const", {});
  c->mutable_attr()->erase("T");
  (*c->mutable_attr())["dtype"].set_type(tf::DT_FLOAT);
  auto* t = (*c->mutable_attr())["value"].mutable_tensor();
  t->set_dtype(tf::DT_FLOAT);
  t->add_float_val(k);
  add_node(*f, "op", op, {"x", "k:output:0"});
  (*f->mutable_ret())["y"] = "op:z:0";
}

void set_spec(tf::StructuredValue* v, const std::string& name, tf::DataType dtype) {
  auto* spec = v->mutable_tensor_spec_value();
  spec->set_name(name);
  spec->set_dtype(dtype);
  spec->mutable_shape();
}

// root.__call__(x: float32[], c: <selector_dtype>[]) -> selector op over the branches.
std::filesystem::path write_model(const TempDir& tmp, const std::string& op, tf::DataType selector,
                                  int branches) {
  tf::SavedModel sm;
  sm.set_saved_model_schema_version(1);
  auto* mg = sm.add_meta_graphs();
  mg->mutable_meta_info_def()->add_tags("serve");
  auto* lib = mg->mutable_graph_def()->mutable_library();
  const char* ops[] = {"Mul", "AddV2", "Sub"};
  const float ks[] = {2, 1, 10};
  for (int b = 0; b < branches; ++b) add_branch(*lib, "branch_" + std::to_string(b), ops[b], ks[b]);
  tf::FunctionDef* main = lib->add_function();
  main->mutable_signature()->set_name("__inference_call_1");
  add_arg(main->mutable_signature(), true, "x", tf::DT_FLOAT);
  add_arg(main->mutable_signature(), true, "c", selector);
  add_arg(main->mutable_signature(), false, "identity", tf::DT_FLOAT);
  tf::NodeDef* n = add_node(*main, "cond", op, {"c", "x"});
  n->mutable_attr()->erase("T");
  (*n->mutable_attr())["Tin"].mutable_list()->add_type(tf::DT_FLOAT);
  (*n->mutable_attr())["Tout"].mutable_list()->add_type(tf::DT_FLOAT);
  if (op == "If" || op == "StatelessIf") {
    (*n->mutable_attr())["then_branch"].mutable_func()->set_name("branch_0");
    (*n->mutable_attr())["else_branch"].mutable_func()->set_name("branch_1");
  } else {
    for (int b = 0; b < branches; ++b) {
      (*n->mutable_attr())["branches"].mutable_list()->add_func()->set_name("branch_" +
                                                                            std::to_string(b));
    }
  }
  add_node(*main, "Identity", "Identity", {"cond:output:0"});
  (*main->mutable_ret())["identity"] = "Identity:output:0";

  auto* og = mg->mutable_object_graph_def();
  auto* root = og->add_nodes();
  root->mutable_user_object()->set_identifier("_generic_user_object");
  auto* child = root->add_children();
  child->set_node_id(1);
  child->set_local_name("__call__");
  auto* fn = og->add_nodes()->mutable_function();
  fn->add_concrete_functions("__inference_call_1");
  auto* args = fn->mutable_function_spec()->mutable_fullargspec()->mutable_named_tuple_value();
  args->set_name("FullArgSpec");
  auto* pair = args->add_values();
  pair->set_key("args");
  pair->mutable_value()->mutable_list_value()->add_values()->set_string_value("x");
  pair->mutable_value()->mutable_list_value()->add_values()->set_string_value("c");
  auto& cf = (*og->mutable_concrete_functions())["__inference_call_1"];
  auto* sig = cf.mutable_canonicalized_input_signature()->mutable_tuple_value();
  auto* positional = sig->add_values()->mutable_tuple_value();
  set_spec(positional->add_values(), "x", tf::DT_FLOAT);
  set_spec(positional->add_values(), "c", selector);
  sig->add_values()->mutable_dict_value();
  set_spec(cf.mutable_output_signature(), "", tf::DT_FLOAT);

  auto dir = tmp.path() / (op + std::to_string(branches));
  std::filesystem::create_directories(dir);
  hubimg::testing::write_file(dir / "saved_model.pb", sm.SerializeAsString());
  return dir;
}

float call(const Model& m, float x, Tensor selector) {
  auto out = m.call({{"x", Tensor::scalar<float>(x)}, {"c", std::move(selector)}});
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? out->at("output_0").data<float>()[0] : -1e9f;
}

TEST(ControlFlow, IfDecidedAtRunTime) {
  TempDir tmp;
  auto m = Model::load(write_model(tmp, "StatelessIf", tf::DT_BOOL, 2));
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(call(*m, 5, Tensor::scalar<bool>(true)), 10.0f);  // then: x * 2
  EXPECT_EQ(call(*m, 5, Tensor::scalar<bool>(false)), 6.0f);  // else: x + 1
}

TEST(ControlFlow, CaseDecidedAtRunTimeWithDefaultBranch) {
  TempDir tmp;
  auto m = Model::load(write_model(tmp, "Case", tf::DT_INT32, 3));
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(call(*m, 5, Tensor::scalar<int32_t>(0)), 10.0f);
  EXPECT_EQ(call(*m, 5, Tensor::scalar<int32_t>(1)), 6.0f);
  EXPECT_EQ(call(*m, 5, Tensor::scalar<int32_t>(2)), -5.0f);
  EXPECT_EQ(call(*m, 5, Tensor::scalar<int32_t>(7)), -5.0f);  // out of range: last branch
  EXPECT_EQ(call(*m, 5, Tensor::scalar<int32_t>(-1)), -5.0f);
}

TEST(ControlFlow, BranchIndexTruthiness) {
  EXPECT_EQ(graph::branch_index(Tensor::scalar<float>(0.0f), true, 2), 1u);
  EXPECT_EQ(graph::branch_index(Tensor::scalar<int32_t>(-3), true, 2), 0u);
  EXPECT_EQ(graph::branch_index(Tensor(DType::kFloat32, {0}), true, 2), 1u);
  EXPECT_EQ(graph::branch_index(Tensor(DType::kFloat32, {2}), true, 2), 0u);
  EXPECT_EQ(graph::branch_index(Tensor::from_strings({}, {""}), true, 2), 1u);
}

}  // namespace
}  // namespace hubimg
