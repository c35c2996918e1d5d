#!/usr/bin/python3
"""hubimg's gradients against PyTorch autograd, per tensor, on one bench network.

  /usr/bin/python3 bench/peers/check_grads.py MODELS_DIR MODEL --work DIR [--hubimg build/hubimg]
      [--batch 2] [--seed 0] [--inference] [--tol 1e-3] [--threads 2] [--reuse] [--no-census]

One seeded batch (torch_grad.py: inputs uniform [0,1) NHWC, cotangent standard normal on the
logits) goes to
  torch32  torch_grad.py in float32                                  DIR/torch/
  F        torch_grad.py --float64 (weights, inputs, cotangent exact)  DIR/torch/float64/
  hubimg   `hubimg grad MODEL --input inputs=.. --cotangent output_0=.. [--training]
           --dump-inputs-of Relu,Relu6,MaxPool`                        DIR/hubimg/
  P        float64 again, but every ReLU / ReLU6 branch and max-pool pick taken from hubimg's
           float32 forward pass (its dumped ReLU/max-pool inputs; --pin torch32: from PyTorch's
           float32 forward instead)                                  DIR/torch/float64_pinned/
and every tensor (output_0, each trainable variable's gradient, the input gradient, the moving
statistics after the call) is compared as e = max|a - b| / max|b|.

Criterion, per tensor: e(hubimg, P) <= tol (1e-3). Exit status 1 when a tensor fails.

Why P and not F. The gradient of a ReLU network is discontinuous where a ReLU input (or ReLU6 input
at 0 or 6, or a max-pool runner-up) crosses its branch point. Units whose float64 value lies within
float32's forward error of a branch point go to the other side in float32, and the gradient
then differs by that unit's whole backward signal: one such unit moves a late layer's kernel
gradient by several percent (ResNet-50: PyTorch float32 vs F up to 9%). That is a property of the
float32 forward pass, not of a gradient rule. P is the exact gradient on the linear piece that
hubimg's float32 forward lands on, so e(hubimg, P) measures rounding and the gradient rules, not
which side of a branch point a unit's float32 sum happened to round to. (With --pin torch32, P
follows PyTorch's float32 branches: PyTorch float32 vs that P is <= 6.5e-5 on every tensor of the
three networks, and hubimg fails by a few percent on the tensors downstream of the one or two
units its own convolution sums round to the other side.) Networks without branches
(EfficientNet-B0: swish, sigmoid) have P = F.

Gradients that are zero in exact arithmetic (a convolution bias feeding only a training-mode batch
norm; a batch norm's beta whose every path reaches a training-mode batch norm through 1x1
convolutions and adds; found as |F| <= 1e-4 * |torch32|) are rounding noise in every engine;
they pass when max|hubimg| <= tol * S, S = max|gradient| of the same batch norm's gamma (for a
beta) or of the consumer batch norm's beta (for a bias).

The branch census (float64 and float32 forward passes of PyTorch, hooks on every ReLU, ReLU6 and
max pool) counts units whose input is within 1e-4 * (layer RMS) of a branch point, units within
PyTorch's float32 error of it, and units float32 actually flipped (max pool: windows whose argmax
flipped). Table and census: DIR/check_grads.json.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import manifest as manifest_lib  # noqa: E402
import torch_models  # noqa: E402


def rel_error(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / scale


def load_result(d):
    """{tensor key: array} from a directory in `hubimg grad`'s layout."""
    out = {"output/output_0": np.load(os.path.join(d, "output_0.npy"))}
    for e in json.load(open(os.path.join(d, "gradients.json"))):
        out["gradient/" + e["variable"]] = np.load(os.path.join(d, e["file"]))
    out["input_gradient/inputs"] = np.load(os.path.join(d, "input_gradients", "inputs.npy"))
    for e in json.load(open(os.path.join(d, "variables_after.json"))):
        out["after/" + e["variable"]] = np.load(os.path.join(d, e["file"]))
    return out


def run(cmd):
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


