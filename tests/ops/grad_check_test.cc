// The finite-difference harness (grad_check.h) and the coverage test: every op whose entry has a
// gradient rule has at least one registered case.
#include "ops/grad_check.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "exec/executor.h"
#include "graph/autodiff.h"
#include "graph/graph.h"
#include "ops/cast.h"
#include "ops/fast_paths.h"
#include "ops/op_registry.h"

namespace hubimg::ops::testing {
namespace {

bool is_float(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64;
}

std::string shape_string(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

std::string case_name(const GradCase& c) {
  std::string s = c.op;
  if (!c.label.empty()) s += " (" + c.label + ")";
  return s;
}

Expected<Tensor> to_dtype(const Tensor& t, DType dtype) {
  if (!is_float(t.dtype()) || t.dtype() == dtype) return t;
  return cast_tensor(t, dtype);
}

AttrMap attrs_in(const GradCase& c, DType dtype) {
  AttrMap attrs = c.attrs;
  for (const auto& name : c.float_type_attrs) {
    const auto* v = attrs.find(name);
    if (v == nullptr) continue;
    if (const auto* t = std::get_if<DType>(v); t != nullptr && is_float(*t)) attrs.set(name, dtype);
  }
  return attrs;
}

// L = sum over the outputs `which` of sum(cotangent * output), in float64.
Expected<double> objective(const GradCase& c, const std::vector<Tensor>& inputs,
                           const std::vector<int>& which, const std::vector<Tensor>& cotangents) {
  // Copies: run_op lets a kernel write its output into a sole-owned input's buffer.
  const std::vector<Tensor> held = inputs;
  HUBIMG_ASSIGN_OR_RETURN(auto outs, run_op(c.op, held, attrs_in(c, DType::kFloat64), "fd"));
  double total = 0;
  if (which.size() != cotangents.size()) return internal_error("one cotangent per output");
  for (size_t k = 0; k < which.size(); ++k) {
    if (static_cast<size_t>(which[k]) >= outs.size()) return internal_error("output count changed");
    HUBIMG_ASSIGN_OR_RETURN(Tensor o,
                            to_dtype(outs[static_cast<size_t>(which[k])], DType::kFloat64));
    const Tensor& ct = cotangents[k];
    if (o.num_elements() != ct.num_elements()) return internal_error("output size changed");
    const double* po = o.data<double>();
    const double* pc = ct.data<double>();
    for (int64_t i = 0; i < o.num_elements(); ++i) total += po[i] * pc[i];
  }
  return total;
}

Expected<GradCheckReport> check(const GradCase& c, DType dtype) {
  const OpSpec* spec = OpRegistry::global().find(c.op);
  if (spec == nullptr) return invalid_argument("op " + c.op + " is not registered");

  // The evaluation point: float inputs rounded to `dtype`, held in float64 for the differences.
  std::vector<Tensor> run_inputs, point;
  auto fixed = [&](size_t i) {
    return std::find(c.fixed_dtype_inputs.begin(), c.fixed_dtype_inputs.end(),
                     static_cast<int>(i)) != c.fixed_dtype_inputs.end();
  };
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Tensor& in = c.inputs[i];
    HUBIMG_ASSIGN_OR_RETURN(Tensor r, fixed(i) ? in : to_dtype(in, dtype));
    HUBIMG_ASSIGN_OR_RETURN(Tensor p, fixed(i) ? r : to_dtype(r, DType::kFloat64));
    run_inputs.push_back(r);
    point.push_back(p.clone());
  }
  std::vector<int> diff = c.differentiate;
  if (diff.empty()) {
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      if (is_float(c.inputs[i].dtype()) && !fixed(i)) diff.push_back(static_cast<int>(i));
    }
  }

