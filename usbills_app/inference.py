"""From decoded pictures to class probabilities: find the note (when the bundle has a
localiser), crop to it, classify. The service and the hand-held evaluation (model/) both run
this, so what is measured is what is served."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from . import imaging, locate
from .runtime import Model


def classify(model: Model, images: list[Image.Image]) -> tuple[np.ndarray, list, list[dict]]:
    """Probabilities [n, classes], the crop box of each picture (None: the whole frame) and
    per-picture timings in ms (localise, preprocess, inference)."""
    inp = model.card["input"]
    boxes, arrays, timings = [], [], []
    for img in images:
        t0 = time.perf_counter()
        box = model.locate(img)
        t1 = time.perf_counter()
        arrays.append(imaging.to_array(locate.crop(img, box), inp))
        t2 = time.perf_counter()
        boxes.append(box)
        t = {"localise": (t1 - t0) * 1000} if model.localiser is not None else {}
        timings.append({**t, "preprocess": (t2 - t1) * 1000})
    t3 = time.perf_counter()
    probs = model.predict(np.stack(arrays))
    infer_ms = (time.perf_counter() - t3) * 1000 / len(images)
    for t in timings:
        t["inference"] = infer_ms
    return probs, boxes, timings
