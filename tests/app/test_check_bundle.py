"""`python -m usbills_app.check_bundle`: the stack's check of a bundle before it replaces the
running app (docker-compose.yml, service model-check; scripts/up runs it)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

from tests.bundles import cached_bundle


def check(*args, env=None):
    return subprocess.run([sys.executable, "-m", "usbills_app.check_bundle", *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_a_good_bundle_is_named(tmp_path):
    proc = check(str(cached_bundle("tflite-localiser", 32)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usbills: model bundle OK: ") and "with localiser" in proc.stdout


def test_a_model_file_the_runtime_cannot_open_is_one_line(tmp_path):
    bad = tmp_path / "bundle"
    shutil.copytree(cached_bundle("tflite", 32), bad)
    card = json.loads((bad / "card.json").read_text())
    (bad / card["model_file"]).write_bytes(b"garbage" * 50)
    card["sha256"] = hashlib.sha256((bad / card["model_file"]).read_bytes()).hexdigest()
    (bad / "card.json").write_text(json.dumps(card))
    proc = check(str(bad))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("usbills: model bundle error: ") and "model.tflite" in proc.stderr


def test_missing_bundle_and_bad_usage(tmp_path):
    proc = check(str(tmp_path / "nothing"))
    assert proc.returncode == 1 and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = check("--help")
    assert proc.returncode == 2 and proc.stderr.startswith("usage: ")
