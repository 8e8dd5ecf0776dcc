"""Smoke test of scripts/bench-stack: a tiny run on the real engine, with the reference server,
checks that the report has every field (not the figures; those are in docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOAD_FIELDS = {"connections", "ok_per_s", "latency", "ok", "429", "other", "socket_errors",
               "timeouts", "load", "steal_pct"}


def test_bench_stack_writes_every_field(tmp_path):
    # The test venv has TensorFlow (training extra), so the reference needs no venv of its own.
    proc = subprocess.run(
        ["scripts/bench-stack", "--duration", "1", "--concurrency", "1,2", "--runs", "1",
         "--samples", "2", "--rounds", "1", "--bundle", "colour",
         "--reference-python", sys.executable, "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "bench-stack.json").read_text())
    assert set(r["images_mb"]) == {"usbills/app:0.1.0", "usbills/site-nginx:0.1.0",
                                   "usbills/proxy:0.1.0"}
    assert len(r["cold_start"]["ready_s"]) == 1
    for times in r["server_ms"].values():
        assert {"decode", "preprocess", "inference", "total"} <= set(times)
    containers = {"site app", "site nginx", "site watchdog", "proxy proxy", "proxy companion",
                  "proxy watchdog"}
    assert set(r["pss_idle_mb"]) == set(r["pss_peak_mb"]) == containers
    assert all(v > 0 for v in r["pss_idle_mb"].values())
    bodies = [(x["body"], x["connections"]) for x in r["load"]]
    assert bodies == [("page frames", 1), ("page frames", 2), ("12 MP photo", 1),
                      ("12 MP photo", 2)]
    for x in r["load"] + r["versus"]:
        assert set(x) >= LOAD_FIELDS
        assert {"50", "90", "99"} <= set(x["latency"])
        assert x["ok"] > 0  # every server answered
    assert [(x["server"], x["connections"]) for x in r["versus"]] == [
        ("ours", 1), ("reference", 1), ("ours", 2), ("reference", 2)]
    assert all(x["cpu_ms_per_answer"] > 0 for x in r["versus"])
    assert r["reference"]["pss_idle_mb"] > 0
    md = (tmp_path / "bench-stack.md").read_text()
    for heading in ("| body | connections | answered 200/s | p50 | p90 | p99 | 429 |",
                    "| connections | ours 200/s | reference 200/s | ratio |",
                    "**whole stack**"):
        assert heading in md


def test_bench_stack_refuses_bad_flags():
    proc = subprocess.run(["scripts/bench-stack", "--concurrency", "x"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "--concurrency 'x': expected numbers like 1,4,16" in proc.stderr
    assert "Traceback" not in proc.stderr
