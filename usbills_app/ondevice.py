"""On-device recognition: what the page needs to run the served bundle in the browser.

The page runs the same .tflite files the server runs, with LiteRT.js (vendored into the static
assets from npm, usbills_app/ondevice/package.json), and the same preprocessing, localiser crop
and scan rule (static/js/preprocess.js). This module says which bundle files and settings the
page gets (``page_config``) and serves the bundle files at URLs that name their sha256, so
browsers and the service worker may keep them until the bundle changes.

A bundle the browser runtime cannot run (ONNX, grey-level or integer input) gets no on-device
config: the page then uploads frames as it always did.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, abort, current_app, send_file, url_for

from . import site_text
from .predict_service import LIKELY, current_model, display_name, normalise_lang

bp = Blueprint("ondevice", __name__)

PIN = Path(__file__).with_name("ondevice") / "package.json"
YEAR = 365 * 24 * 3600


@lru_cache(maxsize=1)
def runtime_version() -> str:
    """The pinned LiteRT.js version (the vendored files live under static/vendor/litert-V/)."""
    return json.loads(PIN.read_text("utf-8"))["dependencies"]["@litertjs/core"]


def runtime_url() -> str:
    return url_for("static", filename=f"vendor/litert-{runtime_version()}/")


def runnable(card: dict) -> bool:
    """The page can run this bundle: tflite, float32 RGB input, tflite localiser."""
    inp = card.get("input") or {}
    loc = card.get("localiser")
    return (card.get("format") == "tflite" and inp.get("channels") == 3
            and inp.get("dtype", "float32") == "float32"
            and (loc is None or loc.get("format") == "tflite"))


def _file_url(sha: str, name: str) -> str:
    return url_for("ondevice.bundle_file", sha=sha, name=name)


def page_config(lang: str) -> dict | None:
    """The page's "ondevice" settings, or None when the browser cannot run this bundle."""
    model = current_model()
    if model is None or not model.ready or not runnable(model.card):
        return None
    from .pages import asset  # (pages imports this module)

    card = model.card
    settings = current_app.config["USBILLS_SETTINGS"]
    loc = card.get("localiser") if model.localiser is not None else None
    words = site_text.words(card, normalise_lang(lang))
    return {
        "runtime": runtime_url(),
        # The models run in a worker (static/js/ondevice-worker.js), which loads preprocess.js.
        "worker": asset("js/ondevice-worker.js"),
        "preprocess": asset("js/preprocess.js"),
        "version": card["sha256"] + (loc["sha256"] if loc else ""),
        "model": _file_url(card["sha256"], card["model_file"]),
        "input": card["input"],
        "localiser": None if loc is None else {
            "model": _file_url(loc["sha256"], loc["model_file"]),
            "height": loc["input"]["height"], "width": loc["input"]["width"],
            "grid": loc["grid"], "threshold": loc["threshold"], "margin": loc["margin"],
        },
        # The threshold the API applies (CONFIDENCE_THRESHOLD overrides the card's).
        "threshold": settings.confidence_threshold or float(card["threshold"]),
        "classes": [{"label": c["label"], "value": c.get("value"),
                     "display_name": display_name(c, lang),
                     "negative": bool(c.get("negative"))} for c in card["classes"]],
        "model_ref": {"name": card["name"], "version": card["version"]},
        # The API's words when no note is sure ({a}, {b}: the likely notes, at LIKELY or more).
        "unsure": words["unsure"], "unsure_one": words["unsure_one"],
        "likely": LIKELY,
    }


def bundle_urls() -> list[str]:
    """The served bundle's file URLs (for the service worker), [] when the page cannot use them."""
    cfg = page_config("en")
    if cfg is None:
        return []
    return [cfg["model"]] + ([cfg["localiser"]["model"]] if cfg["localiser"] else [])


@bp.get("/bundle/<sha>/<name>")
def bundle_file(sha: str, name: str):
    """A file of the served bundle; its URL names its sha256, so it never changes."""
    model = current_model()
    if model is None or not model.ready:
        abort(404)
    card = model.card
    files = {(card["sha256"], card["model_file"]): model.bundle.model_path}
    loc = card.get("localiser")
    if loc is not None and model.bundle.localiser_path is not None:
        files[(loc["sha256"], loc["model_file"])] = model.bundle.localiser_path
    path = files.get((sha, name))
    if path is None:
        abort(404)
    resp = send_file(path.resolve(), mimetype="application/octet-stream", max_age=YEAR,
                     conditional=True, etag=sha)
    resp.cache_control.immutable = True
    return resp
