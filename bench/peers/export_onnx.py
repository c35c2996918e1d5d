#!/usr/bin/python3
"""Exports the PyTorch rebuild of a generated bench model to ONNX (opset 13, dynamic batch).

  /usr/bin/python3 bench/peers/export_onnx.py MODEL_DIR OUT.onnx [--opset 13]

The graph takes "inputs" NHWC float32 [N, 224, 224, 3] in [0, 1], like hubimg, and starts with a
Transpose to NCHW (ONNX Runtime then works in its own blocked layout); it returns "output_0"
logits [N, 1000]. Exported in eval mode: batch norms are folded into the convolutions.
"""

import argparse
import os
import sys

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("out")
    p.add_argument("--opset", type=int, default=13)
    args = p.parse_args()
    if args.opset < 13:
        p.error("--opset must be 13 or later")
    model = torch_models.build(args.model_dir)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    torch_models.export_onnx(model, tmp, opset=args.opset)
    onnx.checker.check_model(tmp)
    os.replace(tmp, args.out)
    print(f"{args.model_dir} -> {args.out} (opset {args.opset})")


if __name__ == "__main__":
    main()
