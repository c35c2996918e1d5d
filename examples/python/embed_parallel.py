#!/usr/bin/env python3
"""Embeds a folder of images with a pool of worker processes, the way a Ray or Spark job does.

Each worker process loads the model once and embeds whole shards (lists of image files); each
shard becomes one .npy file of feature rows, and manifest.json lists the shards with their image
files in row order:

    python3 embed_parallel.py MODEL IMAGE_FOLDER OUT_DIR --workers 2 --threads 1 --shard-size 256

`embed_shard` is the unit of work: a plain function of (model path, file list, output file) that
a Ray task or a Spark mapPartitions call runs unchanged (README.md, "Python").
"""
import argparse
import json
import multiprocessing
import os
import sys

import numpy as np

import hubimg

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}

# One model per worker process, loaded by the first shard that needs it.
_models = {}


def _model(model_path, threads):
    if threads:
        hubimg.set_num_threads(threads)
    if model_path not in _models:
        _models[model_path] = hubimg.load(model_path)
    return _models[model_path]


def image_size(model):
    """(height, width) of the model's image input, or None when the model accepts any size."""
    inputs = model.call_inputs
    if not inputs or len(inputs) != 1:
        raise ValueError("the model's __call__ must take exactly one image batch")
    shape = next(iter(inputs.values()))["shape"]
    if shape is None or len(shape) != 4 or shape[1] <= 0 or shape[2] <= 0:
        return None
    return shape[1], shape[2]


def embed_shard(model_path, files, out_path, size=None, threads=1, batch=32, value_range=(0.0, 1.0)):
    """Embeds `files` (in order) into `out_path` (.npy, one row per image); returns the shard's
    manifest entry. Images are decoded and resized like `hubimg embed` does (RGB in [0, 1],
    bilinear with half-pixel centers), scaled to `value_range`, and run through the model's
    root __call__ in batches of `batch`; the first output's rows are stored."""
    model = _model(model_path, threads)
    size = tuple(size) if size else image_size(model)
    if size is None:
        raise ValueError(f"{model_path} accepts any image size: pass size=(height, width)")
    lo, hi = value_range
    rows = []
    for start in range(0, len(files), batch):
        images = np.stack([hubimg.decode_image(f, size) for f in files[start:start + batch]])
        if (lo, hi) != (0.0, 1.0):
            images = lo + images * np.float32(hi - lo)
        features = model(images)
        if isinstance(features, list):
            features = features[0]
        rows.append(features)
    features = np.concatenate(rows) if rows else np.zeros((0,), np.float32)
    np.save(out_path, features)
    return {"file": os.path.basename(out_path), "rows": len(files),
            "shape": list(features.shape), "images": [os.fspath(f) for f in files]}


def list_images(folder):
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS)


def _embed_shard_args(args):
    return embed_shard(*args)


def embed_folder(model_path, folder, out_dir, workers=2, threads=1, shard_size=256, batch=32,
                 size=None, value_range=(0.0, 1.0)):
    """Shards the folder's images, embeds the shards on `workers` processes with `threads`
    kernel threads each, and writes OUT_DIR/shard_NNNNN.npy and OUT_DIR/manifest.json."""
    files = list_images(folder)
    if not files:
        raise ValueError(f"{folder}: no image files")
    os.makedirs(out_dir, exist_ok=True)
    tasks = [(model_path, files[i:i + shard_size],
              os.path.join(out_dir, f"shard_{i // shard_size:05d}.npy"), size, threads, batch,
              value_range) for i in range(0, len(files), shard_size)]
    # spawn: workers start clean (no thread pools inherited half-initialised through fork).
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        shards = pool.map(_embed_shard_args, tasks, chunksize=1)
    manifest = {"model": os.fspath(model_path), "images": len(files), "workers": workers,
                "threads_per_worker": threads, "hubimg": hubimg.__version__, "shards": shards}
    with open(os.path.join(out_dir, "manifest.json"), "w") as out:
        json.dump(manifest, out, indent=1)
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="SavedModel directory or .tar.gz")
    parser.add_argument("folder", help="folder of images")
    parser.add_argument("out_dir", help="where shard_NNNNN.npy and manifest.json go")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=1, help="kernel threads per worker")
    parser.add_argument("--shard-size", type=int, default=256, help="images per .npy shard")
    parser.add_argument("--batch", type=int, default=32, help="images per model call")
    parser.add_argument("--size", help="HxW when the model does not fix its input size")
    parser.add_argument("--range", default="0,1", help="pixel range the model expects, lo,hi")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x")) if args.size else None
    value_range = tuple(float(v) for v in args.range.split(","))
    manifest = embed_folder(args.model, args.folder, args.out_dir, args.workers, args.threads,
                            args.shard_size, args.batch, size, value_range)
    print(f"{manifest['images']} images -> {len(manifest['shards'])} shards in {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
