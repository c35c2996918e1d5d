#!/usr/bin/python3
"""Cross-checks hubimg against the peers on identical inputs: the generated SavedModels run by
`hubimg run`, the PyTorch rebuilds from the manifests (eager, and the frozen/optimised TorchScript
that torch_bench.py times) and, when the .onnx files exist, ONNX Runtime.

  /usr/bin/python3 bench/peers/check_outputs.py --models-dir out/models --hubimg build/hubimg \
      [--onnx-dir out/models/onnx] [--batch 2] [--seed 7] [--tolerance 1e-3] [--work DIR]

Every engine must match hubimg's logits within --tolerance (max abs error). Since the generator
and hubimg's runtime share the SavedModel, and the PyTorch side is an independent
implementation from the manifest and .npy weights, agreement checks both together.
Exits 1 on any mismatch; writes DIR/check_outputs.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import manifest as manifest_lib  # noqa: E402
import torch_models  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def run_hubimg(hubimg, model_dir, x_path, out_dir):
    cmd = [hubimg, "run", model_dir, "--input", f"inputs={x_path}", "--output", out_dir]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return np.load(os.path.join(out_dir, "output_0.npy"))


def run_ort(onnx_path, x_path, out_path):
    cmd = ["node", os.path.join(HERE, "ort_bench.js"), onnx_path, "--run", x_path, "--out", out_path]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return np.load(out_path)


def torch_variants(model_dir, x):
    """Logits of each PyTorch configuration the benchmark uses (and the unfolded-padding one)."""
    out = {}
    # Built outside inference_mode: parameters made inside it are "inference tensors", which
    # torch.jit.optimize_for_inference cannot convert.
    net = torch_models.build(model_dir)
    unfolded = torch_models.build(model_dir, fold_padding=False)
    with torch.inference_mode():
        out["torch_eager"] = net(x).numpy()
        out["torch_eager_unfolded_pads"] = unfolded(x).numpy()
    net = net.to(memory_format=torch.channels_last)
    with torch.no_grad():
        frozen = torch.jit.freeze(torch.jit.trace(net, x).eval())
        out["torch_frozen"] = frozen(x).numpy()
        ofi = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x).eval()))
        out["torch_ofi"] = ofi(x).numpy()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models-dir", required=True)
    p.add_argument("--hubimg", required=True, help="path of the hubimg CLI")
    p.add_argument("--onnx-dir", help="folder of <model>.onnx (skipped when absent)")
    p.add_argument("--models", nargs="+", default=list(manifest_lib.MODELS))
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--tolerance", type=float, default=1e-3)
    p.add_argument("--work", help="folder for inputs/outputs (default: a temporary one)")
    args = p.parse_args()
    if not os.access(args.hubimg, os.X_OK):
        p.error(f"{args.hubimg} is not an executable (build hubimg first)")
    torch.set_num_threads(1)  # correctness only; one thread is the quickest on a shared machine
    work = args.work or tempfile.mkdtemp(prefix="hubimg_check_")
    os.makedirs(work, exist_ok=True)

    # One input for all engines: seeded uniform [0, 1), NHWC, as hubimg takes images.
    rng = np.random.default_rng(args.seed)
    x_np = rng.random((args.batch, 224, 224, 3), dtype=np.float32)
    x_path = os.path.join(work, "inputs.npy")
    np.save(x_path, x_np)
    x = torch.from_numpy(x_np)

    results = {"batch": args.batch, "seed": args.seed, "tolerance": args.tolerance, "models": {}}
    failed = False
    print(f"inputs: {x_path} float32{list(x_np.shape)} (seed {args.seed}); "
          f"max abs error against hubimg's logits, tolerance {args.tolerance:g}")
    for name in args.models:
        model_dir = os.path.join(args.models_dir, name)
        ref = run_hubimg(args.hubimg, model_dir, x_path, os.path.join(work, f"hubimg_{name}"))
        outputs = torch_variants(model_dir, x)
        onnx_path = os.path.join(args.onnx_dir, f"{name}.onnx") if args.onnx_dir else None
        if onnx_path and os.path.exists(onnx_path):
            outputs["onnxruntime"] = run_ort(onnx_path, x_path, os.path.join(work, f"ort_{name}.npy"))
        entry = {"max_abs_logit": float(np.abs(ref).max()), "max_abs_error": {}}
        for engine, y in outputs.items():
            if y.shape != ref.shape:
                raise RuntimeError(f"{name}/{engine}: shape {y.shape}, hubimg gave {ref.shape}")
            err = float(np.abs(y - ref).max())
            entry["max_abs_error"][engine] = err
            ok = err <= args.tolerance
            failed |= not ok
            print(f"  {name:16s} {engine:26s} {err:.3g}{'' if ok else '  FAIL'}")
        entry["top1_agree"] = {
            e: bool((y.argmax(1) == ref.argmax(1)).all()) for e, y in outputs.items()
        }
        print(f"  {name:16s} max |logit| {entry['max_abs_logit']:.3g}")
        results["models"][name] = entry
    results["passed"] = not failed
    with open(os.path.join(work, "check_outputs.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(("PASS" if not failed else "FAIL") + f" ({os.path.join(work, 'check_outputs.json')})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
