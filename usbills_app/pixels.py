"""JSON pixel grids (`{"pixels": [[...], ...]}`), as the original MNIST service accepted.

A grid is a 2-D array of grey values, light ink on a dark background (like load_digits and
MNIST). Shapes from 8x8 to 256x256 rows x columns. Values 0..`max_value`: the default is 16 for
an 8x8 grid (scikit-learn's load_digits) and 255 for every other size (28x28 MNIST); a request
may set `"max_value"` (1..65535) itself. The grid is scaled to 0..255 and then goes through the
same resize and normalisation as a photo.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from . import imaging
from .errors import ApiError

MIN_SIDE, MAX_SIDE = 8, 256


def _bad(status: int, message: str) -> ApiError:
    return ApiError(status, "invalid_pixels", message)


def parse(grid: object, max_value: object = None) -> np.ndarray:
    """The grid as a float32 0..255 array; ApiError 400 for a wrong type, 422 for a grid of
    the wrong shape (the schema cannot say "rows of one length") or bad values."""
    if not isinstance(grid, list) or not grid or not all(isinstance(r, list) for r in grid):
        raise _bad(400, '"pixels" must be a 2-D array: a list of rows, each a list of numbers.')
    h, w = len(grid), len(grid[0])
    if any(len(r) != w for r in grid):
        raise _bad(422, f'"pixels" rows differ in length (row 1 has {w} values); '
                        "every row needs the same number of values.")
    for row in grid:
        for v in row:
            # bool is an int in Python; true/false are not grey values.
            if not isinstance(v, int | float) or isinstance(v, bool) or (
                    isinstance(v, float) and not math.isfinite(v)):
                raise _bad(400, f'"pixels" must hold only numbers; found {str(v)[:20]!r}.')
            if isinstance(v, int) and not -(2**53) < v < 2**53:  # float32 would overflow
                raise _bad(422, f'"pixels" values must be grey levels; found {str(v)[:20]}...')
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise _bad(422, f'"pixels" is {h}x{w}; accepted sizes are {MIN_SIDE}x{MIN_SIDE} to '
                        f"{MAX_SIDE}x{MAX_SIDE} (8x8 0..16 like load_digits, "
                        "28x28 0..255 like MNIST).")
    if max_value is None:
        top = 16 if (h, w) == (8, 8) else 255
    elif (not isinstance(max_value, int | float) or isinstance(max_value, bool)
          or not 1 <= max_value <= 65535):
        raise _bad(400, '"max_value" must be a number from 1 to 65535.')
    else:
        top = float(max_value)
    x = np.asarray(grid, dtype=np.float32)
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > top:
        raise _bad(422, f'"pixels" values must be 0..{top:g} for a {h}x{w} grid; found '
                        f"{lo:g}..{hi:g} (set \"max_value\" for another range).")
    return x * np.float32(255.0 / top)


def to_input(grey: np.ndarray, inp: dict) -> np.ndarray:
    """A 0..255 grid as the model's input array (resize + the card's normalisation)."""
    img = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8))
    if inp["channels"] == 3:
        img = img.convert("RGB")
    return imaging.to_array(img, inp)
