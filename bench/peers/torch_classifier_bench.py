#!/usr/bin/python3
"""PyTorch (CPU) timing of the consumer model's training (issue 11, deliver 9): the same work as
build/bench/classifier_bench.

  /usr/bin/python3 bench/peers/torch_classifier_bench.py MODEL_DIR --mode finetune|head
      [--batch 32] [--classes 5] [--optimizer adam|sgd] [--dropout 0.2] [--iterations 5]
      [--warmup 2] [--images 2000] [--threads 2] [--memory-format best|channels_last|contiguous]
      [--json]

MODEL_DIR: a feature-vector bench model with weights_manifest.json and its .npy dump
(`make_bench_models OUT --only mobilenet_v2 --feature-vector --dump-npy`), rebuilt by
torch_models.py. The head: Dropout(rate) and Linear(features, classes); loss = mean sparse
softmax cross-entropy; Adam (Keras defaults lr 1e-3, beta 0.9/0.999; eps as torch's
default 1e-8 — the cost does not depend on it) or SGD momentum 0.9 (lr 0.01).

  finetune  the base in training mode (batch norm on batch statistics, moving statistics
            updated), backward through it, the optimizer on every parameter; one seeded batch;
            W untimed steps after the first, median of K timed. Best memory format of the two.
  head      frozen base: every step computes the batch's features under torch.no_grad() with the
            base in eval mode (as Keras does without a cache: make_image_classifier recomputes
            them every epoch), then a head step. One epoch over `images` images in batches
            (a pool of 4 seeded batches used in turn); each epoch costs the same, so one is
            timed, after 2 untimed batches per memory format to pick the faster one.
Prints classifier_bench's JSON keys.
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402

FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def make_optimizer(kind, params):
    if kind == "adam":
        return torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999))
    return torch.optim.SGD(params, lr=0.01, momentum=0.9)


def finetune(args, fmt, pool, labels):
    start = time.perf_counter()
    base = torch_models.build(args.model_dir, training=True).to(memory_format=fmt)
    nf = base.expected_shapes[base.output_name][-1]
    head = nn.Linear(nf, args.classes)
    drop = nn.Dropout(args.dropout)
    params = [p for p in base.parameters() if p.requires_grad] + list(head.parameters())
    opt = make_optimizer(args.optimizer, params)
    load_ms = (time.perf_counter() - start) * 1e3

    def step(x):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(drop(base(x))), labels)
        loss.backward()
        opt.step()

    times = []
    first = 0.0
    for s in range(1 + args.warmup + args.iterations):
        t0 = time.perf_counter()
        step(pool[s % len(pool)])
        ms = (time.perf_counter() - t0) * 1e3
        if s == 0:
            first = ms
        if s > args.warmup:
            times.append(ms)
    times.sort()
    return load_ms, first, times


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--mode", choices=("finetune", "head"), required=True)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--classes", type=int, default=5)
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--memory-format", choices=("channels_last", "contiguous", "best"),
                   default="best")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    names = list(FORMATS) if args.memory_format == "best" else [args.memory_format]
    probe = torch_models.build(args.model_dir)
    h, w, c = probe.input_shape
    del probe
    pool = [torch.from_numpy(rng.random((args.batch, h, w, c), dtype=np.float32))
            for _ in range(4)]
    out = {"engine": "pytorch", "optimizer": args.optimizer, "batch": args.batch,
           "image_size": h, "classes": args.classes, "threads": torch.get_num_threads(),
           "version": torch.__version__}

    if args.mode == "finetune":
        labels = torch.from_numpy(rng.integers(0, args.classes, size=args.batch))
        best = None
        per_format = {}
        for name in names:
            load_ms, first, times = finetune(args, FORMATS[name], pool, labels)
            median = times[len(times) // 2]
            per_format[name] = median
            if best is None or median < best[0]:
                best = (median, name, load_ms, first, times)
        median, name, load_ms, first, times = best
        out.update(mode="finetune-step", load_ms=load_ms, first_step_ms=first, median_ms=median,
                   step_ms=times, images_per_second=args.batch * 1000.0 / median,
                   memory_format=name, median_ms_per_format=per_format)
    else:
        start = time.perf_counter()
        base = torch_models.build(args.model_dir).eval()
        nf = base.expected_shapes[base.output_name][-1]
        head = nn.Linear(nf, args.classes)
        drop = nn.Dropout(args.dropout)
        opt = make_optimizer(args.optimizer, list(head.parameters()))
        load_ms = (time.perf_counter() - start) * 1e3

        def step(x, y):
            with torch.no_grad():
                f = base(x)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(head(drop(f)), y)
            loss.backward()
            opt.step()

        # Pick the faster memory format on 2 untimed batches each (after one warm-up call).
        per_format = {}
        y0 = torch.from_numpy(rng.integers(0, args.classes, size=args.batch))
        for name in names:
            base = base.to(memory_format=FORMATS[name])
            step(pool[0], y0)
            t0 = time.perf_counter()
            for k in range(2):
                step(pool[k + 1], y0)
            per_format[name] = (time.perf_counter() - t0) * 1e3 / 2
        name = min(per_format, key=per_format.get)
        base = base.to(memory_format=FORMATS[name])
        steps = (args.images + args.batch - 1) // args.batch
        t0 = time.perf_counter()
        feature_ms = 0.0
        for s in range(steps):
            n = min(args.batch, args.images - s * args.batch)
            x = pool[s % len(pool)][:n]
            y = torch.from_numpy(rng.integers(0, args.classes, size=n))
            tf = time.perf_counter()
            with torch.no_grad():
                f = base(x)
            feature_ms += (time.perf_counter() - tf) * 1e3
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(head(drop(f)), y)
            loss.backward()
            opt.step()
        epoch_ms = (time.perf_counter() - t0) * 1e3
        out.update(mode="head-epoch", load_ms=load_ms, images=args.images,
                   steps_per_epoch=steps, epoch_ms=[epoch_ms], first_epoch_ms=epoch_ms,
                   first_epoch_feature_ms=feature_ms, cached_epoch_ms=epoch_ms,
                   median_ms=epoch_ms / steps, five_epochs_ms=5 * epoch_ms,
                   images_per_second_first_epoch=args.images * 1000.0 / epoch_ms,
                   images_per_second_cached=args.images * 1000.0 / epoch_ms,
                   memory_format=name, probe_ms_per_format=per_format)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out, indent=1 if args.json else None))


if __name__ == "__main__":
    main()
