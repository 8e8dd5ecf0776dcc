"""Recognition on the phone: LiteRT.js in a real Chromium runs the bundle the app serves.

- Parity: the served bundle (int8 classifier + localiser) on the same pixels in the page and in
  the server's Python runtime: the same crop, probabilities within 1e-3, the same decision.
- The page scans the fake camera on the phone with no upload, and says what the server says.
- After the first visit the page works with the site gone (service worker): the server is
  stopped (Chromium's offline emulation also stops the worker from answering navigations).
- With the runtime blocked or no WebAssembly, the page uploads frames as before.
- "On this phone only" never uploads, and is remembered.
"""

from __future__ import annotations

import base64
import time

import numpy as np
import pytest
import requests
from PIL import Image

from tests import synth
from usbills_app.pages_i18n import STRINGS

from . import colour_bundle
from .conftest import ROOT, AppServer, api_answer
from .test_phone_page import is_predict, page_message
from .y4m import write_y4m

pytestmark = pytest.mark.browser

REAL_BUNDLE = ROOT / "model/bundles/usbills"
VENDOR = ROOT / "usbills_app/static/vendor"
READY = "() => ['ready', 'failed', 'unavailable'].includes(USBills.onDevice.state)"


@pytest.fixture(scope="module", autouse=True)
def runtime_vendored():
    if not any(VENDOR.glob("litert-*/litert_wasm_internal.wasm")):
        pytest.fail(f"{VENDOR} has no LiteRT.js: run scripts/setup-dev (nginx/vendor-litert)")


def _server(model_dir, log):
    app = AppServer(model_dir, log)
    app.start()
    return app


@pytest.fixture(scope="module")
def tflite_dir(tmp_path_factory):
    return colour_bundle.build_tflite(tmp_path_factory.mktemp("colour-tflite"))


@pytest.fixture(scope="module")
def colour_server(tflite_dir, tmp_path_factory):
    """The colour classifier as .tflite: the page runs it on the phone."""
    app = _server(tflite_dir, tmp_path_factory.mktemp("colour-server") / "gunicorn.log")
    yield app.url
    app.stop()


@pytest.fixture(scope="module")
def real_server(tmp_path_factory):
    """The served bundle (model/bundles/usbills)."""
    app = _server(REAL_BUNDLE, tmp_path_factory.mktemp("real-server") / "gunicorn.log")
    yield app.url
    app.stop()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("ondevice-camera")
    bill = synth.bill(20, size=(640, 480))
    dark = colour_bundle.flat((12, 12, 12), (640, 480))
    return {"bill": write_y4m(d / "bill.y4m", [bill] * 4),
            # 2 s of bill, then 2 s of darkness, looped.
            "alternate": write_y4m(d / "alternate.y4m", [bill.resize((320, 240))] * 20
                                   + [dark.resize((320, 240))] * 20)}


def uploads(page) -> list:
    sent = []
    page.on("request", lambda r: sent.append(r.url)
            if "/api/v1/predict" in r.url and r.method == "POST" else None)
    return sent


def open_ready(page, url: str = "/") -> str:
    page.goto(url)
    page.wait_for_function(READY, timeout=60000)
    return page.evaluate("() => USBills.onDevice.state")


