"""The JSON API blueprint (/api/v1/...) and the health endpoints."""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time

from flask import Blueprint, current_app, jsonify, render_template, request

from . import openapi, predict_service, scan
from .errors import ApiError

bp = Blueprint("api", __name__, url_prefix="/api/v1")
health = Blueprint("health", __name__)

DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.I)
_WS = re.compile(r"\s+")


def _b64(text: object, where: str) -> bytes:
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "invalid_base64", f"{where} must be a non-empty base64 string.")
    text = DATA_URL.sub("", text.strip(), count=1)
    text = _WS.sub("", text).replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid_base64", f"{where} is not valid base64.") from None


def json_body() -> object:
    """The parsed JSON body (None when it is not JSON); 400 for one nested too deeply to parse
    (Python's parser gives up with RecursionError at about a thousand levels)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        raise ApiError(400, "invalid_json", "The JSON body is nested too deeply.") from None


# The JSON body's alternatives: one image, a batch, or a grid of grey values.
BODY_KEYS = frozenset({"image", "images", "pixels"})


def _from_json() -> tuple[list[bytes], bool]:
    body = json_body()
    if body is None:
        raise ApiError(400, "invalid_json", "The body is not valid JSON.")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", 'Send a JSON object: {"image": "<base64>"}.')
    if "images" in body:
        items = body["images"]
        if not isinstance(items, list) or not items:
            raise ApiError(400, "missing_image", '"images" must be a non-empty list.')
        _check_count(len(items))
        return [_b64(x, f"images[{i}]") for i, x in enumerate(items)], True
    if "image" in body:
        return [_b64(body["image"], '"image"')], False
    raise ApiError(400, "missing_image", 'The JSON body needs "image" (base64) or "images".')


def _from_multipart() -> tuple[list[bytes], bool]:
    files = request.files.getlist("image")
    texts = request.form.getlist("image")
    _check_count(len(files) + len(texts))
    images = [f.read() for f in files] + [_b64(t, "form field image") for t in texts]
    if not images:
        raise ApiError(400, "missing_image", "The form needs a file field named 'image'.")
    return images, len(images) > 1


def _check_count(n: int) -> None:
    limit = current_app.config["USBILLS_SETTINGS"].max_batch
    if n > limit:
        raise ApiError(413, "too_many_images",
                       f"{n} images in one request; at most {limit} (MAX_BATCH).")


def read_images() -> tuple[list[bytes], bool]:
    """The request's images and whether it asked for a batch answer."""
    ctype = (request.mimetype or "").lower()
    if ctype == "multipart/form-data":
        return _from_multipart()
    if ctype == "application/x-www-form-urlencoded" and "image" in request.form:
        # A plain form field with base64; without it this is most likely
        # `curl --data-binary @photo.jpg` without -H "Content-Type: image/jpeg": 415 below.
        return _from_multipart()
    if ctype == "application/json" or ctype.endswith("+json"):
        return _from_json()
    if ctype.startswith("image/") or ctype == "application/octet-stream":
        return [request.get_data(cache=False)], False
    raise ApiError(
        415, "unsupported_media_type",
        "Send multipart/form-data with a file field 'image', a raw image/* body, "
        'or JSON {"image": "<base64>"}'
        + (f"; got {ctype}." if ctype else "; got no Content-Type."),
    )


def _query_arg(name: str) -> str | None:
    """A single-valued query parameter; given twice, which one was meant? Refused."""
    values = request.args.getlist(name)
    if len(values) > 1:
        raise ApiError(400, "invalid_parameter",
                       f"{name} is given {len(values)} times; give it once.")
    return values[0] if values else None


def _query_top_k(n_classes: int) -> int | None:
    raw = _query_arg("top_k")
    if raw is None:
        return None
    # isascii: str.isdigit() also accepts digits such as "²" that int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= n_classes:
        raise ApiError(400, "invalid_parameter", f"top_k must be an integer 1..{n_classes}.")
    return int(raw)


def _lang() -> str:
    raw = _query_arg("lang")
    if raw is not None:
        if predict_service.normalise_lang(raw) != raw.strip().lower().split("-")[0]:
            raise ApiError(400, "invalid_parameter",
                           f"lang must be one of {', '.join(predict_service.LANGS)}.")
        return predict_service.normalise_lang(raw)
    return request.accept_languages.best_match(predict_service.LANGS) or "en"


