"""The committed digits bundle (model/bundles/digits, made by `python -m model.digits`) loads with
the service's loader and reads held-out digits (the card's split is never trained on)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from usbills_app import bundle, pixels, runtime

DIGITS = Path(__file__).resolve().parents[2] / "model" / "bundles" / "digits"

pytestmark = pytest.mark.train


def test_card_is_valid_and_measured():
    b = bundle.load_bundle(DIGITS)
    assert [c["label"] for c in b.classes] == [str(i) for i in range(10)]
    assert [c["value"] for c in b.classes] == list(range(10))
    assert all(c["display"]["es"] for c in b.classes)
    assert b.card["metrics"]["top1_accuracy"] >= 0.95
    assert b.negative_id is None


def test_reads_held_out_digits():
    from model.digits import load

    _, x_te, _, y_te = load(0)
    model = runtime.load_model(DIGITS)
    inp = model.card["input"]
    # The same pre-processing as the service (x * scale) on the first 40 held-out images.
    batch = np.stack([pixels.to_input(x[..., 0], inp) for x in x_te[:40]])
    probs = model.predict(batch)
    assert (probs.argmax(1) == y_te[:40]).mean() >= 0.95