# ---------------------------------------------------------------------------------------------
# Branch census


def _hooked_forward(model_dir, inputs, training, dtype, record):
    """One forward pass; record(kind, key, module, input tensor) for every ReLU/ReLU6/max pool."""
    model = torch_models.build(model_dir, training=training).to(dtype)
    hooks = []
    for key, mod in model.mods.items():
        if isinstance(mod, (nn.ReLU, nn.ReLU6, nn.MaxPool2d)):
            kind = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.MaxPool2d: "maxpool"}[type(mod)]

            def hook(m, args, out, kind=kind, key=key):
                record(kind, key, m, args[0].detach())

            hooks.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        model(torch.from_numpy(inputs).to(dtype))
    for h in hooks:
        h.remove()


def _pool_windows(m, x):
    """[N, C, L, k*k] window values of max pool `m` (padding as -inf)."""
    k, s, p = m.kernel_size, m.stride, m.padding
    k = k if isinstance(k, int) else k[0]
    s = s if isinstance(s, int) else s[0]
    p = p if isinstance(p, int) else p[0]
    if p:
        x = F.pad(x, (p, p, p, p), value=float("-inf"))
    n, c = x.shape[:2]
    w = x.unfold(2, k, s).unfold(3, k, s)  # N, C, OH, OW, k, k
    return w.reshape(n, c, -1, k * k)


def census(model_dir, inputs, training, rel=1e-4):
    """Per branch layer: units near a branch point in float64 and flips of float32."""
    ref = {}

    def keep(kind, key, m, x):
        ref[key] = (kind, m, x.clone())

    _hooked_forward(model_dir, inputs, training, torch.float64, keep)
    rows = []

    def compare(kind, key, m, x32):
        kind, m, x = ref.pop(key)
        x32 = x32.to(torch.float64)
        rms = float(x.pow(2).mean().sqrt())
        err = float((x32 - x).abs().max())
        row = {"layer": key, "kind": kind, "units": int(x.numel()), "rms": rms,
               "f32_max_abs_error": err}
        if kind in ("relu", "relu6"):
            points = [0.0] + ([6.0] if kind == "relu6" else [])
            near = tight = flips = 0
            for b in points:
                d = (x - b).abs()
                near += int((d < rel * rms).sum())
                tight += int((d <= err).sum())
                flips += int(((x32 > b) != (x > b)).sum())
            row.update(near=near, within_f32_error=tight, flips=flips)
        else:
            w = _pool_windows(m, x)
            w32 = _pool_windows(m, x32)
            top2 = w.topk(2, dim=-1).values
            gap = top2[..., 0] - top2[..., 1]
            live = top2[..., 0] > 0  # a tie of zeros after a ReLU routes nothing
            row["near"] = int(((gap < rel * rms) & live).sum())
            row["within_f32_error"] = int(((gap <= 2 * err) & live).sum())
            flipped = (w.argmax(-1) != w32.argmax(-1)) & live
            row["flips"] = int(flipped.sum())
        rows.append(row)

    _hooked_forward(model_dir, inputs, training, torch.float32, compare)
    return rows


# ---------------------------------------------------------------------------------------------
# Float64 reference pinned to float32's branches


class PinnedReLU(nn.Module):
    """ReLU / ReLU6 whose branch per unit is fixed: y = x where `mid`, 6 where `hi`, else 0."""

    def __init__(self, mid, hi=None):
        super().__init__()
        self.mid, self.hi = mid, hi

    def forward(self, x):
        y = x * self.mid.to(x.dtype)
        if self.hi is not None:
            y = y + 6.0 * self.hi.to(x.dtype)
        return y


class PinnedMaxPool(nn.Module):
    """Max pool that takes the element float32's pool picked in each window."""

    def __init__(self, indices):
        super().__init__()
        self.indices = indices

    def forward(self, x):
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)
        idx = self.indices.reshape(n, c, -1)
        return flat.gather(2, idx).reshape(self.indices.shape)


