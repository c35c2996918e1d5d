#!/usr/bin/env python3
"""Turns kernel_compare's JSON (--benchmark_out, with repetitions) into the markdown tables of
bench/README.md: per-shape GFLOP/s (median over repetitions) for every library, the winner,
and per-network totals weighted by how often each shape occurs.

usage: summarize_kernel_compare.py results.json [--peak 440] > tables.md
"""
import argparse
import collections
import json
import statistics

LIBS = ["onednn", "onednn_blocked", "xnnpack", "hubimg", "hubimg_fused", "reference"]
SPEED_LIBS = ["onednn", "xnnpack", "hubimg"]  # plain NHWC contenders


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--peak", type=float, default=440.0)
    ap.add_argument("--top", type=int, default=0,
                    help="print only the N layers with the most oneDNN time per network/batch")
    args = ap.parse_args()
    data = json.load(open(args.results))

    # (network, key, batch) -> lib -> list of per-repetition ms; plus counters
    times = collections.defaultdict(lambda: collections.defaultdict(list))
    info = {}
    impl = collections.defaultdict(dict)
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" or b.get("error_occurred"):
            continue
        network, key, batch, lib = b["run_name"].split("/")[:4]
        batch = int(batch[1:])
        # wall-clock with several threads, the calling thread's CPU time with one
        field = "real_time" if b["run_name"].endswith("/real_time") else "cpu_time"
        ms = b[field] * {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b["time_unit"]]
        times[(network, key, batch)][lib].append(ms)
        info[(network, key, batch)] = (b["gflop"], int(b["count"]))
        if b.get("label"):
            impl[(network, key, batch)][lib] = b["label"]

    present = {lib for libs in times.values() for lib, xs in libs.items() if xs}
    global LIBS
    LIBS = [lib for lib in LIBS if lib in present]

    def med(xs):
        return statistics.median(xs) if xs else None

    def spread(xs):
        if not xs or len(xs) < 2:
            return 0.0
        m = statistics.median(xs)
        return (max(xs) - min(xs)) / m * 100

    networks = []
    for (n, _, _) in times:
        if n not in networks:
            networks.append(n)

    print("## Totals per network (sum over layers of count x median time)\n")
    print("| network | batch | GFLOP | " + " | ".join(f"{l} ms" for l in LIBS) +
          " | best per layer ms | oneDNN % peak | hubimg % peak |")
    print("|---|---|---|" + "---|" * len(LIBS) + "---|---|---|")
    for n in networks:
        for batch in (1, 32):
            keys = [k for k in times if k[0] == n and k[2] == batch]
            if not keys:
                continue
            gflop = sum(info[k][0] * info[k][1] for k in keys)
            cells = []
            totals = {}
            for lib in LIBS:
                def layer_ms(k):
                    # MatMul has no blocked variant: it runs on plain oneDNN there too
                    if lib == "onednn_blocked" and not times[k][lib]:
                        return med(times[k]["onednn"])
                    return med(times[k][lib])
                if all(layer_ms(k) is not None for k in keys):
                    totals[lib] = sum(layer_ms(k) * info[k][1] for k in keys)
                    cells.append(f"{totals[lib]:.2f}")
                else:
                    cells.append("-")
            best = sum(min(med(times[k][l]) for l in SPEED_LIBS if times[k][l]) * info[k][1]
                       for k in keys)

            def pct(lib):
                if lib not in totals:
                    return "-"
                return f"{gflop / (totals[lib] * 1e-3) / args.peak * 100:.0f}%"

            print(f"| {n} | {batch} | {gflop:.2f} | " + " | ".join(cells) +
                  f" | {best:.2f} | {pct('onednn')} | {pct('hubimg')} |")
    print()

    title = f"Top {args.top} layers by oneDNN time" if args.top else "Per shape"
    print(f"## {title}: GFLOP/s (median of repetitions; spread = (max-min)/median of the "
          "winner's times)\n")
    for n in networks:
        print(f"### {n}\n")
        print("| shape | count | batch | GFLOP | % of net time | " + " | ".join(LIBS) +
              " | winner (NHWC) | spread |")
        print("|---|---|---|---|---|" + "---|" * len(LIBS) + "---|---|")

        def layer_time(k):
            return (med(times[k]["onednn"]) or 0) * info[k][1]

        keys = []
        for batch in (1, 32):
            of_batch = sorted((k for k in times if k[0] == n and k[2] == batch),
                              key=lambda k: -layer_time(k))
            keys += of_batch[:args.top] if args.top else of_batch
        net_time = {b: sum(layer_time(k) for k in times if k[0] == n and k[2] == b)
                    for b in (1, 32)}
        for k in keys:
            gflop, count = info[k]
            cells = []
            rates = {}
            for lib in LIBS:
                m = med(times[k][lib])
                if m is None:
                    cells.append("-")
                    continue
                rates[lib] = gflop / (m * 1e-3)
                cells.append(f"{rates[lib]:.1f}")
            contenders = {l: r for l, r in rates.items() if l in ("onednn", "xnnpack")}
            winner = max(contenders, key=contenders.get) if contenders else "-"
            sp = spread(times[k][winner]) if winner != "-" else 0
            share = layer_time(k) / net_time[k[2]] * 100 if net_time[k[2]] else 0
            print(f"| {k[1]} | {count} | {k[2]} | {gflop:.4f} | {share:.1f}% | " +
                  " | ".join(cells) +
                  f" | {winner} | {sp:.0f}% |")
        print()

    print("## oneDNN implementations chosen (plain NHWC)\n")
    chosen = collections.Counter()
    for k, libs in impl.items():
        if "onednn" in libs:
            chosen[(k[1].split("_")[0], k[2], libs["onednn"])] += 1
    for (kind, batch, name), c in sorted(chosen.items()):
        print(f"- {kind} batch {batch}: `{name}` x{c}")


if __name__ == "__main__":
    main()
