#!/usr/bin/python3
"""PyTorch rerun of issue 11's Fashion-MNIST acceptance recipe, as an independent reference for
the accuracy `hubimg retrain` reaches with the same network, data and settings.

  make_bench_models DIR --only mobilenet_v2 --alpha 0.35 --feature-vector --input-size 32 \
      --seed 1 --dump-npy      (the weights `hubimg export ... --seed 1` writes; add
      --init keras for those of `hubimg export ... --init keras`)
  /usr/bin/python3 bench/peers/torch_retrain.py DIR/mobilenet_v2 [--epochs 8] [--batch 64]
      [--lr 0.002] [--dropout 0.2] [--l2 1e-4] [--base-l2 4e-5] [--validation-split 0.1]
      [--max-examples N] [--threads 2] [--seed 1] [--data /usr/share/datasets/fashion-mnist]

What it does, as `hubimg retrain ... --fine-tune --optimizer adam --label-smoothing 0` does:
the base (same initial weights, rebuilt by torch_models.py) in training mode, Dropout and a
Dense head (Keras glorot-uniform kernel, zero bias), loss = mean cross-entropy + l2 * sum(W^2)
on the head kernel + base_l2 * sum(w^2) on every base Conv2D kernel (the exported model's
regularization losses), Adam (Keras defaults: betas 0.9/0.999, epsilon 1e-7), a validation
split of each class, a new shuffle every epoch, 28x28 images resized to 32x32 (bilinear,
half-pixel centers) and repeated over RGB, values in [0, 1]. Evaluation in eval mode (moving
statistics). One JSON object per epoch and one with the test accuracy, like retrain's --log.
Random streams differ from hubimg's (shuffle order, dropout masks, head initialization), so
only the accuracy level is comparable, not the digits.
"""

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def images(raw, size):
    x = torch.from_numpy(raw.astype(np.float32) / 255.0).unsqueeze(1)  # N,1,28,28
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.permute(0, 2, 3, 1).contiguous()  # N,H,W,1 (expanded to RGB per batch)


def evaluate(base, head, x, y, batch):
    base.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = x[i:i + batch].expand(-1, -1, -1, 3)
            correct += int((head(base(xb)).argmax(1) == y[i:i + batch]).sum())
    return correct / len(x)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--l2", type=float, default=1e-4)
    p.add_argument("--base-l2", type=float, default=4e-5)
    p.add_argument("--validation-split", type=float, default=0.1)
    p.add_argument("--bn-momentum", type=float, default=0.99,
                   help="Keras momentum of the moving statistics (the exported model's "
                        "batch_norm_momentum default, which retrain uses)")
    p.add_argument("--max-examples", type=int, default=0)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    train_raw = read_idx(os.path.join(args.data, "train-images-idx3-ubyte.gz"))
    train_lab = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz")).astype(np.int64)
    if args.max_examples:
        train_raw, train_lab = train_raw[:args.max_examples], train_lab[:args.max_examples]
    test_x = images(read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")), args.size)
    test_y = torch.from_numpy(
        read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64))
    val_idx, train_idx = [], []
    for c in np.unique(train_lab):
        members = rng.permutation(np.flatnonzero(train_lab == c))
        n_val = int(round(len(members) * args.validation_split))
        val_idx += list(members[:n_val])
        train_idx += list(members[n_val:])
    all_x = images(train_raw, args.size)
    all_y = torch.from_numpy(train_lab)
    train_x, train_y = all_x[train_idx], all_y[train_idx]
    val_x, val_y = all_x[val_idx], all_y[val_idx]

    base = torch_models.build(args.model_dir, training=True)
    for m in base.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = float(np.float32(1.0) - np.float32(args.bn_momentum))
    kernels = [m.weight for m in base.modules() if isinstance(m, nn.Conv2d) and m.groups == 1]
    nf = base.expected_shapes[base.output_name][-1]
    head = nn.Linear(nf, 10)
    nn.init.xavier_uniform_(head.weight)
    nn.init.zeros_(head.bias)
    drop = nn.Dropout(args.dropout)
    params = [p for p in base.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-7)

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        base.train()
        order = torch.from_numpy(rng.permutation(len(train_x)))
        total_loss, correct, seen = 0.0, 0, 0
        for i in range(0, len(order), args.batch):
            idx = order[i:i + args.batch]
            xb, yb = train_x[idx].expand(-1, -1, -1, 3), train_y[idx]
            logits = head(drop(base(xb)))
            loss = F.cross_entropy(logits, yb)
            loss = loss + args.l2 * head.weight.pow(2).sum()
            loss = loss + args.base_l2 * sum(k.pow(2).sum() for k in kernels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += float(loss) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
        val_acc = evaluate(base, head, val_x, val_y, 256)
        print(json.dumps({"epoch": epoch, "loss": total_loss / seen, "accuracy": correct / seen,
                          "val_accuracy": val_acc,
                          "seconds": time.perf_counter() - start}), flush=True)
    print(json.dumps({"test_accuracy": evaluate(base, head, test_x, test_y, 256)}), flush=True)


if __name__ == "__main__":
    main()
