"""POST /api/v1/predict: every input path, every answer kind and every error path."""

from __future__ import annotations

import base64
import io
import json
import random

import pytest
from PIL import Image

from tests import synth
from usbills_app import create_app
from usbills_app.api import Inflight
from usbills_app.errors import ApiError
from usbills_app.predict_service import predict_image

from .conftest import solid

PREDICT = "/api/v1/predict"


def error_of(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"error"} and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


# --- input forms -----------------------------------------------------------------------------

def test_multipart_single(client):
    r = client.post(PREDICT, data={"image": (io.BytesIO(solid("USD-20")), "bill.jpg")})
    assert r.status_code == 200
    a = r.get_json()
    assert a["identified"] is True and a["label"] == "USD-20" and a["value"] == 20
    assert a["display_name"] == "Twenty dollars" and a["message"] == "Twenty dollars"
    assert a["confidence"] > 0.99 and a["no_object"] is False
    assert a["model"] == {"name": "usbills-test", "version": "0.0.1-test"}
    assert set(a["timings_ms"]) == {"decode", "preprocess", "inference", "total"}
    assert a["note_box"] is None  # no localiser: the whole frame was classified
    assert a["threshold"] == 0.8 and a["lang"] == "en"
    assert len(a["top_k"]) == 3 and a["top_k"][0]["label"] == "USD-20"
    assert [c["label"] for c in a["candidates"]][0] == "USD-20" and len(a["candidates"]) == 2


def test_multipart_batch_in_order(client):
    labels = ["USD-1", "USD-100", "USD-5"]
    files = [(io.BytesIO(solid(lab)), f"{lab}.jpg") for lab in labels]
    r = client.post(PREDICT, data={"image": files})
    assert r.status_code == 200
    body = r.get_json()
    assert [a["label"] for a in body["results"]] == labels
    assert body["model"]["name"] == "usbills-test"


def test_multipart_base64_text_field(client):
    b64 = base64.b64encode(solid("USD-5")).decode()
    r = client.post(PREDICT, data={"image": "data:image/jpeg;base64," + b64})
    assert r.status_code == 200 and r.get_json()["label"] == "USD-5"


@pytest.mark.parametrize("ctype", ["image/jpeg", "image/png", "application/octet-stream"])
def test_raw_body(client, ctype):
    r = client.post(PREDICT, data=solid("USD-10"), content_type=ctype)
    assert r.status_code == 200 and r.get_json()["label"] == "USD-10"


@pytest.mark.parametrize(
    "prefix", ["", "data:image/jpeg;base64,", "DATA:image/png;charset=x;base64,"]
)
def test_json_base64(client, prefix):
    b64 = base64.b64encode(solid("USD-50")).decode()
    r = client.post(PREDICT, json={"image": prefix + b64})
    assert r.status_code == 200 and r.get_json()["label"] == "USD-50"


def test_json_base64_urlsafe_unpadded_with_newlines(client):
    b64 = base64.urlsafe_b64encode(solid("USD-50")).decode().rstrip("=")
    wrapped = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
    r = client.post(PREDICT, json={"image": wrapped})
    assert r.status_code == 200 and r.get_json()["label"] == "USD-50"


def test_json_batch(client):
    imgs = [base64.b64encode(solid(lab)).decode() for lab in ("USD-2", "none", "USD-1")]
    r = client.post(PREDICT, json={"images": imgs})
    assert r.status_code == 200
    assert [a["label"] for a in r.get_json()["results"]] == ["USD-2", "none", "USD-1"]


def test_json_images_list_of_one_is_a_batch(client):
    r = client.post(PREDICT, json={"images": [base64.b64encode(solid("USD-2")).decode()]})
    assert [a["label"] for a in r.get_json()["results"]] == ["USD-2"]


# --- image formats and decoding ----------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_formats(client, fmt):
    r = client.post(PREDICT, data=solid("USD-100", fmt=fmt), content_type="image/" + fmt.lower())
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["label"] == "USD-100"


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16"])
def test_image_modes(client, mode):
    img = Image.new("RGB", (64, 64), (255, 255, 255)).convert(mode)
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    r = client.post(PREDICT, data=synth.encode(img, fmt), content_type="image/png")
    assert r.status_code == 200, r.get_json()


def test_real_looking_photo(client):
    r = client.post(PREDICT, data=synth.jpeg(synth.bill(20)), content_type="image/jpeg")
    assert r.status_code == 200 and 0 <= r.get_json()["confidence"] <= 1


# --- the three kinds of answer -----------------------------------------------------------------

