#include "exec/batch_runner.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/thread_pool.h"

namespace hubimg::exec {

int64_t chunk_rows_for(int64_t batch, int threads, const ChunkCosts& costs) {
  if (const char* env = std::getenv("HUBIMG_BATCH_CHUNK")) {
    char* end = nullptr;
    const long long value = std::strtoll(env, &end, 10);
    if (end != env && *end == '\0' && value >= 0) {
      return value == 0 || value >= batch ? 0 : static_cast<int64_t>(value);
    }
  }
  if (batch < 2) return 0;
  const int64_t per_thread = (batch + threads - 1) / std::max(threads, 1);
  // Each chunk streams every weight through the core once, and each row's activations once:
  // a chunk of c rows moves W + c * A bytes for c rows. Rows beyond W / (2A) gain little on
  // weights and push the activations out of cache. MobileNetV2 (W 14 MB, A 4.8 MB per image)
  // comes out at 1-2 rows, ResNet-50 (W 100 MB, A 3.2 MB) at 16; bench/README.md has the
  // measurements.
  int64_t rows = 4;  // before the first call has measured A
  if (costs.largest_value_bytes_per_row > 0) {
    const double ratio = static_cast<double>(costs.weight_bytes) /
                         (2.0 * static_cast<double>(costs.largest_value_bytes_per_row));
    rows = 1;
    while (rows * 2 <= ratio) rows *= 2;
  }
  return std::clamp<int64_t>(rows, 1, per_thread);
}

Expected<std::vector<Tensor>> run_graph_in_row_chunks(const graph::Graph& graph,
                                                      std::span<const Tensor> inputs,
                                                      std::span<ops::Variable* const> variables,
                                                      int64_t chunk_rows, RunStats* stats) {
  if (inputs.empty() || chunk_rows < 1) return invalid_argument("nothing to split");
  const int64_t batch = inputs[0].dim(0);
  for (const Tensor& t : inputs) {
    if (t.rank() < 1 || t.dim(0) != batch) {
      return invalid_argument(graph.description + ": inputs with different batch sizes (" +
                              inputs[0].description() + ", " + t.description() + ")");
    }
  }
  const int64_t num_chunks = (batch + chunk_rows - 1) / chunk_rows;
  std::vector<std::vector<Tensor>> chunk_outputs(static_cast<size_t>(num_chunks));
  std::vector<RunStats> chunk_stats(stats ? static_cast<size_t>(num_chunks) : 0);
  for (RunStats& s : chunk_stats) s.time_ops = stats->time_ops;
  std::mutex error_mutex;
  Status first_error;
  std::atomic<int64_t> next_chunk{0};
  std::atomic<bool> failed{false};

  auto run_chunks = [&](int64_t /*worker*/) {
    std::vector<Tensor> chunk_inputs(inputs.size());
    for (int64_t c; !failed && (c = next_chunk.fetch_add(1)) < num_chunks;) {
      const int64_t begin = c * chunk_rows, end = std::min(batch, begin + chunk_rows);
      for (size_t i = 0; i < inputs.size(); ++i) chunk_inputs[i] = *inputs[i].rows(begin, end);
      auto out = run_graph(graph, chunk_inputs, variables,
                           stats ? &chunk_stats[static_cast<size_t>(c)] : nullptr);
      if (!out.ok()) {
        std::lock_guard lock(error_mutex);
        if (first_error.ok()) first_error = out.status();
        failed = true;
        return;
      }
      for (const Tensor& t : *out) {
        if (t.rank() < 1 || t.dim(0) != end - begin) {
          std::lock_guard lock(error_mutex);
          if (first_error.ok()) {
            first_error = failed_precondition(graph.description + ": a chunk of " +
                                              std::to_string(end - begin) + " rows gave output " +
                                              t.description() + "; the graph regroups rows");
          }
          failed = true;
          return;
        }
      }
      chunk_outputs[static_cast<size_t>(c)] = std::move(out).value();
    }
  };
  ThreadPool& pool = ThreadPool::global();
  pool.parallel_for(std::min<int64_t>(pool.num_threads(), num_chunks), run_chunks);
  if (!first_error.ok()) return first_error;

  if (stats) {
    for (const RunStats& s : chunk_stats) {
      stats->nodes_run += s.nodes_run;
      stats->largest_value_bytes = std::max(stats->largest_value_bytes, s.largest_value_bytes);
      for (const auto& [op, ms] : s.ms_by_op) stats->ms_by_op[op] += ms;
      for (const auto& [op, n] : s.calls_by_op) stats->calls_by_op[op] += n;
      for (const auto& [node, ms] : s.ms_by_node) stats->ms_by_node[node] += ms;
    }
  }
  // Concatenate every output along dimension 0.
  const size_t num_outputs = chunk_outputs[0].size();
  std::vector<Tensor> outputs;
  for (size_t o = 0; o < num_outputs; ++o) {
    const Tensor& first = chunk_outputs[0][o];
    if (first.dtype() == DType::kString || first.rank() < 1) {
      return internal_error(graph.description + ": output " + std::to_string(o) + " (" +
                            first.description() + ") cannot be concatenated over chunks");
    }
    Dims shape = first.shape();
    shape[0] = 0;
    for (const auto& chunk : chunk_outputs) {
      const Tensor& t = chunk[o];
      Dims expected = first.shape();
      expected[0] = t.rank() >= 1 ? t.dim(0) : -1;
      if (t.dtype() != first.dtype() || t.shape() != expected) {
        return internal_error(graph.description + ": output " + std::to_string(o) +
                              " differs between chunks (" + first.description() + ", " +
                              t.description() + ")");
      }
      shape[0] += t.dim(0);
    }
    if (shape[0] != batch) {
      return internal_error(graph.description + ": output " + std::to_string(o) + " has " +
                            std::to_string(shape[0]) + " rows for a batch of " +
                            std::to_string(batch));
    }
    Tensor joined = Tensor::uninitialized(first.dtype(), shape);
    char* dst = static_cast<char*>(joined.raw_mutable_data());
    for (const auto& chunk : chunk_outputs) {
      const size_t bytes = chunk[o].byte_size();
      if (bytes) std::memcpy(dst, chunk[o].raw_data(), bytes);
      dst += bytes;
    }
    outputs.push_back(std::move(joined));
  }
  return outputs;
}

}  // namespace hubimg::exec
