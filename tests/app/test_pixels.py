"""`{"pixels": [[...]]}` on POST /api/v1/predict, with the committed digits bundle and the colour
test bundle (a 3-channel model gets the grey grid as RGB)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from usbills_app import create_app, predict_service, runtime
from usbills_app.config import Settings

DIGITS = Path(__file__).resolve().parents[2] / "model" / "bundles" / "digits"


@pytest.fixture(scope="module")
def digits_client():
    model = runtime.load_model(DIGITS)
    return create_app(Settings(model_dir=DIGITS), model=model).test_client()


@pytest.fixture(scope="module")
def held_out():
    from sklearn.datasets import load_digits

    d = load_digits()
    # Any ten load_digits images (tests/digits checks the held-out split): 9 of 10 right.
    return d.images[-10:].astype(int).tolist(), d.target[-10:].tolist()


def test_load_digits_grids_are_read(digits_client, held_out):
    grids, labels = held_out
    got = []
    for g in grids:
        r = digits_client.post("/api/v1/predict?lang=es", json={"pixels": g})
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert body["model"]["name"] == "digits" and body["lang"] == "es"
        got.append(body["value"])
    assert sum(a == b for a, b in zip(got, labels, strict=True)) >= 9


def test_mnist_sized_grid_and_max_value(digits_client, held_out):
    g = held_out[0][0]
    big = [[v * 255 // 16 for v in row for _ in range(2)] for row in g for _ in range(2)]
    r = digits_client.post("/api/v1/predict", json={"pixels": big})  # 16x16, 0..255
    assert r.status_code == 200 and r.get_json()["value"] == held_out[1][0]
    r = digits_client.post("/api/v1/predict", json={"pixels": g, "max_value": 16})
    assert r.status_code == 200


@pytest.mark.parametrize(("pixels", "status", "needle"), [
    ("abc", 400, "2-D array"),
    ([1, 2, 3], 400, "2-D array"),
    ([], 400, "2-D array"),
    ([[0] * 8] * 7 + [[0] * 7], 422, "rows differ"),
    ([[0] * 8] * 7 + [[0] * 7 + ["x"]], 400, "only numbers"),
    ([[0] * 8] * 7 + [[0] * 7 + [True]], 400, "only numbers"),
    ([[0] * 4] * 4, 422, "accepted sizes"),
    ([[0] * 300] * 8, 422, "accepted sizes"),
    ([[0] * 8] * 7 + [[0] * 7 + [17]], 422, "0..16"),
    ([[0] * 28] * 27 + [[0] * 27 + [-1]], 422, "0..255"),
    ([[0] * 8] * 7 + [[0] * 7 + [10**400]], 422, "grey levels"),  # was an OverflowError 500
])
def test_bad_grids_get_clear_errors(digits_client, pixels, status, needle):
    r = digits_client.post("/api/v1/predict", json={"pixels": pixels})
    assert r.status_code == status
    err = r.get_json()["error"]
    assert err["code"] == "invalid_pixels" and needle in err["message"]


def test_bad_max_value(digits_client):
    r = digits_client.post("/api/v1/predict", json={"pixels": [[0] * 8] * 8, "max_value": 0})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_pixels"


def test_rgb_model_takes_grids_too(client):
    r = client.post("/api/v1/predict", json={"pixels": [[200] * 28] * 28})
    assert r.status_code == 200 and "label" in r.get_json()


def test_digits_page_uses_the_card(digits_client):
    page = digits_client.get("/?lang=es").get_data(as_text=True)
    assert "Lector de dígitos manuscritos" in page and "dígito manuscrito" in page
    assert "billete" not in page.split('class="intro"')[1].split("</p>")[0]


@pytest.mark.parametrize("lang, words", [
    ("en", {"no_note": "No digit found.", "status_paused": "Paused. Show another digit.",
            "short_name": "Digits",
            "unsure": "Cannot identify the digit. It may be One or Eight."}),
    ("es", {"no_note": "No se encontró ningún dígito.", "short_name": "Dígitos",
            "unsure": "No se puede identificar el dígito. Puede ser Uno o Ocho."}),
])
def test_digits_site_speaks_of_digits_not_banknotes(digits_client, lang, words):
    # The card's "text" replaces the built-in words about banknotes, on the page, in the
    # script's strings, in the web app manifest, in the no-JS errors and in the API's message.
    html = digits_client.get(f"/?lang={lang}").get_data(as_text=True)
    config = json.loads(re.search(r'id="page-config">(.*?)</script>', html, re.S).group(1))
    assert config["strings"]["no_note"] == words["no_note"]
    if "status_paused" in words:
        assert config["strings"]["status_paused"] == words["status_paused"]
    assert "billete" not in html.lower() and " bill" not in html.lower()
    manifest = digits_client.get(f"/manifest.webmanifest?lang={lang}").get_json()
    assert manifest["short_name"] == words["short_name"]
    missing = digits_client.post(f"/predict?lang={lang}", data={},
                                 content_type="multipart/form-data")
    assert missing.status_code == 400 and re.search("digit|dígito", missing.text)
    # No negative class: an unsure answer names the two likeliest digits.
    probs = np.full(10, 0.05, dtype=np.float32)
    probs[1], probs[8] = 0.35, 0.25
    model = digits_client.application.extensions["usbills"]
    answer = predict_service.explain(probs, model, lang, 3, 0.9)
    assert answer["message"] == words["unsure"]


def test_openapi_describes_pixels(digits_client):
    spec = digits_client.get("/api/v1/openapi.json").get_json()
    body = spec["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert any("pixels" in o.get("properties", {}) for o in body["schema"]["oneOf"])


def test_digits_no_js_page_lists_the_digits_its_message_names(digits_client):
    # A bundle without a negative class names its two likeliest classes, however unlikely; the
    # no-JS page lists the same two (a black square: "One" at about 0.26, "Eight" at 0.14).
    buf = io.BytesIO()
    Image.new("L", (64, 64), 0).save(buf, "PNG")
    api = digits_client.post("/api/v1/predict", data=buf.getvalue(), content_type="image/png")
    answer = api.get_json()
    assert not answer["identified"]
    form = {"image": (io.BytesIO(buf.getvalue()), "x.png")}
    page = digits_client.post("/predict?lang=en", data=form, content_type="multipart/form-data")
    listed = re.findall(r"<li>([^:<]*):", page.text.split('id="candidates"')[1].split("</ul>")[0])
    assert listed == [c["display_name"] for c in answer["candidates"]]
    assert all(name in answer["message"] for name in listed)
