"""The Python module against the CLI: same outputs, same error messages, no input copy."""
import os
import pathlib
import shutil
import threading
import time

import numpy as np
import pytest

import hubimg


def test_module_comes_from_where_it_was_installed():
    expected = os.environ.get("HUBIMG_EXPECT_MODULE_DIR")
    assert expected, "HUBIMG_EXPECT_MODULE_DIR is not set (scripts/package_test.sh sets it)"
    assert pathlib.Path(hubimg.__file__).resolve().parent == pathlib.Path(expected).resolve()


def test_version_matches_the_cli(run_cli):
    lines = run_cli("--version").stdout.splitlines()
    assert lines[0] == f"hubimg {hubimg.__version__}"
    assert lines[1] == f"revision: {hubimg.git_revision}"
    assert lines[2] == "kernel backends: " + ", ".join(hubimg.kernel_backends)
    assert "reference" in hubimg.kernel_backends


def _random_images(shape, seed):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32)


def _cli_call(run_cli, tmp_path, model, inputs, signature=None):
    args = ["run", model]
    for key, value in inputs.items():
        np.save(tmp_path / f"in_{key}.npy", value)
        args += ["--input", f"{key}={tmp_path / f'in_{key}.npy'}"]
    if signature:
        args += ["--signature", signature]
    run_cli(*args, "--output", tmp_path / "out")
    return {p.stem: np.load(p) for p in (tmp_path / "out").glob("*.npy")}


def test_call_matches_the_cli_on_a_project_written_model(run_cli, model_path, tmp_path):
    model = hubimg.load(model_path)
    images = _random_images((5, 64, 64, 3), seed=1)
    features = model(images)
    assert features.dtype == np.float32 and features.shape == (5, 5)
    reference = _cli_call(run_cli, tmp_path, model_path, {"inputs": images})["output_0"]
    assert np.max(np.abs(features - reference)) <= 1e-6


def test_golden_case_matches_the_cli_and_the_reference(run_cli, shared_dir, tmp_path):
    fixtures = shared_dir / "fixtures"
    golden = fixtures / "golden" / "mnist_cnn_tf231"
    if not (golden / "cases.json").is_file():
        pytest.skip(f"{golden} not found (../shared absent): the project-written model test "
                    "covers the CLI comparison")
    import json
    case = next(c for c in json.loads((golden / "cases.json").read_text())
                if c["case"] == "mnist_cnn_tf231/call/rand_b3")
    model_dir = fixtures / case["model"]
    images = np.load(golden / case["inputs"]["inputs"])
    reference = np.load(golden / case["outputs"]["output_0"])
    output = hubimg.load(model_dir)(images)
    from_cli = _cli_call(run_cli, tmp_path, model_dir, {"inputs": images})["output_0"]
    assert output.shape == reference.shape == from_cli.shape
    assert np.max(np.abs(output - from_cli)) <= 1e-6
    atol = 1e-4 * max(1.0, float(np.max(np.abs(reference))))
    assert np.all(np.abs(output - reference) <= atol + 1e-4 * np.abs(reference))


def test_signatures_and_call_signature(run_cli, model_path, tmp_path):
    model = hubimg.load(model_path)
    signatures = model.signatures
    assert "serving_default" in signatures
    (key, spec), = signatures["serving_default"].items()
    assert spec["dtype"] == "float32" and spec["shape"][1:] == [64, 64, 3]
    images = _random_images((2, 64, 64, 3), seed=2)
    outputs = model.call_signature("serving_default", **{key: images})
    (name, logits), = outputs.items()
    reference = _cli_call(run_cli, tmp_path, model_path, {key: images}, "serving_default")[name]
    assert np.max(np.abs(logits - reference)) <= 1e-6
    assert np.max(np.abs(logits - model(images))) <= 1e-6


def test_variables_are_read_only_views(model_path):
    model = hubimg.load(model_path)
    variables = model.variables
    trainable = model.trainable_variables
    assert set(trainable) < set(variables)  # moving statistics are not trainable
    for name, value in trainable.items():
        assert value.dtype == np.float32
        assert not value.flags.writeable
        assert np.shares_memory(value, variables[name])  # both view the model's buffer
    assert any(name.endswith("moving_mean") or "moving_mean" in name for name in variables)