def test_no_object(client):
    a = client.post(PREDICT, data=solid("none"), content_type="image/jpeg").get_json()
    assert a["no_object"] is True and a["identified"] is False
    assert a["label"] == "none" and a["value"] is None
    assert a["message"] == "No banknote found"
    assert "none" not in [c["label"] for c in a["candidates"]]


def test_not_identified_names_the_likely_candidates(client):
    # Half way between cyan (USD-20) and white (USD-100): about 50/50, both named.
    a = client.post(PREDICT, data=solid((128, 255, 255), fmt="PNG"),
                    content_type="image/png").get_json()
    assert a["identified"] is False and a["no_object"] is False
    c1, c2 = a["candidates"]
    assert {c1["label"], c2["label"]} == {"USD-20", "USD-100"}
    assert min(c1["confidence"], c2["confidence"]) > 0.4
    assert a["message"] == (
        f"Cannot identify the note. It may be {c1['display_name']} or {c2['display_name']}."
    )
    # A little nearer cyan: about 74/26, only the likely one is named.
    a = client.post(PREDICT, data=solid((123, 255, 255), fmt="PNG"),
                    content_type="image/png").get_json()
    c1, c2 = a["candidates"]
    assert a["identified"] is False and c1["label"] == "USD-20" and c2["confidence"] < 0.3
    assert a["message"] == "Cannot identify the note. It may be Twenty dollars."


def test_not_identified_names_no_unlikely_note(client):
    # Grey is as far from every class (1/8 each): no note is likely, none is named (a
    # landscape used to be told "It may be One hundred dollars or One dollar").
    a = client.post(PREDICT, data=solid("grey"), content_type="image/jpeg").get_json()
    assert a["identified"] is False and a["no_object"] is False
    assert a["confidence"] < 0.3 and len(a["candidates"]) == 2
    assert a["message"] == "No banknote found"


def test_threshold_override(make_app):
    # CONFIDENCE_THRESHOLD overrides the card: at 0.1 even grey's 1/8 chance is not enough,
    # at 0.12 it is.
    c = make_app(confidence_threshold=0.12).test_client()
    a = c.post(PREDICT, data=solid("grey", fmt="PNG"), content_type="image/png").get_json()
    assert a["threshold"] == 0.12 and a["identified"] is True


# --- language and top_k ------------------------------------------------------------------------

def test_lang_query(client):
    a = client.post(PREDICT + "?lang=es", data=solid("USD-1"), content_type="image/jpeg").get_json()
    assert a["lang"] == "es" and a["message"] == "Un dólar"


def test_lang_accept_language(client):
    r = client.post(PREDICT, data=solid((128, 255, 255), fmt="PNG"), content_type="image/png",
                    headers={"Accept-Language": "fr;q=0.9, es-MX;q=0.8"})
    a = r.get_json()
    assert a["lang"] == "es" and a["message"].startswith("No se puede identificar el billete")


def test_lang_default_en(client):
    r = client.post(PREDICT, data=solid("none"), content_type="image/jpeg",
                    headers={"Accept-Language": "de"})
    assert r.get_json()["lang"] == "en"


def test_bad_lang(client):
    r = client.post(PREDICT + "?lang=fr", data=solid("USD-1"), content_type="image/jpeg")
    error_of(r, 400, "invalid_parameter")


def test_top_k(client):
    a = client.post(PREDICT + "?top_k=8", data=solid("USD-1"), content_type="image/jpeg").get_json()
    assert len(a["top_k"]) == 8
    assert abs(sum(c["confidence"] for c in a["top_k"]) - 1) < 0.01


@pytest.mark.parametrize("k", ["0", "9", "x", "-1", "1.5"])
def test_bad_top_k(client, k):
    r = client.post(PREDICT + "?top_k=" + k, data=solid("USD-1"), content_type="image/jpeg")
    error_of(r, 400, "invalid_parameter")


@pytest.mark.parametrize("query", ["top_k=2&top_k=x", "lang=es&lang=en", "scan=new&scan=new"])
def test_a_parameter_given_twice_is_refused(client, query):
    r = client.post(f"{PREDICT}?{query}", data=solid("USD-1"), content_type="image/jpeg")
    error_of(r, 400, "invalid_parameter")
    assert "give it once" in r.get_json()["error"]["message"]


def test_default_top_k_from_settings(make_app):
    c = make_app(top_k=5).test_client()
    a = c.post(PREDICT, data=solid("USD-1"), content_type="image/jpeg").get_json()
    assert len(a["top_k"]) == 5


