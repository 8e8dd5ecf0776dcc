"""The note localiser: where in a hand-held frame the note is, so a small or off-centre note
fills the classifier's input (usbills_app.locate turns its heat map into the crop).

It reads frozen ImageNet MobileNetV2 blocks 0-10 (16x16x64 at 256 input; the classifier
fine-tunes from block 7) and adds a two-layer convolutional head that says, per cell of a grid
(one cell per 16 px), how much of it the note covers; trained at the classifier's size, it is
served at a smaller one (``at_size``). It trains on hand-held frames (model.handheld) of the
training notes on training scenes, whose note corners are known exactly, and on frames with no
note. Training caches the lower activations, like the classifier, so it costs about a minute.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from model import handheld, samples
from model.classes import NONE
from model.data import open_rgb

NOTE_SHARE = 0.75  # of localiser frames: the rest hold no note


def note_sources(srcs: list[samples.Source]) -> list[samples.Source]:
    return [s for s in srcs if s.kind == "box"]


def render_frame(src: samples.Source | None, rng: random.Random, size: int,
                 photos: list[str]) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int]]:
    """A hand-held frame squashed to ``size`` x ``size`` (as the service resizes it), the
    note's corners (None without a note) and the frame's own size."""
    note, label = None, NONE
    if src is not None:
        img = open_rgb(src.item.path)
        W, H = img.size
        x0, y0, x1, y1 = src.box
        note = img.crop((int(x0 * W), int(y0 * H), max(int(x0 * W) + 8, int(x1 * W)),
                         max(int(y0 * H) + 8, int(y1 * H))))
        label = src.label
    f = handheld.render(note, label, rng, photos=photos)
    pic = f.image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(pic), f.quad, f.image.size


def build_head(in_shape):
    import keras

    inp = keras.Input(tuple(in_shape), name="lower_features")
    h = keras.layers.Conv2D(48, 3, padding="same", activation="relu", name="loc_conv")(inp)
    h = keras.layers.Conv2D(1, 1, activation="sigmoid", name="loc_heat")(h)
    h = keras.layers.Reshape(tuple(in_shape[:2]), name="heat")(h)
    return keras.Model(inp, h, name="localiser_head")


def train_views(srcs: list[samples.Source], n: int, seed: int, lower, normalise, size: int,
                photos: list[str], features):
    """Lower activations and target coverage grids of ``n`` localiser frames.
    ``features(lower, images_fn, n, normalise, label=...)`` is train.lower_features."""
    notes = note_sources(srcs)
    rng = random.Random(seed)
    plan = [rng.choice(notes) if notes and rng.random() < NOTE_SHARE else None for _ in range(n)]
    rngs = [random.Random(rng.randrange(2**31)) for _ in range(n)]
    quads: dict[int, tuple] = {}

    def image(i):
        pic, quad, frame = render_frame(plan[i], rngs[i], size, photos)
        quads[i] = (quad, frame)
        return pic

    x_low = features(lower, image, n, normalise, label="localiser frames")
    grid = x_low.shape[1]
    masks = np.stack([handheld.coverage_mask(*quads[i], grid) for i in range(n)])
    return x_low, masks


def fit(x_low: np.ndarray, masks: np.ndarray, epochs: int, seed: int, verbose: int = 2):
    """The head, trained on cached lower activations against coverage grids."""
    import keras

    keras.utils.set_random_seed(seed)
    head = build_head(x_low.shape[1:])
    head.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    head.fit(x_low.astype(np.float32), masks, batch_size=64, epochs=epochs, verbose=verbose,
             shuffle=True)
    return head


def full_model(lower, head):
    """image -> heat map: what the bundle's localiser file holds."""
    import keras

    size = lower.input_shape[1]
    inp = keras.Input((size, size, 3), name="image")
    return keras.Model(inp, head(lower(inp)), name="usbills_localiser")


def at_size(head, bb, size: int):
    """The served localiser: the same weights at ``size`` input. Lower network and head are
    fully convolutional, so training at the classifier's size and serving smaller costs no
    retraining; 192 rather than 256 input is 0.56x the work with the same hand-held accuracy
    (measured side by side when 192 was adopted: commit f3e3dd4)."""
    lower = bb.build_localiser_lower(size)
    small = build_head(lower.output_shape[1:])
    small.set_weights(head.get_weights())
    return full_model(lower, small)


def calibration_frames(srcs: list[samples.Source], n: int, seed: int, size: int,
                       photos: list[str], normalise) -> np.ndarray:
    """``n`` normalised localiser frames (with and without a note) for int8 quantisation."""
    notes = note_sources(srcs)
    rng = random.Random(seed)
    return np.stack([normalise(render_frame(
        rng.choice(notes) if notes and rng.random() < NOTE_SHARE else None,
        random.Random(rng.randrange(2**31)), size, photos)[0]) for _ in range(n)]
    ).astype(np.float32)


def sanity(heat_fn, x_low: np.ndarray, masks: np.ndarray) -> dict:
    """Cell agreement at 0.5 on frames the head was not fitted on (for the log and card)."""
    pred = heat_fn(x_low) >= 0.5
    truth = masks >= 0.5
    inter = (pred & truth).sum((1, 2))
    union = (pred | truth).sum((1, 2))
    with_note = truth.any((1, 2))
    iou = float(np.mean(inter[with_note] / np.maximum(1, union[with_note]))) if with_note.any() \
        else 0.0
    empty_ok = float(np.mean(~pred[~with_note].any((1, 2)))) if (~with_note).any() else 1.0
    return {"mean_iou": round(iou, 4), "empty_frames_clear": round(empty_ok, 4)}

