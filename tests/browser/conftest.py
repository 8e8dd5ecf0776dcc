"""Browser tests: the real app under gunicorn, driven by Debian's Chromium through Playwright.

Chromium gets a fake rear camera from a .y4m video the test writes; speechSynthesis.speak and
navigator.vibrate are wrapped by an init script so the tests see what the page says and buzzes;
axe-core (installed by scripts/setup-dev into .cache/npm) checks every page state.
Screenshots (390x844) go to artifacts/browser/; UPDATE_SCREENSHOTS=1 also copies them to
docs/screenshots/ (linked from docs/phone-page.md).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.chromium import CHROMIUM, LAUNCH_ARGS
from tests.procs import free_port

from . import colour_bundle

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / ".cache/npm/node_modules/axe-core/axe.min.js"
ARTIFACTS = ROOT / "artifacts/browser"
DOC_SHOTS = ROOT / "docs/screenshots"
VIEWPORT = {"width": 390, "height": 844}

# Runs before any page script: records speech, vibration, layout shifts and CSP violations.
OBSERVE = """
(() => {
  window.__spoken = []; window.__vibrations = []; window.__csp = [];
  if (window.speechSynthesis) {
    window.speechSynthesis.speak = (u) => { window.__spoken.push({text: u.text, lang: u.lang}); };
    window.speechSynthesis.cancel = () => {};
  }
  Object.defineProperty(Navigator.prototype, 'vibrate', {
    configurable: true,
    value: function (p) {
      window.__vibrations.push(Array.isArray(p) ? Array.from(p) : [p]);
      return true;
    }
  });
  window.__cls = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value;
  }).observe({type: 'layout-shift', buffered: true});
  document.addEventListener('securitypolicyviolation',
    (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
})();
"""


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The deterministic colour bundle, or USBILLS_BROWSER_MODEL_DIR (e.g. the trained one)."""
    chosen = os.environ.get("USBILLS_BROWSER_MODEL_DIR")
    if chosen:
        return Path(chosen).resolve()
    return colour_bundle.build(tmp_path_factory.mktemp("colour-bundle"))


class AppServer:
    """The real app under gunicorn on a port of its own; stop() and start() again on the same
    port, as an operator restarting it would (the page keeps its URL)."""

    def __init__(self, model_dir: Path, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.model_dir, self.log, self.proc = model_dir, log, None

    def start(self) -> None:
        env = {**os.environ, "PORT": str(self.port), "MODEL_DIR": str(self.model_dir),
               "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4", "LOG_LEVEL": "warning"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(gunicorn), "-c", "usbills_app/gunicorn.conf.py", "usbills_app:create_app()"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"gunicorn exited ({self.proc.returncode}):\n"
                            f"{self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"app not ready after 60 s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="session")
def server(model_dir, tmp_path_factory) -> str:
    """The real app under gunicorn on a free port; yields its base URL."""
    app = AppServer(model_dir, tmp_path_factory.mktemp("server") / "gunicorn.log")
    app.start()
    yield app.url
    app.stop()


@pytest.fixture
def own_server(model_dir, tmp_path):
    """An app of this test's own, which the test may stop and start again."""
    app = AppServer(model_dir, tmp_path / "gunicorn.log")
    app.start()
    yield app
    app.stop()


@pytest.fixture(scope="session")
def launch(pw):
    """launch(video=None) -> a Chromium; with a .y4m path it is the fake rear camera."""
    browsers = {}

    def _launch(video: Path | None = None):
        key = str(video)
        if key not in browsers:
            args = list(LAUNCH_ARGS)
            if video is not None:
                args += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                         f"--use-file-for-fake-video-capture={video}"]
            browsers[key] = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        return browsers[key]

    yield _launch
    for b in browsers.values():
        b.close()


@pytest.fixture
def new_page(launch, server):
    """new_page(video=None, lang=None, js=True, base_url=None, **context) -> a phone-sized page
    (not yet navigated), on the session's app unless base_url says another; context: more
    Playwright context options (viewport, color_scheme, device_scale_factor, ...)."""
    contexts = []

    def _new(video: Path | None = None, lang: str | None = None, js: bool = True,
             base_url: str | None = None, **context):
        browser = launch(video)
        ctx = browser.new_context(
            # Dark unless a test asks for light (Playwright's own default is light).
            **{"viewport": VIEWPORT, "color_scheme": "dark", **context}, java_script_enabled=js,
            base_url=base_url or server,
            extra_http_headers={"Accept-Language": lang} if lang else None,
        )
        ctx.add_init_script(OBSERVE)
        contexts.append(ctx)
        page = ctx.new_page()
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        return page

    yield _new
    for c in contexts:
        c.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run scripts/setup-dev (npm install axe-core)")
    return AXE.read_text(encoding="utf-8")


@pytest.fixture
def check(axe_source):
    """check(page, name): 0 axe-core violations, no CSP violation or script error, screenshot."""

    def _check(page, name: str, shot: bool = True) -> None:
        if page.evaluate("() => typeof axe === 'undefined'"):
            # DevTools evaluation is not subject to the page's CSP, unlike a <script> tag.
            page.evaluate(axe_source)
        result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        problems = [
            f"{v['id']} ({v['impact']}): {v['help']} -> "
            + "; ".join(n["target"][0] if isinstance(n["target"][0], str) else str(n["target"])
                        for n in v["nodes"][:5])
            for v in result["violations"]
        ]
        assert problems == [], f"axe-core violations in state {name!r}:\n" + "\n".join(problems)
        assert page.evaluate("() => window.__csp") == [], "CSP violations"
        assert page.errors == [], f"script errors: {page.errors}"
        if shot:
            screenshot(page, name)

    return _check


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SHOTS / path.name)
    return path


def api_answer(server: str, data: bytes, lang: str = "en") -> dict:
    """What the API itself answers for these bytes (the page must say the same)."""
    r = requests.post(f"{server}/api/v1/predict", params={"lang": lang}, data=data,
                      headers={"Content-Type": "image/jpeg"}, timeout=30)
    r.raise_for_status()
    return r.json()


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)