def _pin(kind, m, x):
    """The pinned module for a ReLU/ReLU6/max pool `m` whose float32 input was `x` (NCHW)."""
    if kind == "relu":
        return PinnedReLU(x > 0)
    if kind == "relu6":
        return PinnedReLU((x > 0) & (x < 6), x >= 6)
    _, idx = F.max_pool2d(x, m.kernel_size, m.stride, m.padding, return_indices=True)
    return PinnedMaxPool(idx)


def torch32_pins(model_dir, inputs, training):
    """Pins from PyTorch's float32 forward pass."""
    pins = {}

    def record(kind, key, m, x):
        pins[key] = _pin(kind, m, x)

    _hooked_forward(model_dir, inputs, training, torch.float32, record)
    return pins


def hubimg_pins(model_dir, inputs, training, hubimg_dir):
    """Pins from hubimg's float32 forward pass: the ReLU/ReLU6/MaxPool inputs `hubimg grad
    --dump-inputs-of` wrote (NHWC; a max pool's input carries the zero padding that PyTorch's
    module applies itself, which is cut off here)."""
    model = torch_models.build(model_dir, training=training)
    kinds = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.MaxPool2d: "maxpool"}
    ops = {"relu": "Relu", "relu6": "Relu6", "maxpool": "MaxPool"}
    pins = {}
    for e in json.load(open(os.path.join(hubimg_dir, "node_inputs.json"))):
        if e["node"].startswith("gradients/"):
            continue
        key = e["node"].split("/", 1)[0].replace(".", "_")
        m = model.mods[key] if key in model.mods else None
        kind = kinds.get(type(m))
        if kind is None or ops[kind] != e["op"]:
            raise SystemExit(f"check_grads: hubimg node {e['node']} ({e['op']}) has no PyTorch "
                             f"counterpart (module {key!r}: {type(m).__name__})")
        if key in pins:
            raise SystemExit(f"check_grads: two hubimg {e['op']} nodes for module {key!r}")
        x = torch.from_numpy(np.load(os.path.join(hubimg_dir, e["inputs"][0])))
        x = x.permute(0, 3, 1, 2)
        if kind == "maxpool":
            p = m.padding if isinstance(m.padding, int) else m.padding[0]
            if p:
                x = x[:, :, p:-p, p:-p]
        pins[key] = _pin(kind, m, x.contiguous())
    missing = [k for k, m in model.mods.items() if type(m) in kinds and k not in pins]
    if missing:
        raise SystemExit(f"check_grads: hubimg dumped no input for {missing[:5]}")
    return pins


def pinned_vjp(model_dir, inputs, cotangent, training, pins):
    """torch_grad.vjp in float64 with every ReLU/ReLU6 branch and max-pool pick taken from
    `pins`: the exact gradient of the network on the linear piece a float32 forward lands on."""
    import torch_grad

    build = torch_models.build

    def pinned_build(*a, **kw):
        model = build(*a, **kw)
        for key, mod in pins.items():
            model.mods[key] = mod
        return model

    torch_models.build = pinned_build
    try:
        return torch_grad.vjp(model_dir, inputs, cotangent, training, torch.float64, True)
    finally:
        torch_models.build = build


