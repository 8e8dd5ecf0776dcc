"""Where the note is: from the localiser's heat map to the crop the classifier sees.

The localiser (an optional second model in the bundle, docs/bundle-format.md) maps the whole
frame to a grid of "note here" probabilities. The crop is the box around the strongest
connected blob of cells over the threshold, widened by a margin; a note that already fills
most of the frame, or no blob at all, leaves the whole frame to the classifier. Training uses
the same ``expand`` and ``use_whole`` rules, so it learns the crops the service makes.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from PIL import Image

THRESHOLD = 0.5  # a cell is "note" at this probability
MARGIN = 0.15  # share of the box's width/height added on each side
WHOLE_FRAME = 0.6  # a box covering this share of the frame: classify the whole frame
MIN_CELLS = 2  # a blob of fewer cells is noise

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in 0..1 frame coordinates


def strongest_blob(heat: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray | None:
    """Mask of the 4-connected blob of cells >= threshold with the largest summed heat."""
    on = heat >= threshold
    seen = np.zeros_like(on)
    best, best_mass = None, 0.0
    h, w = heat.shape
    # A grid of a few hundred cells at most: a breadth-first flood fill is simpler than
    # pulling in scipy.ndimage.
    for y, x in zip(*np.nonzero(on), strict=True):
        if seen[y, x]:
            continue
        blob = np.zeros_like(on)
        queue = deque([(y, x)])
        seen[y, x] = True
        while queue:
            cy, cx = queue.popleft()
            blob[cy, cx] = True
            for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                if 0 <= ny < h and 0 <= nx < w and on[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        mass = float(heat[blob].sum())
        if blob.sum() >= MIN_CELLS and mass > best_mass:
            best, best_mass = blob, mass
    return best


def box_from_heatmap(heat: np.ndarray, threshold: float = THRESHOLD) -> Box | None:
    """The strongest blob's bounding box in frame coordinates, or None when there is none."""
    blob = strongest_blob(np.asarray(heat, np.float32), threshold)
    if blob is None:
        return None
    h, w = blob.shape
    ys, xs = np.nonzero(blob)
    return (float(xs.min() / w), float(ys.min() / h), float((xs.max() + 1) / w),
            float((ys.max() + 1) / h))


def expand(box: Box, margin: float = MARGIN) -> Box:
    """``box`` widened by ``margin`` of its size on every side, clipped to the frame."""
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    return max(0.0, x0 - mx), max(0.0, y0 - my), min(1.0, x1 + mx), min(1.0, y1 + my)


def use_whole(box: Box | None) -> bool:
    """Classify the whole frame: no note found, or it already fills most of the frame."""
    return box is None or (box[2] - box[0]) * (box[3] - box[1]) >= WHOLE_FRAME


def crop(img: Image.Image, box: Box | None) -> Image.Image:
    """The picture the classifier sees: the expanded box, or the whole frame (see use_whole)."""
    if use_whole(box):
        return img
    W, H = img.size
    x0, y0, x1, y1 = box
    left, top = int(x0 * W), int(y0 * H)
    return img.crop((left, top, max(left + 1, round(x1 * W)), max(top + 1, round(y1 * H))))


def locate(heat: np.ndarray, threshold: float = THRESHOLD, margin: float = MARGIN) -> Box | None:
    """The crop box for a heat map: expanded blob box, or None for the whole frame."""
    box = box_from_heatmap(heat, threshold)
    if box is None:
        return None
    box = expand(box, margin)
    return None if use_whole(box) else box
