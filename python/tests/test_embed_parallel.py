"""examples/python/embed_parallel.py: the shard function alone (what a Ray task or a Spark
partition runs) and the process pool, both against `hubimg embed`."""
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "examples" / "python"))
import embed_parallel  # noqa: E402


def _cli_embed(run_cli, model_path, image_dir, tmp_path):
    out = tmp_path / "cli_features.npy"
    run_cli("embed", model_path, image_dir, "--output", out)
    names = (tmp_path / "cli_features.npy.txt").read_text().split()
    return np.load(out), names


def test_embed_shard_matches_the_cli(run_cli, model_path, image_dir, tmp_path):
    reference, names = _cli_embed(run_cli, model_path, image_dir, tmp_path)
    files = embed_parallel.list_images(image_dir)
    assert [pathlib.Path(f).name for f in files] == [pathlib.Path(n).name for n in names]
    entry = embed_parallel.embed_shard(model_path, files, str(tmp_path / "shard.npy"), batch=3)
    features = np.load(tmp_path / "shard.npy")
    assert entry["rows"] == len(files) and entry["shape"] == list(reference.shape)
    assert entry["images"] == files
    assert np.max(np.abs(features - reference)) <= 1e-6


def test_process_pool_writes_shards_and_a_manifest(run_cli, model_path, image_dir, tmp_path):
    reference, _ = _cli_embed(run_cli, model_path, image_dir, tmp_path)
    out = tmp_path / "embeddings"
    manifest = embed_parallel.embed_folder(model_path, image_dir, str(out), workers=2, threads=1,
                                           shard_size=2, batch=2)
    assert manifest == json.loads((out / "manifest.json").read_text())
    shards = manifest["shards"]
    assert len(shards) == (len(reference) + 1) // 2
    rows = [np.load(out / shard["file"]) for shard in shards]
    assert [len(r) for r in rows] == [shard["rows"] for shard in shards]
    images = [image for shard in shards for image in shard["images"]]
    assert images == embed_parallel.list_images(image_dir)
    assert np.max(np.abs(np.concatenate(rows) - reference)) <= 1e-6


def test_command_line(model_path, image_dir, tmp_path):
    out = tmp_path / "cmd"
    assert embed_parallel.main([model_path, image_dir, str(out), "--workers", "1",
                                "--shard-size", "3"]) == 0
    assert (out / "manifest.json").is_file() and (out / "shard_00000.npy").is_file()
