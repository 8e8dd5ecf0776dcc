"""Contact sheet of the validation pictures the served model gets wrong
(``python -m model.evaluate --errors errors.png``): where to look before collecting more photos.

A failure is what a visitor would see go wrong at the served threshold: a note named as another
denomination, a picture without a note named as one, or a note left unidentified.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from model.classes import LABELS, NONE

FORMATS = {".png", ".jpg", ".jpeg", ".webp"}
TILE = 160
COLUMNS = 6


def answer(pred: int, conf: float, thr: float) -> str:
    """The served answer: a denomination, "none" (no banknote found) or "no answer"."""
    return LABELS[pred] if conf >= thr else "no answer"


def failures(probs: np.ndarray, y: np.ndarray, thr: float) -> list[tuple[int, str, str]]:
    """(picture index, "truth -> answer", "top: class probability") of every failure, worst
    first: wrong denominations, then no-banknote pictures named as a note, then notes left
    unidentified; the most confident first within each."""
    pred, conf = probs.argmax(1), probs.max(1)
    out = []
    for i, (p, c, t) in enumerate(zip(pred, conf, y, strict=True)):
        said = answer(int(p), float(c), thr)
        names_a_note = said not in (LABELS[NONE], "no answer")
        if said == LABELS[t] or (t == NONE and not names_a_note):
            continue
        rank = 1 if t == NONE else 0 if names_a_note else 2
        c_down = np.floor(c * 100) / 100  # rounded down: 0.799 must not read as the 0.8 threshold
        out.append((rank, -float(c), i, f"{LABELS[t]} -> {said}", f"top: {LABELS[p]} {c_down:.2f}"))
    return [(i, what, top) for _, _, i, what, top in sorted(out)]


def write(images: np.ndarray, y: np.ndarray, probs: np.ndarray, thr: float,
          names: list[str], path: Path, limit: int = 240) -> int:
    """Write the sheet (at most ``limit`` tiles); returns the number of failures (0: no file)."""
    fails = failures(probs, y, thr)
    if not fails:
        return 0
    shown = fails[:limit]
    font = ImageFont.load_default()
    rows = (len(shown) + COLUMNS - 1) // COLUMNS
    cell_h = TILE + 40
    sheet = Image.new("RGB", (COLUMNS * TILE, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (i, what, best) in enumerate(shown):
        x, top = (k % COLUMNS) * TILE, (k // COLUMNS) * cell_h
        sheet.paste(Image.fromarray(images[i]).resize((TILE, TILE)), (x, top))
        draw.text((x + 3, top + TILE + 1), what, fill="black", font=font)
        draw.text((x + 3, top + TILE + 13), best, fill="black", font=font)
        draw.text((x + 3, top + TILE + 25), names[i][-26:], fill="dimgray", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return len(fails)
