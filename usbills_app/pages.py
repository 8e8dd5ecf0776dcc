"""Pages blueprint: the phone page (scan + photo), the no-JS result page and the web app manifest.

The browser script talks to ``POST /api/v1/predict``; ``POST /predict`` is the plain-form path for
browsers without JavaScript and calls the same Python entry point the API uses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from . import ondevice, predict_service, scan, site_text
from . import pages_i18n as i18n
from .errors import ApiError

bp = Blueprint("pages", __name__)

# US denominations in EyeNote's pulse order (1 pulse for $1 ... 7 for $100); a card for another
# model site overrides it with its own class values.
DEFAULT_VALUES = [1, 2, 5, 10, 20, 50, 100]

# The site's CSP (nginx sends the same in the stack); set here too so the dev server and the
# browser tests enforce it. blob: is for the photo preview, media for the camera stream,
# 'wasm-unsafe-eval' lets the on-device runtime compile its WebAssembly (no JavaScript eval).
CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' blob: data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; manifest-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@lru_cache(maxsize=64)
def _digest(path: str, mtime: float) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def asset(filename: str) -> str:
    """URL of a static file with a content hash, so nginx can cache it for a year."""
    path = Path(current_app.static_folder or "", filename)
    try:
        version = _digest(str(path), path.stat().st_mtime)
    except OSError:
        version = "0"
    return url_for("static", filename=filename, v=version)


def _card() -> dict:
    """The served model's card, or {} while no model is loaded (the page still renders)."""
    if "usbills" in current_app.extensions:  # this app's model (None: not ready)
        model = current_app.extensions["usbills"]
    else:
        from .runtime import get_model

        model = get_model()
    card = getattr(model, "card", None)
    return card if isinstance(card, dict) else {}


def _page_context(lang: str) -> dict:
    card = _card()
    values = sorted(
        c["value"] for c in card.get("classes", [])
        if not c.get("negative") and isinstance(c.get("value"), int | float)
    ) or DEFAULT_VALUES
    # A card may say what its own site identifies (the built-in words are about banknotes).
    s = site_text.words(card, lang)
    other = [code for code in i18n.LANGS if code != lang]
    # The value as a numeral beside the words ("$20"), for notes (not digits).
    numeral = "" if card.get("kind") == "digits" else "$"
    return {
        "lang": lang,
        "t": s,
        "title": s["title"],
        "other_langs": [(code, i18n.strings(code)["lang_name"]) for code in other],
        "model": {"name": card.get("name", ""), "version": card.get("version", "")},
        # Digit models (one grey channel, kind "digits") also get a drawing canvas.
        "canvas": card.get("kind") == "digits",
        "numeral": numeral,
        "page_config": json.dumps(
            {
                "lang": lang,
                "api": url_for("pages.index") + "api/v1/predict",
                "values": values,
                "numeral": numeral,
                # The scan rule the server applies to ?scan= (usbills_app/scan.py).
                "scan": dataclasses.asdict(scan.Rule.from_card(card)),
                # The bundle and runtime for recognition on the phone (None: server only).
                "ondevice": ondevice.page_config(lang),
                "sw": url_for("offline.service_worker"),
                "strings": {k: s[k] for k in i18n.SCRIPT_KEYS},
            },
            ensure_ascii=False,
        ).replace("<", "\\u003c"),  # the JSON sits in a <script> data block
        "asset": asset,
    }


def _render(template: str, lang: str, remember: bool, status: int = 200, **extra) -> Response:
    resp = Response(
        render_template(template, **_page_context(lang), **extra),
        status=status,
        mimetype="text/html",
    )
    resp.headers["Content-Language"] = lang
    resp.vary.update(("Accept-Language", "Cookie"))
    if remember:
        resp.set_cookie(i18n.COOKIE, lang, max_age=365 * 24 * 3600, samesite="Lax",
                        secure=request.is_secure, httponly=True)
    return resp


@bp.after_request
def _security_headers(resp: Response) -> Response:
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    resp.headers.setdefault("Permissions-Policy", "camera=(self), microphone=()")
    return resp


@bp.get("/")
def index():
    lang, remember = i18n.pick_lang(request)
    return _render("index.html", lang, remember)


@bp.post("/predict")
def predict_form():
    """No-JS path: a plain multipart form post; answers with a result page, never JSON."""
    lang, remember = i18n.pick_lang(request)
    s = site_text.words(_card(), lang)
    try:
        upload = request.files.get("image")
    except RequestEntityTooLarge:
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        msg = s["error_too_large"].format(mb=round(limit / 2**20) or "?")
        return _render("result.html", lang, remember, status=413, error=msg)
    data = upload.read() if upload else b""
    if not data:
        return _render("result.html", lang, remember, status=400, error=s["error_no_file"])

    try:
        answer = predict_service.predict_image(data, lang)
    except ApiError as e:
        return _render("result.html", lang, remember, status=e.status, error=e.message)
    return _render("result.html", lang, remember, answer=answer,
                   likely=predict_service.unsure_names(answer))


@bp.get("/predict")
def predict_form_get():
    """A bookmarked or reloaded result page: back to the scanner, in the same language."""
    lang, _ = i18n.pick_lang(request)
    return redirect(url_for("pages.index", lang=lang), code=303)


@bp.get("/manifest.webmanifest")
def manifest():
    lang, _ = i18n.pick_lang(request)
    ctx = _page_context(lang)
    body = {
        "name": ctx["title"],
        "short_name": ctx["t"]["short_name"],
        "description": ctx["t"]["intro"],
        "lang": lang,
        "start_url": url_for("pages.index", lang=lang),
        "scope": url_for("pages.index"),
        "display": "standalone",
        "orientation": "any",  # held as it comes: a note is read in either orientation
        "background_color": "#000000",
        "theme_color": "#000000",
        "icons": [
            {"src": asset("icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": asset("icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
            {"src": asset("icons/maskable-512.png"), "sizes": "512x512", "type": "image/png",
             "purpose": "maskable"},
        ],
    }
    resp = Response(json.dumps(body, ensure_ascii=False), mimetype="application/manifest+json")
    resp.vary.update(("Accept-Language", "Cookie"))
    return resp
