"""Time a note coming into view on a warm phone page, as a person would live it: the page scans
a camera the benchmark draws (a canvas stream stands in for getUserMedia), shows an empty scene
until the page has analysed some frames, then draws the note at a recorded performance.now()
and waits until the page speaks its name; then the empty scene again until the scan rule has
forgotten the note (its `frames` votes without it), and again. Nothing of the page is changed:
the init script only replaces the camera and records when speech is asked for, and the page's
own `USBills.onDevice.recognise` is wrapped to log each analysed frame.
"""

from __future__ import annotations

import base64
import random
import statistics
from pathlib import Path

from PIL import Image

MAX_SIDE = 1024  # static/js/app.js MAX_SIDE: the page shrinks camera frames to this
NAMED_CONFIDENCE = 0.99  # the picture must be named on its own with margin above the threshold
TIMEOUT_MS = 10000

# Before any page script: the camera is a canvas the benchmark draws; speech is timestamped.
CAMERA = """
(() => {
  window.__spokenAt = [];
  let cam = null;
  window.__camera = () => {
    if (!cam) { cam = document.createElement('canvas'); cam.width = 640; cam.height = 480; }
    return cam;
  };
  navigator.mediaDevices.getUserMedia = async () => {
    const c = window.__camera();
    if (window.__draw) window.__draw('empty');
    return c.captureStream(30);
  };
  if (window.speechSynthesis) {
    window.speechSynthesis.speak = (u) => {
      window.__spokenAt.push({t: performance.now(), text: u.text});
    };
    window.speechSynthesis.cancel = () => {};
  }
})();
"""

# On the loaded page: decode both scenes, size the camera to the note's picture, check what the
# page says of each scene on its own (through its own recognise(), at the size it analyses).
SETUP = """async (a) => {
  const bitmap = (b64) => {
    const s = atob(b64), d = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) d[i] = s.charCodeAt(i);
    return createImageBitmap(new Blob([d]));
  };
  const scenes = {note: await bitmap(a.note), empty: await bitmap(a.empty)};
  const cam = window.__camera();
  cam.width = scenes.note.width; cam.height = scenes.note.height;
  const ctx = cam.getContext('2d');
  window.__draw = (name) => {
    ctx.drawImage(scenes[name], 0, 0, cam.width, cam.height);
    return performance.now();
  };
  window.__draw('empty');
  if (!await USBills.onDevice.load())
    return {error: USBills.onDevice.error || USBills.onDevice.state};
  const k = Math.min(1, a.maxSide / Math.max(cam.width, cam.height)), out = {};
  for (const name of ['note', 'empty']) {
    const c = document.createElement('canvas');
    c.width = Math.round(cam.width * k); c.height = Math.round(cam.height * k);
    c.getContext('2d').drawImage(scenes[name], 0, 0, c.width, c.height);
    const r = await USBills.onDevice.recognise(c);
    out[name] = {identified: r.identified, label: r.label, message: r.message,
                 confidence: r.confidence};
  }
  return out;
}"""

LOG_FRAMES = """() => {
  const d = USBills.onDevice, own = d.recognise;
  window.__frames = [];
  d.recognise = async (c) => {
    const t0 = performance.now(), r = await own(c);
    window.__frames.push({t0: t0, t1: performance.now(), label: r.identified ? r.label : null});
    return r;
  };
}"""

SPOKEN = """(a) => window.__spokenAt.find(s => s.t >= a.t && s.text.includes(a.text)) || null"""
FORGOTTEN = """(a) => window.__frames.filter(f => f.t0 >= a.t && f.label !== a.label)
  .length >= a.n"""


def _b64(path: Path | None, img: Image.Image | None = None) -> str:
    if path is not None:
        return base64.b64encode(path.read_bytes()).decode()
    from tests import synth
    return base64.b64encode(synth.encode(img, "PNG")).decode()


