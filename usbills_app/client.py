"""Command-line client: python -m usbills_app.client PHOTO... --url URL

Sends each photo as a raw image body to POST /api/v1/predict and prints one line per photo
(or the JSON answers with --json). Standard library only, so it runs anywhere Python does.
Exit status: 0 when every photo got an answer, 1 when any failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

TYPES = {".heic": "image/heic", ".heif": "image/heif", ".webp": "image/webp"}


def predict(url: str, photo: Path, lang: str, timeout: float) -> dict:
    ctype = TYPES.get(photo.suffix.lower()) or mimetypes.guess_type(photo.name)[0]
    if not ctype or not ctype.startswith("image/"):
        ctype = "application/octet-stream"
    endpoint = url.rstrip("/") + "/api/v1/predict?" + urllib.parse.urlencode({"lang": lang})
    req = urllib.request.Request(  # noqa: S310 - http(s) only, checked in main()
        endpoint, data=photo.read_bytes(), method="POST",
        headers={"Content-Type": ctype, "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - as above
            return json.load(resp)
    except urllib.error.HTTPError as e:
        try:
            return json.load(e)
        except ValueError:
            return {"error": {"code": f"http_{e.code}", "message": e.reason}}


def describe(ans: dict) -> str:
    if "error" in ans:
        return f"error {ans['error'].get('code')}: {ans['error'].get('message')}"
    if ans.get("identified"):
        return f"{ans['message']} ({ans['label']}, {ans['confidence']:.1%})"
    return ans["message"] + f" (top: {ans['label']} {ans['confidence']:.1%})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m usbills_app.client",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    ap.add_argument("--url", default=os.environ.get("USBILLS_URL", "http://127.0.0.1:8000"),
                    help="site base URL (default $USBILLS_URL or http://127.0.0.1:8000)")
    ap.add_argument("--lang", default="en", choices=["en", "es"])
    ap.add_argument("--json", action="store_true", help="print the JSON answers")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args(argv)
    if urllib.parse.urlsplit(a.url).scheme not in ("http", "https"):
        ap.error(f"--url must be an http:// or https:// URL, got {a.url!r}")
    failed = 0
    for photo in a.photos:
        if not photo.is_file():
            print(f"{photo}: no such file", file=sys.stderr)
            failed += 1
            continue
        try:
            ans = predict(a.url, photo, a.lang, a.timeout)
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            print(f"usbills client: cannot reach {a.url}: {reason}", file=sys.stderr)
            return 1
        failed += "error" in ans
        if a.json:
            print(json.dumps({"photo": str(photo), **ans}, ensure_ascii=False))
        else:
            print(f"{photo}: {describe(ans)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
