#!/usr/bin/python3
"""PyTorch (CPU) on a generated bench model, rebuilt from its manifest and .npy weights.

  /usr/bin/python3 bench/peers/torch_bench.py MODEL_DIR [--batch N] [--threads T]
      [--iterations K] [--warmup W] [--mode eager|frozen|ofi] [--memory-format F] [--json]

Prints the keys of `hubimg bench --json` (load_ms, first_call_ms, median_ms, p90_ms,
images_per_second, peak_rss_mb, batch, threads) plus engine, mode and version.

Modes:
  eager   the nn.Module under torch.inference_mode()
  frozen  torch.jit.freeze(torch.jit.trace(model).eval()): constants inlined, conv+batch-norm
          folded, conv+add/relu fused where PyTorch knows how
  ofi     torch.jit.optimize_for_inference on the frozen module (oneDNN weight prepacking and
          layouts where PyTorch judges it pays)
load_ms covers building the model from the manifest and, for frozen/ofi, tracing and freezing.

The input is NHWC float32 [N, 224, 224, 3] in [0, 1] (seeded), exactly what hubimg is given.
forward() starts with x.permute(0, 3, 1, 2), a free view that is already a channels_last
tensor; with --memory-format channels_last (the default) the weights are channels_last too and
no layout conversion happens anywhere. W untimed calls (default 2: TorchScript's profiling
executor specialises the graph during the first calls) follow the first call.
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def blas_library():
    """The BLAS shared library this process loaded (Debian's torch uses the system one)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "libblas.so" in path or "libopenblas" in path:
                    return os.path.realpath(path)
    except OSError:
        pass
    return "unknown"


def prepare(model_dir, mode, memory_format, example):
    model = torch_models.build(model_dir)
    model = model.to(memory_format=memory_format)
    if mode == "eager":
        return model
    with torch.no_grad():
        # Traced on one image (cheaper); nothing in the graph depends on the batch size.
        traced = torch.jit.trace(model, example[:1])
        frozen = torch.jit.freeze(traced.eval())
        if mode == "ofi":
            frozen = torch.jit.optimize_for_inference(frozen)
    return frozen


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--mode", choices=("eager", "frozen", "ofi"), default="frozen")
    p.add_argument(
        "--memory-format", choices=("channels_last", "contiguous"), default="channels_last"
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.batch < 1 or args.iterations < 1 or args.threads < 1:
        p.error("--batch, --iterations and --threads must be at least 1")

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    memory_format = (
        torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    )
    rng = np.random.default_rng(1234)
    x = torch.from_numpy(rng.random((args.batch, 224, 224, 3), dtype=np.float32))

    start = time.perf_counter()
    model = prepare(args.model_dir, args.mode, memory_format, x)
    load_ms = (time.perf_counter() - start) * 1e3

    with torch.inference_mode():
        start = time.perf_counter()
        y = model(x)
        first_ms = (time.perf_counter() - start) * 1e3
        if tuple(y.shape) != (args.batch, 1000):
            raise SystemExit(f"torch_bench: unexpected output shape {tuple(y.shape)}")
        for _ in range(args.warmup):
            model(x)
        times = []
        for _ in range(args.iterations):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    median = times[len(times) // 2]
    p90 = times[min(len(times) - 1, len(times) * 9 // 10)]
    out = {
        "load_ms": load_ms,
        "first_call_ms": first_ms,
        "median_ms": median,
        "p90_ms": p90,
        "images_per_second": args.batch * 1000.0 / median,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,  # KiB
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "engine": "pytorch",
        "mode": args.mode,
        "memory_format": args.memory_format,
        "version": torch.__version__,
        "blas": blas_library(),
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(
            f"pytorch {args.mode} ({args.memory_format}): load {load_ms:.1f} ms, "
            f"first call {first_ms:.1f} ms\nper batch of {args.batch}: median {median:.2f} ms, "
            f"p90 {p90:.2f} ms ({args.iterations} iterations)\n"
            f"{out['images_per_second']:.1f} images/s, peak RSS {out['peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
