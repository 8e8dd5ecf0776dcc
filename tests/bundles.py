"""Tiny but real model bundles for tests (and for dev before the trained model lands).

The model is a colour classifier with hand-set weights: it averages the image's RGB and picks
the nearest corner of the colour cube, so tests know the answer in advance:
red USD-1, green USD-2, blue USD-5, yellow USD-10, cyan USD-20, magenta USD-50, white USD-100,
black "none" (negative); mid-grey is equally far from all (not identified).
Built with the real exporters (TF Lite converter, onnx) and served by the real runtimes.
Bundles are cached under the temp dir, keyed by this file's content, so a test session builds
each at most once (TensorFlow is only imported on a cache miss).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

COLOURS = {
    "USD-1": (255, 0, 0), "USD-2": (0, 255, 0), "USD-5": (0, 0, 255),
    "USD-10": (255, 255, 0), "USD-20": (0, 255, 255), "USD-50": (255, 0, 255),
    "USD-100": (255, 255, 255), "none": (0, 0, 0),
}
GREY = (128, 128, 128)
NAMES = {
    "USD-1": ("One dollar", "Un dólar", 1), "USD-2": ("Two dollars", "Dos dólares", 2),
    "USD-5": ("Five dollars", "Cinco dólares", 5), "USD-10": ("Ten dollars", "Diez dólares", 10),
    "USD-20": ("Twenty dollars", "Veinte dólares", 20),
    "USD-50": ("Fifty dollars", "Cincuenta dólares", 50),
    "USD-100": ("One hundred dollars", "Cien dólares", 100),
}
ALPHA = 30.0


def weights() -> tuple[np.ndarray, np.ndarray]:
    """logit_k = -ALPHA * |x - c_k|^2 up to a constant: a linear layer on the mean colour."""
    c = np.array(list(COLOURS.values()), np.float32) / 255  # [8, 3]
    return (2 * ALPHA * c.T).astype(np.float32), (-ALPHA * (c**2).sum(1)).astype(np.float32)


def card(model_file: str, fmt: str, size: int, sha: str) -> dict:
    classes = []
    for i, label in enumerate(COLOURS):
        if label == "none":
            classes.append({"id": i, "label": "none", "value": None, "negative": True,
                            "display": {"en": "No banknote found",
                                        "es": "No se encontró ningún billete"}})
        else:
            en, es, v = NAMES[label]
            classes.append({"id": i, "label": label, "value": v, "display": {"en": en, "es": es}})
    return {
        "schema_version": 1, "name": "usbills-test", "version": "0.0.1-test",
        "title": {"en": "Test colour model", "es": "Modelo de colores de prueba"},
        "task": "image-classification", "model_file": model_file, "format": fmt, "sha256": sha,
        "input": {"height": size, "width": size, "channels": 3, "layout": "NHWC",
                  "dtype": "float32", "color": "RGB", "scale": 1 / 255},
        "classes": classes, "threshold": 0.8,
        "metrics": {}, "dataset": {"name": "none (hand-set weights)", "license": "MIT"},
        "license": "MIT", "created": "2026-11-22T00:00:00Z",
    }


def _tflite(size: int, int8: bool = False) -> bytes:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    inp = keras.Input((size, size, 3), batch_size=1)
    x = keras.layers.GlobalAveragePooling2D()(inp)
    dense = keras.layers.Dense(len(COLOURS), activation="softmax")
    model = keras.Model(inp, dense(x))
    dense.set_weights(list(weights()))
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:  # fully quantised, int8 input and output tensors (the runtime must (de)quantise)
        # Calibrate on the pure colours too, so the logits' full range is covered.
        solids = [np.full((1, size, size, 3), np.float32(c) / 255) for c in COLOURS.values()]
        rng = np.random.default_rng(0)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: (
            [x] for x in solids + [rng.random((1, size, size, 3), np.float32) for _ in range(20)])
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


LOCALISER_GRID = 8


def _localiser_tflite(size: int) -> bytes:
    """A hand-set localiser: a cell is "note" when its mean colour is bright (r+g+b > 0.45),
    so a coloured square on a black background lights up the cells it covers."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    inp = keras.Input((size, size, 3), batch_size=1)
    x = keras.layers.AveragePooling2D(size // LOCALISER_GRID)(inp)
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid")
    x = keras.layers.Reshape((LOCALISER_GRID, LOCALISER_GRID))(conv(x))
    model = keras.Model(inp, x)
    conv.set_weights([np.full((1, 1, 3, 1), 20.0, np.float32), np.array([-9.0], np.float32)])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def _onnx(size: int) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b = weights()
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2], keepdims=0),
            helper.make_node("Gemm", ["m", "w", "b"], ["z"]),
            helper.make_node("Softmax", ["z"], ["probs"], axis=-1),
        ],
        "colours",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", size, size, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", len(COLOURS)])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def make_bundle(dest: Path, fmt: str = "tflite", size: int = 32) -> Path:
    """Write a bundle (card.json + model file) into dest. fmt: tflite, tflite-int8, onnx, or
    tflite-localiser (tflite plus the hand-set localiser of _localiser_tflite)."""
    dest.mkdir(parents=True, exist_ok=True)
    data = _onnx(size) if fmt == "onnx" else _tflite(size, int8=fmt == "tflite-int8")
    localiser = fmt == "tflite-localiser"
    fmt = fmt.split("-")[0]
    name = f"model.{fmt}"
    (dest / name).write_bytes(data)
    c = card(name, fmt, size, hashlib.sha256(data).hexdigest())
    if localiser:
        loc = _localiser_tflite(size)
        (dest / "localiser.tflite").write_bytes(loc)
        c["localiser"] = {"model_file": "localiser.tflite", "format": "tflite",
                          "sha256": hashlib.sha256(loc).hexdigest(),
                          "input": {"height": size, "width": size}, "grid": LOCALISER_GRID,
                          "threshold": 0.5, "margin": 0.15}
    (dest / "card.json").write_text(json.dumps(c, indent=2, ensure_ascii=False) + "\n")
    return dest


def cached_bundle(fmt: str = "tflite", size: int = 32) -> Path:
    """A pristine bundle shared by the test session: copy it before changing anything."""
    key = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / "usbills-test-bundles" / key
    dest = root / f"{fmt}-{size}"
    if fmt not in ("tflite", "tflite-int8", "onnx", "tflite-localiser"):
        raise ValueError(f"unknown test bundle format {fmt!r}")
    if (dest / "card.json").exists():
        return dest
    tmp = Path(tempfile.mkdtemp(prefix=f".{fmt}-", dir=_mkdir(root)))
    make_bundle(tmp, fmt, size)
    try:
        tmp.rename(dest)
    except OSError:  # another process won the race: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def variant(src: Path, dest: Path, version: str | None = None, corrupt: bool = False) -> Path:
    """A world-readable copy of bundle ``src`` (the app runs as uid 10001): with another
    ``version``, or ``corrupt`` (a model file no runtime can open, with a matching sha256, so it
    passes every check but loading)."""
    shutil.copytree(src, dest)
    meta = json.loads((dest / "card.json").read_text())
    if version:
        meta["version"] = version
    if corrupt:
        model = dest / meta["model_file"]
        model.write_bytes(b"not a model" * 100)
        meta["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
    (dest / "card.json").write_text(json.dumps(meta))
    for p in (dest, *dest.iterdir()):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest
