"""Decode an upload in memory (never on disk) into the model's input array.

JPEG, PNG, WebP and HEIC; EXIF orientation; big JPEGs decoded at reduced scale (Image.draft);
decompression bombs, truncated files and non-images are refused with an ApiError.
"""

from __future__ import annotations

import io
import threading
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ApiError

try:  # HEIC/HEIF (iPhone photos): pillow-heif, or pi-heif (same API, decode-only, smaller)
    import pillow_heif as _heif
except ImportError:  # pragma: no cover - depends on the image
    try:
        import pi_heif as _heif
    except ImportError:
        _heif = None
if _heif is not None:
    _heif.register_heif_opener()
HEIF = _heif is not None

ALLOWED = {"JPEG", "PNG", "WEBP", "HEIF", "MPO"}  # MPO: multi-picture JPEG from some cameras
FORMATS_TEXT = "JPEG, PNG, WebP or HEIC"
DRAFT = {"JPEG", "MPO"}  # decoded at reduced scale (Image.draft): memory stays small
# Other formats decode at full size (4 bytes a pixel and a copy or two): a 2 KB lossless WebP of
# 50 M pixels took a worker to 876 MB. Phones send at most 12-13 MP in those formats (a 12 MP
# iPhone HEIC is 12.2 MP), and one such decode at a time per worker bounds the peak.
MAX_FULL_DECODE_PIXELS = 13_000_000
_full_decode = threading.BoundedSemaphore(1)
FULL_DECODE_WAIT_S = 10
# A progressive JPEG is a handful of scans (libjpeg writes 10); thousands of repeated scans
# make a 473 KB file take 42 s of CPU to decode. The SOS marker (FF DA) cannot occur inside
# entropy-coded data (0xFF is stuffed there), so counting it bounds the work before decoding.
MAX_JPEG_SCANS = 100


def decode(data: bytes, size: tuple[int, int], max_pixels: int, mode: str = "RGB") -> Image.Image:
    """Bytes -> upright RGB (or L) image at least `size` (w, h) where the source allows."""
    if not data:
        raise ApiError(400, "empty_image", "The image is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data" and the like
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format
            if fmt not in ALLOWED:
                raise ApiError(
                    415, "unsupported_image_format",
                    f"{fmt} images are not supported; send a {FORMATS_TEXT} photo.",
                )
            w, h = img.size
            if w * h > max_pixels:
                raise ApiError(
                    422, "image_too_large",
                    f"The image has {w}x{h} pixels, more than the {max_pixels} allowed.",
                )
            if fmt in DRAFT:
                if data.count(b"\xff\xda") > MAX_JPEG_SCANS:
                    raise ApiError(422, "invalid_image",
                                   f"The JPEG has more than {MAX_JPEG_SCANS} scans; no camera "
                                   "writes that many.")
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: either side may end up as
                # the height after EXIF rotation, so ask for the larger target on both.
                side = max(size)
                img.draft(mode, (side, side))
                img.load()
            else:
                if w * h > MAX_FULL_DECODE_PIXELS:
                    raise ApiError(
                        422, "image_too_large",
                        f"The {fmt} image has {w}x{h} pixels; PNG, WebP and HEIC images may "
                        f"have at most {MAX_FULL_DECODE_PIXELS} (JPEG up to {max_pixels}).")
                _load_full(img)
            img = _upright(img)
            if img.mode != mode:
                if img.mode in ("I;16", "I;16B", "I", "F"):
                    img = img.convert("I").point(lambda v: v / 256).convert("L")
                img = img.convert(mode)
            return img
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(
            422, "image_too_large", f"The image has more than {max_pixels} pixels."
        ) from None
    except UnidentifiedImageError:
        raise ApiError(
            422, "invalid_image", f"The upload is not a {FORMATS_TEXT} image."
        ) from None
    except Exception as e:
        # Truncated or corrupt data: Pillow and its plugins raise OSError, SyntaxError,
        # ValueError, EOFError, struct.error and more; all mean "cannot decode this upload".
        raise ApiError(
            422, "invalid_image", f"The image could not be decoded ({_short(e)})."
        ) from None


def _load_full(img: Image.Image) -> None:
    """Decode at full size, one big picture at a time per worker (see MAX_FULL_DECODE_PIXELS)."""
    if img.width * img.height <= 2_000_000:
        img.load()
        return
    if not _full_decode.acquire(timeout=FULL_DECODE_WAIT_S):
        raise ApiError(429, "busy", "The server is busy; retry in a second.",
                       {"Retry-After": "1"})
    try:
        img.load()
    finally:
        _full_decode.release()


def _upright(img: Image.Image) -> Image.Image:
    """Apply EXIF orientation; a corrupt EXIF block leaves the picture as stored."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # struct.error, KeyError, ... from a damaged EXIF block
        return img


def _short(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:120]


def to_array(img: Image.Image, inp: dict) -> np.ndarray:
    """Resize to the model's input and normalise as the card says: x*scale, then (x-mean)/std."""
    size = (inp["width"], inp["height"])
    if img.size != size:
        img = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    x = np.array(img, dtype=np.float32)  # a fresh, writable copy
    if x.ndim == 2:
        x = x[..., None]
    # (x * scale - mean) / std folded into one multiply-add, in place.
    mul, add = _affine(inp)
    x *= mul
    x += add
    return x


def _affine(inp: dict) -> tuple[np.ndarray, np.ndarray]:
    ch = inp["channels"]
    mean = np.asarray(inp.get("mean") or [0.0] * ch, np.float32)
    std = np.asarray(inp.get("std") or [1.0] * ch, np.float32)
    return np.float32(inp.get("scale", 1.0)) / std, -mean / std
