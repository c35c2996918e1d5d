#!/usr/bin/python3
"""PyTorch autograd's vector-Jacobian product of a generated bench model, written in the layout
`hubimg grad` writes (and ../shared/fixtures/golden-train/README.md specifies).

  /usr/bin/python3 bench/peers/torch_grad.py MODELS_DIR MODEL --out DIR [--batch 3] [--seed 0]
      [--inference] [--float64] [--input FILE.npy] [--cotangent FILE.npy] [--threads 2]
      [--fold-padding] [--channels-last]

The network is rebuilt from MODELS_DIR/MODEL/weights_manifest.json and its .npy weights
(torch_models.py), in training mode unless --inference: batch norm on batch statistics with
TensorFlow's semantics, moving statistics updated once. One call
    logits = model(inputs);  L = sum(cotangent * logits)
and autograd gives dL/d(every trainable variable) and dL/d(inputs).

Inputs (unless --input): numpy.random.default_rng(seed).random([N, H, W, 3], float32), NHWC in
[0, 1); the cotangent (unless --cotangent) comes from the same generator right after it:
standard_normal([N, classes]) as float32.

DIR gets
  inputs.npy, cotangent.npy      what was fed (feed them to `hubimg grad`)
  output_0.npy                   the logits
  gradients.json                 [{"variable": TF name, "file": "gradients/<name>.npy"}], in the
                                 manifest's trainable-variable order; TF layouts (HWIO kernels,
                                 [kh,kw,C,1] depthwise kernels, [in,out] dense kernels)
  input_gradients/inputs.npy     dL/d inputs, NHWC
  variables_after.json           the batch-norm moving statistics after the call, same format
                                 ([] with --inference)
  torch_grad.json                the index: model, batch, seed, mode, versions, the variables whose
                                 gradient is zero in exact arithmetic (a convolution's bias feeding
                                 only a training-mode batch norm: the batch mean removes it, so
                                 both engines' values are rounding noise), and with --float64 the
                                 per-tensor error of the float32 result against float64.
With --float64 the same call is also run in float64 (weights, inputs and cotangent converted
exactly from float32) and written to DIR/float64/ in the same layout.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import manifest as manifest_lib  # noqa: E402
import torch_models  # noqa: E402

INPUT_KEY = "inputs"  # __call__'s first argument, as hubimg and the golden cases name it
OUTPUT_KEY = "output_0"


def file_name(variable):
    return variable.replace("/", ".") + ".npy"


def exact_zero_gradients(manifest, training):
    """Variables whose gradient is 0 in exact arithmetic: biases of convolutions whose only
    consumers are batch norms on batch statistics (a per-channel constant shifts the batch mean
    by the same amount and cancels)."""
    if not training:
        return []
    by_name = {l["name"]: l for l in manifest["layers"]}
    consumers = {}
    for l in manifest["layers"]:
        for i in l["inputs"]:
            consumers.setdefault(i, []).append(l["name"])
    out = []
    for l in manifest["layers"]:
        if l["type"] in ("Conv2D", "DepthwiseConv2D") and l.get("use_bias"):
            if l.get("activation"):
                continue
            users = consumers.get(l["name"], [])
            if users and all(by_name[u]["type"] == "BatchNormalization" for u in users):
                out.append(l["variables"]["bias"])
    return out


def vjp(model_dir, inputs, cotangent, training, dtype, fold_padding, channels_last=False):
    """One call and its vector-Jacobian product. Returns (logits, {name: grad}, input grad,
    {name: value after}) as float numpy arrays of `dtype`, TF layouts, trainable order.
    channels_last: the model's weights in torch.channels_last (other convolution kernels, so
    another float32 rounding of the same call)."""
    model = torch_models.build(model_dir, fold_padding=fold_padding, training=training)
    model = model.to(dtype)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if not training:
        # Inference: batch norm on the moving statistics, still differentiable.
        for v in model.tf_variables():
            if v.trainable:
                v.tensor.requires_grad_(True)
    x = torch.from_numpy(inputs).to(dtype).requires_grad_(True)
    logits = model(x)
    if tuple(logits.shape) != cotangent.shape:
        raise SystemExit(
            f"torch_grad: output shape {tuple(logits.shape)}, cotangent {cotangent.shape}"
        )
    logits.backward(torch.from_numpy(cotangent).to(dtype))
    grads, after = {}, {}
    for v in model.tf_variables():
        if v.trainable:
            g = v.tensor.grad
            if g is None:  # not read by the call (none in the bench networks)
                g = torch.zeros_like(v.tensor)
            grads[v.name] = v.to_tf(g).detach().numpy().copy()
        elif training and v.name.rsplit("/", 1)[-1] in ("moving_mean", "moving_variance"):
            after[v.name] = v.to_tf(v.tensor).detach().numpy().copy()
    return logits.detach().numpy(), grads, x.grad.numpy(), after


def write_result(out_dir, logits, grads, input_grad, after, order, after_order):
    os.makedirs(os.path.join(out_dir, "gradients"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "input_gradients"), exist_ok=True)
    np.save(os.path.join(out_dir, OUTPUT_KEY + ".npy"), logits)
    index = []
    for name in order:
        rel = os.path.join("gradients", file_name(name))
        np.save(os.path.join(out_dir, rel), grads[name])
        index.append({"variable": name, "file": rel})
    with open(os.path.join(out_dir, "gradients.json"), "w") as f:
        json.dump(index, f, indent=1)
    np.save(os.path.join(out_dir, "input_gradients", INPUT_KEY + ".npy"), input_grad)
    index = []
    if after:
        os.makedirs(os.path.join(out_dir, "variables_after"), exist_ok=True)
    for name in after_order:
        rel = os.path.join("variables_after", file_name(name))
        np.save(os.path.join(out_dir, rel), after[name])
        index.append({"variable": name, "file": rel})
    with open(os.path.join(out_dir, "variables_after.json"), "w") as f:
        json.dump(index, f, indent=1)


def rel_error(a, b):
    """max|a - b| / max|b| (0 when both are all zero)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    if scale == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return diff / scale


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models_dir")
    p.add_argument("model")
    p.add_argument("--out", required=True)
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inference", action="store_true", help="training=False (moving statistics)")
    p.add_argument("--float64", action="store_true", help="also run in float64 (error estimate)")
    p.add_argument("--input", help="use this NHWC float32 .npy instead of seeded inputs")
    p.add_argument("--cotangent", help="use this [N, classes] float32 .npy as the cotangent")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--fold-padding",
        action="store_true",
        help="fold symmetric ZeroPadding2D into the next conv/pool (default: explicit, as in TF)",
    )
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="float32 call with channels_last weights (float64, if asked, stays contiguous)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = os.path.join(args.models_dir, args.model)
    manifest = manifest_lib.load(model_dir)
    training = not args.inference

    rng = np.random.default_rng(args.seed)
    h, w, c = manifest["input"]["shape"][1:]
    classes = manifest["layers"][-1]["output_shape"][-1]
    if args.input:
        inputs = np.load(args.input).astype(np.float32)
    else:
        inputs = rng.random((args.batch, h, w, c), dtype=np.float32)
    if args.cotangent:
        cotangent = np.load(args.cotangent).astype(np.float32)
    else:
        cotangent = rng.standard_normal((inputs.shape[0], classes)).astype(np.float32)
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "inputs.npy"), inputs)
    np.save(os.path.join(args.out, "cotangent.npy"), cotangent)

    order = [v["name"] for v in manifest["variables"] if v["trainable"]]
    logits, grads, input_grad, after = vjp(
        model_dir, inputs, cotangent, training, torch.float32, args.fold_padding,
        args.channels_last,
    )
    after_order = [v["name"] for v in manifest["variables"] if v["name"] in after]
    write_result(args.out, logits, grads, input_grad, after, order, after_order)
    index = {
        "model": args.model,
        "models_dir": os.path.abspath(args.models_dir),
        "batch": int(inputs.shape[0]),
        "seed": None if (args.input and args.cotangent) else args.seed,
        "training": training,
        "fold_padding": args.fold_padding,
        "channels_last": args.channels_last,
        "torch": torch.__version__,
        "inputs": {INPUT_KEY: "inputs.npy"},
        "cotangents": {OUTPUT_KEY: "cotangent.npy"},
        "exact_zero_gradients": exact_zero_gradients(manifest, training),
    }
    if args.float64:
        logits64, grads64, input_grad64, after64 = vjp(
            model_dir, inputs, cotangent, training, torch.float64, args.fold_padding
        )
        write_result(
            os.path.join(args.out, "float64"),
            logits64, grads64, input_grad64, after64, order, after_order,
        )
        errors = {f"output/{OUTPUT_KEY}": rel_error(logits, logits64)}
        for name in order:
            errors[f"gradient/{name}"] = rel_error(grads[name], grads64[name])
        errors[f"input_gradient/{INPUT_KEY}"] = rel_error(input_grad, input_grad64)
        for name in after_order:
            errors[f"after/{name}"] = rel_error(after[name], after64[name])
        index["float32_vs_float64"] = errors
        exact_zero = set(index["exact_zero_gradients"])
        worst = max(
            (e, k) for k, e in errors.items() if k.split("/", 1)[1] not in exact_zero
        )
        index["float32_vs_float64_worst"] = {"tensor": worst[1], "rel_error": worst[0]}
        print(
            f"torch_grad: {args.model} float32 vs float64, worst max|a-b|/max|b| "
            f"{worst[0]:.2e} ({worst[1]}; {len(exact_zero)} exact-zero gradients left out)"
        )
    with open(os.path.join(args.out, "torch_grad.json"), "w") as f:
        json.dump(index, f, indent=1)
    print(f"torch_grad: {args.model} batch {inputs.shape[0]} -> {args.out}")


if __name__ == "__main__":
    main()
