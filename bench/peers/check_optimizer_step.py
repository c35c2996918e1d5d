#!/usr/bin/python3
"""One optimizer step of hubimg's consumer model against PyTorch doing the same step.

  /usr/bin/python3 bench/peers/check_optimizer_step.py --work DIR
      [--driver build/bench/optimizer_step] [--optimizers sgd adam] [--tol 1e-4]
      [--threads 2] [--reuse] [--driver-args "..."]

For each optimizer, `build/bench/optimizer_step DIR/<optimizer> --optimizer <optimizer>`
(bench/optimizer_step.cc) writes a zoo network (default MobileNetV2 alpha 0.35 as a feature
vector, 32x32 input, batch 16) with its weights_manifest.json, one batch (images, labels), every variable
before the step (batch-norm variables and the head bias moved off their initial values), the
gradients, every variable after ImageClassifier::train_step and the optimizer's slots. The
consumer model: hub layer trainable (batch norm in training mode on batch statistics, moving
statistics updated with the call's batch_norm_momentum argument), Dropout(0), Dense(classes);
loss = mean sparse softmax cross-entropy with label smoothing + l2 * sum(kernel^2) on the head
kernel + the base's regularization losses (base_l2 * sum(k^2) over every Conv2D kernel).

PyTorch side (independent: it reads only the manifest, step.json and the initial .npy):
  network    torch_models.build(DIR/<opt>/base, training=True), every variable replaced by the
             dumped initial value, every BatchNorm2d's momentum set to 1 - batch_norm_momentum
             (computed in float32: 0.99 -> 0.01; PyTorch's running average with its unbiased
             variance is TF's update, see torch_models.py)
  head       logits = features @ kernel + bias (kernel [F, C] as Keras stores it)
  loss       F.cross_entropy(logits, labels, label_smoothing=s) (the same mixture as Keras:
             y = onehot * (1 - s) + s / C) + l2 * sum(kernel^2) + base_l2 * sum over */kernel
  gradients  autograd, float32 (and float64 for the reference F below)
  update     Keras's rules written out in NumPy (float64 arithmetic on PyTorch's float32
             gradients, rounded to float32), from zero slots, t = 1:
               SGD   v = momentum * v - lr * g;  w += v
               Adam  m = (1 - b1) * g;  v = (1 - b2) * g^2;
                     w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
             Cross-check with torch.optim on the same gradients: torch.optim.SGD(lr, momentum)
             keeps buf = momentum * buf + g and does w -= lr * buf, i.e. Keras's v = -lr * buf
             while lr is constant (equal for any number of steps at a constant lr, and for
             one step from zero slots always); torch.optim.Adam puts eps outside the bias
             correction of v (w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps_t)),
             so eps_t = eps / sqrt(1 - b2^t) gives Keras's step — exact for t = 1 only (the
             conversion depends on t), which is the step checked here.

Criterion (per variable after the step, trainable ones and the moving statistics):
e = max|hubimg - PyTorch| / max|PyTorch| <= tol (1e-4); the maximum over tensors is reported.
Trainable variables also need e_rule <= tol: hubimg's new value against Keras's rule applied in
NumPy to hubimg's own dumped gradients (the optimizer alone, independent of the network).

SGD's step is linear in the gradient, so e covers every element. Adam's first step is
lr * g / (|g| + eps / sqrt(1 - b2)), i.e. ~lr * sign(g) once |g| >> 3e-6: where a gradient
element is within float32 rounding of zero, its sign (and the step, +-lr) is decided by
rounding, in any float32 engine (PyTorch float32 against float64 differs there by as much as
hubimg does). For Adam, e is therefore taken over the elements whose step float32 determines:
an element is left out when moving its gradient by u = max(10 x PyTorch's own float32 error
there, PyTorch's largest float32 error in the tensor) changes the step by more than
tol * max|PyTorch|. How many elements that leaves out, and e over all elements, are printed.
Variables whose gradient is zero in exact arithmetic (max|g float64| <= 1e-4 * max|g float32|:
the beta of a batch norm whose every path reaches a training-mode batch norm through 1x1
convolutions and adds — the batch mean removes a per-channel constant) are rounding noise in
every engine: SGD moves them by lr * noise (inside the criterion like any tensor); for Adam they
pass when both engines moved them by at most lr * (1 + tol) (the exact step leaves them alone).

Batch size: at 32x32, MobileNetV2's last blocks see 1x1 maps, so their batch norms normalize
over `batch` values per channel. With batch 4 that is ill-conditioned in float32 (PyTorch float32
against float64 differs by 2e-3 to 3e-2 in the SGD step over seeds 1-3: no two float32 engines
can agree to 1e-4), so the driver's default is batch 16 (2e-5 to 3e-3).

Diagnostics per tensor: the gradient's error against hubimg's, the error of the step alone
(max|dw_hub - dw_torch| / max|dw_torch|), PyTorch float32 against float64, the torch.optim
cross-check, and the optimizer slots. Table: DIR/check_optimizer_step.json. Exit status 1 when
a check fails.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import torch_models  # noqa: E402


def rel_error(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / scale


def load_dir(d, variables):
    return {v["name"]: np.load(os.path.join(d, v["file"])) for v in variables}


def torch_step_gradients(work, cfg, initial, dtype):
    """PyTorch's forward/backward of the consumer model. Returns ({name: grad}, {name: moving
    statistic after the call}, loss) as numpy arrays of `dtype`, TF layouts."""
    model = torch_models.build(os.path.join(work, "base"), training=True).to(dtype)
    f = float(np.float32(1.0) - np.float32(cfg["batch_norm_momentum"]))
    for mod in model.mods.values():
        if isinstance(mod, nn.BatchNorm2d):
            mod.momentum = f
    base_vars = model.tf_variables()
    missing = [v.name for v in base_vars if v.name not in initial]
    unused = [n for n in initial if not n.startswith("dense/")
              and n not in {v.name for v in base_vars}]
    if missing or unused:
        raise SystemExit(f"check_optimizer_step: variables missing from the dump {missing[:5]}, "
                         f"dumped but not in the PyTorch network {unused[:5]}")
    with torch.no_grad():
        for v in base_vars:
            v.to_tf(v.tensor).copy_(torch.from_numpy(initial[v.name]).to(dtype))
    kernel = torch.from_numpy(initial["dense/kernel"]).to(dtype).requires_grad_(True)
    bias = torch.from_numpy(initial["dense/bias"]).to(dtype).requires_grad_(True)
    x = torch.from_numpy(np.load(os.path.join(work, "images.npy"))).to(dtype)
    y = torch.from_numpy(np.load(os.path.join(work, "labels.npy")).astype(np.int64))

    features = model(x)
    if cfg["dropout_rate"] != 0:
        raise SystemExit("check_optimizer_step: the comparison runs with dropout rate 0")
    logits = features @ kernel + bias
    loss = F.cross_entropy(logits, y, label_smoothing=cfg["label_smoothing"])
    loss = loss + cfg["l2"] * kernel.pow(2).sum()
    for v in base_vars:
        if v.trainable and v.name.endswith("/kernel"):
            loss = loss + cfg["base_l2"] * v.tensor.pow(2).sum()
    loss.backward()
    grads = {"dense/kernel": kernel.grad.numpy().copy(), "dense/bias": bias.grad.numpy().copy()}
    after = {}
    for v in base_vars:
        if v.trainable:
            g = v.tensor.grad if v.tensor.grad is not None else torch.zeros_like(v.tensor)
            grads[v.name] = v.to_tf(g).detach().numpy().copy()
        else:
            after[v.name] = v.to_tf(v.tensor).detach().numpy().copy()
    return grads, after, float(loss)


def keras_update(kind, opt, w, g):
    """One step from zero slots with Keras's rules in float64; returns (w', {slot: value})."""
    w = w.astype(np.float64)
    g = g.astype(np.float64)
    lr = opt["learning_rate"]
    if kind == "sgd":
        v = opt["momentum"] * 0.0 - lr * g
        return (w + v).astype(np.float32), {"momentum": v}
    b1, b2, eps, t = opt["beta_1"], opt["beta_2"], opt["epsilon"], 1
    m = (g - 0.0) * (1 - b1)
    v = (g * g - 0.0) * (1 - b2)
    step = lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    return (w - step).astype(np.float32), {"m": m, "v": v}


def adam_step(opt, g):
    """Keras's first Adam step (t = 1, zero slots) for gradient g, in float64: w -= this."""
    b1, b2, eps, lr = opt["beta_1"], opt["beta_2"], opt["epsilon"], opt["learning_rate"]
    m = g * (1 - b1)
    v = g * g * (1 - b2)
    return lr * np.sqrt(1 - b2) / (1 - b1) * m / (np.sqrt(v) + eps)


