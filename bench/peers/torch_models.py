"""The bench networks (MobileNetV2 1.0, EfficientNet-B0, ResNet-50 v1.5) in PyTorch, built from a
generated model's weights_manifest.json and loaded with the exact weights it dumped as .npy
(`build/bench/make_bench_models OUT --dump-npy`).

Nothing is architecture-specific here: the manifest lists every layer in order with its inputs,
parameters and the padding TensorFlow applies, and ManifestNet follows it layer by layer.

Layout. The model takes NHWC float32 [N, H, W, 3] in [0, 1], exactly what hubimg takes, and
returns logits [N, 1000]. Inside, tensors are NCHW-indexed as PyTorch wants them. The first step
of forward() is `x.permute(0, 3, 1, 2)`: for a contiguous NHWC input this is a view, not a copy,
and the view *is* a channels_last tensor (NCHW sizes, NHWC strides). So with the model in
torch.channels_last the NHWC input costs PyTorch nothing; with the model in the default
contiguous format the first convolution converts it.

Conversions from the TensorFlow layouts:
  Conv2D kernel      [kh, kw, in, out]  -> OIHW [out, in, kh, kw]   (transpose 3, 2, 0, 1)
  Depthwise kernel   [kh, kw, C, 1]     -> [C, 1, kh, kw], groups=C (transpose 2, 3, 0, 1)
  Dense kernel       [in, out]          -> Linear weight [out, in]  (transpose)
  SAME padding       symmetric -> the conv's own padding; asymmetric (TF puts the extra pixel
                     bottom/right) -> an explicit F.pad before a padding-free conv
  ZeroPadding2D      F.pad; a symmetric one feeding a VALID conv (ResNet's conv1_pad) is folded
                     into that conv's padding, and one feeding a max pool after a ReLU (ResNet's
                     pool1_pad) into the pool's padding (equal: the input is >= 0 and every
                     window holds a real pixel). `fold_padding=False` keeps them all explicit.
  BatchNormalization eval-mode nn.BatchNorm2d with the layer's epsilon and moving statistics;
                     in training mode (below) batch statistics, momentum = 1 - Keras momentum
  Normalization      (x - mean) / max(sqrt(variance), 1e-7), per channel
  Swish              x * sigmoid(x) (nn.SiLU)

Training mode (`build(model_dir, training=True)`): the trainable parameters require grad and
every BatchNorm2d is in train mode with TensorFlow's FusedBatchNormV3 semantics (Keras'
`training=True` trace): it normalizes with the batch mean and the *biased* batch variance plus
the layer's epsilon, and updates the moving statistics as
  moving_mean     = (1 - f) * moving_mean     + f * batch_mean
  moving_variance = (1 - f) * moving_variance + f * batch_variance * n / (n - 1)
with f = exponential_avg_factor = 1 - Keras momentum (0.99 -> 0.01; MobileNetV2's 0.999 ->
0.001) and n = N*H*W. PyTorch's BatchNorm2d with momentum=f does exactly this (its running_var
takes the unbiased variance, as TF's CPU kernel does with its Bessel factor `rest_size_adjust`);
test_torch_grad.py checks both against that formula.

`model.tf_variables()` lists the manifest's variables as TFVariable(name, tensor, trainable,
to_tf): the PyTorch parameter or buffer holding each, and the layout conversion back to
TensorFlow's shape (OIHW -> HWIO, [C,1,kh,kw] -> [kh,kw,C,1], [out,in] -> [in,out]).
Normalization's non-trainable mean/variance (folded into buffers) and `count` (unused by the call)
are not listed.

Usage:
  model = build(model_dir)                  # eval mode, float32, default memory format
  logits = model(torch.from_numpy(x_nhwc))  # [N, 1000]
  values = model.forward_all(x)             # every layer's output (NCHW), for comparisons
  model = build(model_dir, training=True)   # train mode, parameters require grad
"""

import collections

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    from . import manifest as manifest_lib  # imported as bench.peers.torch_models
except ImportError:
    import manifest as manifest_lib  # run from bench/peers


