"""Smoke test of scripts/bench-ondevice: a tiny run on the colour bundle (as .tflite, so the
page runs it on the phone) with a synthetic $20 as the note coming into view checks the
report's fields; the figures, on the served bundle and real photographs, are in
docs/benchmarks.md."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests import synth

from . import colour_bundle
from .conftest import ROOT

pytestmark = pytest.mark.browser


def test_bench_ondevice_times_a_note_coming_into_view(tmp_path):
    bundle = colour_bundle.build_tflite(tmp_path / "bundle")
    picture = tmp_path / "twenty.png"
    synth.bill(20, size=(640, 480)).save(picture)
    out = tmp_path / "out"
    proc = subprocess.run(
        ["scripts/bench-ondevice", "--runs", "1", "--frames", "3", "--scan-seconds", "1",
         "--trials", "2", "--bundle", str(bundle), "--picture", str(picture), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads((out / "bench-ondevice.json").read_text())
    assert r["uploads_during_scan"] == 0 and len(r["warm_frame_ms"]) == 3
    assert len(r["warm_frame_1024_ms"]) == 3  # the page's largest frame, 1024x576
    view = r["note_in_view"]
    assert view["picture"] == "twenty.png" and view["label"] == "USD-20"
    assert len(view["seconds"]) == 2 and all(0 < s < 10 for s in view["seconds"])
    assert view["median_s"] <= view["max_s"] == max(view["seconds"])
    # The rule needs its agreeing frames, all analysed on the phone.
    assert all(n >= r["scan_rule"]["frames"] for n in view["frames_analysed"])
    assert view["uploads"] == 0
    md = (out / "bench-ondevice.md").read_text()
    assert "| a note coming into view on a warm page -> the page speaks its name (timed" in md


def test_bench_ondevice_refuses_bad_input(tmp_path):
    for args, message in ((["--trials", "0"], "--trials must be at least 1"),
                          (["--picture", str(tmp_path / "none.jpg")], "no such file"),
                          (["--bundle", str(tmp_path)], "no card.json there")):
        proc = subprocess.run(["scripts/bench-ondevice", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
