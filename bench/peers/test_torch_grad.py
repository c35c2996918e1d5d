#!/usr/bin/python3
"""Checks of the PyTorch gradient side against independent references.

  /usr/bin/python3 bench/peers/test_torch_grad.py MODELS_DIR GOLDEN_TRAIN_DIR

1. nn.BatchNorm2d in train mode (momentum f) against TF's FusedBatchNormV3 formula in float64:
   biased variance in the normalization, unbiased n/(n-1) variance in the moving-variance update.
2. torch_grad.py on MODELS_DIR/tiny_cnn with golden-train's tiny_cnn/call/train/b3 inputs and
   cotangent, compared with every reference tensor within the case's atol (the golden values come
   from the TensorFlow-semantics oracle, not from this code; tiny_cnn is make_bench_models'
   default-seed tiny_cnn, the same weights). Exits 1 on a failure.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def bn_semantics():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    bn = torch.nn.BatchNorm2d(3, eps=1e-3, momentum=0.01).double().train()
    bn.running_mean.fill_(0.3)
    bn.running_var.fill_(0.7)
    y = bn(x)
    n = 4 * 25
    m = x.mean((0, 2, 3))
    vb = ((x - m.view(1, 3, 1, 1)) ** 2).mean((0, 2, 3))
    ok = (y - (x - m.view(1, 3, 1, 1)) / torch.sqrt(vb.view(1, 3, 1, 1) + 1e-3)).abs().max() < 1e-12
    ok &= (bn.running_mean - (0.99 * 0.3 + 0.01 * m)).abs().max() < 1e-15
    ok &= (bn.running_var - (0.99 * 0.7 + 0.01 * vb * n / (n - 1))).abs().max() < 1e-15
    print(f"batch-norm train-mode semantics: {'ok' if ok else 'FAIL'}")
    return bool(ok)


def golden_tiny_cnn(models_dir, golden):
    g = os.path.join(golden, "tiny_cnn")
    case = [c for c in json.load(open(os.path.join(g, "cases.json")))
            if c["case"] == "tiny_cnn/call/train/b3"][0]
    d = tempfile.mkdtemp(prefix="torch_grad_tiny_")
    subprocess.run([sys.executable, os.path.join(HERE, "torch_grad.py"), models_dir, "tiny_cnn",
                    "--out", d, "--input", os.path.join(g, case["inputs"]["inputs"]),
                    "--cotangent", os.path.join(g, case["cotangents"]["output_0"])], check=True)
    ok = True

    def check(tag, a, ref, atol):
        nonlocal ok
        e = float(np.abs(a - ref).max())
        ok &= e <= atol
        print(f"  {tag:45s} max abs {e:.2e} atol {atol:.1e} {'ok' if e <= atol else 'FAIL'}")

    check("output_0", np.load(os.path.join(d, "output_0.npy")),
          np.load(os.path.join(g, case["outputs"]["output_0"])), case["atol"]["outputs"]["output_0"])
    mine = {e["variable"]: e["file"] for e in json.load(open(os.path.join(d, "gradients.json")))}
    if [e["variable"] for e in case["gradients"]] != list(mine):
        print("  gradient order differs from the golden case: FAIL")
        ok = False
    for e in case["gradients"]:
        check(e["variable"], np.load(os.path.join(d, mine[e["variable"]])),
              np.load(os.path.join(g, e["file"])), e["atol"])
    check("input_gradients/inputs", np.load(os.path.join(d, "input_gradients", "inputs.npy")),
          np.load(os.path.join(g, case["input_gradients"]["inputs"])),
          case["atol"]["input_gradients"]["inputs"])
    after = {e["variable"]: e["file"] for e in json.load(open(os.path.join(d, "variables_after.json")))}
    for e in case["variables_after"]:
        check("after " + e["variable"], np.load(os.path.join(d, after[e["variable"]])),
              np.load(os.path.join(g, e["file"])), e["atol"])
    print(f"torch_grad vs golden tiny_cnn/call/train/b3: {'ok' if ok else 'FAIL'}")
    return ok


if __name__ == "__main__":
    ok = bn_semantics()
    ok &= golden_tiny_cnn(sys.argv[1], sys.argv[2])
    sys.exit(0 if ok else 1)
