"""Fixtures for the service tests: real bundles (tests/bundles.py), real runtimes, real gunicorn."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

import usbills_app.imaging  # noqa: F401 - registers the HEIF plugin for solid(fmt="HEIF")
from tests.bundles import COLOURS, GREY, cached_bundle
from tests.procs import free_port
from usbills_app import create_app, runtime
from usbills_app.config import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bundle_dir() -> Path:
    return cached_bundle("tflite")


@pytest.fixture(scope="session")
def onnx_bundle_dir() -> Path:
    return cached_bundle("onnx")


@pytest.fixture(scope="session")
def model(bundle_dir):
    return runtime.load_model(bundle_dir)


@pytest.fixture
def settings(bundle_dir) -> Settings:
    return Settings(model_dir=bundle_dir)


@pytest.fixture
def make_app(model, settings):
    """Build an app around the session's loaded model with some settings changed."""

    def make(**changes):
        return create_app(dataclasses.replace(settings, **changes), model=model)

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def solid(label_or_rgb, size=(320, 240), fmt="JPEG", **kw) -> bytes:
    """An image of one colour: the test model's answer is known (see tests/bundles.py)."""
    rgb = label_or_rgb if isinstance(label_or_rgb, tuple) else COLOURS.get(label_or_rgb, GREY)
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, format=fmt, **kw)
    return buf.getvalue()


class Gunicorn:
    """gunicorn started for real with the project's config file, on an ephemeral port."""

    def __init__(self, env: dict, tmp: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "gunicorn.log"
        full = {**os.environ, "PORT": str(self.port), "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom"),
                **env}
        (tmp / "prom").mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "usbills_app/gunicorn.conf.py",
             "usbills_app:create_app()"],
            cwd=ROOT, env=full, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited: {self.log.read_text()}")
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"gunicorn not ready: {self.log.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server(bundle_dir, tmp_path_factory):
    g = Gunicorn({"MODEL_DIR": str(bundle_dir), "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "2"},
                 tmp_path_factory.mktemp("gunicorn"))
    try:
        g.wait_ready()
        yield g
    finally:
        g.stop()