  // Forward once for the output shapes; random cotangents on every float output.
  const AttrMap attrs = attrs_in(c, dtype);
  const std::vector<Tensor> forward_inputs = run_inputs;  // copies, as in objective()
  HUBIMG_ASSIGN_OR_RETURN(auto outs, run_op(c.op, forward_inputs, attrs, "forward"));
  std::mt19937 rng(1234);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<Tensor> cotangents;  // float64
  std::vector<int> float_outputs;
  for (size_t k = 0; k < outs.size(); ++k) {
    if (!is_float(outs[k].dtype())) continue;
    // Outputs without a cotangent are left out of the request, as a caller that does not
    // differentiate them would (their gradient would be zero; some rules refuse one, as
    // TensorFlow's PreventGradient on SparseSoftmaxCrossEntropyWithLogits' backprop does).
    const bool gets_cotangent = c.cotangent_outputs.empty() ||
                                std::find(c.cotangent_outputs.begin(), c.cotangent_outputs.end(),
                                          static_cast<int>(k)) != c.cotangent_outputs.end();
    if (!gets_cotangent) continue;
    Tensor ct(DType::kFloat64, outs[k].shape());
    for (int64_t i = 0; i < ct.num_elements(); ++i) ct.mutable_data<double>()[i] = dist(rng);
    cotangents.push_back(ct);
    float_outputs.push_back(static_cast<int>(k));
  }
  if (cotangents.empty()) return invalid_argument("the op has no float output");

  graph::Graph g;
  g.description = "grad check of " + c.op;
  auto add_arg = [&](const std::string& name, DType t) {
    graph::Node n;
    n.name = name;
    n.op = graph::kArgOp;
    n.arg_index = static_cast<int>(g.arg_nodes.size());
    n.output_dtypes = {t};
    g.nodes.push_back(std::move(n));
    g.arg_nodes.push_back(static_cast<int>(g.nodes.size()) - 1);
    return static_cast<int>(g.nodes.size()) - 1;
  };
  std::vector<int> input_nodes;
  for (size_t i = 0; i < run_inputs.size(); ++i) {
    input_nodes.push_back(add_arg("input_" + std::to_string(i), run_inputs[i].dtype()));
  }
  graph::Node op_node;
  op_node.name = "case/" + c.op;
  op_node.op = c.op;
  op_node.spec = spec;
  op_node.attrs = attrs;
  for (int id : input_nodes) op_node.inputs.push_back({id, 0});
  HUBIMG_ASSIGN_OR_RETURN(auto sizes, output_arg_sizes(*spec, attrs));
  op_node.num_outputs = static_cast<int>(std::accumulate(sizes.begin(), sizes.end(), size_t{0}));
  if (op_node.num_outputs != static_cast<int>(outs.size())) {
    return internal_error("output_arg_sizes says " + std::to_string(op_node.num_outputs) +
                          " outputs, the kernel made " + std::to_string(outs.size()));
  }
  for (const auto& o : outs) op_node.output_dtypes.push_back(o.dtype());
  g.nodes.push_back(std::move(op_node));
  const int op_id = static_cast<int>(g.nodes.size()) - 1;

