"""Synthetic test images: the suite never reads ../shared (the real data set)."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageChops, ImageDraw, ImageFilter

# Roughly the palette of US notes: grey-green paper, dark green ink.
PAPER = (206, 214, 196)
INK = (38, 74, 52)


def bill(value: int = 20, size: tuple[int, int] = (640, 272), seed: int = 0) -> Image.Image:
    """A banknote-like picture: paper, border, portrait oval and the value in each corner."""
    rnd = random.Random(seed * 1000 + value)
    w, h = size
    img = Image.new("RGB", size, PAPER)
    d = ImageDraw.Draw(img)
    d.rectangle([4, 4, w - 5, h - 5], outline=INK, width=max(2, w // 80))
    d.ellipse([w * 0.35, h * 0.15, w * 0.65, h * 0.85], outline=INK, width=max(2, w // 120))
    for _ in range(60):
        x, y = rnd.randrange(w), rnd.randrange(h)
        d.line([x, y, x + rnd.randrange(-30, 30), y + rnd.randrange(-30, 30)], fill=INK, width=1)
    text = str(value)
    for x, y in [(w * 0.06, h * 0.08), (w * 0.82, h * 0.08),
                 (w * 0.06, h * 0.72), (w * 0.82, h * 0.72)]:
        d.text((x, y), text, fill=INK)
    return img


def photo(size: tuple[int, int] = (1024, 768), seed: int = 0) -> Image.Image:
    """A busy, non-banknote scene (blurred coloured shapes)."""
    rnd = random.Random(seed)
    img = Image.new("RGB", size, tuple(rnd.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(img)
    for _ in range(40):
        x0, y0 = rnd.randrange(size[0]), rnd.randrange(size[1])
        x1, y1 = x0 + rnd.randrange(20, 300), y0 + rnd.randrange(20, 300)
        d.rectangle([x0, y0, x1, y1], fill=tuple(rnd.randrange(256) for _ in range(3)))
    return img.filter(ImageFilter.GaussianBlur(2))


def camera(size: tuple[int, int] = (512, 384), value: int = 20, seed: int = 0,
           noise: float = 5) -> Image.Image:
    """A camera-like frame: a tilted note on a busy scene, with sensor noise, so JPEGs of it
    are as large as real ones (512x384 at quality 80: about 40 KB; 4000x3000 at 90: 2.8 MB)."""
    w, h = size
    img = photo(size, seed)
    note = bill(value, (int(w * 0.7), int(w * 0.3)), seed).rotate(8, expand=True)
    img.paste(note, (int(w * 0.12), int(h * 0.2)))
    grain = Image.effect_noise(size, noise).convert("RGB")
    return ImageChops.add(img, grain, offset=-128)


def encode(img: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def jpeg(
    img: Image.Image | None = None, quality: int = 90, exif_orientation: int | None = None
) -> bytes:
    img = img if img is not None else bill()
    kw: dict = {"quality": quality}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kw["exif"] = exif.tobytes()
    return encode(img, "JPEG", **kw)
