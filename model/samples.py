"""Turn data-set items into 224x224 training/validation pictures.

Bills: box crops with random margins (down to about half a note), whole images that hold
one denomination, any rotation, perspective, blur, low light, glare, JPEG artefacts.
Three quarters of the box views are hand-held frames (model.handheld) cropped as the
service's localiser crops them. Negatives ("none"): hard-negative scenes (model.scenes),
photos that ship offline, and optionally regions outside every box.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from model import handheld, scenes
from model.classes import NONE
from model.data import Item, open_rgb
from usbills_app import locate

SIZE = 224
# Share of note views rendered as hand-held frames (model.handheld), cropped as the
# localiser crops them or left whole; the rest are the data set's photos, augmented. Three
# quarters, not half: a model trained on half named its own hand-held training frames 97.5 %
# top-1 but fresh frames of the same notes 77 %, so these frames lack variety, not epochs.
HANDHELD_SHARE = 0.75
LOCALISED_SHARE = 0.75  # of those: the localiser's crop (else the whole frame)


@dataclass
class Source:
    """One picture source: an item with a region (or a whole negative image)."""

    kind: str  # "box", "whole", "background", "photo", "synthetic"
    label: int
    item: Item | None = None
    box: tuple[float, float, float, float] | None = None  # 0..1 coords
    photo: str | None = None  # scikit-image sample name


def _overlap(a, b) -> float:
    """Intersection area of a with b, as a fraction of b's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / max(1e-9, (b[2] - b[0]) * (b[3] - b[1]))


def background_region(item: Item, rng: random.Random, tries: int = 30):
    """A region (0..1 coords) of at least ~20 % of the image touching no box, or None."""
    boxes = [b[1:] for b in item.boxes]
    for _ in range(tries):
        w, h = rng.uniform(0.25, 0.8), rng.uniform(0.25, 0.8)
        x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        r = (x0, y0, x0 + w, y0 + h)
        if all(_overlap(r, b) < 0.03 and _overlap(b, r) < 0.03 for b in boxes):
            return r
    return None


def sources(items: list[Item], photos: list[str], rng: random.Random,
            backgrounds: bool = False, synthetic: int = 0) -> list[Source]:
    """All picture sources of a split: each box, each single-denomination image, negatives.

    Background regions (outside every box) are off by default: in the Roboflow data about
    half of them show notes that were never annotated, which teaches "banknote = none".
    """
    out = []
    for it in items:
        if it.label is not None:  # folder layout: the whole image is the sample
            out.append(Source("whole", it.label, it))
            continue
        for c, *box in it.boxes:
            out.append(Source("box", c, it, tuple(box)))
        if len({b[0] for b in it.boxes}) == 1:
            out.append(Source("whole", it.boxes[0][0], it, (0.0, 0.0, 1.0, 1.0)))
        r = background_region(it, rng) if backgrounds else None
        if r is not None:
            out.append(Source("background", NONE, it, r))
    out += [Source("photo", NONE, photo=n) for n in photos]
    out += [Source("synthetic", NONE) for _ in range(synthetic)]
    return out


def _base_image(src: Source) -> Image.Image:
    if src.kind == "synthetic":
        return scenes.scene(random.Random(0), (320, 320), "room")[0]
    return scenes.photo(src.photo) if src.kind == "photo" else open_rgb(src.item.path)


def handheld_view(src: Source, rng: random.Random, img: Image.Image, size: int,
                  photos: list[str]) -> Image.Image:
    """A box source as the service sees it in a hand-held frame: the note on a scene through
    the camera (model.handheld), then the localiser's crop around it (usbills_app.locate's
    margin, with the box off by up to 10 %) or, when it finds none, the whole frame."""
    W, H = img.size
    x0, y0, x1, y1 = src.box
    note = img.crop((int(x0 * W), int(y0 * H), max(int(x0 * W) + 8, int(x1 * W)),
                     max(int(y0 * H) + 8, int(y1 * H))))
    f = handheld.render(note, src.label, rng, photos=photos)
    pic = f.image
    if rng.random() < LOCALISED_SHARE:
        fw, fh = pic.size
        (qx0, qy0), (qx1, qy1) = f.quad.min(0), f.quad.max(0)
        box = [max(0.0, qx0 / fw), max(0.0, qy0 / fh), min(1.0, qx1 / fw), min(1.0, qy1 / fh)]
        bw, bh = box[2] - box[0], box[3] - box[1]
        box = [v + rng.uniform(-0.1, 0.1) * (bw if i % 2 == 0 else bh) for i, v in enumerate(box)]
        box = locate.expand((min(box[0], box[2] - 0.02), min(box[1], box[3] - 0.02),
                             box[2], box[3]), locate.MARGIN * rng.uniform(0.5, 1.5))
        pic = locate.crop(pic, box)
    return pic.resize((size, size), Image.Resampling.BILINEAR)


