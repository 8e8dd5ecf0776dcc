"""Localise, then classify: the heat map -> crop rule and a bundle with a localiser."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.bundles import cached_bundle
from usbills_app import inference, locate, runtime
from usbills_app.bundle import BundleError

PREDICT = "/api/v1/predict"


def small_red_note() -> Image.Image:
    """A red "note" (the test model's USD-1) a quarter of the frame wide, off-centre, on black:
    the whole frame averages to almost black ("none")."""
    img = Image.new("RGB", (320, 240), (0, 0, 0))
    ImageDraw.Draw(img).rectangle([200, 30, 280, 90], fill=(255, 0, 0))
    return img


def test_box_of_the_strongest_blob():
    heat = np.zeros((8, 8), np.float32)
    heat[1:3, 5:7] = 0.9  # the note
    heat[6, 0] = 0.95  # a single hot cell: noise
    heat[5:7, 3:5] = 0.55  # a weaker blob
    assert locate.box_from_heatmap(heat) == (5 / 8, 1 / 8, 7 / 8, 3 / 8)
    assert locate.box_from_heatmap(np.zeros((8, 8))) is None


def test_margin_and_whole_frame_fallback():
    assert locate.expand((0.5, 0.5, 0.7, 0.6), 0.5) == pytest.approx((0.4, 0.45, 0.8, 0.65))
    assert locate.expand((0.0, 0.0, 1.0, 1.0)) == (0.0, 0.0, 1.0, 1.0)
    filled = np.ones((8, 8), np.float32)  # the note fills the frame: no crop
    assert locate.locate(filled) is None
    img = Image.new("RGB", (100, 50))
    assert locate.crop(img, None) is img
    assert locate.crop(img, (0.5, 0.0, 1.0, 0.5)).size == (50, 25)


@pytest.fixture(scope="module")
def localiser_bundle():
    return cached_bundle("tflite-localiser")


def test_a_small_off_centre_note_is_named_only_with_the_localiser(localiser_bundle):
    with_loc = runtime.load_model(localiser_bundle)
    whole = runtime.load_model(localiser_bundle, use_localiser=False)
    probs, boxes, timings = inference.classify(with_loc, [small_red_note()])
    assert int(probs[0].argmax()) == 0 and probs[0].max() > 0.9  # USD-1
    x0, y0, x1, y1 = boxes[0]
    assert x0 <= 200 / 320 and x1 >= 280 / 320 and y0 <= 30 / 240 and y1 >= 90 / 240
    assert set(timings[0]) == {"localise", "preprocess", "inference"}
    probs, boxes, timings = inference.classify(whole, [small_red_note()])
    assert int(probs[0].argmax()) == 7 and boxes == [None]  # "none": the note is lost
    assert "localise" not in timings[0]


def test_api_answer_with_the_localiser(localiser_bundle):
    import io

    from usbills_app import create_app
    from usbills_app.config import Settings

    app = create_app(Settings(model_dir=localiser_bundle))
    buf = io.BytesIO()
    small_red_note().save(buf, "PNG")
    ans = app.test_client().post(PREDICT, data=buf.getvalue(),
                                 content_type="image/png").get_json()
    assert ans["identified"] and ans["label"] == "USD-1" and ans["message"] == "One dollar"
    assert "localise" in ans["timings_ms"]
    # Where the note was found (with the margin): what the page's "move closer" tip reads.
    x0, y0, x1, y1 = ans["note_box"]
    assert x0 <= 200 / 320 and x1 >= 280 / 320 and y0 <= 30 / 240 and y1 >= 90 / 240
    assert x1 - x0 < 0.5 and all(0 <= v <= 1 for v in ans["note_box"])


@pytest.mark.parametrize("change, message", [
    (lambda c: c["localiser"].update(grid=0), "localiser.grid"),
    (lambda c: c["localiser"].update(model_file="../x.tflite"), "localiser.model_file"),
    (lambda c: c["localiser"].update(sha256="0" * 64), "does not match card.json"),
    (lambda c: c["localiser"].update(grid=4), "localiser shapes"),
    (lambda c: c.update(localiser=[]), "localiser must be an object"),
    (lambda c: c.update(scan={"frames": 0}), "scan.frames"),
    (lambda c: c.update(scan={"frames": 2, "threshold": 1.5}), "scan.threshold"),
])
def test_bad_localiser_entries_are_refused_with_one_line(localiser_bundle, tmp_path, change,
                                                         message):
    bundle = tmp_path / "b"
    shutil.copytree(localiser_bundle, bundle)
    card = json.loads((bundle / "card.json").read_text())
    change(card)
    (bundle / "card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match=message) as e:
        runtime.load_model(bundle)
    assert "\n" not in str(e.value)


def test_missing_localiser_file_is_refused(localiser_bundle, tmp_path):
    bundle = tmp_path / "b"
    shutil.copytree(localiser_bundle, bundle)
    (bundle / "localiser.tflite").unlink()
    with pytest.raises(BundleError, match="localiser.model_file localiser.tflite is missing"):
        runtime.load_model(bundle)


def test_bundles_without_a_localiser_still_load(bundle_dir, onnx_bundle_dir):
    """Backward compatibility: schema 1 bundles from before the localiser serve unchanged."""
    for b in (bundle_dir, onnx_bundle_dir):
        card = json.loads((b / "card.json").read_text())
        assert "localiser" not in card and "scan" not in card
        m = runtime.load_model(b)
        assert m.localiser is None and m.locate(small_red_note()) is None