# --- errors: 400 -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "body, code",
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'"x"', "invalid_json"),
        (b"{}", "missing_image"),
        (b'{"img": "x"}', "missing_image"),
        (b'{"images": []}', "missing_image"),
        (b'{"images": "abc"}', "missing_image"),
        (b'{"image": ""}', "invalid_base64"),
        (b'{"image": 42}', "invalid_base64"),
        (b'{"image": null}', "invalid_base64"),
        (b'{"image": "@@@@"}', "invalid_base64"),
        (b'{"image": "abcde"}', "invalid_base64"),
        (b'{"images": ["QUJD", 5]}', "invalid_base64"),
        # Which one would be answered? Refused, not guessed (the server once took pixels).
        (b'{"image": "QUJD", "pixels": [[0]]}', "invalid_json"),
        (b'{"image": "QUJD", "images": ["QUJD"]}', "invalid_json"),
    ],
)
def test_bad_json(client, body, code):
    error_of(client.post(PREDICT, data=body, content_type="application/json"), 400, code)


def test_multipart_without_image_field(client):
    r = client.post(PREDICT, data={"photo": (io.BytesIO(solid("USD-1")), "a.jpg")})
    error_of(r, 400, "missing_image")


def test_empty_body(client):
    error_of(client.post(PREDICT, data=b"", content_type="image/jpeg"), 400, "empty_image")


def test_empty_file_in_batch_names_it(client):
    files = [(io.BytesIO(solid("USD-1")), "a.jpg"), (io.BytesIO(b""), "b.jpg")]
    err = error_of(client.post(PREDICT, data={"image": files}), 400, "empty_image")
    assert err["message"].startswith("Image 2:")


# --- errors: 404 / 405 -------------------------------------------------------------------------

def test_405_with_allow(client):
    r = client.get(PREDICT)
    error_of(r, 405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]
    error_of(client.put(PREDICT), 405)
    error_of(client.post("/api/v1/model"), 405)


def test_404_is_json_under_api(client):
    error_of(client.get("/api/v1/nothing"), 404, "not_found")


# --- errors: 413 -------------------------------------------------------------------------------

def test_413_raw_body_over_limit(make_app):
    c = make_app(max_upload_mb=0.01).test_client()
    err = error_of(c.post(PREDICT, data=b"\xff" * 20_000, content_type="image/jpeg"), 413,
                   "payload_too_large")
    assert "MAX_UPLOAD_MB" in err["message"]


def test_413_multipart_over_limit(make_app):
    c = make_app(max_upload_mb=0.01).test_client()
    r = c.post(PREDICT, data={"image": (io.BytesIO(b"\xff" * 20_000), "a.jpg")})
    error_of(r, 413, "payload_too_large")


def test_413_json_over_limit(make_app):
    c = make_app(max_upload_mb=0.01).test_client()
    r = c.post(PREDICT, json={"image": "A" * 20_000})
    error_of(r, 413, "payload_too_large")


def test_413_too_many_images(make_app):
    c = make_app(max_batch=2).test_client()
    one = base64.b64encode(solid("USD-1")).decode()
    error_of(c.post(PREDICT, json={"images": [one] * 3}), 413, "too_many_images")
    files = [(io.BytesIO(solid("USD-1")), f"{i}.jpg") for i in range(3)]
    error_of(c.post(PREDICT, data={"image": files}), 413, "too_many_images")


# --- errors: 415 -------------------------------------------------------------------------------

@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "video/mp4"])
def test_415_content_type(client, ctype):
    error_of(client.post(PREDICT, data=b"abc", content_type=ctype), 415, "unsupported_media_type")


def test_415_no_content_type(client):
    r = client.post(PREDICT, data=b"abc", headers={"Content-Type": ""})
    error_of(r, 415, "unsupported_media_type")


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_415_unsupported_image_format(client, fmt):
    r = client.post(PREDICT, data=solid("USD-1", fmt=fmt), content_type="image/" + fmt.lower())
    error_of(r, 415, "unsupported_image_format")


