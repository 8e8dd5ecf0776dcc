"""Smoke test of scripts/bench-settings: a tiny run on the real engine (the current defaults
against one setting that changes both nginx configs), checking the report's fields, not the
figures (those are in docs/benchmarks.md); and its argument checks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETTING = "SITE_KEEPALIVE=4,PROXY_KEEPALIVE=off,SITE_REQUEST_BUFFERING=off"
RUN_FIELDS = {"connections", "ok_per_s", "latency", "latency_ms", "ok", "429", "other",
              "socket_errors", "timeouts", "load", "steal_pct", "cpu_ms_per_answer", "setting",
              "round"}


def test_bench_settings_writes_every_field(tmp_path):
    proc = subprocess.run(
        ["scripts/bench-settings", "--duration", "1", "--concurrency", "2", "--rounds", "2",
         "--handshakes", "20", "--bundle", "colour", "--out", str(tmp_path), SETTING],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "bench-settings.json").read_text())
    assert r["settings"] == ["current", SETTING]
    assert set(r["pss_idle_mb"]) == {"current", SETTING}
    assert all(v["app"] > 0 and v["nginx"] > 0 for v in r["pss_idle_mb"].values())
    # Interleaved, the order rotated each round.
    assert [(x["round"], x["setting"]) for x in r["runs"]] == [
        (1, "current"), (1, SETTING), (2, SETTING), (2, "current")]
    for x in r["runs"]:
        assert set(x) >= RUN_FIELDS
        assert {"50", "90", "99"} <= set(x["latency"])
        assert set(x["cpu_ms_per_answer"]) == {"app", "site nginx", "proxy"}
        # Both configs answered, and the proxy's per-IP limit did not (it is lifted here).
        assert x["ok"] > 0 and x["429"] == x["other"] == x["socket_errors"] == 0
    tls = r["tls"]
    assert tls["full"]["n"] == tls["resumed"]["n"] == 10
    assert tls["full"]["resumed"] == 0 and tls["resumed"]["resumed"] == 10  # sessions resume
    md = (tmp_path / "bench-settings.md").read_text()
    for heading in ("| setting | memory idle (PSS): app | site nginx |",
                    "| connections | setting | answered 200/s | against current |",
                    "| handshake | connections | resumed |"):
        assert heading in md


@pytest.mark.parametrize(("args", "message"), [
    (["FOO=1"], "setting 'FOO=1': unknown setting 'FOO' (known: WEB_CONCURRENCY,"),
    (["WEB_CONCURRENCY=0"], "WEB_CONCURRENCY must be a whole number in 1..64, got '0'"),
    (["SITE_KEEPALIVE=yes"], "SITE_KEEPALIVE must be off or a number of connections"),
    (["PROXY_BODY_BUFFER=big"], "PROXY_BODY_BUFFER must be a size like 64k, got 'big'"),
    (["INFERENCE_THREADS"], "'INFERENCE_THREADS' is not KEY=VALUE"),
    (["GUNICORN_THREADS=2,GUNICORN_THREADS=8"], "GUNICORN_THREADS given twice"),
    (["GUNICORN_THREADS=2", "GUNICORN_THREADS=2"], "a setting is given twice"),
    (["--concurrency", "x", "GUNICORN_THREADS=2"], "--concurrency 'x': expected numbers"),
    ([], "the following arguments are required"),
])
def test_bench_settings_refuses_bad_arguments(args, message):
    proc = subprocess.run(["scripts/bench-settings", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