def test_decode_image_matches_pillow_and_resizes(image_dir):
    from PIL import Image
    path = sorted(p for p in pathlib.Path(image_dir).iterdir() if p.suffix == ".png")[0]
    decoded = hubimg.decode_image(path)
    expected = np.asarray(Image.open(path).convert("RGB"), np.float32) * np.float32(1 / 255)
    assert decoded.dtype == np.float32 and decoded.shape == expected.shape
    assert np.max(np.abs(decoded - expected)) <= 1e-7
    assert hubimg.decode_image(path, (20, 30)).shape == (20, 30, 3)
    assert hubimg.decode_image(path, 16).shape == (16, 16, 3)
    bilinear = hubimg.decode_image(path, (20, 30))
    bicubic = hubimg.decode_image(path, (20, 30), interpolation="bicubic")
    assert bicubic.shape == (20, 30, 3) and not np.array_equal(bicubic, bilinear)
    assert np.max(np.abs(bicubic - bilinear)) < 0.5  # both interpolate the same pixels
    with pytest.raises(hubimg.Error, match="lanczos7"):
        hubimg.decode_image(path, 16, interpolation="lanczos7")


def test_labels_the_model_ships(model_path, tmp_path):
    assert hubimg.load(model_path).labels is None
    model_dir = tmp_path / "model.savedmodel"
    shutil.copytree(model_path, model_dir)
    (tmp_path / "labels.txt").write_text("0 Eyes open\n1 Eyes closed\n")
    assert hubimg.load(model_dir).labels == ["Eyes open", "Eyes closed"]
    (model_dir / "assets").mkdir(exist_ok=True)
    (model_dir / "assets" / "labels.txt").write_text("cat\r\ndog\n")
    assert hubimg.load(model_dir).labels == ["cat", "dog"]
    assert hubimg.read_labels(tmp_path / "labels.txt") == ["Eyes open", "Eyes closed"]
    with pytest.raises(hubimg.Error, match="no_such_labels.txt"):
        hubimg.read_labels(tmp_path / "no_such_labels.txt")


def test_errors_carry_the_cli_message(run_cli, tmp_path):
    missing = tmp_path / "no_such_model"
    with pytest.raises(hubimg.Error) as raised:
        hubimg.load(missing)
    result = run_cli("info", missing, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == f"hubimg: error: {raised.value}"
    assert isinstance(raised.value, RuntimeError)


def test_bad_input_raises_instead_of_crashing(model_path):
    model = hubimg.load(model_path)
    with pytest.raises(hubimg.Error) as raised:
        model(np.zeros((2, 64, 64), np.float32))
    assert str(raised.value)
    with pytest.raises(hubimg.Error, match="no signature 'no_such_signature'"):
        model.call_signature("no_such_signature", x=np.zeros((1,), np.float32))
    with pytest.raises(hubimg.Error, match="no_such_file"):
        hubimg.decode_image("no_such_file.png")


def test_c_contiguous_float32_input_is_not_copied():
    images = np.random.default_rng(3).uniform(0, 1, (64, 224, 224, 3)).astype(np.float32)
    seen = hubimg._as_library_tensor(images)
    assert seen.__array_interface__["data"][0] == images.__array_interface__["data"][0]
    assert not seen.flags.writeable
    # A strided view is made contiguous (a copy) and still reads the same values.
    strided = images[:, ::2]
    seen = hubimg._as_library_tensor(strided)
    assert seen.__array_interface__["data"][0] != strided.__array_interface__["data"][0]
    assert np.array_equal(seen, strided)


def test_input_outlives_the_caller_reference(model_path):
    model = hubimg.load(model_path)
    images = _random_images((3, 64, 64, 3), seed=4)
    expected = model(images.copy())
    view = hubimg._as_library_tensor(images)
    del images  # the library's view keeps the array alive
    assert np.array_equal(model(view), expected)


def test_gil_is_released_during_calls(model_path):
    model = hubimg.load(model_path)
    hubimg.set_num_threads(1)
    images = _random_images((64, 64, 64, 3), seed=5)
    single = model(images)
    results = [None, None]
    ticks = [0]
    done = threading.Event()

    def work(i):
        for _ in range(3):
            results[i] = model(images)

    def count():
        while not done.is_set():
            ticks[0] += 1
            time.sleep(0)

    counter = threading.Thread(target=count)
    counter.start()
    start = time.perf_counter()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    done.set()
    counter.join()
    hubimg.set_num_threads(0)
    for result in results:
        assert np.array_equal(result, single)
    # With the GIL held for a whole call, the counter thread would stall during every call.
    assert ticks[0] > 100, f"{ticks[0]} ticks in {elapsed:.2f}s"
