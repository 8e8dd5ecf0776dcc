"""From image bytes to the API answer: decode, preprocess, infer, explain.

`predict_image` is also the entry point of the no-JS page (pages.py).
"""

from __future__ import annotations

import time

import numpy as np
from flask import current_app, has_app_context

from . import imaging, inference, metrics, pixels, runtime, site_text
from .config import Settings, load_settings
from .errors import ApiError
from .pages_i18n import LANGS  # the API answers in the page's languages

# The message (site_text.API_TEXT) names a candidate only at this probability or more: a
# landscape used to be told "It may be One hundred dollars or One dollar" at 0.001 each
# (issue 25). The page's tips use the same share (LIKELY in static/js/answer.js).
LIKELY = 0.3


def _settings() -> Settings:
    if has_app_context() and "USBILLS_SETTINGS" in current_app.config:
        return current_app.config["USBILLS_SETTINGS"]
    return load_settings()


def current_model() -> runtime.Model | None:
    """This app's model (each app holds its own), else the process-wide one."""
    if has_app_context() and "usbills" in current_app.extensions:
        return current_app.extensions["usbills"]
    return runtime.get_model()


def ready_model() -> runtime.Model:
    model = current_model()
    if model is None or not model.ready:
        raise ApiError(503, "not_ready", "The model is not loaded yet; try again shortly.",
                       {"Retry-After": "1"})
    return model


def normalise_lang(lang: str | None) -> str:
    primary = (lang or "en").strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in LANGS else "en"


def display_name(cls: dict, lang: str) -> str:
    return cls["display"].get(lang) or cls["display"]["en"]


def _entry(cls: dict, p: float, lang: str) -> dict:
    return {
        "label": cls["label"],
        "display_name": display_name(cls, lang),
        "value": cls.get("value"),
        # Six places: a scan rule's threshold (card "scan") can sit above 0.9999.
        "confidence": round(float(p), 6),
    }


def named_candidates(candidates: list[dict], has_negative: bool) -> list[dict]:
    """The candidates an unsure answer names: those at LIKELY or more (none: no note found,
    not surely none); a bundle without a negative class (digits) names its two likeliest."""
    return [c for c in candidates if c["confidence"] >= LIKELY] if has_negative else candidates


def unsure_names(answer: dict) -> list[dict]:
    """The candidates a page lists beside an answer: what its message names, none when sure."""
    if answer["identified"] or answer["no_object"]:
        return []
    model = current_model()
    has_negative = model is not None and model.bundle.negative_id is not None
    return named_candidates(answer["candidates"], has_negative)


def explain(probs: np.ndarray, model: runtime.Model, lang: str, top_k: int,
            threshold: float) -> dict:
    """The answer for one probability vector (see the contract in docs/api.md)."""
    classes = model.bundle.classes
    neg = model.bundle.negative_id
    order = [int(i) for i in np.argsort(-probs, kind="stable")]
    top = order[0]
    p = float(probs[top])
    identified = top != neg and p >= threshold
    no_object = top == neg and p >= threshold
    # Candidates are what the note may be: the two likeliest classes that are notes.
    cands = [_entry(classes[i], probs[i], lang) for i in order if i != neg][:2]
    named = named_candidates(cands, neg is not None)
    if identified or no_object:
        message = display_name(classes[top], lang)
    elif not named:
        message = display_name(classes[neg], lang)
    elif len(named) >= 2:
        message = site_text.words(model.card, lang)["unsure"].format(
            a=named[0]["display_name"], b=named[1]["display_name"])
    else:
        message = site_text.words(model.card, lang)["unsure_one"].format(
            a=named[0]["display_name"])
    first = _entry(classes[top], p, lang)
    return {
        "identified": identified,
        **first,
        "no_object": no_object,
        "message": message,
        "candidates": cands,
        "top_k": [_entry(classes[i], probs[i], lang) for i in order[:top_k]],
        "threshold": threshold,
        "lang": lang,
        "model": model_ref(model),
    }


def model_ref(model: runtime.Model) -> dict:
    return {"name": model.card["name"], "version": model.card["version"]}


def predict_images(images: list[bytes], lang: str = "en", top_k: int | None = None) -> list[dict]:
    """Answers for several images, in order (one model call for the whole batch)."""
    settings = _settings()
    model = ready_model()
    lang = normalise_lang(lang)
    n_classes = len(model.bundle.classes)
    k = min(top_k or settings.top_k, n_classes)
    threshold = settings.confidence_threshold or float(model.card["threshold"])
    inp = model.card["input"]
    mode = "L" if inp["channels"] == 1 else "RGB"
    # With a localiser the classifier may see a crop of a third of the frame: decode at
    # twice its input so the crop keeps the detail of the numerals.
    scale = 2 if model.localiser is not None else 1
    pictures, decode_ms = [], []
    for i, data in enumerate(images):
        t0 = time.perf_counter()
        try:
            pictures.append(imaging.decode(data, (inp["width"] * scale, inp["height"] * scale),
                                           settings.max_pixels, mode))
        except ApiError as e:
            if len(images) > 1:
                e.message = f"Image {i + 1}: {e.message}"
            raise
        decode_ms.append((time.perf_counter() - t0) * 1000)
    probs, boxes, timings = inference.classify(model, pictures)
    for t, ms in zip(timings, decode_ms, strict=True):
        t["decode"] = ms
    answers = _answers(model, probs, timings, lang, k, threshold)
    for ans, box in zip(answers, boxes, strict=True):
        ans["note_box"] = note_box(box)
    return answers


def note_box(box: tuple[float, float, float, float] | None) -> list[float] | None:
    """The answer's ``note_box``: the located note with the bundle's margin, the part of the
    frame the classifier saw (None: the whole frame); the page's "move closer" tip reads it."""
    return None if box is None else [round(float(v), 4) for v in box]


def predict_pixels(grid: object, max_value: object = None, lang: str = "en",
                   top_k: int | None = None) -> dict:
    """The single answer for a JSON pixel grid (usbills_app/pixels.py); ApiError for bad ones."""
    settings = _settings()
    model = ready_model()
    lang = normalise_lang(lang)
    k = min(top_k or settings.top_k, len(model.bundle.classes))
    threshold = settings.confidence_threshold or float(model.card["threshold"])
    t0 = time.perf_counter()
    grey = pixels.parse(grid, max_value)
    t1 = time.perf_counter()
    x = pixels.to_input(grey, model.card["input"])
    t2 = time.perf_counter()
    probs = model.predict(x[None])
    timing = {"decode": (t1 - t0) * 1000, "preprocess": (t2 - t1) * 1000,
              "inference": (time.perf_counter() - t2) * 1000}
    return _answers(model, probs, [timing], lang, k, threshold)[0]


def _answers(model: runtime.Model, probs: np.ndarray, timings: list[dict], lang: str, k: int,
             threshold: float) -> list[dict]:
    answers = []
    for row, t in zip(probs, timings, strict=True):
        ans = explain(row, model, lang, k, threshold)
        t["total"] = sum(t.values())
        ans["timings_ms"] = {key: round(v, 2) for key, v in t.items()}
        metrics.record_prediction(ans["label"], ans["identified"], t)
        answers.append(ans)
    return answers


def predict_image(data: bytes, lang: str = "en", top_k: int | None = None) -> dict:
    """The single-image API answer; raises ApiError for bad input or when not ready."""
    return predict_images([data], lang, top_k)[0]
