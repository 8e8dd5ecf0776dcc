"""The curl and client examples in docs/api.md work against a real server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT, solid

pytestmark = pytest.mark.slow


def examples() -> list[str]:
    text = (ROOT / "docs/api.md").read_text()
    block = text.split("Examples (against a local server", 1)[1].split("```sh", 1)[1]
    block = block.split("```", 1)[0]
    return [ln for ln in block.strip().splitlines() if ln.strip()]


def test_examples_exist():
    cmds = examples()
    assert sum(c.startswith("curl") or "| curl" in c for c in cmds) >= 4
    assert any("usbills_app.client" in c for c in cmds)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is installed by scripts/setup-dev")
def test_examples_run(server, tmp_path):
    for name, label in [("bill.jpg", "USD-20"), ("front.jpg", "USD-1"), ("back.jpg", "USD-100")]:
        (tmp_path / name).write_bytes(solid(label))
    (tmp_path / "back.heic").write_bytes(solid("USD-100", fmt="HEIF"))
    for cmd in examples():
        cmd = cmd.replace("http://127.0.0.1:8000", server.url)
        cmd = re.sub(r"^python ", f"PYTHONPATH={ROOT} {sys.executable} ", cmd)
        p = subprocess.run(["bash", "-c", "set -o pipefail; " + cmd], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (cmd, p.stdout, p.stderr)
        if "usbills_app.client" in cmd:
            assert "bill.jpg: Twenty dollars" in p.stdout
            continue
        body = json.loads(p.stdout)
        assert "error" not in body, (cmd, body)
        answers = body.get("results", [body])
        assert all(a["identified"] for a in answers)