def empty_scene(size: tuple[int, int]) -> Image.Image:
    """A dim, busy scene with no note (a table in room light)."""
    from tests import synth
    return Image.eval(synth.photo(size, seed=3), lambda v: v // 3)


def named_confidence(rule: dict) -> float:
    """What the picture's confidence must reach: NAMED_CONFIDENCE, or ten times surer than the
    scan rule's own threshold (card "scan"), so that every frame of it votes."""
    return max(NAMED_CONFIDENCE, 1 - (1 - float(rule.get("threshold", 0))) / 10)


def choose(page, pictures: list[Path], need: float = NAMED_CONFIDENCE) -> tuple[Path, dict]:
    """The first picture the page names on its own at ``need`` or more, the empty scene not."""
    tried = []
    for p in pictures:
        with Image.open(p) as im:
            size = im.size
        res = page.evaluate(SETUP, {"note": _b64(p), "empty": _b64(None, empty_scene(size)),
                                    "maxSide": MAX_SIDE})
        if "error" in res:
            raise SystemExit(f"bench-ondevice: on-device recognition failed: {res['error']}")
        if res["empty"]["identified"]:
            raise SystemExit("bench-ondevice: the bundle names the empty scene "
                             f"({res['empty']['label']}): cannot time a note coming into view")
        note = res["note"]
        if note["identified"] and (note["confidence"] or 0) >= need:
            return p, note
        tried.append(f"{p.name}: {note['label']} {note['confidence']}")
    raise SystemExit("bench-ondevice: no picture is named on its own with confidence >= "
                     f"{need}: " + "; ".join(tried[:5]))


def time_note_in_view(page, pictures: list[Path], trials: int, rule_frames: int,
                      interval_s: float, warmup_frames: int = 5, seed: int = 0,
                      need: float = NAMED_CONFIDENCE) -> dict:
    """On a loaded page (not scanning): `trials` times, the note drawn at a random moment of the
    page's frame interval -> the page speaks its name. Returns the times and what was seen."""
    from playwright.sync_api import TimeoutError as PwTimeout

    picture, note = choose(page, pictures, need)
    page.evaluate(LOG_FRAMES)
    page.click("#scan-toggle")
    try:
        page.wait_for_function(f"() => window.__frames.length >= {warmup_frames}",
                               timeout=TIMEOUT_MS)
    except PwTimeout:
        raise SystemExit("bench-ondevice: the scan analysed no camera frame on the phone in "
                         f"{TIMEOUT_MS / 1000:g} s") from None
    rng = random.Random(seed)
    times, frames_used, next_frame, first_seen = [], [], [], []
    for i in range(trials):
        # A note shows up at any moment between two of the page's frames.
        page.wait_for_timeout(int(rng.uniform(0, interval_s) * 1000))
        t = page.evaluate("() => window.__draw('note')")
        try:
            spoken = page.wait_for_function(SPOKEN, arg={"t": t, "text": note["message"]},
                                            timeout=TIMEOUT_MS).json_value()
        except PwTimeout:
            raise SystemExit(f"bench-ondevice: trial {i + 1}: the page did not say "
                             f"{note['message']!r} within {TIMEOUT_MS / 1000:g} s of the note "
                             "coming into view") from None
        times.append(spoken["t"] - t)
        # Why it takes what it takes: the wait for the page's next frame, the first frame that
        # saw the note, and the frames analysed until the page spoke.
        seen = page.evaluate("""(a) => {
          const fs = window.__frames.filter(f => f.t0 >= a.t && f.t1 <= a.s);
          const hit = fs.find(f => f.label === a.label);
          return {next: fs.length ? fs[0].t0 - a.t : null, hit: hit ? hit.t0 - a.t : null,
                  n: fs.length};
        }""", {"t": t, "s": spoken["t"], "label": note["label"]})
        frames_used.append(seen["n"])
        next_frame.append(seen["next"])
        first_seen.append(seen["hit"])
        t = page.evaluate("() => window.__draw('empty')")
        try:  # one frame more than the rule needs, so its last vote has been counted
            page.wait_for_function(FORGOTTEN, arg={"t": t, "label": note["label"],
                                                   "n": rule_frames + 1}, timeout=TIMEOUT_MS)
        except PwTimeout:
            raise SystemExit(f"bench-ondevice: trial {i + 1}: the page kept seeing the note "
                             f"{TIMEOUT_MS / 1000:g} s after it left the view") from None
    page.click("#scan-toggle")
    s = [round(x / 1000, 3) for x in times]
    return {"picture": picture.name, "label": note["label"], "confidence": note["confidence"],
            "seconds": s, "median_s": round(statistics.median(s), 3), "max_s": max(s),
            "frames_analysed": frames_used,
            "next_frame_s": [None if x is None else round(x / 1000, 3) for x in next_frame],
            "first_frame_with_note_s": [None if x is None else round(x / 1000, 3)
                                        for x in first_seen]}
