"""Smoke test of scripts/bench-inference: a tiny run checks the report's fields (the figures
are in docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_inference_writes_served_against_plain(tmp_path):
    proc = subprocess.run(["scripts/bench-inference", "--runs", "3", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "bench-inference.json").read_text())
    assert [x["format"] for x in r["results"]] == ["tflite", "onnx", "tflite-int8w"]
    sv = r["served_vs_plain"]
    assert sv["input"] == "256x256" and sv["localiser"] is True
    assert set(sv["served_parts_p50_ms"]) == {"localise", "preprocess", "inference"}
    assert set(sv["plain_p50_ms"]) == {"float32", "int8"}
    assert sv["ratio"] > 0 and sv["floor_ms"] == min(sv["plain_p50_ms"].values())
    assert "| served / fastest plain pass |" in (tmp_path / "bench-inference.md").read_text()


def test_bench_inference_refuses_bad_input(tmp_path):
    proc = subprocess.run(["scripts/bench-inference", "--bundle", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {tmp_path}: no readable card.json")
    proc = subprocess.run(["scripts/bench-inference", "--runs", "0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "expected a whole number of at least 1" in proc.stderr
    assert "Traceback" not in proc.stderr
