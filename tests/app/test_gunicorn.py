"""Real gunicorn with the project's config file, called over HTTP."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
import requests

from .conftest import ROOT, Gunicorn, solid

pytestmark = pytest.mark.slow


def test_predict_over_http(server):
    r = requests.post(server.url + "/api/v1/predict?lang=es", data=solid("USD-20"),
                      headers={"Content-Type": "image/jpeg"}, timeout=10)
    assert r.status_code == 200 and r.json()["message"] == "Veinte dólares"
    r = requests.post(server.url + "/api/v1/predict",
                      files=[("image", ("a.jpg", solid("USD-1"))),
                             ("image", ("b.png", solid("none", fmt="PNG")))],
                      timeout=10)
    assert [a["label"] for a in r.json()["results"]] == ["USD-1", "none"]


def test_errors_over_http(server):
    r = requests.post(server.url + "/api/v1/predict", data=b"x" * (11 * 1024 * 1024),
                      headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = requests.get(server.url + "/api/v1/predict", timeout=5)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    # Chunked (a generator body: no Content-Length): over the limit a 413, under it an answer.
    chunks = (b"\0" * (1024 * 1024) for _ in range(11))
    r = requests.post(server.url + "/api/v1/predict", data=chunks,
                      headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = requests.post(server.url + "/api/v1/predict", data=iter([solid("USD-2")]),
                      headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert r.status_code == 200 and r.json()["label"] == "USD-2"


def test_metrics_aggregate_workers(server):
    # Enough requests that both workers (WEB_CONCURRENCY=2) are very likely to serve some;
    # the count must be the total whichever worker answered /metrics.
    def count() -> float:
        text = requests.get(server.url + "/metrics", timeout=5).text
        m = re.search(r'usbills_predictions_total\{identified="true",label="USD-5"\} (\S+)', text)
        return float(m.group(1)) if m else 0.0

    before = count()
    n = 12
    for _ in range(n):
        with requests.Session() as s:  # a new connection each time
            s.post(server.url + "/api/v1/predict", data=solid("USD-5"),
                   headers={"Content-Type": "image/jpeg"}, timeout=10)
    assert count() - before == n


def test_access_log_is_json(server):
    requests.get(server.url + "/healthz", headers={"User-Agent": 'quote" agent'}, timeout=5)
    time.sleep(0.3)
    lines = [ln for ln in server.log.read_text().splitlines() if ln.startswith("{")]
    records = [json.loads(ln) for ln in lines]
    hz = [r for r in records if r["path"] == "/healthz"]
    assert hz and hz[-1]["status"] == 200 and hz[-1]["user_agent"] == 'quote" agent'
    assert isinstance(hz[-1]["duration_ms"], float)


def test_graceful_shutdown(bundle_dir, tmp_path):
    g = Gunicorn({"MODEL_DIR": str(bundle_dir)}, tmp_path)
    g.wait_ready()
    assert g.stop() == 0
    assert "Shutting down: Master" in g.log.read_text()


def test_shutdown_delay_keeps_answering_after_sigterm(bundle_dir, tmp_path):
    """SHUTDOWN_DELAY_S (3 on Swarm): after SIGTERM the app still answers new requests for
    that long (the site nginx may still send them there), then stops gracefully."""
    g = Gunicorn({"MODEL_DIR": str(bundle_dir), "SHUTDOWN_DELAY_S": "2"}, tmp_path)
    try:
        g.wait_ready()
        g.proc.terminate()
        t0 = time.monotonic()
        time.sleep(0.5)
        r = requests.post(g.url + "/api/v1/predict", data=solid("USD-10"),
                          headers={"Content-Type": "image/jpeg"}, timeout=10)
        assert r.status_code == 200 and r.json()["label"] == "USD-10"
        assert g.proc.wait(30) == 0
        assert time.monotonic() - t0 >= 2
        assert "SIGTERM: serving 2.0 s more before stopping" in g.log.read_text()
    finally:
        g.stop()


def run_gunicorn(env: dict, tmp_path) -> subprocess.CompletedProcess:
    import os

    full = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PORT": "1", **env}
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "usbills_app/gunicorn.conf.py",
         "usbills_app:create_app()"],
        cwd=ROOT, env=full, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("env, line", [
    ({"MAX_BATCH": "lots"}, "MAX_BATCH='lots' is not an integer (allowed 1..64)"),
    # (A non-integer WEB_CONCURRENCY is refused by gunicorn itself, before any config file.)
    ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY=0 is out of range (allowed 1..64)"),
])
def test_bad_env_stops_gunicorn_with_one_line(bundle_dir, tmp_path, env, line):
    p = run_gunicorn({"MODEL_DIR": str(bundle_dir), **env}, tmp_path)
    assert p.returncode != 0
    assert p.stderr.strip().splitlines() == [f"usbills: configuration error: {line}"]


def test_missing_bundle_stops_gunicorn_with_one_line(tmp_path):
    p = run_gunicorn({"MODEL_DIR": str(tmp_path / "none")}, tmp_path)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "usbills: model bundle error: model bundle " in out and "does not exist" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("threads", ["1", "2"])
def test_corrupt_bundle_stops_gunicorn_with_one_line(bundle_dir, tmp_path, threads):
    """Also with INFERENCE_THREADS > 1, where workers load the model after fork (they used to
    respawn for ever)."""
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(bundle_dir, bad)
    model_file = next(bad.glob("model.*"))
    model_file.write_bytes(model_file.read_bytes()[:-10])
    p = run_gunicorn({"MODEL_DIR": str(bad), "INFERENCE_THREADS": threads,
                      "WEB_CONCURRENCY": "2"}, tmp_path)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert out.count("usbills: model bundle error:") == 1 and "does not match card.json" in out
    assert "Traceback" not in out and "Booting worker" not in out


def test_inference_threads_with_several_workers(bundle_dir, tmp_path):
    # INFERENCE_THREADS > 1: the model is loaded after fork (a runtime thread pool does not
    # survive fork); every worker must answer.
    g = Gunicorn({"MODEL_DIR": str(bundle_dir), "INFERENCE_THREADS": "2",
                  "WEB_CONCURRENCY": "2"}, tmp_path)
    try:
        g.wait_ready()
        for _ in range(6):
            with requests.Session() as s:
                r = s.post(g.url + "/api/v1/predict", data=solid("USD-10"),
                           headers={"Content-Type": "image/jpeg"}, timeout=10)
                assert r.json()["label"] == "USD-10"
    finally:
        g.stop()