def torch_optim_update(kind, opt, initial, grads, names):
    """The same step with torch.optim (float32), Adam's eps converted for t = 1."""
    params = [torch.nn.Parameter(torch.from_numpy(initial[n].copy())) for n in names]
    for p, n in zip(params, names):
        p.grad = torch.from_numpy(grads[n].copy())
    if kind == "sgd":
        o = torch.optim.SGD(params, lr=opt["learning_rate"], momentum=opt["momentum"])
    else:
        b2 = opt["beta_2"]
        o = torch.optim.Adam(params, lr=opt["learning_rate"], betas=(opt["beta_1"], b2),
                             eps=opt["epsilon"] / np.sqrt(1 - b2))
    o.step()
    return {n: p.detach().numpy().copy() for n, p in zip(names, params)}


def check(work, kind, tol, show):
    cfg = json.load(open(os.path.join(work, "step.json")))
    opt = cfg["optimizer"]
    variables = cfg["variables"]
    trainable = [v["name"] for v in variables if v["trainable"]]
    initial = load_dir(os.path.join(work, "initial"), variables)
    hub_after = load_dir(os.path.join(work, "after"), variables)
    hub_grads = {n: np.load(os.path.join(work, "gradients", _file(n))) for n in trainable}
    hub_slots = {(s["variable"], s["slot"]): np.load(os.path.join(work, s["file"]))
                 for s in cfg["slots"]}

    g32, after32, loss32 = torch_step_gradients(work, cfg, initial, torch.float32)
    g64, after64, loss64 = torch_step_gradients(work, cfg, initial, torch.float64)
    optim = torch_optim_update(kind, opt, initial, g32, trainable)
    lr = opt["learning_rate"]

    rows = []
    excluded_total = elements_total = 0
    for v in variables:
        n = v["name"]
        w0 = initial[n]
        hub = hub_after[n]
        if v["trainable"]:
            ref, slots = keras_update(kind, opt, w0, g32[n])
            ref64, _ = keras_update(kind, opt, w0, g64[n])
            exact_zero = float(np.max(np.abs(g64[n]))) <= 1e-4 * float(np.max(np.abs(g32[n])))
        else:
            ref, slots = after32[n], {}
            ref64 = after64[n]
            exact_zero = False
        scale = float(np.max(np.abs(ref)))
        diff = np.abs(hub.astype(np.float64) - ref)
        row = {
            "tensor": n,
            "trainable": v["trainable"],
            "e": rel_error(hub, ref),
            "e_float64": rel_error(hub, ref64),
            "torch32_vs_float64": rel_error(ref, ref64),
            "e_step": rel_error(hub.astype(np.float64) - w0, ref.astype(np.float64) - w0),
            "max_abs_step_hubimg": float(np.max(np.abs(hub.astype(np.float64) - w0))),
            "max_abs_step_torch": float(np.max(np.abs(ref.astype(np.float64) - w0))),
            "exact_zero_gradient": exact_zero,
        }
        row["e_conditioned"] = row["e"]
        if v["trainable"]:
            row["gradient"] = rel_error(hub_grads[n], g32[n])
            # The optimizer's rule alone: Keras's update of hubimg's own gradients.
            rule, _ = keras_update(kind, opt, w0, hub_grads[n])
            row["e_rule"] = rel_error(hub, rule)
            row["torch_optim_vs_keras_form"] = rel_error(optim[n], ref)
            row["slots"] = {s: rel_error(hub_slots[(n, s)], val) for s, val in slots.items()
                            if (n, s) in hub_slots}
            if kind == "adam":
                # Elements whose first Adam step float32 rounding of the gradient decides: the
                # step lr * g / (|g| + eps') is ~lr * sign(g) once |g| >> eps, so where PyTorch's
                # own float32 error could move the step by more than tol * scale, no float32
                # engine determines it. The error allowed per element: 10x PyTorch's own there,
                # at least PyTorch's largest float32 error in the tensor.
                g = g64[n].astype(np.float64)
                err = np.abs(g32[n] - g)
                u = np.maximum(10 * err, float(np.max(err)))
                spread = np.abs(adam_step(opt, g + u) - adam_step(opt, g - u))
                ill = spread > tol * scale
                if exact_zero:
                    # Gradient zero in exact arithmetic: every element's step is the sign of
                    # rounding noise (the floor above is relative to that noise itself).
                    ill[...] = True
                row["ill_conditioned_elements"] = int(ill.sum())
                excluded_total += int(ill.sum())
                kept = diff[~ill]
                row["e_conditioned"] = float(kept.max()) / scale if kept.size else 0.0
        elements_total += int(w0.size)
        if v["trainable"] and kind == "adam" and exact_zero:
            # Both engines moved it by at most Adam's first-step bound lr (the exact step,
            # from a zero gradient, is 0).
            bound = lr * (1 + tol)
            row["ok"] = (row["max_abs_step_hubimg"] <= bound and
                         row["max_abs_step_torch"] <= bound and row["e_rule"] <= tol)
        elif v["trainable"] and kind == "adam":
            row["ok"] = row["e_conditioned"] <= tol and row["e_rule"] <= tol
        elif v["trainable"]:
            row["ok"] = row["e"] <= tol and row["e_rule"] <= tol
        else:
            row["ok"] = row["e"] <= tol
        rows.append(row)

    zeros = [r for r in rows if r["exact_zero_gradient"]]
    # Step, gradient and slot errors are relative to the tensor's own step: meaningless where
    # the gradient is rounding noise.
    live = [r for r in rows if not r["exact_zero_gradient"]]
    bad = [r for r in rows if not r["ok"]]
    crit = "e_conditioned" if kind == "adam" else "e"
    worst = max(rows, key=lambda r: r[crit])
    summary = {
        "optimizer": kind, "settings": {k: cfg[k] for k in (
            "arch", "alpha", "batch", "image_size", "num_classes", "num_features", "seed",
            "perturbed", "optimizer", "dropout_rate", "l2", "base_l2", "label_smoothing",
            "batch_norm_momentum")},
        "loss": {"hubimg": cfg["loss"], "torch32": loss32, "torch64": loss64},
        "tensors": len(rows), "trainable": len(trainable), "elements": elements_total,
        "criterion": crit,
        "max_e_criterion": worst[crit], "worst": worst["tensor"],
        "max_e_all_elements": max(r["e"] for r in rows),
        "worst_all_elements": max(rows, key=lambda r: r["e"])["tensor"],
        "ill_conditioned_elements": excluded_total,
        "max_e_all_elements_nonzero_gradients": max(r["e"] for r in live),
        "max_e_trainable": max(r[crit] for r in rows if r["trainable"]),
        "max_e_moving_statistics": max((r["e"] for r in rows if not r["trainable"]),
                                       default=0.0),
        "max_e_rule": max(r["e_rule"] for r in rows if r["trainable"]),
        "max_e_step": max(r["e_step"] for r in live),
        "worst_step": max(live, key=lambda r: r["e_step"])["tensor"],
        "max_gradient_error": max(r["gradient"] for r in live if r["trainable"]),
        "max_torch32_vs_float64": max(r["torch32_vs_float64"] for r in rows),
        "max_e_float64": max(r["e_float64"] for r in rows),
        "max_torch_optim_vs_keras_form": max(r["torch_optim_vs_keras_form"]
                                             for r in rows if r["trainable"]),
        "max_slot_error": max((e for r in live if r["trainable"] for e in r["slots"].values()),
                              default=0.0),
        "exact_zero_gradients": [r["tensor"] for r in zeros],
        "failures": [r["tensor"] for r in bad],
        "rows": rows,
    }

    s = summary
    print(f"\n{kind}: lr {lr:g}" + (f", momentum {opt['momentum']:g}" if kind == "sgd" else
                                    f", beta_1 {opt['beta_1']:g}, beta_2 {opt['beta_2']:g}, "
                                    f"epsilon {opt['epsilon']:g}") +
          f"; {cfg['arch']} alpha {cfg['alpha']:g}, batch {cfg['batch']} of "
          f"{cfg['image_size']}x{cfg['image_size']}, {cfg['num_classes']} classes, "
          f"batch-norm momentum {cfg['batch_norm_momentum']:g}, label smoothing "
          f"{cfg['label_smoothing']:g}, l2 {cfg['l2']:g} (head), {cfg['base_l2']:g} (base)")
    print(f"  loss: hubimg {s['loss']['hubimg']:.7f}, PyTorch float32 {loss32:.7f}, "
          f"float64 {loss64:.7f}")
    print(f"  {'tensor':44s} {crit:>13s} {'e all':>8s} {'e step':>8s} {'grad':>8s} "
          f"{'t32-t64':>8s}")
    for r in sorted(rows, key=lambda r: -r[crit])[:show]:
        print(f"  {r['tensor'][:44]:44s} {r[crit]:13.1e} {r['e']:8.1e} {r['e_step']:8.1e} "
              f"{r.get('gradient', float('nan')):8.1e} {r['torch32_vs_float64']:8.1e} "
              f"{'ok' if r['ok'] else 'FAIL'}")
    print(f"  updated weights, e = max|hubimg - PyTorch| / max|PyTorch| per tensor, max over "
          f"{len(rows)} tensors: {s['max_e_criterion']:.2e} ({s['worst']})"
          + (f" over the {elements_total - excluded_total} of {elements_total} elements whose "
             f"step float32 determines; over all elements {s['max_e_all_elements']:.2e} "
             f"({s['worst_all_elements']}), {s['max_e_all_elements_nonzero_gradients']:.2e} "
             f"without the zero-gradient tensors" if kind == "adam" else "")
          + f"; trainable {s['max_e_trainable']:.2e}, moving statistics "
          f"{s['max_e_moving_statistics']:.2e}")
    print(f"  the rule alone (hubimg's update of its own gradients vs Keras's rule in NumPy): "
          f"max {s['max_e_rule']:.2e}; gradients vs PyTorch: max {s['max_gradient_error']:.2e}; "
          f"slots: max {s['max_slot_error']:.2e}; the step alone (w' - w): max "
          f"{s['max_e_step']:.2e} ({s['worst_step']})")
    print(f"  float64 reference: PyTorch float32 vs float64 max {s['max_torch32_vs_float64']:.2e}, "
          f"hubimg vs float64 max {s['max_e_float64']:.2e}")
    print(f"  torch.optim.{'SGD' if kind == 'sgd' else 'Adam (eps / sqrt(1 - beta_2))'} vs "
          f"Keras's rule in NumPy: max {s['max_torch_optim_vs_keras_form']:.2e}")
    if zeros:
        z = max(zeros, key=lambda r: r["max_abs_step_hubimg"])
        print(f"  {len(zeros)} tensors with a gradient that is zero in exact arithmetic "
              f"(rounding noise in both engines" + ("; for Adam left out of e and checked as "
              "|step| <= lr in both" if kind == "adam" else "") + "); largest step: hubimg "
              f"{z['max_abs_step_hubimg']:.2e}, PyTorch {z['max_abs_step_torch']:.2e} "
              f"({z['tensor']}; lr {lr:g})")
    print(f"{kind}: {'PASS' if not bad else 'FAIL'} (max e {s['max_e_criterion']:.2e}, "
          f"tol {tol:g}; {len(bad)} of {len(rows)} tensors fail"
          f"{': ' + ', '.join(s['failures'][:5]) if bad else ''})")
    return summary


