"""Reading a bench model's weights_manifest.json (written by make_bench_models).

Pure Python + json: no torch needed, so the table printer of run_peers.sh can use it too.
"""

import json
import os

MODELS = ("mobilenet_v2", "efficientnet_b0", "resnet50")


def load(model_dir):
    """Returns the parsed weights_manifest.json of a generated model directory."""
    path = os.path.join(model_dir, "weights_manifest.json")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} is missing: generate the model with "
            f"'build/bench/make_bench_models OUT --dump-npy'"
        )
    with open(path) as f:
        return json.load(f)


def input_shapes(manifest):
    """Maps every layer name (and the model input's) to its [H, W, C] or [units] shape."""
    shapes = {manifest["input"]["name"]: manifest["input"]["shape"][1:]}
    for layer in manifest["layers"]:
        shapes[layer["name"]] = layer["output_shape"]
    return shapes


def flops_per_image(manifest):
    """2 * multiply-accumulates of Conv2D, DepthwiseConv2D and Dense layers, per image.

    Batch norm, activations, pooling, adds and the squeeze-excite multiply are not counted
    (they are a few percent of the work and not FMA-shaped).
    """
    shapes = input_shapes(manifest)
    macs = 0
    for layer in manifest["layers"]:
        out = layer["output_shape"]
        kind = layer["type"]
        if kind == "Conv2D":
            cin = shapes[layer["inputs"][0]][2]
            k = layer["kernel_size"]
            macs += out[0] * out[1] * out[2] * k * k * cin
        elif kind == "DepthwiseConv2D":
            k = layer["kernel_size"]
            macs += out[0] * out[1] * out[2] * k * k
        elif kind == "Dense":
            cin = shapes[layer["inputs"][0]][-1]
            macs += cin * layer["units"]
    return 2 * macs


def variable_files(manifest, model_dir):
    """Maps variable name ("layer/role") to its dumped .npy path."""
    files = {}
    for v in manifest["variables"]:
        if "npy" not in v:
            raise ValueError(
                f"variable {v['name']} has no .npy dump: regenerate with --dump-npy"
            )
        files[v["name"]] = os.path.join(model_dir, v["npy"])
    return files


if __name__ == "__main__":
    import sys

    for d in sys.argv[1:]:
        m = load(d)
        print(f"{m['model']}: {flops_per_image(m) / 1e9:.3f} GFLOP/image")