def poll(page, js: str, timeout_s: float = 30, show: str | None = None) -> None:
    """Until the async function `js` is true in the page (wait_for_function does not wait for a
    promise: it is truthy at once); on failure, the message has what `show` evaluates to."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(js):
        if time.monotonic() >= deadline:
            seen = f"; {page.evaluate(show)}" if show else ""
            raise AssertionError(f"not true after {timeout_s} s: {js}{seen}")
        page.wait_for_timeout(200)


def rgb_arg(img: Image.Image) -> dict:
    return {"b64": base64.b64encode(img.convert("RGB").tobytes()).decode(),
            "width": img.width, "height": img.height}


JS_PIXELS = """(a) => {
  const s = atob(a.b64), d = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) d[i] = s.charCodeAt(i);
  return {data: d, width: a.width, height: a.height};
}"""


# ---------- preprocessing: the same bytes as Pillow ----------

@pytest.mark.parametrize("src,dst", [((512, 384), (256, 256)), ((512, 288), (192, 192)),
                                     ((97, 61), (256, 256)), ((300, 200), (256, 256)),
                                     ((256, 100), (256, 256)), ((180, 256), (256, 256)),
                                     # Shrinks by 4x or more: Pillow reduces first.
                                     ((512, 384), (96, 96)), ((511, 287), (127, 71)),
                                     ((1000, 700), (192, 192)), ((400, 300), (50, 300))])
def test_resize_matches_pillow_bilinear(new_page, server, src, dst):
    rng = np.random.default_rng(src[0] * 1000 + src[1])
    img = Image.fromarray(rng.integers(0, 256, (src[1], src[0], 3), dtype=np.uint8))
    page = new_page()
    page.goto("/")
    got = page.evaluate(f"""(a) => {{
      const img = ({JS_PIXELS})(a);
      return Array.from(USBills.pre.resize(img, {dst[0]}, {dst[1]}).data);
    }}""", rgb_arg(img))
    want = np.asarray(img.resize(dst, Image.Resampling.BILINEAR, reducing_gap=2.0)).ravel()
    assert np.array_equal(np.asarray(got, np.uint8), want)


# ---------- parity with the server, on the served bundle ----------

def parity_pictures() -> list[Image.Image]:
    """Camera-like frames (a note on a busy scene: the localiser crops), whole notes, scenes."""
    pics = [synth.camera((512, 384), value=v, seed=s) for v, s in
            ((1, 0), (5, 1), (20, 2), (50, 3), (100, 4), (10, 5))]
    pics += [synth.bill(20, (512, 218)), synth.bill(100, (400, 300), seed=3),
             synth.photo((512, 384), seed=7), synth.photo((320, 480), seed=8)]
    # A small note far from the camera, off-centre.
    small = synth.photo((512, 288), seed=9)
    small.paste(synth.bill(5, (200, 86), seed=2), (260, 150))
    return pics + [small]


def test_parity_with_the_server_runtime(new_page, real_server):
    """Same pixels (PNG to the API, raw to the page): same crop, probabilities within 1e-3,
    the same decision, on the int8 bundle the site serves."""
    from usbills_app import inference
    from usbills_app.predict_service import note_box
    from usbills_app.runtime import load_model

    model = load_model(REAL_BUNDLE)
    page = new_page(base_url=real_server)
    assert open_ready(page) == "ready", page.evaluate("() => USBills.onDevice.error")
    crops, largest = 0, 0.0
    for i, img in enumerate(parity_pictures()):
        js = page.evaluate(f"""async (a) => {{
          const r = await USBills.onDevice.recogniseRgb(({JS_PIXELS})(a));
          return {{probs: r.probs, box: r.box, answer: r.answer}};
        }}""", rgb_arg(img))
        probs, boxes, _ = inference.classify(model, [img])
        assert (js["box"] is None) == (boxes[0] is None), i
        if boxes[0] is not None:
            crops += 1
            assert js["box"] == pytest.approx(list(boxes[0]), abs=1e-12), i
        assert js["answer"]["note_box"] == note_box(boxes[0]), i
        diff = float(np.abs(np.asarray(js["probs"]) - probs[0]).max())
        largest = max(largest, diff)
        assert diff <= 1e-3, (i, js["probs"], probs)
        r = requests.post(f"{real_server}/api/v1/predict", params={"top_k": 8},
                          data=synth.encode(img, "PNG"), headers={"Content-Type": "image/png"},
                          timeout=30)
        api = r.json()
        for key in ("identified", "label", "no_object", "value", "message"):
            assert js["answer"][key] == api[key], (i, key)
        assert "note_box" in api, i
        server_probs = {e["label"]: e["confidence"] for e in api["top_k"]}
        page_probs = {e["label"]: e["confidence"] for e in js["answer"]["top_k"]}
        assert page_probs.keys() == server_probs.keys()
        assert max(abs(page_probs[k] - server_probs[k]) for k in page_probs) <= 1e-3, i
    assert crops >= 2, "the localiser cropped too few pictures for the test to mean anything"
    print(f"parity: {len(parity_pictures())} pictures, {crops} cropped, largest probability "
          f"difference {largest:.3g}")


# ---------- the page on the phone ----------

@pytest.mark.parametrize("probs", [
    [0.02, 0.01, 0.45, 0.01, 0.45, 0.02, 0.02, 0.02],  # two likely notes: both named
    [0.05, 0.05, 0.7, 0.05, 0.05, 0.05, 0.025, 0.025],  # one likely note
    [0.125] * 8,  # nothing likely: no note is named
    [0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.002, 0.993],  # unsure "none"
    [0.0, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.1],  # identified
])
def test_page_and_server_word_an_answer_alike(new_page, colour_server, tflite_dir, probs):
    """The on-device answer's message is the API's for the same probabilities (predict_service
    .explain and its twin in preprocess.js): only likely candidates are named."""
    from usbills_app.predict_service import explain
    from usbills_app.runtime import load_model

    model = load_model(tflite_dir)
    page = new_page(base_url=colour_server)
    page.goto("/")
    cfg = page.evaluate("() => JSON.parse(document.getElementById('page-config').textContent)"
                        ".ondevice")
    assert cfg is not None, "the test bundle should be usable on the phone"
    got = page.evaluate("([p, cfg]) => USBills.pre.explain(Float32Array.from(p), cfg)",
                        [probs, cfg])
    want = explain(np.asarray(probs, np.float32), model, "en", 8, cfg["threshold"])
    for key in ("identified", "no_object", "label", "message"):
        assert got[key] == want[key], key


def test_scan_on_the_phone_uploads_nothing_and_says_what_the_server_says(
        new_page, colour_server, videos, check):
    page = new_page(videos["bill"], base_url=colour_server)
    sent = uploads(page)
    assert open_ready(page) == "ready", page.evaluate("() => USBills.onDevice.error")
    page.click("#scan-toggle")
    page.wait_for_function("() => window.__spoken.length >= 2", timeout=20000)
    server = api_answer(colour_server, synth.jpeg(synth.bill(20, size=(640, 480))))
    assert server["identified"] and server["label"] == "USD-20"
    assert page.text_content("#answer-text").strip() == page_message(server)
    assert page.evaluate("() => window.__spoken")[-1]["text"] == server["message"]
    check(page, "30-ondevice-identified", shot=False)
    assert sent == []


def test_the_phone_recognises_two_frames_a_second(new_page, colour_server, videos):
    # The scan rule's agreeing frames prove as much as the hand-held evaluation measured only
    # at its 2 frames a second: frames closer together are nearly the same picture.
    page = new_page(videos["alternate"], base_url=colour_server)
    sent = uploads(page)
    assert open_ready(page) == "ready", page.evaluate("() => USBills.onDevice.error")
    page.evaluate("""() => {
      const d = USBills.onDevice, own = d.recognise;
      window.__starts = [];
      d.recognise = (c) => { window.__starts.push(performance.now()); return own(c); };
    }""")
    page.click("#scan-toggle")
    page.wait_for_function("() => window.__starts.length >= 8", timeout=20000)
    gaps = np.diff(page.evaluate("() => window.__starts"))
    assert gaps.min() >= 450, gaps.round().tolist()
    assert sent == []


def test_works_offline_after_the_first_visit(new_page, tflite_dir, videos, tmp_path):
    app = _server(tflite_dir, tmp_path / "gunicorn.log")
    try:
        server = api_answer(app.url, synth.jpeg(synth.bill(20, size=(640, 480))))
        page = new_page(videos["bill"], base_url=app.url)
        assert open_ready(page) == "ready"
        # The service worker has kept the page, the runtime it loaded and the bundle.
        poll(page, """async () => {
          if (!navigator.serviceWorker.controller) return false;
          const urls = [];
          for (const k of await caches.keys()) {
            for (const r of await (await caches.open(k)).keys()) urls.push(r.url);
          }
          const want = ['.wasm', '/bundle/', 'litert.js', 'app.js'];
          if (!want.every(w => urls.some(u => u.includes(w)))) return false;
          const kept = await caches.match(location.href, {ignoreVary: true});
          return !!kept && (await kept.text()).includes('page-config');
        }""")
    finally:
        app.stop()
    sent = uploads(page)
    page.reload()
    page.wait_for_function(READY, timeout=60000)
    assert page.evaluate("() => USBills.onDevice.state") == "ready"
    page.click("#scan-toggle")
    page.wait_for_function("() => window.__spoken.length >= 2", timeout=20000)
    assert page.text_content("#answer-text").strip() == page_message(server)
    assert sent == []


KEPT = """async () => {
  const out = {};
  for (const k of await caches.keys())
    out[k] = (await (await caches.open(k)).keys()).map(r => new URL(r.url).pathname);
  return out;
}"""


def test_a_new_bundle_replaces_the_kept_one_on_the_next_visit(new_page, tflite_dir, tmp_path):
    app = _server(tflite_dir, tmp_path / "gunicorn.log")
    try:
        old = requests.get(f"{app.url}/api/v1/model", timeout=10).json()["sha256"]
        page = new_page(base_url=app.url)
        assert open_ready(page) == "ready"
        poll(page, f"async () => JSON.stringify(await ({KEPT})()).includes('{old}')")
        # The operator deploys another bundle; the phone comes back online.
        app.stop()
        app.model_dir = colour_bundle.build_tflite(tmp_path / "new-bundle", sharpness=3.0)
        app.start()
        new = requests.get(f"{app.url}/api/v1/model", timeout=10).json()["sha256"]
        assert new != old
        page.reload()
        page.wait_for_function(READY, timeout=60000)
        assert page.evaluate("() => USBills.onDevice.state") == "ready"
        # The old cache goes (the new worker deletes it on activate, and the old worker's
        # late writes do not make it again): one cache, the new bundle's.
        poll(page, f"""async () => {{
          const all = await ({KEPT})(), kept = JSON.stringify(all);
          return kept.includes('{new}') && !kept.includes('{old}')
            && Object.keys(all).length === 1;
        }}""", show=f"async () => JSON.stringify(await ({KEPT})())")
    finally:
        app.stop()


@pytest.mark.parametrize("how", ["runtime blocked", "no WebAssembly"])
def test_falls_back_to_the_server(new_page, colour_server, videos, check, how):
    # No service worker: its own downloads would not be blocked by the page's route.
    page = new_page(videos["bill"], base_url=colour_server, service_workers="block")
    if how == "runtime blocked":
        page.route("**/static/vendor/**", lambda route: route.abort())
    else:
        page.add_init_script("delete window.WebAssembly;")
    answers = []
    page.on("response", lambda r: answers.append(r.json()) if is_predict(r) and r.ok else None)
    state = open_ready(page)
    assert state == ("failed" if how == "runtime blocked" else "unavailable")
    page.click("#scan-toggle")
    page.wait_for_function("() => window.__spoken.length >= 2", timeout=20000)
    assert answers and answers[-1]["label"] == "USD-20"
    assert page.text_content("#answer-text").strip() == page_message(answers[-1])
    check(page, "31-ondevice-fallback", shot=False)


def test_on_this_phone_only_never_uploads(new_page, colour_server, videos, check):
    page = new_page(videos["bill"], base_url=colour_server, service_workers="block")
    page.route("**/static/vendor/**", lambda route: route.abort())
    sent = uploads(page)
    assert open_ready(page) == "failed"
    # A setting of its own under "Settings", not one of the ways answers are given.
    settings = page.get_by_role("region", name=STRINGS["en"]["settings_heading"])
    assert settings.get_by_role("checkbox", name=STRINGS["en"]["local_only"]).is_visible()
    assert settings.get_by_role("group", name=STRINGS["en"]["answers_legend"]).is_visible()
    page.check("#local-only")
    page.reload()  # remembered on this phone
    page.wait_for_function(READY, timeout=60000)
    assert page.is_checked("#local-only")
    page.click("#scan-toggle")
    t = STRINGS["en"]
    page.wait_for_function("(m) => document.getElementById('answer-text').textContent === m",
                           arg=t["local_unavailable"], timeout=20000)
    page.wait_for_timeout(1500)
    check(page, "32-ondevice-local-only")
    assert sent == []
    # Without it, the same page sends frames again.
    page.uncheck("#local-only")
    page.wait_for_function("() => window.__spoken.length >= 3", timeout=20000)
    assert sent


def test_photo_on_the_phone(new_page, colour_server, tmp_path):
    page = new_page(base_url=colour_server)
    sent = uploads(page)
    assert open_ready(page) == "ready"
    path = tmp_path / "bill.jpg"
    synth.bill(20, size=(1600, 1200)).save(path, quality=90)
    page.set_input_files("#photo-input", str(path))
    page.wait_for_function("() => document.getElementById('answer-text').textContent.trim() "
                           "=== 'Twenty dollars'", timeout=20000)
    assert sent == []


def test_service_worker_is_not_cached_long_and_versions_the_bundle(colour_server):
    r = requests.get(f"{colour_server}/sw.js", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/javascript")
    assert r.headers["Cache-Control"] == "no-cache"
    card = requests.get(f"{colour_server}/api/v1/model", timeout=10).json()
    assert f"/bundle/{card['sha256']}/model.tflite" in r.text
    f = requests.get(f"{colour_server}/bundle/{card['sha256']}/model.tflite", timeout=10)
    assert f.status_code == 200 and "immutable" in f.headers["Cache-Control"]
    assert requests.get(f"{colour_server}/bundle/{'0' * 64}/model.tflite",
                        timeout=10).status_code == 404


def test_manifest_makes_the_page_installable(new_page, colour_server):
    page = new_page(base_url=colour_server)
    page.goto("/")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=60000)
    manifest = page.evaluate("""async () => {
      const href = document.querySelector('link[rel=manifest]').href;
      return (await fetch(href)).json();
    }""")
    assert manifest["display"] == "standalone" and manifest["start_url"]
    assert any(i["sizes"] == "512x512" for i in manifest["icons"])
    # Chromium's own verdict (what decides whether it offers "Install app"); Playwright's
    # contexts are incognito profiles, where Chromium installs nothing.
    cdp = page.context.new_cdp_session(page)
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert [e for e in errors if e["errorId"] != "in-incognito"] == []
