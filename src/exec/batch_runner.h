// Runs a graph whose rows are independent (graph/batch_split.h) on a large batch as chunks of
// rows: the chunks go to the thread pool's threads, each running the whole graph on its chunk
// with single-threaded kernels, and the outputs are concatenated. Two things make this faster
// than one big call: no barrier between the cores inside every layer, and a chunk's activations
// stay in the core's caches where a batch of 32 streams every layer through memory.
#pragma once

#include <span>
#include <vector>

#include "exec/executor.h"

namespace hubimg::exec {

struct ChunkCosts {
  size_t weight_bytes = 0;                 // constants the graph reads on every call
  size_t largest_value_bytes_per_row = 0;  // 0 until a call has measured it
};

// How many rows a chunk gets for a batch of `batch` on `threads` threads; 0 means "run the batch
// whole" (a batch of one). HUBIMG_BATCH_CHUNK=K overrides (0 disables chunking).
int64_t chunk_rows_for(int64_t batch, int threads, const ChunkCosts& costs = {});

// `inputs` must all have `batch` rows; every output of the graph must be batch rows. An error
// means a chunk failed or an output of a chunk did not have the chunk's rows (a Reshape that
// regrouped rows): the caller then runs the batch whole, which reports any real error.
Expected<std::vector<Tensor>> run_graph_in_row_chunks(const graph::Graph& graph,
                                                      std::span<const Tensor> inputs,
                                                      std::span<ops::Variable* const> variables,
                                                      int64_t chunk_rows, RunStats* stats);

}  // namespace hubimg::exec
