#!/usr/bin/python3
"""Table and results.json for bench/run_peers.sh from its raw measurements.

  summarize.py --raw OUT/raw --models-dir out/models --out OUT [--config TEXT]

Raw files: r<rep>_<model>_b<batch>_<engine>.json (the JSON of `hubimg bench`, ort_bench.js or
torch_bench.py) and fma_peak.json. Per cell, each engine's images/s is the median over the
repetitions it ran in; "pytorch" is the best of the PyTorch modes (each mode's median first).
Fraction of peak = images/s * FLOPs/image (2 * MACs of conv, depthwise and dense layers, from
the manifest) / the all-threads fp32 FMA peak.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import manifest as manifest_lib  # noqa: E402

NAME = re.compile(r"^r(\d+)_(.+)_b(\d+)_((?:hubimg|onnxruntime|pytorch-[a-z]+)_t\d+)\.json$")


def family(variant):
    """hubimg_t2 -> hubimg, onnxruntime_t1 -> onnxruntime, pytorch-ofi_t2 -> pytorch."""
    return variant.split("_t")[0].split("-")[0]


def variant_label(variant):
    """pytorch-ofi_t2 -> "ofi, t2"; onnxruntime_t1 -> "t1"."""
    name, threads = variant.rsplit("_t", 1)
    mode = name.split("-", 1)[1] + ", " if "-" in name else ""
    return f"{mode}t{threads}"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raw", required=True)
    p.add_argument("--models-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--config", default="")
    args = p.parse_args()

    with open(os.path.join(args.raw, "fma_peak.json")) as f:
        peak = json.load(f)
    peak_gflops = peak["gflops_all_threads"]

    runs = {}  # (model, batch) -> engine -> [result, ...]
    for path in sorted(glob.glob(os.path.join(args.raw, "r*_*.json"))):
        m = NAME.match(os.path.basename(path))
        if not m:
            continue
        rep, model, batch, engine = int(m[1]), m[2], int(m[3]), m[4]
        with open(path) as f:
            result = json.load(f)
        result["rep"] = rep
        runs.setdefault((model, batch), {}).setdefault(engine, []).append(result)

    flops = {}
    cells = []
    for (model, batch), engines in sorted(runs.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if model not in flops:
            flops[model] = manifest_lib.flops_per_image(
                manifest_lib.load(os.path.join(args.models_dir, model))
            )
        # Each variant (engine, mode, threads): median over its repetitions; each engine
        # family: its best variant.
        variants = {
            e: statistics.median(r["images_per_second"] for r in rs) for e, rs in engines.items()
        }
        med, best_variant = {}, {}
        for v, ips in variants.items():
            fam = family(v)
            if fam not in med or ips > med[fam]:
                med[fam], best_variant[fam] = ips, v
        cell = {
            "model": model,
            "batch": batch,
            "gflop_per_image": flops[model] / 1e9,
            "images_per_second": med,
            "best_variant": best_variant,
            "variants_images_per_second": variants,
            "repetitions": {e: len(rs) for e, rs in engines.items()},
        }
        peers = {e: med[e] for e in ("onnxruntime", "pytorch") if e in med}
        if peers:
            best_peer = max(peers, key=peers.get)
            cell["best_peer"] = best_peer
            if "hubimg" in med:
                cell["hubimg_over_best_peer"] = med["hubimg"] / peers[best_peer]
        cell["fraction_of_peak"] = {
            e: v * flops[model] / (peak_gflops * 1e9) for e, v in med.items()
        }
        cells.append(cell)

    def fmt_ips(v):
        return "—" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")

    def fmt_pct(v):
        return "—" if v is None else f"{100 * v:.1f}%"

    date = datetime.date.today().isoformat()
    lines = [
        f"Measured {date} on {cpu_model()} ({os.cpu_count()} cores); fp32 FMA peak "
        f"{peak_gflops:.0f} GFLOP/s on {peak['threads']} threads ({peak['isa']}, "
        f"{peak['gflops_1_thread']:.0f} on 1; by CPU time).",
        f"Config: {args.config}" if args.config else "",
        "",
        "| model | batch | GFLOP/img | hubimg img/s | ONNX Runtime img/s | PyTorch img/s "
        "| hubimg / best peer | hubimg % peak | ORT % peak | PyTorch % peak |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        ips, frac = c["images_per_second"], c["fraction_of_peak"]
        ratio = c.get("hubimg_over_best_peer")

        def with_variant(fam):
            text = fmt_ips(ips.get(fam))
            return text + f" ({variant_label(c['best_variant'][fam])})" if fam in ips else text

        lines.append(
            f"| {c['model']} | {c['batch']} | {c['gflop_per_image']:.2f} "
            f"| {fmt_ips(ips.get('hubimg'))} | {with_variant('onnxruntime')} "
            f"| {with_variant('pytorch')} "
            f"| {'—' if ratio is None else f'{ratio:.3f}'} "
            f"| {fmt_pct(frac.get('hubimg'))} | {fmt_pct(frac.get('onnxruntime'))} "
            f"| {fmt_pct(frac.get('pytorch'))} |"
        )
    variants = sorted({v for c in cells for v in c["variants_images_per_second"]})
    variants = [v for v in variants if family(v) != "hubimg"]
    if variants:
        lines += [
            "",
            "Every peer variant (engine-mode, threads; img/s, median over repetitions):",
            "",
            "| model | batch | " + " | ".join(v.replace("_t", ", t") for v in variants) + " |",
            "|---|---:|" + "---:|" * len(variants),
        ]
        for c in cells:
            vals = " | ".join(fmt_ips(c["variants_images_per_second"].get(v)) for v in variants)
            lines.append(f"| {c['model']} | {c['batch']} | {vals} |")
    timeouts = sorted(os.path.basename(t)[: -len(".timeout")]
                      for t in glob.glob(os.path.join(args.raw, "*.timeout")))
    if timeouts:
        lines += ["", "Timed out (then skipped in later repetitions): " + ", ".join(timeouts)]
    reps = sorted({n for c in cells for n in c["repetitions"].values()})
    if len(reps) > 1:
        lines += ["", "Repetitions per cell differ (see results.json: cells[].repetitions)."]
    table = "\n".join(l for l in lines if l is not None)
    print(table)

    raw = []
    for (model, batch), engines in sorted(runs.items()):
        for engine, rs in sorted(engines.items()):
            for r in rs:
                raw.append({"model": model, "batch": batch, "engine": engine, **r})
    results = {
        "date": date,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "config": args.config,
        "fma_peak": peak,
        "cells": cells,
        "timeouts": timeouts,
        "raw": raw,
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table + "\n")
    print(f"\n(raw: {args.raw}; {os.path.join(args.out, 'results.json')}, "
          f"{os.path.join(args.out, 'table.md')})")


if __name__ == "__main__":
    main()