# ---------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models_dir")
    p.add_argument("model")
    p.add_argument("--work", required=True, help="directory for inputs, results and the table")
    p.add_argument("--hubimg", default=os.path.join(HERE, "..", "..", "build", "hubimg"))
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inference", action="store_true", help="training=False (moving statistics)")
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reuse", action="store_true", help="keep results already in --work")
    p.add_argument("--no-census", action="store_true")
    p.add_argument("--show", type=int, default=8, help="table rows (worst first)")
    p.add_argument("--pin", choices=("hubimg", "torch32"), default="hubimg",
                   help="whose float32 forward pass fixes P's ReLU branches and max-pool picks")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = os.path.join(args.models_dir, args.model)
    manifest = manifest_lib.load(model_dir)
    training = not args.inference
    work = args.work
    os.makedirs(work, exist_ok=True)
    tg = os.path.join(HERE, "torch_grad.py")

    d32 = os.path.join(work, "torch")
    if not (args.reuse and os.path.exists(os.path.join(d32, "float64", "gradients.json"))):
        run([sys.executable, "-W", "ignore", tg, args.models_dir, args.model, "--out", d32,
             "--batch", str(args.batch), "--seed", str(args.seed), "--float64",
             "--threads", str(args.threads)] + ([] if training else ["--inference"]))
    inputs = os.path.join(d32, "inputs.npy")
    cotangent = os.path.join(d32, "cotangent.npy")
    dh = os.path.join(work, "hubimg")
    if not (args.reuse and os.path.exists(os.path.join(dh, "node_inputs.json"))):
        run([args.hubimg, "grad", model_dir, "--input", "inputs=" + inputs,
             "--cotangent", "output_0=" + cotangent, "--output", dh,
             "--dump-inputs-of", "Relu,Relu6,MaxPool"]
            + (["--training"] if training else []))
    dp = os.path.join(work, "torch", "float64_pinned_" + args.pin)
    if not (args.reuse and os.path.exists(os.path.join(dp, "gradients.json"))):
        import torch_grad

        print(f"+ float64 vjp pinned to {args.pin}'s float32 branches -> {dp}", flush=True)
        x = np.load(inputs)
        pins = (hubimg_pins(model_dir, x, training, dh) if args.pin == "hubimg"
                else torch32_pins(model_dir, x, training))
        logits, grads, ig, after = pinned_vjp(model_dir, x, np.load(cotangent), training, pins)
        order = [v["name"] for v in manifest["variables"] if v["trainable"]]
        after_order = [v["name"] for v in manifest["variables"] if v["name"] in after]
        torch_grad.write_result(dp, logits, grads, ig, after, order, after_order)

    r64 = load_result(os.path.join(d32, "float64"))
    rp = load_result(dp)
    r32 = load_result(d32)
    rh = load_result(dh)
    if list(rh) != list(r64):
        missing = sorted(set(r64) ^ set(rh))
        raise SystemExit(f"check_grads: tensor lists differ (order or names): {missing[:5]}")

    # Gradients that are zero in exact arithmetic: torch_grad.py's list (a convolution bias feeding
    # only a training-mode batch norm) and any other gradient whose float64 value is below 1e-4 of
    # float32's (e.g. a project batch norm's beta when every path from it reaches a training-mode
    # batch norm through 1x1 convolutions and adds, which remove a per-channel constant).
    exact_zero = set(json.load(open(os.path.join(d32, "torch_grad.json")))["exact_zero_gradients"])
    for key, ref in r64.items():
        if key.startswith("gradient/") and ref.size:
            if float(np.max(np.abs(ref))) <= 1e-4 * float(np.max(np.abs(r32[key]))):
                exact_zero.add(key.split("/", 1)[1])
    # The scale such a gradient is judged on: the batch norm's gamma gradient (for its beta), the
    # consumer batch norm's beta gradient (for a convolution bias).
    layers = manifest["layers"]
    zero_scale = {}
    for l in layers:
        if l["type"] != "BatchNormalization":
            continue
        v = l["variables"]
        zero_scale[v["beta"]] = v["gamma"]
        src = next((x for x in layers if x["name"] == l["inputs"][0]), None)
        if src is not None and "bias" in src.get("variables", {}):
            zero_scale[src["variables"]["bias"]] = v["beta"]

    rows = []
    for key, ref in rp.items():
        name = key.split("/", 1)[1]
        row = {"tensor": key, "hubimg": rel_error(rh[key], ref),
               "torch32": rel_error(r32[key], ref),
               "hubimg_vs_float64": rel_error(rh[key], r64[key]),
               "torch32_vs_float64": rel_error(r32[key], r64[key])}
        if key.startswith("gradient/") and name in exact_zero:
            other = rp.get("gradient/" + zero_scale.get(name, ""), None)
            scale = float(np.max(np.abs(other))) if other is not None else 0.0
            h_abs = float(np.max(np.abs(rh[key])))
            t_abs = float(np.max(np.abs(r32[key])))
            row.update(exact_zero=True, hubimg_max_abs=h_abs, torch32_max_abs=t_abs,
                       scale=scale, ok=h_abs <= args.tol * scale)
        else:
            row.update(exact_zero=False, ok=row["hubimg"] <= args.tol)
        rows.append(row)

    result = {"model": args.model, "batch": args.batch, "seed": args.seed,
              "training": training, "tol": args.tol, "tensors": rows}
    if not args.no_census:
        c = census(model_dir, np.load(inputs), training)
        tot = {f: sum(r[f] for r in c) for f in ("units", "near", "within_f32_error", "flips")}
        pools = [r for r in c if r["kind"] == "maxpool"]
        result["census"] = {"layers": c, "total": tot,
                            "maxpool_flips": sum(r["flips"] for r in pools)}
    json.dump(result, open(os.path.join(work, "check_grads.json"), "w"), indent=1)

    # -- report
    normal = [r for r in rows if not r["exact_zero"]]
    zeros = [r for r in rows if r["exact_zero"]]
    bad = [r for r in rows if not r["ok"]]
    tag = (f"{args.model} batch {args.batch} seed {args.seed} "
           f"{'training' if training else 'inference'}")
    print(f"\n{tag}: e = max|a-b|/max|b|; reference P = PyTorch float64 with "
          f"{args.pin}'s float32 branches, "
          f"F = plain PyTorch float64; pass: e(hubimg, P) <= {args.tol:g}")
    print(f"{'tensor':50s} {'hub-P':>8s} {'t32-P':>8s} {'hub-F':>8s} {'t32-F':>8s}")

    def line(r):
        print(f"{r['tensor'][:50]:50s} {r['hubimg']:8.1e} {r['torch32']:8.1e} "
              f"{r['hubimg_vs_float64']:8.1e} {r['torch32_vs_float64']:8.1e} "
              f"{'ok' if r['ok'] else 'FAIL'}")

    special = ("output/output_0", "input_gradient/inputs")
    for r in sorted(normal, key=lambda r: -r["hubimg"])[: args.show]:
        if r["tensor"] not in special:
            line(r)
    for key in special:
        line(next(r for r in rows if r["tensor"] == key))
    for name, f in (("hub-P", "hubimg"), ("t32-P", "torch32"), ("hub-F", "hubimg_vs_float64"),
                    ("t32-F", "torch32_vs_float64")):
        v = np.array([r[f] for r in normal])
        w = max(normal, key=lambda r: r[f])
        print(f"  {name}: max {v.max():.2e} ({w['tensor']}), median {np.median(v):.1e}, "
              f"{int((v > args.tol).sum())} of {len(v)} tensors > {args.tol:g}")
    if zeros:
        worst = max(zeros, key=lambda r: r["hubimg_max_abs"] / max(r["scale"], 1e-300))
        print(f"  {len(zeros)} gradients zero in exact arithmetic: worst max|hubimg| / scale "
              f"{worst['hubimg_max_abs'] / max(worst['scale'], 1e-300):.1e} ({worst['tensor']}; "
              f"torch32 {worst['torch32_max_abs'] / max(worst['scale'], 1e-300):.1e}); "
              f"{sum(not r['ok'] for r in zeros)} fail")
    if "census" in result:
        t = result["census"]["total"]
        print(f"  branch census ({t['units']} ReLU/ReLU6 inputs and max-pool windows): "
              f"{t['near']} within 1e-4*RMS of a branch point in float64, "
              f"{t['within_f32_error']} within PyTorch's float32 error, {t['flips']} flipped "
              f"by PyTorch float32 (max pool: {result['census']['maxpool_flips']})")
    print(f"{tag}: {'PASS' if not bad else 'FAIL'} ({len(bad)} of {len(rows)} tensors fail)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
