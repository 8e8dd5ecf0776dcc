"""Recognition on the phone, in Debian's Chromium on this machine, against real gunicorn with the
committed bundle: what the page downloads for it (raw and gzipped as the site nginx sends it,
level 5), the first answer from a cold load, the first answer on a repeat visit (runtime and
bundle from the service worker's cache), the time a frame takes on a warm page, the time the
scan rule needs to name a note (its agreeing frames at the page's frame interval), the time
from a note coming into view on a warm page until the page speaks its name (timed: see
note_in_view.py), and the frames uploaded during on-device scans. Writes
bench-ondevice.{json,md} to artifacts/ (or --out).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import note_in_view  # noqa: E402 (beside this file: a note coming into view, timed)

from tests import synth  # noqa: E402
from tests.app.conftest import Gunicorn  # noqa: E402
from tests.browser.y4m import write_y4m  # noqa: E402
from tests.chromium import CHROMIUM, LAUNCH_ARGS  # noqa: E402

ART = ROOT / "artifacts"
BUNDLE = ROOT / "model/bundles/usbills"
# Real photographs of notes (never copied into the project) for the note coming into view.
PICTURES = ROOT.parent / "shared/data/usbills/valid/images"
INTERVAL_S = 0.5  # static/js/app.js INTERVAL_MS
TARGETS = {"transfer_mb": 6.0, "cold_s": 3.0, "warm_s": 0.5}

# Time from navigation start to the first answer for a camera-like frame: load the runtime
# and the bundle (the page starts that itself), then recognise one frame.
FIRST_ANSWER = """async (a) => {
  const s = atob(a.b64), d = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) d[i] = s.charCodeAt(i);
  const ok = await USBills.onDevice.load();
  if (!ok) return {error: USBills.onDevice.error || USBills.onDevice.state};
  const ready = performance.now();
  const r = await USBills.onDevice.recogniseRgb({data: d, width: a.width, height: a.height});
  return {ready_ms: ready, answer_ms: performance.now(), label: r.answer.label};
}"""

FRAMES = """async (a) => {
  const s = atob(a.b64), d = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) d[i] = s.charCodeAt(i);
  const img = {data: d, width: a.width, height: a.height}, out = [];
  for (let i = 0; i < a.n; i++) {
    const t = performance.now();
    await USBills.onDevice.recogniseRgb(img);
    out.push(performance.now() - t);
  }
  return out;
}"""


def p90(times: list[float]) -> float:
    return sorted(times)[int(0.9 * (len(times) - 1))]


def frame_arg(size=(512, 384)) -> dict:
    img = synth.camera(size, value=20, seed=1)
    return {"b64": base64.b64encode(img.tobytes()).decode(), "width": img.width,
            "height": img.height}


def transfer(base: str, urls: list[str]) -> list[dict]:
    rows = []
    for u in urls:
        data = requests.get(base + u, timeout=60).content
        rows.append({"url": u, "bytes": len(data),
                     "gzip5": len(gzip.compress(data, compresslevel=5))})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="cold and repeat visits (default 5)")
    ap.add_argument("--frames", type=int, default=30, help="frames timed on a warm page")
    ap.add_argument("--scan-seconds", type=float, default=5.0,
                    help="on-device scan during which uploads are counted")
    ap.add_argument("--trials", type=int, default=10,
                    help="times a note comes into view on a warm page (default 10)")
    ap.add_argument("--picture", type=Path,
                    help="the note's picture (default: the first of ../shared's validation "
                         "pictures the bundle names on its own with confidence >= 0.99, or "
                         "ten times surer than the card's scan threshold)")
    ap.add_argument("--bundle", type=Path, default=BUNDLE,
                    help="bundle the app serves (default model/bundles/usbills)")
    ap.add_argument("--out", type=Path, default=ART, help="report folder (default artifacts/)")
    a = ap.parse_args()
    if a.runs < 1 or a.frames < 1 or a.trials < 1 or a.scan_seconds <= 0:
        ap.error("--runs, --frames and --trials must be at least 1, --scan-seconds positive")
    if not (a.bundle / "card.json").is_file():
        ap.error(f"--bundle {a.bundle}: no card.json there")
    if a.picture is not None:
        if not a.picture.is_file():
            ap.error(f"--picture {a.picture}: no such file")
        pictures = [a.picture]
    else:
        pictures = sorted(p for p in PICTURES.glob("*") if p.suffix.lower() in (".jpg", ".png"))
        if not pictures:
            ap.error(f"no pictures in {PICTURES}: pass --picture")
    if not list((ROOT / "usbills_app/static/vendor").glob("litert-*/litert.js")):
        sys.exit("bench-ondevice: no vendored LiteRT.js: run scripts/setup-dev")
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-ondevice-"))
    video = write_y4m(tmp / "cam.y4m", [synth.camera((640, 480), value=20, seed=1)] * 4)
    server = Gunicorn({"MODEL_DIR": str(a.bundle.resolve())}, tmp)
    server.wait_ready()
    arg = frame_arg()
    load = [os.getloadavg()[0]]
    cold, repeat, uploads, loaded, version, rows = [], [], None, [], "", []
    rule = json.loads((a.bundle / "card.json").read_text()).get("scan", {"frames": 3})
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS + [
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={video}"])
            for _ in range(a.runs):
                ctx = browser.new_context(base_url=server.url)  # empty caches: a cold load
                page = ctx.new_page()
                seen = []
                page.on("response", lambda r, seen=seen: seen.append(r.url))
                page.goto("/")
                first = page.evaluate(FIRST_ANSWER, arg)
                if "error" in first:
                    sys.exit(f"bench-ondevice: on-device recognition failed: {first['error']}")
                cold.append(first)
                loaded = sorted({u.removeprefix(server.url) for u in seen
                                 if "/static/vendor/" in u or "/bundle/" in u})
                # A repeat visit: wait until the service worker has kept everything, reload.
                deadline = time.monotonic() + 60
                models = sum("/bundle/" in u for u in loaded)  # 1 or 2: with a localiser
                while not page.evaluate("""async (n) => {
                    const urls = [];
                    for (const k of await caches.keys())
                      for (const r of await (await caches.open(k)).keys()) urls.push(r.url);
                    return urls.some(u => u.endsWith('.wasm')) &&
                      urls.filter(u => u.includes('/bundle/')).length >= n; }""", models):
                    if time.monotonic() > deadline:
                        sys.exit("bench-ondevice: the service worker kept nothing in 60 s")
                    page.wait_for_timeout(200)
                page.reload()
                repeat.append(page.evaluate(FIRST_ANSWER, arg))
                ctx.close()
            # A warm page: frames one after another, and an on-device scan with the camera.
            ctx = browser.new_context(base_url=server.url)
            page = ctx.new_page()
            page.goto("/")
            page.evaluate(FIRST_ANSWER, arg)
            times = page.evaluate(FRAMES, {**arg, "n": a.frames})
            # The page's largest frame: a 1280x720 camera shrunk to MAX_SIDE 1024 (app.js).
            times_big = page.evaluate(FRAMES, {**frame_arg((1024, 576)), "n": a.frames})
            posted = []
            page.on("request", lambda r: posted.append(r.url)
                    if "/api/v1/predict" in r.url and r.method == "POST" else None)
            page.click("#scan-toggle")
            page.wait_for_timeout(int(a.scan_seconds * 1000))
            uploads = len(posted)
            ctx.close()
            # A note coming into view on a warm page, timed until the page says it.
            ctx = browser.new_context(base_url=server.url)
            ctx.add_init_script(note_in_view.CAMERA)
            page = ctx.new_page()
            posted.clear()
            page.on("request", lambda r: posted.append(r.url)
                    if "/api/v1/predict" in r.url and r.method == "POST" else None)
            page.goto("/")
            view = note_in_view.time_note_in_view(page, pictures, a.trials, rule["frames"],
                                                  INTERVAL_S,
                                                  need=note_in_view.named_confidence(rule))
            view["uploads"] = len(posted)
            ctx.close()
            version = browser.version
            browser.close()
        rows = transfer(server.url, loaded)
    finally:
        server.stop()
    load.append(os.getloadavg()[0])
    total_gz = sum(r["gzip5"] for r in rows) / 1e6
    med = statistics.median
    frame_ms = med(times)
    waits = [w for w in view["next_frame_s"] if w is not None]
    # The rule names a note on its n-th agreeing frame: n frames, one interval (or one frame's
    # time, if longer) apart.
    scan_s = (rule["frames"] - 1) * max(INTERVAL_S, frame_ms / 1000) + frame_ms / 1000
    result = {
        "transfer": rows, "transfer_gzip_mb": round(total_gz, 2),
        "cold_first_answer_s": [round(c["answer_ms"] / 1000, 3) for c in cold],
        "cold_ready_s": [round(c["ready_ms"] / 1000, 3) for c in cold],
        "repeat_first_answer_s": [round(c["answer_ms"] / 1000, 3) for c in repeat],
        "warm_frame_ms": [round(t, 1) for t in times],
        "warm_frame_1024_ms": [round(t, 1) for t in times_big], "scan_rule": rule,
        "scan_named_s": round(scan_s, 3), "uploads_during_scan": uploads,
        "scan_seconds": a.scan_seconds, "note_in_view": view, "load": load,
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "bench-ondevice.json").write_text(json.dumps(result, indent=2))
    cold_s = med(result["cold_first_answer_s"])
    lines = [
        f"Command: `scripts/bench-ondevice --runs {a.runs} --frames {a.frames} --trials "
        f"{a.trials}`; Chromium "
        f"{version} headless, CPU (Wasm) build of LiteRT.js, the page "
        "and gunicorn on this host (no network delay); load average "
        f"{load[0]:.2f} before, {load[1]:.2f} after.",
        "",
        "| file | bytes | gzip -5 |", "|---|---|---|",
        *[f"| `{r['url']}` | {r['bytes']:,} | {r['gzip5']:,} |" for r in rows],
        f"| **total** | {sum(r['bytes'] for r in rows):,} | {total_gz * 1e6:,.0f} |",
        "",
        "| figure | median | runs | target | met |", "|---|---|---|---|---|",
        f"| model + runtime transfer, gzipped | {total_gz:.2f} MB | - | <= 6 MB | "
        f"{'yes' if total_gz <= TARGETS['transfer_mb'] else 'no'} |",
        f"| first answer, cold load (navigation -> runtime + bundle loaded -> 1 frame) | "
        f"{cold_s:.2f} s | {', '.join(map(str, result['cold_first_answer_s']))} | <= 3 s | "
        f"{'yes' if cold_s <= TARGETS['cold_s'] else 'no'} |",
        f"| of which runtime + bundle ready | {med(result['cold_ready_s']):.2f} s | "
        f"{', '.join(map(str, result['cold_ready_s']))} | | |",
        f"| first answer, repeat visit (from the service worker's cache) | "
        f"{med(result['repeat_first_answer_s']):.2f} s | "
        f"{', '.join(map(str, result['repeat_first_answer_s']))} | | |",
        f"| one frame on a warm page (localise + classify, 512x384) | {frame_ms:.0f} ms | "
        f"p90 {p90(times):.0f} ms, {len(times)} frames | "
        f"<= 0.5 s | {'yes' if frame_ms / 1000 <= TARGETS['warm_s'] else 'no'} |",
        f"| one frame on a warm page, 1024x576 (a 1280x720 camera as the page sends it) | "
        f"{med(times_big):.0f} ms | p90 {p90(times_big):.0f} ms, {len(times_big)} frames | | |",
        f"| a note coming into view on a warm page -> the page speaks its name (timed; "
        f"`{view['picture']}`, {view['label']} at {view['confidence']}) | "
        f"{view['median_s']:.2f} s | max {view['max_s']:.2f} s; "
        f"{', '.join(map(str, view['seconds']))} s; frames analysed "
        f"{', '.join(map(str, view['frames_analysed']))} | <= 0.5 s | "
        f"{'yes' if view['median_s'] <= TARGETS['warm_s'] else 'no'} (median) |",
        f"| of which the wait for the page's next frame (the note shows up between two) | "
        f"{med(waits):.2f} s | {', '.join(map(str, waits))} s | | |",
        f"| then the scan rule ({rule['frames']} agreeing frames, "
        f"{INTERVAL_S * 1000:.0f} ms apart, the last one analysed) | "
        f"{scan_s:.2f} s | computed from the frame time | | |",
        f"| frames uploaded during a {a.scan_seconds:g} s on-device scan | {uploads} | - | 0 | "
        f"{'yes' if uploads == 0 else 'no'} |",
        f"| frames uploaded during the {a.trials} notes coming into view | {view['uploads']} | "
        f"- | 0 | {'yes' if view['uploads'] == 0 else 'no'} |",
    ]
    (a.out / "bench-ondevice.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
