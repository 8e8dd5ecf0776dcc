"""The pages blueprint without a browser (fast): language choice, CSP-safe markup, the no-JS
result page and its errors, the manifest. The browser tests cover what a visitor sees."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from tests import synth
from usbills_app import create_app, pages_i18n, runtime
from usbills_app.config import Settings

from . import colour_bundle

STATIC = Path(__file__).resolve().parents[2] / "usbills_app/static"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return runtime.load_model(colour_bundle.build(tmp_path_factory.mktemp("bundle")))


@pytest.fixture
def make_client(model):
    def make(**changes):
        settings = dataclasses.replace(Settings(model_dir=model.bundle.path), **changes)
        return create_app(settings, model=model).test_client()

    yield make
    runtime.set_model(None)


@pytest.fixture
def client(make_client):
    return make_client()


class Markup(HTMLParser):
    """Collects what a strict CSP (script-src 'self', style-src 'self') would block."""

    def __init__(self):
        super().__init__()
        self.blocked: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in a:
            if name.startswith("on") or name == "style":
                self.blocked.append(f"<{tag} {name}=...>")
        if tag == "style":
            self.blocked.append("<style> element")
        if tag == "script" and "src" not in a and a.get("type") != "application/json":
            self.blocked.append("inline <script>")
        if tag in ("script", "link", "img") and re.match(r"(https?:)?//", a.get("src") or
                                                         a.get("href") or ""):
            self.blocked.append(f"third-party asset {a.get('src') or a.get('href')}")


def blocked(html: str) -> list[str]:
    p = Markup()
    p.feed(html)
    return p.blocked


def test_both_languages_have_every_string():
    en, es = pages_i18n.STRINGS["en"], pages_i18n.STRINGS["es"]
    assert set(en) == set(es)
    assert set(pages_i18n.SCRIPT_KEYS) <= set(en)
    assert all(v.strip() for v in [*en.values(), *es.values()])


@pytest.mark.parametrize(("header", "want"), [
    ("es", "es"), ("es-MX,es;q=0.9,en;q=0.5", "es"), ("en-US,en;q=0.9", "en"),
    ("fr-FR,fr;q=0.9", "en"), (None, "en"), ("de;q=0.9,es;q=0.8", "es"),
])
def test_language_from_accept_language(client, header, want):
    r = client.get("/", headers={"Accept-Language": header} if header else {})
    assert r.status_code == 200
    assert f'<html lang="{want}">' in r.text
    assert r.headers["Content-Language"] == want
    assert "Accept-Language" in r.headers["Vary"]


def test_language_switch_sets_a_cookie(client):
    r = client.get("/?lang=es", headers={"Accept-Language": "en"})
    assert '<html lang="es">' in r.text
    assert "lang=es" in r.headers["Set-Cookie"]
    # The cookie now wins over Accept-Language; an unknown ?lang= is ignored.
    assert '<html lang="es">' in client.get("/", headers={"Accept-Language": "en"}).text
    assert '<html lang="es">' in client.get("/?lang=xx").text


@pytest.mark.parametrize("path", ["/", "/?lang=es"])
def test_page_markup_is_csp_safe(client, path):
    r = client.get(path)
    assert blocked(r.text) == []
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    # The script's settings travel as JSON data, not code.
    cfg = json.loads(re.search(r'<script type="application/json" id="page-config">(.*?)</script>',
                               r.text, re.S).group(1))
    assert cfg["values"] == [1, 2, 5, 10, 20, 50, 100]
    assert cfg["api"] == "/api/v1/predict"


def test_static_urls_carry_a_content_hash(client):
    html = client.get("/").text
    for url in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert re.search(r"\?v=[0-9a-f]{12}$", url), url
        path, _ = url.split("?")
        assert (STATIC / path.removeprefix("/static/")).is_file()


def test_no_js_result_page(client):
    data = synth.jpeg(synth.bill(20))
    r = client.post("/predict?lang=es", data={"image": (io.BytesIO(data), "bill.jpg")},
                    content_type="multipart/form-data")
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert '<html lang="es">' in r.text and "Veinte dólares" in r.text
    assert blocked(r.text) == []


def test_no_js_unsure_result_lists_two_candidates(client):
    data = synth.jpeg(colour_bundle.flat(colour_bundle.unsure_colour()), quality=95)
    r = client.post("/predict", data={"image": (io.BytesIO(data), "x.jpg")},
                    content_type="multipart/form-data")
    assert r.status_code == 200
    assert re.search(r"Twenty dollars: \d+ %", r.text) and re.search(r"Five dollars: \d+ %", r.text)
    assert "Try more light." in r.text  # the tips are listed


def test_no_js_unsure_result_names_no_unlikely_note(client):
    # Dark grey: "none" at about 0.5, each note at 0.2 or less: no note is likely enough to name.
    data = synth.jpeg(colour_bundle.flat((100, 100, 100)), quality=95)
    r = client.post("/predict", data={"image": (io.BytesIO(data), "x.jpg")},
                    content_type="multipart/form-data")
    assert r.status_code == 200
    assert re.search(r'id="answer-text"[^>]*>No banknote found<', r.text)
    assert re.search(r'id="candidates"[^>]*hidden', r.text)
    assert "dollar" not in r.text.split('id="candidates"')[1].split("</ul>")[0]


@pytest.mark.parametrize(("form", "status", "text"), [
    ({}, {400}, "No photo was sent"),
    ({"image": (io.BytesIO(b"not a picture"), "notes.txt")}, {415, 422}, None),
    ({"image": (io.BytesIO(b""), "empty.jpg")}, {400}, "No photo was sent"),
])
def test_no_js_errors_are_pages_not_traces(client, form, status, text):
    r = client.post("/predict", data=form, content_type="multipart/form-data")
    assert r.status_code in status
    assert r.mimetype == "text/html"
    assert "Traceback" not in r.text
    if text:
        assert text in r.text


def test_no_js_too_large_upload(make_client):
    client = make_client(max_upload_mb=0.05)
    big = Image.effect_noise((600, 600), 60).convert("RGB")
    data = synth.encode(big, "PNG")
    assert len(data) > 0.05 * 2**20
    r = client.post("/predict", data={"image": (io.BytesIO(data), "big.png")},
                    content_type="multipart/form-data")
    assert r.status_code == 413 and r.mimetype == "text/html"
    assert "too large" in r.text


def test_no_js_page_while_the_model_is_not_ready(model):
    app = create_app(Settings(model_dir=model.bundle.path), load=False)
    try:
        r = app.test_client().post("/predict", data={"image": (io.BytesIO(b"x"), "a.jpg")},
                                   content_type="multipart/form-data")
        assert r.status_code == 503 and r.mimetype == "text/html"
        # The page itself still renders (the scanner tells the visitor when the API is busy).
        assert app.test_client().get("/").status_code == 200
    finally:
        runtime.set_model(None)


def test_get_predict_goes_back_to_the_page(client):
    r = client.get("/predict?lang=es")
    assert r.status_code == 303 and r.headers["Location"].endswith("/?lang=es")


def test_manifest(client):
    r = client.get("/manifest.webmanifest", headers={"Accept-Language": "es"})
    assert r.mimetype == "application/manifest+json"
    m = r.get_json(force=True)
    assert m["lang"] == "es" and m["display"] == "standalone"
    for icon in m["icons"]:
        path = STATIC / icon["src"].split("?")[0].removeprefix("/static/")
        with Image.open(path) as img:
            assert f"{img.width}x{img.height}" == icon["sizes"]
    assert any(i.get("purpose") == "maskable" for i in m["icons"])