# --- errors: 422 -------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"hello", b"\x00" * 100, b"%PDF-1.4\n" + b"x" * 100,
                                  b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_422_not_an_image(client, data):
    error_of(client.post(PREDICT, data=data, content_type="image/jpeg"), 422, "invalid_image")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_422_truncated(client, fmt):
    data = synth.encode(synth.photo((400, 300)), fmt)
    r = client.post(PREDICT, data=data[: len(data) // 2], content_type="image/jpeg")
    error_of(r, 422, "invalid_image")


def test_422_decompression_bomb(make_app):
    c = make_app(max_pixels=1_000_000).test_client()
    # 2000x2000 of one colour: a few KB of PNG that would be 12 MB decoded.
    bomb = synth.encode(Image.new("RGB", (2000, 2000)), "PNG")
    assert len(bomb) < 100_000
    err = error_of(c.post(PREDICT, data=bomb, content_type="image/png"), 422, "image_too_large")
    assert "2000x2000" in err["message"]


def test_422_default_limit_refuses_a_huge_canvas(client):
    # A PNG header that claims 20000x20000 pixels (400 MP): refused before decoding.
    img = Image.new("1", (20000, 20000))
    data = synth.encode(img, "PNG")
    error_of(client.post(PREDICT, data=data, content_type="image/png"), 422, "image_too_large")


# --- errors: 429 / 503 -------------------------------------------------------------------------

def test_429_when_busy(app):
    app.extensions["usbills_inflight"] = Inflight(0)
    r = app.test_client().post(PREDICT, data=solid("USD-1"), content_type="image/jpeg")
    error_of(r, 429, "busy")
    assert r.headers["Retry-After"] == "1"


def test_503_before_ready(settings):
    c = create_app(settings, load=False).test_client()
    r = c.post(PREDICT, data=solid("USD-1"), content_type="image/jpeg")
    error_of(r, 503, "not_ready")
    assert r.headers["Retry-After"]
    error_of(c.get("/readyz"), 503, "not_ready")
    error_of(c.get("/api/v1/model"), 503, "not_ready")
    assert c.get("/healthz").get_json() == {"status": "ok"}


# --- uploads never touch the disk ---------------------------------------------------------------

def test_multipart_upload_stays_in_memory(client, monkeypatch):
    import tempfile

    import werkzeug.formparser as fp

    def no_disk(*a, **k):
        raise AssertionError("upload written to a temporary file")

    for mod in (tempfile, fp):
        for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile"):
            if hasattr(mod, name):
                monkeypatch.setattr(mod, name, no_disk)
    noise = Image.frombytes("RGB", (640, 480), random.Random(0).randbytes(640 * 480 * 3))
    big = synth.encode(noise, "PNG")  # > werkzeug's 500 KB spool limit
    assert len(big) > 600_000
    r = client.post(PREDICT, data={"image": (io.BytesIO(big), "big.png")})
    assert r.status_code == 200


# --- Python entry point (used by the no-JS page) ------------------------------------------------

def test_predict_image_entry_point(app):
    with app.app_context():
        a = predict_image(solid("USD-20"), "es")
    with app.test_request_context():
        b = predict_image(solid("USD-20"), "es")
    assert a["message"] == b["message"] == "Veinte dólares"
    api = app.test_client().post(PREDICT + "?lang=es", data=solid("USD-20"),
                                 content_type="image/jpeg").get_json()
    assert set(a) == set(api)
    with app.app_context(), pytest.raises(ApiError) as e:
        predict_image(b"junk", "en")
    assert (e.value.status, e.value.code) == (422, "invalid_image")


def test_answers_are_json_serialisable(client):
    r = client.post(PREDICT, data=solid("USD-1"), content_type="image/jpeg")
    json.dumps(r.get_json())


def test_chunked_body_over_the_limit_is_a_413_not_cut(make_app):
    """A body without Content-Length (Transfer-Encoding: chunked, as gunicorn passes it) was
    cut at MAX_UPLOAD_MB without a word; now it is refused like any other big upload."""
    c = make_app(max_upload_mb=1).test_client()
    photo = solid("USD-50", size=(64, 64))
    big = photo + b"\0" * (2 * 1024 * 1024)
    for body, status in ((big, 413), (photo, 200)):
        r = c.post(PREDICT, input_stream=io.BytesIO(body), content_type="image/jpeg",
                   environ_overrides={"wsgi.input_terminated": True},
                   headers={"Transfer-Encoding": "chunked"})
        assert r.status_code == status, r.get_data(as_text=True)
    assert "1 MB limit" in c.post(PREDICT, input_stream=io.BytesIO(big), content_type="image/jpeg",
                                  environ_overrides={"wsgi.input_terminated": True}).get_json(
        )["error"]["message"]
    assert r.get_json()["label"] == "USD-50"


def test_too_many_form_parts_says_so(client):
    fields = {f"f{i}": "x" for i in range(1200)}
    r = client.post(PREDICT, data=fields, content_type="multipart/form-data",
                    headers={"Accept": "application/json"})
    assert r.status_code == 413
    assert "more than 1000 parts" in r.get_json()["error"]["message"]
