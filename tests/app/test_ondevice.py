"""Which bundles the phone page may run itself (usbills_app/ondevice.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from usbills_app.ondevice import runnable

CARD = json.loads((Path(__file__).resolve().parents[2] / "model/bundles/usbills/card.json")
                  .read_text())


def _with(**changes) -> dict:
    card = json.loads(json.dumps(CARD))
    for path, value in changes.items():
        *keys, last = path.split("__")
        node = card
        for k in keys:
            node = node[k]
        node[last] = value
    return card


def test_the_served_bundle_runs_on_the_phone():
    assert runnable(CARD)
    # Small inputs too: preprocess.js also does Pillow's two-step shrink (reduce, resample).
    assert runnable(_with(input__height=32, input__width=32))


@pytest.mark.parametrize("changes", [
    {"format": "onnx"},  # LiteRT.js runs .tflite only
    {"input__channels": 1},  # grey digit models
    {"input__dtype": "uint8"},
    {"localiser__format": "onnx"},
])
def test_other_bundles_stay_on_the_server(changes):
    assert not runnable(_with(**changes))