class Inflight:
    """Bounds images in progress per worker: beyond it, 429 rather than a growing queue."""

    def __init__(self, limit: int):
        self._sem = threading.BoundedSemaphore(limit)

    def __enter__(self):
        if not self._sem.acquire(blocking=False):
            raise ApiError(429, "busy", "The server is busy; retry in a second.",
                           {"Retry-After": "1"})
        return self

    def __exit__(self, *exc):
        self._sem.release()


def _scan_state(model) -> scan.State | None:
    """?scan=new starts a scan, ?scan=<the previous answer's scan.state> continues it."""
    raw = _query_arg("scan")
    if raw is None:
        return None
    if raw == "new":
        return scan.State()
    try:
        return scan.decode(raw, {c["label"] for c in model.bundle.classes})
    except scan.ScanStateError:
        raise ApiError(400, "invalid_parameter",
                       "scan must be 'new' or the scan.state of the previous answer.") from None


def _scan_answer(model, state: scan.State, answers: list[dict], lang: str) -> dict:
    """Every answer's vote through the scan rule (a batch counts as consecutive frames)."""
    rule = scan.Rule.from_card(model.card)
    now = time.time()
    for ans in answers:
        d = scan.step(state, scan.vote_of(ans, rule), now, rule)
    by_label = {c["label"]: c for c in model.bundle.classes}
    cls = by_label.get(d.label)
    return {"status": d.status, "label": d.label,
            "display_name": predict_service.display_name(cls, lang) if cls else None,
            "value": cls.get("value") if cls else None, "announce": d.announce,
            "agreeing_frames": d.agreeing, "frames_needed": rule.frames,
            "window_frames": rule.window, "min_confidence": rule.threshold,
            "state": scan.encode(state)}


@bp.post("/predict")
def predict():
    model = predict_service.ready_model()
    top_k = _query_top_k(len(model.bundle.classes))
    lang = _lang()
    state = _scan_state(model)
    body = json_body() if request.is_json else None
    if isinstance(body, dict) and len(BODY_KEYS & body.keys()) > 1:
        raise ApiError(400, "invalid_json",
                       'Send one of "image", "images" or "pixels", not several.')
    if isinstance(body, dict) and "pixels" in body:
        # A digit as a JSON grid of grey values (usbills_app/pixels.py), one per request.
        with current_app.extensions["usbills_inflight"]:
            answer = predict_service.predict_pixels(body["pixels"], body.get("max_value"), lang,
                                                    top_k)
        if state is not None:
            answer["scan"] = _scan_answer(model, state, [answer], answer["lang"])
        return jsonify(answer)
    images, batch = read_images()
    with current_app.extensions["usbills_inflight"]:
        answers = predict_service.predict_images(images, lang, top_k)
    lang = answers[0]["lang"]
    if batch:
        out = {"results": answers, "model": predict_service.model_ref(model)}
        if state is not None:
            out["scan"] = _scan_answer(model, state, answers, lang)
        return jsonify(out)
    if state is not None:
        answers[0]["scan"] = _scan_answer(model, state, answers, lang)
    return jsonify(answers[0])


@bp.get("/model")
def model_card():
    model = predict_service.ready_model()
    settings = current_app.config["USBILLS_SETTINGS"]
    return jsonify({
        **model.card,
        "serving": {
            "runtime": model.runtime_name,
            "threshold": settings.confidence_threshold or model.card["threshold"],
            "top_k": settings.top_k,
            "max_batch": settings.max_batch,
            "max_upload_mb": settings.max_upload_mb,
            "languages": list(predict_service.LANGS),
        },
    })


def _spec() -> dict:
    model = predict_service.current_model()
    n_classes = len(model.bundle.classes) if model is not None and model.ready else None
    return openapi.spec(current_app.config["USBILLS_SETTINGS"], n_classes)


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(_spec())


@bp.get("/docs")
def docs():
    spec = _spec()
    return render_template("api_docs.html", spec=spec)


@health.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@health.get("/readyz")
def readyz():
    model = predict_service.ready_model()
    return jsonify({"status": "ready", "model": predict_service.model_ref(model),
                    "runtime": model.runtime_name})
