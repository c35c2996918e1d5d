#!/usr/bin/python3
"""PyTorch (CPU) timing of one full training step on a generated bench model (issue 9, deliver 9).

  /usr/bin/python3 bench/peers/torch_train_bench.py MODEL_DIR [--batch 32] [--threads 2]
      [--iterations 5] [--warmup 2] [--memory-format channels_last|contiguous|best] [--json]

One step: training-mode forward (batch norm on batch statistics, moving statistics updated),
sparse softmax cross-entropy (mean over the batch) of the logits against random labels,
backward to every trainable variable, SGD with momentum 0.9 (lr 0.01). Inputs NHWC float32
[N, 224, 224, 3] in [0, 1) and labels are seeded and fixed. W untimed steps after the first,
then median/p90 of K timed steps. Prints `hubimg bench --json`'s keys (median_ms = one step).
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def measure(model_dir, batch, memory_format, iterations, warmup):
    start = time.perf_counter()
    model = torch_models.build(model_dir, training=True).to(memory_format=memory_format)
    load_ms = (time.perf_counter() - start) * 1e3
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    rng = np.random.default_rng(1234)
    h, w, c = model.input_shape
    x = torch.from_numpy(rng.random((batch, h, w, c), dtype=np.float32))
    labels = torch.from_numpy(rng.integers(0, 1000, size=batch))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        return loss

    start = time.perf_counter()
    step()
    first_ms = (time.perf_counter() - start) * 1e3
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return load_ms, first_ms, times


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--memory-format", choices=("channels_last", "contiguous", "best"),
                   default="best")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    formats = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
    names = list(formats) if args.memory_format == "best" else [args.memory_format]
    best = None
    per_format = {}
    for name in names:
        load_ms, first_ms, times = measure(
            args.model_dir, args.batch, formats[name], args.iterations, args.warmup
        )
        median = times[len(times) // 2]
        per_format[name] = median
        if best is None or median < best[0]:
            best = (median, name, load_ms, first_ms, times)
    median, name, load_ms, first_ms, times = best
    out = {
        "load_ms": load_ms,
        "first_call_ms": first_ms,
        "median_ms": median,
        "p90_ms": times[min(len(times) - 1, len(times) * 9 // 10)],
        "images_per_second": args.batch * 1000.0 / median,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "engine": "pytorch",
        "mode": "eager-train",
        "memory_format": name,
        "median_ms_per_format": per_format,
        "version": torch.__version__,
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"pytorch train step ({name}): median {median:.1f} ms, p90 {out['p90_ms']:.1f} ms, "
              f"{out['images_per_second']:.1f} images/s, peak RSS {out['peak_rss_mb']:.0f} MB "
              f"(per format: {per_format})")


if __name__ == "__main__":
    main()
