// The golden cases of ../shared/fixtures/golden (see its README): loading and comparison.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "hubimg/tensor.h"

namespace hubimg::testing {

struct GoldenCase {
  std::string id;
  std::filesystem::path model;  // SavedModel directory
  std::string signature;        // signature key or "__call__"
  std::map<std::string, std::filesystem::path> inputs;
  std::map<std::string, std::filesystem::path> outputs;
  std::string compare;  // "allclose" or "top1"
  double atol = 0;
  double rtol = 0;
};

// The golden model folder names (fixtures/golden/<name>).
const std::vector<std::string>& golden_models();
std::vector<GoldenCase> load_golden_cases(const std::string& model);

// Compares one output against its reference under the case's rule: same shape, same kind of
// dtype, |a - r| <= atol + rtol |r| everywhere (and the same arg-max per row for "top1").
::testing::AssertionResult matches_reference(const Tensor& actual, const Tensor& reference,
                                             const GoldenCase& c, const std::string& key);

}  // namespace hubimg::testing
