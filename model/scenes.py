"""Pictures with no banknote: what is behind and around a note held up to a phone, and the
hard negatives the service must not name (hands, faces, wallets, cards, receipts, paper,
screens, rooms), plus the few real photos that ship offline with scikit-image/scikit-learn.

Everything here is procedural or shipped by a package: no data set holds such photos under a
licence we can use offline. A scene comes from a ``random.Random``, so training and evaluation
draw disjoint scenes by using different seeds (and disjoint lists of real photos).
"""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# scikit-image / scikit-learn sample photos (split by name so evaluation sees unseen ones).
SKIMAGE_TRAIN = ["astronaut", "camera", "coins", "hubble_deep_field", "immunohistochemistry",
                 "moon", "page", "text", "brick", "grass", "gravel", "colorwheel", "logo",
                 "motorcycle_left", "rocket", "horse", "cell", "checkerboard", "clock",
                 "sklearn:china.jpg"]
SKIMAGE_VALID = ["chelsea", "coffee", "retina", "microaneurysms", "shepp_logan_phantom",
                 "sklearn:flower.jpg"]
# Skin tones, light to dark: fingers, hands and faces.
SKIN = [(255, 224, 196), (241, 194, 155), (224, 172, 105), (198, 134, 66), (141, 85, 36),
        (96, 60, 35)]
KINDS = ("room", "face", "person", "hand", "wallet", "card", "receipt", "paper", "screen",
         "print")


@lru_cache(maxsize=64)
def photo(name: str) -> Image.Image:
    """A sample photo shipped by scikit-image (``name``) or scikit-learn (``sklearn:name``)."""
    if name.startswith("sklearn:"):
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(name.split(":", 1)[1])).convert("RGB")
    from skimage import data as skdata

    arr = getattr(skdata, name)()
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255) if arr.max() <= 1 else arr
        arr = arr.astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, -1)
    return Image.fromarray(arr[..., :3]).convert("RGB")


def available_photos(names: list[str]) -> list[str]:
    """Sample names that load offline (some scikit-image samples need a download)."""
    ok = []
    for n in names:
        try:
            photo(n)
        except Exception:  # noqa: BLE001, S112 - missing optional sample: just skip it
            continue
        ok.append(n)
    return ok


