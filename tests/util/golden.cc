#include "util/golden.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "util/test_util.h"

namespace hubimg::testing {

const std::vector<std::string>& golden_models() {
  static const std::vector<std::string> models = {
      "emoji_mobilenet025_gray_tf282",
      "intel_cnn_keras3_tf218",
      "java_saved_model_using_python",
      "mnist_cnn_tf231",
      "potato_cnn_aug_tf25",
      "rps_cnn_tf231",
      "rust_regression_savedmodel",
      "serving_half_plus_two_tf2_cpu",
      "tfjs_node_model_multi_output",
      "tfjs_node_module_with_multiple_signatures",
      "tfjs_node_times_three_float",
      "tfjs_node_uint8_multiply",
      "tfnet_simple_model_from_auto_compile",
      "tm_mobilenetv2_035_tf115",
  };
  return models;
}

std::vector<GoldenCase> load_golden_cases(const std::string& model) {
  auto dir = golden_dir() / model;
  std::ifstream in(dir / "cases.json");
  auto j = nlohmann::json::parse(in);
  std::vector<GoldenCase> cases;
  for (const auto& c : j) {
    GoldenCase g;
    g.id = c["case"];
    g.model = shared_dir() / "fixtures" / c["model"].get<std::string>();
    g.signature = c["signature"];
    for (const auto& [k, v] : c["inputs"].items()) g.inputs[k] = dir / v.get<std::string>();
    for (const auto& [k, v] : c["outputs"].items()) g.outputs[k] = dir / v.get<std::string>();
    g.compare = c["compare"];
    g.atol = c["atol"];
    g.rtol = c["rtol"];
    cases.push_back(std::move(g));
  }
  return cases;
}

namespace {
bool is_integer(DType d) {
  return d == DType::kInt8 || d == DType::kInt16 || d == DType::kInt32 || d == DType::kInt64 ||
         d == DType::kUInt8 || d == DType::kUInt16 || d == DType::kUInt32 || d == DType::kUInt64;
}
}  // namespace

::testing::AssertionResult matches_reference(const Tensor& actual, const Tensor& reference,
                                             const GoldenCase& c, const std::string& key) {
  const std::string what = c.id + " output '" + key + "'";
  if (actual.shape() != reference.shape()) {
    return ::testing::AssertionFailure() << what << ": shape " << dims_to_string(actual.shape())
                                         << ", reference " << dims_to_string(reference.shape());
  }
  if (is_integer(actual.dtype()) != is_integer(reference.dtype())) {
    return ::testing::AssertionFailure() << what << ": dtype " << dtype_name(actual.dtype())
                                         << ", reference " << dtype_name(reference.dtype());
  }
  double worst = 0;
  int64_t worst_at = -1;
  for (int64_t i = 0; i < actual.num_elements(); ++i) {
    double a = element_as_double(actual, i), r = element_as_double(reference, i);
    double err = std::abs(a - r);
    if (std::isnan(a) || std::isnan(r) || err > c.atol + c.rtol * std::abs(r)) {
      return ::testing::AssertionFailure()
             << what << ": element " << i << " is " << a << ", reference " << r << " (atol "
             << c.atol << ", rtol " << c.rtol << ")";
    }
    if (err > worst) {
      worst = err;
      worst_at = i;
    }
  }
  if (c.compare == "top1" && actual.rank() >= 1) {
    const int64_t classes = actual.shape().back();
    const int64_t rows = classes ? actual.num_elements() / classes : 0;
    for (int64_t row = 0; row < rows; ++row) {
      int64_t best_a = 0, best_r = 0;
      for (int64_t k = 1; k < classes; ++k) {
        if (element_as_double(actual, row * classes + k) >
            element_as_double(actual, row * classes + best_a))
          best_a = k;
        if (element_as_double(reference, row * classes + k) >
            element_as_double(reference, row * classes + best_r))
          best_r = k;
      }
      if (best_a != best_r) {
        return ::testing::AssertionFailure() << what << ": row " << row << " top-1 is class "
                                             << best_a << ", reference " << best_r;
      }
    }
  }
  return ::testing::AssertionSuccess() << what << ": max abs error " << worst << " at " << worst_at;
}

}  // namespace hubimg::testing