  graph::GradientRequest request;
  std::vector<Tensor> feeds = run_inputs;
  for (size_t k = 0; k < float_outputs.size(); ++k) {
    const DType t = outs[static_cast<size_t>(float_outputs[k])].dtype();
    const int id = add_arg("cotangent_" + std::to_string(k), t);
    request.ys.push_back({op_id, float_outputs[k]});
    request.cotangents.push_back({id, 0});
    HUBIMG_ASSIGN_OR_RETURN(Tensor ct, to_dtype(cotangents[k], t));
    feeds.push_back(ct);
    // The differences use the cotangent as the graph sees it.
    HUBIMG_ASSIGN_OR_RETURN(cotangents[k], to_dtype(ct, DType::kFloat64));
  }
  for (int i : diff) request.values.push_back({input_nodes[static_cast<size_t>(i)], 0});
  HUBIMG_ASSIGN_OR_RETURN(auto result, graph::append_gradients(g, request));
  std::vector<int> output_of(diff.size(), -1);
  for (size_t k = 0; k < diff.size(); ++k) {
    if (result.value_grads[k].node < 0) continue;
    output_of[k] = static_cast<int>(g.outputs.size());
    g.outputs.push_back(result.value_grads[k]);
  }
  HUBIMG_ASSIGN_OR_RETURN(auto grads, exec::run_graph(g, feeds, {}));
  GradCheckReport report;
  report.ok = true;
  std::ostringstream msg;
  const double h = c.step;
  for (size_t k = 0; k < diff.size(); ++k) {
    const size_t in = static_cast<size_t>(diff[k]);
    Tensor analytic;
    if (output_of[k] >= 0) {
      const Tensor& got = grads[static_cast<size_t>(output_of[k])];
      if (got.shape() != point[in].shape()) {
        return internal_error("gradient of input " + std::to_string(in) + " has shape " +
                              shape_string(got.shape()) + ", the input " +
                              shape_string(point[in].shape()));
      }
      if (got.dtype() != dtype) {
        return internal_error("gradient of input " + std::to_string(in) + " is " +
                              got.description() + ", expected dtype " +
                              std::string(dtype_name(dtype)));
      }
      HUBIMG_ASSIGN_OR_RETURN(analytic, to_dtype(got, DType::kFloat64));
    } else {
      analytic = Tensor(DType::kFloat64, point[in].shape());  // no gradient: zeros
    }
    double worst = 0;
    int64_t worst_at = -1;
    double worst_a = 0, worst_n = 0;
    double* x = point[in].mutable_data<double>();
    for (int64_t e = 0; e < point[in].num_elements(); ++e) {
      const double saved = x[e];
      x[e] = saved + h;
      HUBIMG_ASSIGN_OR_RETURN(double plus, objective(c, point, float_outputs, cotangents));
      x[e] = saved - h;
      HUBIMG_ASSIGN_OR_RETURN(double minus, objective(c, point, float_outputs, cotangents));
      x[e] = saved;
      const double numeric = (plus - minus) / (2 * h);
      const double a = analytic.data<double>()[e];
      const double err = std::abs(a - numeric) / std::max({1.0, std::abs(a), std::abs(numeric)});
      if (!(err <= worst)) {  // NaN counts as worst
        worst = std::isnan(err) ? INFINITY : err;
        worst_at = e;
        worst_a = a;
        worst_n = numeric;
      }
    }
    report.max_error = std::max(report.max_error, worst);
    msg << " input " << in << " " << shape_string(point[in].shape()) << ": max error " << worst;
    if (worst_at >= 0) {
      msg << " (element " << worst_at << ": analytic " << worst_a << ", numeric " << worst_n << ")";
    }
    msg << ";";
  }
  report.message = msg.str();
  return report;
}

}  // namespace