def _colour(rng: random.Random, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    return tuple(rng.randrange(lo, hi) for _ in range(3))


def _jitter(c, rng: random.Random, d: int = 20) -> tuple[int, int, int]:
    return tuple(max(0, min(255, v + rng.randrange(-d, d + 1))) for v in c)


def _gradient(size, a, b, vertical: bool = True) -> Image.Image:
    w, h = size
    n = h if vertical else w
    t = np.linspace(0, 1, n, dtype=np.float32)
    t = t[:, None, None] if vertical else t[None, :, None]
    grad = np.array(a, np.float32) * (1 - t) + np.array(b, np.float32) * t
    return Image.fromarray(np.broadcast_to(grad, (h, w, 3)).astype(np.uint8))


def room(rng: random.Random, size) -> Image.Image:
    """A wall, a floor or a table, and furniture-like blocks."""
    w, h = size
    img = _gradient(size, _colour(rng, 60, 240), _colour(rng, 30, 200), rng.random() < 0.8)
    d = ImageDraw.Draw(img)
    if rng.random() < 0.5:  # a floor or table edge
        y = rng.randrange(h // 3, h)
        d.rectangle([0, y, w, h], fill=_colour(rng, 40, 200))
    for _ in range(rng.randrange(0, 12)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randrange(10, w), y0 + rng.randrange(10, h)
        (d.rectangle if rng.random() < 0.7 else d.ellipse)([x0, y0, x1, y1], fill=_colour(rng))
    return img


def _text_lines(d: ImageDraw.ImageDraw, box, rng: random.Random, ink, step=(8, 16)) -> None:
    x0, y0, x1, y1 = (int(v) for v in box)
    y = y0 + rng.randrange(4, 12)
    while y < y1 - 6:
        if rng.random() < 0.5:  # real characters: the default bitmap font
            chars = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789 .$-:") for _ in
                            range(rng.randrange(4, 30)))
            d.text((x0 + 6, y), chars, fill=ink)
        else:
            d.line([x0 + 6, y, x0 + 6 + rng.randrange(10, max(11, x1 - x0 - 12)), y], fill=ink,
                   width=rng.randrange(1, 3))
        y += rng.randrange(*step)


def face(rng: random.Random, size, body: bool = False) -> Image.Image:
    """A face (or a person: head and shoulders) in front of a room, as behind a held-up note."""
    w, h = size
    img = room(rng, size)
    d = ImageDraw.Draw(img)
    skin = _jitter(rng.choice(SKIN), rng, 12)
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.6) * h
    r = rng.uniform(0.18, 0.4) * min(w, h) * (0.7 if body else 1)
    if body:  # shoulders and torso in a shirt
        d.rounded_rectangle([cx - 2.6 * r, cy + 1.1 * r, cx + 2.6 * r, h + r], radius=int(r),
                            fill=_colour(rng))
        d.rectangle([cx - 0.4 * r, cy + 0.8 * r, cx + 0.4 * r, cy + 1.4 * r], fill=skin)
    hair = rng.choice([(20, 15, 10), (80, 50, 20), (160, 120, 60), (200, 200, 190), (40, 30, 25)])
    d.ellipse([cx - 1.05 * r, cy - 1.45 * r, cx + 1.05 * r, cy + 0.6 * r], fill=hair)
    d.ellipse([cx - 0.85 * r, cy - 1.15 * r, cx + 0.85 * r, cy + 1.15 * r], fill=skin)
    for sx in (-1, 1):  # eyes, brows
        ex, ey = cx + sx * 0.35 * r, cy - 0.2 * r
        d.ellipse([ex - 0.16 * r, ey - 0.08 * r, ex + 0.16 * r, ey + 0.08 * r], fill=(245,) * 3)
        d.ellipse([ex - 0.07 * r, ey - 0.07 * r, ex + 0.07 * r, ey + 0.07 * r],
                  fill=_colour(rng, 20, 120))
        d.line([ex - 0.2 * r, ey - 0.22 * r, ex + 0.2 * r, ey - 0.25 * r], fill=hair,
               width=max(1, int(r / 15)))
    d.line([cx, cy - 0.1 * r, cx - 0.08 * r, cy + 0.3 * r], fill=_jitter(skin, rng, 40),
           width=max(1, int(r / 20)))
    d.arc([cx - 0.35 * r, cy + 0.25 * r, cx + 0.35 * r, cy + 0.7 * r], 20, 160,
          fill=(150, 60, 60), width=max(1, int(r / 12)))
    if rng.random() < 0.3:  # glasses
        for sx in (-1, 1):
            ex, ey = cx + sx * 0.35 * r, cy - 0.2 * r
            d.ellipse([ex - 0.25 * r, ey - 0.18 * r, ex + 0.25 * r, ey + 0.18 * r],
                      outline=(20, 20, 20), width=max(1, int(r / 25)))
    return img


def hand(rng: random.Random, size) -> Image.Image:
    """An open hand or a fist (no note in it)."""
    w, h = size
    img = room(rng, size)
    d = ImageDraw.Draw(img)
    skin = _jitter(rng.choice(SKIN), rng, 12)
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.4, 0.8) * h
    r = rng.uniform(0.15, 0.35) * min(w, h)
    d.ellipse([cx - r, cy - 0.9 * r, cx + r, cy + 1.1 * r], fill=skin)  # palm
    d.rectangle([cx - 0.7 * r, min(h, cy + 0.8 * r), cx + 0.7 * r, h], fill=skin)  # wrist
    fw = max(2, int(0.32 * r))
    for i in range(4):  # fingers
        fx = cx - 0.75 * r + i * 0.5 * r
        tx, ty = fx + rng.uniform(-0.3, 0.3) * r, cy - 0.5 * r - r * rng.uniform(0.4, 1.3)
        d.line([fx, cy - 0.5 * r, tx, ty], fill=skin, width=fw)
        d.ellipse([tx - fw / 2, ty - fw / 2, tx + fw / 2, ty + fw / 2], fill=skin)
    side = rng.choice((-1, 1))  # thumb
    d.line([cx + side * 0.8 * r, cy + 0.3 * r, cx + side * 1.5 * r, cy - 0.3 * r], fill=skin,
           width=int(fw * 1.2))
    return img


def wallet(rng: random.Random, size) -> Image.Image:
    """A leather wallet, open or closed, with stitching and card slots."""
    w, h = size
    img = room(rng, size)
    d = ImageDraw.Draw(img)
    leather = rng.choice([(60, 35, 20), (25, 22, 20), (110, 60, 30), (140, 30, 30), (30, 40, 70)])
    x0, y0 = rng.uniform(0, 0.3) * w, rng.uniform(0, 0.3) * h
    x1, y1 = x0 + rng.uniform(0.5, 0.9) * w, y0 + rng.uniform(0.4, 0.8) * h
    d.rounded_rectangle([x0, y0, x1, y1], radius=int(0.05 * w), fill=leather)
    m = 0.04 * w
    d.rounded_rectangle([x0 + m, y0 + m, x1 - m, y1 - m], radius=int(0.04 * w),
                        outline=_jitter(leather, rng, 60), width=1)
    for k in range(rng.randrange(0, 4)):  # card slots
        yy = y0 + (k + 1) * (y1 - y0) / 5
        d.line([x0 + 2 * m, yy, x1 - 2 * m, yy], fill=_jitter(leather, rng, 40), width=2)
    return img


