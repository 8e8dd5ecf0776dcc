"""The service worker (/sw.js): the page, its assets, the browser runtime and the bundle kept on
the phone, so the page opens and recognises notes with no network after the first visit.

The script is static/js/sw.js with two lines put in front: the cache version and the URLs to
keep. The version is a hash of everything cached, the bundle's sha256 among it, so a new bundle
(or a changed script) is a new service worker: the browser installs it on the next online visit
and it drops the old caches. /sw.js itself is never cached long (browsers check it on every
navigation; no-cache makes any HTTP cache in between ask too).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flask import Blueprint, Response, current_app

from . import ondevice
from .pages import CSP, asset

bp = Blueprint("offline", __name__)

# The page's own files (the page itself is kept when it is opened).
ASSETS = ("css/app.css", "css/nojs.css", "js/answer.js", "js/preprocess.js", "js/ondevice.js",
          "js/ondevice-worker.js", "js/app.js", "icons/icon-192.png",
          "icons/apple-touch-icon.png")
# The runtime's JavaScript; its Wasm (one of two builds, picked by the browser) is added by the
# page once it has loaded it (see static/js/app.js, keepForOffline).
RUNTIME_FILES = ("litert.js", "wasm-utils.js")


def precache() -> list[str]:
    urls = [asset(a) for a in ASSETS]
    bundle = ondevice.bundle_urls()
    if bundle:
        urls += [ondevice.runtime_url() + f for f in RUNTIME_FILES] + bundle
    return urls


@bp.get("/sw.js")
def service_worker():
    urls = precache()
    body = Path(current_app.static_folder or "", "js/sw.js").read_text("utf-8")
    version = hashlib.sha256(json.dumps(urls).encode() + body.encode()).hexdigest()[:16]
    head = (f"var VERSION = {json.dumps(version)};\n"
            f"var PRECACHE = {json.dumps(urls)};\n")
    resp = Response(head + body, mimetype="text/javascript")
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp
