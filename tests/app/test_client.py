"""python -m usbills_app.client against a real gunicorn."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT, free_port, solid

pytestmark = pytest.mark.slow


def client(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "usbills_app.client", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_client_prints_answers(server, tmp_path):
    (tmp_path / "twenty.jpg").write_bytes(solid("USD-20"))
    (tmp_path / "nothing.png").write_bytes(solid("none", fmt="PNG"))
    (tmp_path / "iphone.heic").write_bytes(solid("USD-1", fmt="HEIF"))
    p = client(str(tmp_path / "twenty.jpg"), str(tmp_path / "nothing.png"),
               str(tmp_path / "iphone.heic"), "--url", server.url)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].endswith("twenty.jpg: Twenty dollars (USD-20, 100.0%)")
    assert "nothing.png: No banknote found" in lines[1]
    assert "iphone.heic: One dollar" in lines[2]


def test_client_json_and_spanish(server, tmp_path):
    (tmp_path / "a.jpg").write_bytes(solid("USD-50"))
    p = client(str(tmp_path / "a.jpg"), "--url", server.url, "--json", "--lang", "es")
    ans = json.loads(p.stdout)
    assert p.returncode == 0 and ans["message"] == "Cincuenta dólares"


def test_client_reports_api_errors(server, tmp_path):
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "ok.jpg").write_bytes(solid("USD-5"))
    p = client(str(tmp_path / "notes.txt"), str(tmp_path / "ok.jpg"), str(tmp_path / "gone.jpg"),
               "--url", server.url)
    assert p.returncode == 1
    assert "notes.txt: error invalid_image:" in p.stdout
    assert "ok.jpg: Five dollars" in p.stdout
    assert "gone.jpg: no such file" in p.stderr


def test_client_unreachable(tmp_path):
    (tmp_path / "a.jpg").write_bytes(solid("USD-5"))
    p = client(str(tmp_path / "a.jpg"), "--url", f"http://127.0.0.1:{free_port()}")
    assert p.returncode == 1
    assert p.stderr.startswith("usbills client: cannot reach http://127.0.0.1:")
    assert "Traceback" not in p.stderr


def test_client_bad_url(tmp_path):
    p = client("a.jpg", "--url", "file:///etc/passwd")
    assert p.returncode == 2 and "--url must be an http:// or https:// URL" in p.stderr
