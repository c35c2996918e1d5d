// Every golden case of ../shared/fixtures/golden through the library API, plus batch
// consistency: a batch's rows equal the rows computed one example at a time.
#include "util/golden.h"

#include <gtest/gtest.h>

#include "hubimg/model.h"
#include "hubimg/npy.h"
#include "util/test_util.h"

namespace hubimg {
namespace {

using hubimg::testing::GoldenCase;

class GoldenModel : public ::testing::TestWithParam<std::string> {};

Expected<std::map<std::string, Tensor>> run_case(const Model& model, const GoldenCase& c) {
  std::map<std::string, Tensor> inputs;
  for (const auto& [key, file] : c.inputs) {
    HUBIMG_ASSIGN_OR_RETURN(inputs[key], read_npy(file));
  }
  if (c.signature == "__call__") return model.call(inputs);
  return model.call_signature(c.signature, inputs);
}

TEST_P(GoldenModel, AllCasesMatchReference) {
  HUBIMG_REQUIRE_SHARED();
  auto cases = hubimg::testing::load_golden_cases(GetParam());
  ASSERT_FALSE(cases.empty());
  auto model = Model::load(cases[0].model);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  // Every case starts from the checkpoint's values (a `train` signature updates variables).
  std::vector<Tensor> initial;
  for (Variable* v : model->variables()) initial.push_back(v->value());
  for (const auto& c : cases) {
    for (size_t i = 0; i < initial.size(); ++i) model->variables()[i]->assign(initial[i]);
    auto outputs = run_case(*model, c);
    ASSERT_TRUE(outputs.ok()) << c.id << ": " << outputs.status().to_string();
    for (const auto& [key, file] : c.outputs) {
      auto reference = read_npy(file);
      ASSERT_TRUE(reference.ok()) << reference.status().to_string();
      auto it = outputs->find(key);
      ASSERT_NE(it, outputs->end()) << c.id << ": no output '" << key << "'";
      auto result = hubimg::testing::matches_reference(it->second, *reference, c, key);
      EXPECT_TRUE(result);
      std::cout << result.message() << "\n";
    }
  }
}

// Batch rows computed alone equal the batched rows (rand_b3 inputs of the image models).
TEST_P(GoldenModel, BatchEqualsPerExample) {
  HUBIMG_REQUIRE_SHARED();
  auto cases = hubimg::testing::load_golden_cases(GetParam());
  auto model = Model::load(cases[0].model);
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  int checked = 0;
  for (const auto& c : cases) {
    if (c.id.find("rand_b3") == std::string::npos || c.inputs.size() != 1) continue;
    auto batch_out = run_case(*model, c);
    ASSERT_TRUE(batch_out.ok()) << batch_out.status().to_string();
    auto batch_in = read_npy(c.inputs.begin()->second);
    ASSERT_TRUE(batch_in.ok());
    const int64_t row_elems = batch_in->num_elements() / batch_in->dim(0);
    for (int64_t row = 0; row < batch_in->dim(0); ++row) {
      Dims shape = batch_in->shape();
      shape[0] = 1;
      Tensor one(DType::kFloat32, shape);
      std::copy_n(batch_in->data<float>() + row * row_elems, row_elems, one.mutable_data<float>());
      GoldenCase single = c;
      std::map<std::string, Tensor> in{{c.inputs.begin()->first, one}};
      auto out =
          c.signature == "__call__" ? model->call(in) : model->call_signature(c.signature, in);
      ASSERT_TRUE(out.ok()) << out.status().to_string();
      for (const auto& [key, t] : *out) {
        const Tensor& b = batch_out->at(key);
        const int64_t n = t.num_elements();
        for (int64_t i = 0; i < n; ++i) {
          EXPECT_NEAR(t.data<float>()[i], b.data<float>()[row * n + i], 1e-5)
              << c.id << " row " << row << " element " << i;
        }
      }
    }
    ++checked;
  }
  if (GetParam().find("tf") != std::string::npos && cases[0].inputs.size() == 1 &&
      cases[0].id.find("rand_b1") != std::string::npos) {
    EXPECT_GT(checked, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenModel,
                         ::testing::ValuesIn(hubimg::testing::golden_models()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace hubimg