TFVariable = collections.namedtuple("TFVariable", "name tensor trainable to_tf")


def _hwio(t):
    return t.permute(2, 3, 1, 0)  # OIHW -> HWIO


def _depthwise_tf(t):
    return t.permute(2, 3, 0, 1)  # [C, 1, kh, kw] -> [kh, kw, C, 1]


def _transpose(t):
    return t.t()


def _same(t):
    return t


class ZeroPad(nn.Module):
    """TensorFlow-style explicit zero padding; pads = (top, bottom, left, right)."""

    def __init__(self, pads):
        super().__init__()
        top, bottom, left, right = (int(p) for p in pads)
        self.torch_pads = (left, right, top, bottom)  # F.pad order: last dim first

    def forward(self, x):
        return F.pad(x, self.torch_pads)


class Normalization(nn.Module):
    """Keras Normalization: (x - mean) / max(sqrt(variance), 1e-7), broadcast over channels."""

    def __init__(self, mean, variance):
        super().__init__()
        c = mean.shape[0]
        denom = np.maximum(np.sqrt(variance.astype(np.float32)), np.float32(1e-7))
        self.register_buffer("mean", torch.from_numpy(mean.astype(np.float32)).view(1, c, 1, 1))
        self.register_buffer("denom", torch.from_numpy(denom).view(1, c, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.denom


class GlobalAveragePool(nn.Module):
    def __init__(self, keepdim):
        super().__init__()
        self.keepdim = keepdim

    def forward(self, x):
        return x.mean(dim=(2, 3), keepdim=self.keepdim)


def _symmetric(pads):
    top, bottom, left, right = pads
    return top == bottom and left == right


def _copy(param, array, what):
    value = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if tuple(param.shape) != tuple(value.shape):
        raise ValueError(f"{what}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
    with torch.no_grad():
        param.copy_(value)


class ManifestNet(nn.Module):
    """A network described by a weights_manifest.json; weights from its .npy dump."""

    def __init__(self, manifest, model_dir, fold_padding=True, training=False):
        super().__init__()
        self.model_name = manifest["model"]
        self.input_name = manifest["input"]["name"]
        self.input_shape = list(manifest["input"]["shape"][1:])  # [H, W, C]
        if manifest["input"].get("layout") != "NHWC":
            raise ValueError("expected an NHWC model input")
        files = manifest_lib.variable_files(manifest, model_dir)
        shapes = manifest_lib.input_shapes(manifest)
        layers = manifest["layers"]
        by_name = {l["name"]: l for l in layers}
        consumers = {}
        for l in layers:
            for i in l["inputs"]:
                consumers.setdefault(i, []).append(l["name"])

        def weight(layer, role):
            return np.load(files[layer["variables"][role]])

        trainable = {v["name"]: bool(v["trainable"]) for v in manifest["variables"]}
        # TF variable name -> (module key, attribute path, to_tf); resolved in tf_variables().
        self._tf_vars = []

        def tf_var(layer, role, key, attr, to_tf):
            name = layer["variables"][role]
            self._tf_vars.append((name, key, attr, to_tf, trainable[name]))

        self.bn_keys = []

        self.mods = nn.ModuleDict()
        # plan: (output name, op, input names, module key). op is "module", "add" or "mul".
        self.plan = []
        folded = {}  # ZeroPadding2D layer name -> (its input, its pads) when folded downstream
        for l in layers:
            name, kind, ins = l["name"], l["type"], list(l["inputs"])
            key = name.replace(".", "_")
            if kind == "ZeroPadding2D" and fold_padding:
                users = consumers.get(name, [])
                if len(users) == 1 and _symmetric(l["pads"]):
                    user = by_name[users[0]]
                    src = by_name.get(ins[0])
                    conv_user = user["type"] in ("Conv2D", "DepthwiseConv2D")
                    conv_user = conv_user and user["padding"] == "VALID"
                    pool_user = user["type"] == "MaxPooling2D" and src is not None
                    pool_user = pool_user and src["type"] in ("ReLU", "ReLU6")
                    pool_user = pool_user and l["pads"][0] <= user["pool_size"] // 2
                    if conv_user or pool_user:
                        folded[name] = (ins[0], l["pads"])
                        continue
            pre_pad = (0, 0, 0, 0)
            if ins and ins[0] in folded:
                ins[0], pre_pad = folded[ins[0]]
            in_shape = shapes[ins[0]] if ins else None

            if kind in ("Conv2D", "DepthwiseConv2D"):
                k, s = l["kernel_size"], l["strides"]
                pads = l.get("same_pads", [0, 0, 0, 0]) if l["padding"] == "SAME" else [0] * 4
                pads = [a + b for a, b in zip(pads, pre_pad)]
                cin = in_shape[2]
                depthwise = kind == "DepthwiseConv2D"
                cout = cin if depthwise else l["filters"]
                steps = []
                conv_pad = (0, 0)
                if _symmetric(pads):
                    conv_pad = (pads[0], pads[2])
                else:
                    steps.append(ZeroPad(pads))
                conv = nn.Conv2d(
                    cin,
                    cout,
                    k,
                    stride=s,
                    padding=conv_pad,
                    groups=cin if depthwise else 1,
                    bias=l["use_bias"],
                )
                if depthwise:
                    _copy(conv.weight, weight(l, "depthwise_kernel").transpose(2, 3, 0, 1), name)
                else:
                    _copy(conv.weight, weight(l, "kernel").transpose(3, 2, 0, 1), name)
                if l["use_bias"]:
                    _copy(conv.bias, weight(l, "bias"), name + "/bias")
                steps.append(conv)
                act = l.get("activation", "")
                if act == "swish":
                    steps.append(nn.SiLU())
                elif act == "sigmoid":
                    steps.append(nn.Sigmoid())
                elif act:
                    raise ValueError(f"{name}: unknown activation {act!r}")
                mod = steps[0] if len(steps) == 1 else nn.Sequential(*steps)
                prefix = "" if len(steps) == 1 else f"{steps.index(conv)}."
                if depthwise:
                    tf_var(l, "depthwise_kernel", key, prefix + "weight", _depthwise_tf)
                else:
                    tf_var(l, "kernel", key, prefix + "weight", _hwio)
                if l["use_bias"]:
                    tf_var(l, "bias", key, prefix + "bias", _same)
            elif kind == "BatchNormalization":
                mod = nn.BatchNorm2d(in_shape[2], eps=float(l["epsilon"]))
                _copy(mod.weight, weight(l, "gamma"), name + "/gamma")
                _copy(mod.bias, weight(l, "beta"), name + "/beta")
                _copy(mod.running_mean, weight(l, "moving_mean"), name + "/moving_mean")
                _copy(mod.running_var, weight(l, "moving_variance"), name + "/moving_variance")
                # Keras momentum m -> TF's exponential_avg_factor 1 - m (computed in float32 as
                # the SavedModel's attribute is) -> PyTorch's momentum.
                mod.momentum = float(np.float32(1.0) - np.float32(l["momentum"]))
                for role, attr in (("gamma", "weight"), ("beta", "bias"),
                                   ("moving_mean", "running_mean"),
                                   ("moving_variance", "running_var")):
                    tf_var(l, role, key, attr, _same)
                self.bn_keys.append(key)
            elif kind == "ReLU":
                mod = nn.ReLU()
            elif kind == "ReLU6":
                mod = nn.ReLU6()
            elif kind == "Swish":
                mod = nn.SiLU()
            elif kind == "ZeroPadding2D":
                mod = ZeroPad(l["pads"])
            elif kind == "MaxPooling2D":
                if l["padding"] != "VALID" or not _symmetric(pre_pad):
                    raise ValueError(f"{name}: only VALID max pooling is supported")
                mod = nn.MaxPool2d(l["pool_size"], l["strides"], padding=pre_pad[0])
            elif kind == "GlobalAveragePooling2D":
                mod = GlobalAveragePool(bool(l["keepdims"]))
            elif kind == "Dense":
                mod = nn.Linear(in_shape[-1], l["units"], bias=True)
                _copy(mod.weight, weight(l, "kernel").T, name + "/kernel")
                _copy(mod.bias, weight(l, "bias"), name + "/bias")
                tf_var(l, "kernel", key, "weight", _transpose)
                tf_var(l, "bias", key, "bias", _same)
            elif kind == "Normalization":
                mod = Normalization(weight(l, "mean"), weight(l, "variance"))
                # Stored as mean and max(sqrt(variance), 1e-7): not the variables themselves.
            elif kind in ("Add", "Multiply"):
                self.plan.append((name, "add" if kind == "Add" else "mul", ins, ""))
                continue
            else:
                raise ValueError(f"{name}: unsupported layer type {kind!r}")
            self.mods[key] = mod
            self.plan.append((name, "module", ins, key))
        self.output_name = layers[-1]["name"]
        # Drop each intermediate after its last use (keeps eager memory like a real network's).
        last_use = {}
        for step, (_, _, ins, _) in enumerate(self.plan):
            for i in ins:
                last_use[i] = step
        self.free_after = [
            [i for i in ins if last_use[i] == step] for step, (_, _, ins, _) in enumerate(self.plan)
        ]
        self.expected_shapes = {l["name"]: l["output_shape"] for l in layers}
        # Inference by default. (Parameters that require grad also make 1.13's
        # torch.jit.optimize_for_inference trip an internal assert on EfficientNet.)
        self.requires_grad_(False)
        self.eval()
        if training:
            self.set_training()

    def set_training(self):
        """Train mode: batch-norm on batch statistics (TF semantics, see the module docstring),
        gradients for every trainable variable of the manifest."""
        self.train()
        for v in self.tf_variables():
            if v.trainable:
                v.tensor.requires_grad_(True)
        return self

    def tf_variables(self):
        """The manifest's variables (those the call uses), in manifest order, as TFVariable."""
        out = []
        for name, key, attr, to_tf, trainable in self._tf_vars:
            obj = self.mods[key]
            *path, last = attr.split(".")
            for part in path:
                obj = obj[int(part)]
            out.append(TFVariable(name, getattr(obj, last), trainable, to_tf))
        return out

    def _run(self, x, keep_all):
        values = {self.input_name: x.permute(0, 3, 1, 2)}  # NHWC -> NCHW view (channels_last)
        for step, (name, op, ins, key) in enumerate(self.plan):
            if op == "module":
                y = self.mods[key](values[ins[0]])
            elif op == "add":
                y = values[ins[0]] + values[ins[1]]
            else:
                y = values[ins[0]] * values[ins[1]]
            if not keep_all:
                for i in self.free_after[step]:
                    del values[i]
            values[name] = y
        return values

    def forward(self, x):
        return self._run(x, keep_all=False)[self.output_name]

    def forward_all(self, x):
        """Every layer's output, keyed by layer name (NCHW for images); checks the shapes."""
        values = self._run(x, keep_all=True)
        for name, expected in self.expected_shapes.items():
            if name not in values:
                continue  # a folded ZeroPadding2D
            got = list(values[name].shape[1:])
            if len(got) == 3:
                got = [got[1], got[2], got[0]]  # NCHW -> HWC like the manifest
            if got != list(expected):
                raise ValueError(f"{name}: output shape {got}, manifest says {expected}")
        return values


def build(model_dir, fold_padding=True, training=False):
    """ManifestNet for a generated model directory (eval mode unless training)."""
    return ManifestNet(
        manifest_lib.load(model_dir), model_dir, fold_padding=fold_padding, training=training
    )


def export_onnx(model, path, opset=13):
    """ONNX with a dynamic batch: input "inputs" NHWC [N, H, W, 3], output "output_0"."""
    example = torch.rand(1, *model.input_shape)
    model = model.eval().to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        torch.onnx.export(
            model,
            example,
            path,
            opset_version=opset,
            input_names=["inputs"],
            output_names=["output_0"],
            dynamic_axes={"inputs": {0: "batch"}, "output_0": {0: "batch"}},
            do_constant_folding=True,
        )