def render(src: Source, rng: random.Random | None, img: Image.Image | None = None,
           size: int = SIZE, photos: list[str] = ()) -> Image.Image:
    """The size x size picture of a source; rng=None gives the plain (validation) view.
    ``photos``: the sample photos hand-held frames may have behind the note."""
    if src.kind == "synthetic" and rng is not None:
        # A hard negative: a hand, a face, a card, a receipt... sometimes through the camera.
        pic = scenes.scene(rng, rng.choice(handheld.FRAME_SIZES), photos=photos)[0]
        return augment(handheld.camera(pic, rng) if rng.random() < 0.5 else pic, rng, size)
    img = img if img is not None else _base_image(src)
    if src.kind == "box" and rng is not None and rng.random() < HANDHELD_SHARE:
        return handheld_view(src, rng, img, size, photos)
    W, H = img.size
    if src.kind == "background" and rng is not None:
        # A fresh free region each time (falls back to the one found when listing sources).
        box = background_region(src.item, rng, tries=10) or src.box
        x0, y0, x1, y1 = box[0] * W, box[1] * H, box[2] * W, box[3] * H
        return augment(img.crop((int(x0), int(y0), int(x1), int(y1))), rng, size)
    if src.kind == "photo":
        box = src.box or (0.0, 0.0, 1.0, 1.0)
        if rng is not None:  # random sub-crop of the photo
            w, h = rng.uniform(0.35, 1.0), rng.uniform(0.35, 1.0)
            x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
            box = (x0, y0, x0 + w, y0 + h)
    else:
        box = src.box or (0.0, 0.0, 1.0, 1.0)
    x0, y0, x1, y1 = box[0] * W, box[1] * H, box[2] * W, box[3] * H
    bw, bh = x1 - x0, y1 - y0
    if src.kind == "box":
        if rng is None:
            m = 0.08
            x0, y0, x1, y1 = x0 - m * bw, y0 - m * bh, x1 + m * bw, y1 + m * bh
        else:
            if rng.random() < 0.35:  # partial view: keep 50-90 % of the note's long side
                keep = rng.uniform(0.5, 0.9)
                if bw >= bh:
                    cut = bw * (1 - keep)
                    x0, x1 = (x0 + cut, x1) if rng.random() < 0.5 else (x0, x1 - cut)
                else:
                    cut = bh * (1 - keep)
                    y0, y1 = (y0 + cut, y1) if rng.random() < 0.5 else (y0, y1 - cut)
                bw, bh = x1 - x0, y1 - y0
            x0 -= rng.uniform(0, 0.4) * bw
            x1 += rng.uniform(0, 0.4) * bw
            y0 -= rng.uniform(0, 0.4) * bh
            y1 += rng.uniform(0, 0.4) * bh
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
    crop = img.crop((int(x0), int(y0), max(int(x0) + 8, int(x1)), max(int(y0) + 8, int(y1))))
    if rng is None:
        return crop.resize((size, size), Image.Resampling.BILINEAR)
    return augment(crop, rng, size)


def _perspective(img: Image.Image, rng: random.Random, fill) -> Image.Image:
    w, h = img.size
    d = 0.12
    src = [(rng.uniform(-d, d) * w + x, rng.uniform(-d, d) * h + y)
           for x, y in [(0, 0), (w, 0), (w, h), (0, h)]]
    coeffs = handheld.perspective_coeffs([(0, 0), (w, 0), (w, h), (0, h)], src)
    return img.transform((w, h), Image.Transform.PERSPECTIVE, coeffs,
                         Image.Resampling.BILINEAR, fillcolor=fill)


def augment(img: Image.Image, rng: random.Random, size: int = SIZE) -> Image.Image:
    """Phone-photo augmentation of a crop, returned at size x size."""
    fill = tuple(rng.randrange(256) for _ in range(3))
    # Work at a moderate size: cheap, and enough for a 224 output.
    scale = 320 / max(img.size)
    if scale < 1:
        img = img.resize((max(8, int(img.width * scale)), max(8, int(img.height * scale))),
                         Image.Resampling.BILINEAR)
    if rng.random() < 0.3:
        img = _perspective(img, rng, fill)
    r = rng.random()
    if r < 0.5:  # any orientation: bills are held upside down or sideways
        img = img.rotate(rng.choice([0, 90, 180, 270]) + rng.uniform(-12, 12), expand=True,
                         fillcolor=fill, resample=Image.Resampling.BILINEAR)
    elif r < 0.85:
        img = img.rotate(rng.uniform(0, 360), expand=rng.random() < 0.7, fillcolor=fill,
                         resample=Image.Resampling.BILINEAR)
    img = img.resize((size, size), Image.Resampling.BILINEAR)
    img = ImageEnhance.Brightness(img).enhance(
        rng.uniform(0.25, 0.7) if rng.random() < 0.25 else rng.uniform(0.75, 1.3))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.6, 1.4))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.5, 1.5))
    if rng.random() < 0.25:  # glare: a soft bright blob
        glare = Image.new("L", img.size, 0)
        cx, cy, rad = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0.1, 0.4) * size
        ImageDraw.Draw(glare).ellipse([cx - rad, cy - rad, cx + rad, cy + rad],
                                      fill=rng.randrange(120, 255))
        glare = glare.filter(ImageFilter.GaussianBlur(rad / 2))
        img = Image.composite(Image.new("RGB", img.size, (255, 255, 250)), img, glare)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5)))
    if rng.random() < 0.2:  # sensor noise
        arr = np.asarray(img, np.float32)
        arr += np.random.default_rng(rng.randrange(2**31)).normal(0, rng.uniform(3, 12), arr.shape)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randrange(25, 90))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img