def card(rng: random.Random, size) -> Image.Image:
    """A payment or ID card: saturated colour, a stripe, a chip, printed digits."""
    w, h = size
    img = room(rng, size)
    d = ImageDraw.Draw(img)
    cw = rng.uniform(0.4, 0.9) * w
    ch = cw / 1.586
    x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, max(1, h - ch))
    d.rounded_rectangle([x0, y0, x0 + cw, y0 + ch], radius=int(cw / 20), fill=_colour(rng))
    if rng.random() < 0.5:
        d.rectangle([x0, y0 + 0.15 * ch, x0 + cw, y0 + 0.35 * ch], fill=_colour(rng))
    d.rounded_rectangle([x0 + 0.1 * cw, y0 + 0.4 * ch, x0 + 0.25 * cw, y0 + 0.6 * ch],
                        radius=3, fill=(212, 175, 55))
    _text_lines(d, (x0 + 0.05 * cw, y0 + 0.62 * ch, x0 + cw, y0 + ch), rng, _colour(rng), (10, 14))
    return img


def receipt(rng: random.Random, size) -> Image.Image:
    """A till receipt or a printed letter: white paper with lines of text."""
    w, h = size
    img = room(rng, size)
    d = ImageDraw.Draw(img)
    pw = rng.uniform(0.3, 0.6) * w
    x0 = rng.uniform(0, w - pw)
    y0 = rng.uniform(-0.2, 0.3) * h
    box = (x0, y0, x0 + pw, y0 + rng.uniform(0.6, 1.3) * h)
    d.rectangle(box, fill=(rng.randrange(225, 256),) * 3)
    _text_lines(d, box, rng, (rng.randrange(90),) * 3)
    return img


def paper(rng: random.Random, size) -> Image.Image:
    """A sheet of paper, an envelope or a notebook page filling much of the view."""
    w, h = size
    img = room(rng, size)
    d = ImageDraw.Draw(img)
    tint = _jitter(rng.choice([(250, 250, 245), (245, 235, 200), (220, 230, 245), (200, 230, 200)]),
                   rng, 8)
    box = (rng.uniform(-0.1, 0.2) * w, rng.uniform(-0.1, 0.2) * h, rng.uniform(0.7, 1.1) * w,
           rng.uniform(0.7, 1.1) * h)
    d.rectangle(box, fill=tint)
    if rng.random() < 0.6:
        _text_lines(d, box, rng, _colour(rng, 0, 120), (10, 22))
    return img


def screen(rng: random.Random, size) -> Image.Image:
    """A phone, laptop or TV screen: a dark bezel around bright blocks of content."""
    w, h = size
    img = room(rng, size)
    d = ImageDraw.Draw(img)
    x0, y0 = rng.uniform(0, 0.3) * w, rng.uniform(0, 0.3) * h
    x1, y1 = x0 + rng.uniform(0.4, 0.7) * w, y0 + rng.uniform(0.4, 0.7) * h
    d.rounded_rectangle([x0, y0, x1, y1], radius=8, fill=(15, 15, 18))
    m = 0.04 * (x1 - x0)
    sx0, sy0, sx1, sy1 = x0 + m, y0 + m, x1 - m, y1 - m
    d.rectangle([sx0, sy0, sx1, sy1], fill=_colour(rng, 150, 256))
    for _ in range(rng.randrange(2, 10)):
        bx, by = rng.uniform(sx0, sx1), rng.uniform(sy0, sy1)
        d.rectangle([bx, by, min(sx1, bx + rng.uniform(10, (sx1 - sx0) / 2)),
                     min(sy1, by + rng.uniform(5, (sy1 - sy0) / 3))], fill=_colour(rng))
    return img


def print_page(rng: random.Random, size) -> Image.Image:
    """A flyer, a magazine page or packaging: colour blocks, shapes, text, a photo-like oval."""
    w, h = size
    img = _gradient(size, _colour(rng), _colour(rng), rng.random() < 0.5)
    d = ImageDraw.Draw(img)
    for _ in range(rng.randrange(3, 15)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        shape = rng.choice([d.rectangle, d.ellipse])
        shape([x0, y0, x0 + rng.randrange(10, w // 2 + 11), y0 + rng.randrange(10, h // 2 + 11)],
              fill=_colour(rng))
    _text_lines(d, (0, 0, w, h), rng, _colour(rng), (12, 30))
    return img


GENERATORS = {"room": room, "face": face, "person": lambda r, s: face(r, s, body=True),
              "hand": hand, "wallet": wallet, "card": card, "receipt": receipt, "paper": paper,
              "screen": screen, "print": print_page}


def scene(rng: random.Random, size=(320, 320), kind: str | None = None,
          photos: list[str] = ()) -> tuple[Image.Image, str]:
    """A ``size`` (w, h) picture with no note, and its kind (one of KINDS, or
    ``photo:<name>`` for a random crop of one of ``photos``)."""
    if kind is None:
        options = list(KINDS) + [f"photo:{p}" for p in photos]
        kind = rng.choice(options)
    if kind.startswith("photo:"):
        img = photo(kind.split(":", 1)[1])
        cw, ch = rng.uniform(0.4, 1.0) * img.width, rng.uniform(0.4, 1.0) * img.height
        x0, y0 = rng.uniform(0, img.width - cw), rng.uniform(0, img.height - ch)
        out = img.crop((int(x0), int(y0), int(x0 + cw), int(y0 + ch)))
        return out.resize(size, Image.Resampling.BILINEAR), kind
    img = GENERATORS[kind](rng, size)
    return img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.5))), kind
