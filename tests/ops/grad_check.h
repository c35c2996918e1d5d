// Finite-difference checks of gradient rules (ggml's test-backend-ops style).
//
// One GradCase names an op, its attributes and input values. check_gradient() builds a graph of
// argument nodes feeding one node of that op, appends the backward pass with
// graph::append_gradients for random cotangents on every float output, runs it with
// exec::run_graph, and compares every differentiated input's gradient with central finite
// differences of L = sum_k sum(cotangent_k * output_k), computed in float64.
//
// Test files register their cases with HUBIMG_GRAD_CASES(Suite) { return {...}; }: that defines
// the gtest GradCheck.Suite running them, and adds them to the global list the coverage test
// (every op with a gradient rule has a case) reads.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/attrs.h"
#include "hubimg/status.h"
#include "hubimg/tensor.h"

namespace hubimg::ops::testing {

struct GradCase {
  std::string op;
  AttrMap attrs;
  // Float inputs are cast to the checked dtype (float64 or float32) and so is a float "T" or
  // "dtype"-like attribute listed in `float_type_attrs`; other inputs (axes, shapes, indices) are
  // fed as they are.
  std::vector<Tensor> inputs;
  // Which inputs to differentiate; empty: every float input not in `fixed_dtype_inputs`.
  std::vector<int> differentiate;
  // Outputs given a random cotangent; empty: every float output. The others get a zero one
  // (FusedBatchNorm's statistics outputs, which carry no gradient in TensorFlow).
  std::vector<int> cotangent_outputs;
  // Attributes holding the float dtype of the inputs/outputs, rewritten to the checked dtype.
  std::vector<std::string> float_type_attrs = {"T"};
  // Shown in failures: "Maximum [2,3] vs [3], ties avoided".
  std::string label;
  // Float64 tolerance on max |analytic - numeric| / max(1, |analytic|, |numeric|).
  double tolerance = 1e-6;
  // Float32 check (the backward graph runs in float32, against float64 differences); a
  // negative value skips it (ops whose float32 kernels are missing).
  double float32_tolerance = 2e-3;
  double step = 1e-6;
  // Float inputs fed in their own dtype in both checks and never differentiated (the float32
  // transforms of ImageProjectiveTransformV3).
  std::vector<int>
      fixed_dtype_inputs;  // central-difference step in float64 (float32 uses the same, L in f64)
};

// Fills a float input; the helpers below use a fixed seed per call site.
Tensor uniform(Dims shape, double lo, double hi, uint32_t seed = 1);
// Values in [lo, hi] that are pairwise at least (hi-lo)/(2n) apart (no ties for Max, Relu kinks
// when the range excludes 0 or values avoid a band around 0 with `gap_around_zero`).
Tensor distinct(Dims shape, double lo, double hi, uint32_t seed = 1, double gap_around_zero = 0);
Tensor ints32(Dims shape, std::vector<int32_t> values);
Tensor ints64(Dims shape, std::vector<int64_t> values);
Tensor scalar_i32(int32_t v);
Tensor bools(Dims shape, std::vector<int> values);

struct GradCheckReport {
  bool ok = false;
  double max_error = 0;  // over every differentiated input
  std::string message;   // per-input errors, the first mismatching element, or the failure
};

// Runs the check in `dtype` (kFloat64 or kFloat32).
GradCheckReport check_gradient(const GradCase& c, DType dtype = DType::kFloat64);

// gtest assertions over a list of cases (float64 and, where enabled, float32).
void expect_gradients(const std::vector<GradCase>& cases);

// The global list of case factories (all test files add to it).
using GradCaseFactory = std::vector<GradCase> (*)();
struct GradSuite {
  const char* name;
  GradCaseFactory factory;
};
std::vector<GradSuite>& grad_suites();
struct GradSuiteRegistrar {
  GradSuiteRegistrar(const char* name, GradCaseFactory factory);
};

}  // namespace hubimg::ops::testing

// Defines std::vector<GradCase> Suite_grad_cases() with the body that follows, registers it and
// defines TEST(GradCheck, Suite).
#define HUBIMG_GRAD_CASES(Suite)                                                                 \
  static std::vector<::hubimg::ops::testing::GradCase> Suite##_grad_cases();                     \
  static ::hubimg::ops::testing::GradSuiteRegistrar Suite##_grad_registrar(#Suite,               \
                                                                           &Suite##_grad_cases); \
  TEST(GradCheck, Suite) {                                                                       \
    ::hubimg::ops::testing::expect_gradients(Suite##_grad_cases());                              \
  }                                                                                              \
  static std::vector<::hubimg::ops::testing::GradCase> Suite##_grad_cases()
