#!/usr/bin/env python3
"""torch.einsum on the einsums of one ViT-B/16 attention layer (bench/attention_bench.cc's
shapes and output format: one JSON object per equation)."""
import argparse, json, time

import torch


def vit_b16_attention(b):
    t, h, d, w = 197, 12, 64, 768
    return [
        ("qkv_projection", "abc,cde->abde", [(b, t, w), (w, h, d)], b * t * w * h * d),
        ("scores", "aecd,abcd->acbe", [(b, t, h, d), (b, t, h, d)], b * h * t * t * d),
        ("context", "acbe,aecd->abcd", [(b, h, t, t), (b, t, h, d)], b * h * t * t * d),
        ("output_projection", "abcd,cde->abe", [(b, t, h, d), (h, d, w)], b * t * h * d * w),
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iterations", type=int, default=10)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, equation, shapes, macs in vit_b16_attention(a.batch):
            inputs = [torch.rand(s, generator=g) * 2 - 1 for s in shapes]
            times = []
            for i in range(a.iterations + 1):
                start = time.perf_counter()
                torch.einsum(equation, *inputs)
                if i > 0:
                    times.append((time.perf_counter() - start) * 1e3)
            times.sort()
            median = times[len(times) // 2]
            print(json.dumps({"engine": "pytorch", "name": name, "equation": equation,
                              "batch": a.batch, "threads": a.threads, "median_ms": median,
                              "gflops": 2 * macs / (median * 1e6)}))


if __name__ == "__main__":
    main()
