"""What the Python tests run on, given by scripts/package_test.sh through the environment:
HUBIMG_CLI (the hubimg executable), HUBIMG_TEST_MODEL (a SavedModel the project wrote: tiny_cnn),
HUBIMG_TEST_IMAGES (a folder of images), HUBIMG_SHARED_DIR (../shared, optional) and
HUBIMG_EXPECT_MODULE_DIR (where `import hubimg` must come from)."""
import os
import pathlib
import subprocess

import pytest


def _required(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set (scripts/package_test.sh sets it)")
    return value


@pytest.fixture(scope="session")
def cli():
    return _required("HUBIMG_CLI")


@pytest.fixture(scope="session")
def model_path():
    return _required("HUBIMG_TEST_MODEL")


@pytest.fixture(scope="session")
def image_dir():
    return _required("HUBIMG_TEST_IMAGES")


@pytest.fixture(scope="session")
def shared_dir():
    return pathlib.Path(os.environ.get("HUBIMG_SHARED_DIR", ""))


@pytest.fixture(scope="session")
def run_cli(cli):
    def run(*args, check=True):
        return subprocess.run([cli, *map(str, args)], capture_output=True, text=True, check=check)
    return run
