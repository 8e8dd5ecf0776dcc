"""The drawing canvas of a digit site (the committed digits bundle under real gunicorn and
Chromium): drawing a digit and pressing Read shows the API's answer in a live region."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.browser.conftest import OBSERVE, VIEWPORT
from tests.chromium import CHROMIUM, LAUNCH_ARGS
from tests.procs import free_port

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "model" / "bundles" / "digits"


@pytest.fixture(scope="module")
def digits_server(tmp_path_factory):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "MODEL_DIR": str(DIGITS), "LOG_LEVEL": "warning"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path_factory.mktemp("digits-server") / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "-c", "usbills_app/gunicorn.conf.py",
             "usbills_app:create_app()"], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_draw_and_read_a_one(pw, digits_server, check):
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=list(LAUNCH_ARGS))
    try:
        ctx = browser.new_context(viewport=VIEWPORT, base_url=digits_server)
        ctx.add_init_script(OBSERVE)  # records CSP violations for check()
        page = ctx.new_page()
        page.errors = errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto("/?lang=en")
        canvas = page.locator("#draw-canvas")
        canvas.wait_for(state="visible")
        page.click("#draw-read")
        assert page.text_content("#draw-result") == "Draw a digit first."
        box = canvas.bounding_box()
        x = box["x"] + box["width"] / 2
        page.mouse.move(x, box["y"] + box["height"] * 0.1)
        page.mouse.down()
        for i in range(1, 9):
            page.mouse.move(x, box["y"] + box["height"] * (0.1 + 0.1 * i))
        page.mouse.up()
        with page.expect_response("**/api/v1/predict**") as resp:
            page.click("#draw-read")
        answer = resp.value.json()
        page.wait_for_function("document.getElementById('draw-result').textContent.length > 0")
        assert page.text_content("#draw-result") == answer["message"]
        assert answer["model"]["name"] == "digits"
        assert answer["label"] == "1", answer
        check(page, "digits-canvas")  # axe-core, CSP (no inline script), script errors
    finally:
        browser.close()