Tensor uniform(Dims shape, double lo, double hi, uint32_t seed) {
  Tensor t(DType::kFloat64, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.mutable_data<double>()[i] = dist(rng);
  return t;
}

Tensor distinct(Dims shape, double lo, double hi, uint32_t seed, double gap_around_zero) {
  Tensor t(DType::kFloat64, std::move(shape));
  const int64_t n = t.num_elements();
  std::vector<double> values;
  // Evenly spaced levels, jittered by a quarter spacing, skipping the band around zero.
  const int64_t levels = std::max<int64_t>(2 * n + 2, 4);
  const double spacing = (hi - lo) / static_cast<double>(levels);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> jitter(-0.25 * spacing, 0.25 * spacing);
  for (int64_t i = 0; i <= levels && static_cast<int64_t>(values.size()) < 2 * n; ++i) {
    const double v = lo + spacing * static_cast<double>(i) + jitter(rng);
    if (std::abs(v) < gap_around_zero) continue;
    values.push_back(v);
  }
  std::shuffle(values.begin(), values.end(), rng);
  for (int64_t i = 0; i < n; ++i) t.mutable_data<double>()[i] = values[static_cast<size_t>(i)];
  return t;
}

Tensor ints32(Dims shape, std::vector<int32_t> values) {
  if (values.empty()) return Tensor(DType::kInt32, std::move(shape));
  return Tensor::from_vector<int32_t>(std::move(shape), values);
}
Tensor ints64(Dims shape, std::vector<int64_t> values) {
  if (values.empty()) return Tensor(DType::kInt64, std::move(shape));
  return Tensor::from_vector<int64_t>(std::move(shape), values);
}
Tensor scalar_i32(int32_t v) {
  return Tensor::scalar<int32_t>(v);
}

Tensor bools(Dims shape, std::vector<int> values) {
  Tensor t(DType::kBool, std::move(shape));
  for (size_t i = 0; i < values.size() && i < static_cast<size_t>(t.num_elements()); ++i) {
    t.mutable_data<bool>()[i] = values[i] != 0;
  }
  return t;
}

GradCheckReport check_gradient(const GradCase& c, DType dtype) {
  auto r = check(c, dtype);
  if (!r.ok()) return {false, INFINITY, r.status().to_string()};
  return *r;
}

void expect_gradients(const std::vector<GradCase>& cases) {
  for (const auto& c : cases) {
    GradCheckReport r64 = check_gradient(c, DType::kFloat64);
    EXPECT_TRUE(r64.ok && r64.max_error <= c.tolerance)
        << case_name(c) << " float64:" << r64.message << " (tolerance " << c.tolerance << ")";
    if (c.float32_tolerance < 0) continue;
    // Float32 with the reference kernels and with the fast paths (fast_paths.h).
    for (bool fast : {false, true}) {
      ScopedFastPaths paths(fast);
      GradCheckReport r32 = check_gradient(c, DType::kFloat32);
      EXPECT_TRUE(r32.ok && r32.max_error <= c.float32_tolerance)
          << case_name(c) << " float32" << (fast ? " (fast paths)" : "") << ":" << r32.message
          << " (tolerance " << c.float32_tolerance << ")";
    }
  }
}

std::vector<GradSuite>& grad_suites() {
  static std::vector<GradSuite> suites;
  return suites;
}

GradSuiteRegistrar::GradSuiteRegistrar(const char* name, GradCaseFactory factory) {
  grad_suites().push_back({name, factory});
}

namespace {

TEST(GradCheck, EveryOpWithAGradientRuleHasAFiniteDifferenceCase) {
  std::set<std::string> covered;
  for (const auto& suite : grad_suites()) {
    for (const auto& c : suite.factory()) covered.insert(c.op);
  }
  std::vector<std::string> missing;
  const OpRegistry& r = OpRegistry::global();
  for (const auto& name : r.names()) {
    const OpSpec* spec = r.find(name);
    if (spec != nullptr && spec->gradient && !covered.count(name)) missing.push_back(name);
  }
  std::string list;
  for (const auto& m : missing) list += " " + m;
  EXPECT_TRUE(missing.empty()) << missing.size() << " ops with a gradient rule have no "
                               << "finite-difference case:" << list;
}

TEST(GradCheck, ReportsAMissingRuleAsAFailure) {
  // An op registered without a rule (and differentiable) must fail the check, not pass.
  // TanhGrad is differentiable in TensorFlow (second derivatives); hubimg has no rule for it.
  GradCase c;
  c.op = "TanhGrad";
  c.inputs = {uniform({2, 3}, -0.9, 0.9, 1), uniform({2, 3}, -1, 1, 2)};
  const OpSpec* spec = OpRegistry::global().find("TanhGrad");
  ASSERT_NE(spec, nullptr);
  ASSERT_FALSE(spec->gradient) << "TanhGrad has a rule now: pick another op without one";
  ASSERT_FALSE(spec->not_differentiable);
  GradCheckReport r = check_gradient(c);
  EXPECT_FALSE(r.ok) << r.message;
  EXPECT_NE(r.message.find("no gradient rule"), std::string::npos) << r.message;
}

}  // namespace
}  // namespace hubimg::ops::testing