def _file(name):
    return name.replace("/", ".") + ".npy"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True)
    p.add_argument("--driver", default=os.path.join(HERE, "..", "..", "build", "bench",
                                                    "optimizer_step"))
    p.add_argument("--optimizers", nargs="+", default=["sgd", "adam"], choices=("sgd", "adam"))
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reuse", action="store_true", help="keep driver results already in --work")
    p.add_argument("--driver-args", default="", help="extra optimizer_step options (one string)")
    p.add_argument("--show", type=int, default=6)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for kind in args.optimizers:
        work = os.path.join(args.work, kind)
        if not (args.reuse and os.path.exists(os.path.join(work, "step.json"))):
            cmd = [args.driver, work, "--optimizer", kind, "--threads", str(args.threads)]
            cmd += shlex.split(args.driver_args)
            print("+ " + " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
        results[kind] = check(work, kind, args.tol, args.show)
    json.dump(results, open(os.path.join(args.work, "check_optimizer_step.json"), "w"), indent=1)
    failed = [k for k, r in results.items() if r["failures"]]
    print("\n" + "; ".join(f"{k}: max e {r['max_e_criterion']:.2e} ({'FAIL' if r['failures'] else 'PASS'})"
                           for k, r in results.items()) + f" (tol {args.tol:g})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
