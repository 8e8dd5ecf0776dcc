"""A tiny, deterministic model bundle for the browser tests: it classifies by mean colour.

The served model may not recognise synthetic pictures, but the page's behaviour for each kind
of answer (identified, unsure with two candidates, no banknote) must be tested every run. This
ONNX graph (mean colour -> nearest prototype colour -> softmax) gives each kind for a known
picture: a synthetic $20 bill -> "USD-20", a dark frame -> "none", and a flat colour half-way
between two prototypes -> unsure between them. It is a real bundle (docs/bundle-format.md),
loaded and served by the real app.

``build`` writes it as ONNX (the server alone runs it: the page uploads frames); ``build_tflite``
writes the same classifier as a .tflite flatbuffer (MEAN -> FULLY_CONNECTED -> SOFTMAX, written
with LiteRT's schema, no TensorFlow), which the page also runs on the phone (LiteRT.js).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests import synth

SIZE = 224
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)

CLASSES = [
    ("USD-1", 1, "One dollar", "Un dólar"),
    ("USD-2", 2, "Two dollars", "Dos dólares"),
    ("USD-5", 5, "Five dollars", "Cinco dólares"),
    ("USD-10", 10, "Ten dollars", "Diez dólares"),
    ("USD-20", 20, "Twenty dollars", "Veinte dólares"),
    ("USD-50", 50, "Fifty dollars", "Cincuenta dólares"),
    ("USD-100", 100, "One hundred dollars", "Cien dólares"),
    ("none", None, "No banknote found", "No se encontró ningún billete"),
]


def bill_colour() -> tuple[int, int, int]:
    """Mean RGB of the synthetic $20 bill the tests show (the USD-20 prototype)."""
    return tuple(int(round(v)) for v in np.asarray(synth.bill(20), np.float32).mean(axis=(0, 1)))


def prototypes() -> dict[str, tuple[int, int, int]]:
    return {
        "USD-1": (230, 70, 70),
        "USD-2": (70, 230, 70),
        "USD-5": (70, 70, 230),
        "USD-10": (235, 235, 60),
        "USD-20": bill_colour(),
        "USD-50": (230, 70, 230),
        "USD-100": (70, 230, 230),
        "none": (25, 25, 25),
    }


def unsure_colour(a: str = "USD-20", b: str = "USD-5") -> tuple[int, int, int]:
    """A flat colour equally far from two prototypes: the model answers about 50/50."""
    p = prototypes()
    return tuple((x + y) // 2 for x, y in zip(p[a], p[b], strict=True))


def flat(colour: tuple[int, int, int], size: tuple[int, int] = (640, 480)) -> Image.Image:
    return Image.new("RGB", size, colour)


def _normalised(rgb) -> np.ndarray:
    return (np.asarray(rgb, np.float32) / 255.0 - MEAN) / STD


def _weights(sharpness: float) -> tuple[np.ndarray, np.ndarray]:
    labels = [c[0] for c in CLASSES]
    protos = np.stack([_normalised(prototypes()[lab]) for lab in labels])  # [8, 3]
    # logits_k = -s * |x - p_k|^2 = 2s x.p_k - s |p_k|^2 (+ a term equal for every k).
    w = (2 * sharpness * protos.T).astype(np.float32)  # [3, 8]
    b = (-sharpness * (protos**2).sum(axis=1)).astype(np.float32)  # [8]
    return w, b


def build(dest: Path, sharpness: float = 2.0) -> Path:
    """Write card.json + model.onnx into dest; returns dest."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    labels = [c[0] for c in CLASSES]
    w, b = _weights(sharpness)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["input"], ["colour"], axes=[1, 2], keepdims=0),
            helper.make_node("MatMul", ["colour", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "colour_classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, SIZE, SIZE, 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, len(labels)])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    _write(dest, model.SerializeToString(), "onnx")
    return dest


def build_tflite(dest: Path, sharpness: float = 2.0) -> Path:
    """Write card.json + model.tflite (the same classifier) into dest; returns dest."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as tfl

    w, b = _weights(sharpness)
    n = len(CLASSES)
    consts = [np.array([1, 2], np.int32), np.ascontiguousarray(w.T), b]  # axes, FC weights, bias
    buffers = [tfl.BufferT()] + [tfl.BufferT(data=list(c.tobytes())) for c in consts]

    def tensor(name, shape, buffer=0, kind=tfl.TensorType.FLOAT32):
        return tfl.TensorT(shape=shape, type=kind, buffer=buffer, name=name)

    tensors = [tensor("image", [1, SIZE, SIZE, 3]),
               tensor("axes", [2], 1, tfl.TensorType.INT32),
               tensor("colour", [1, 3]),
               tensor("fc_weights", [n, 3], 2), tensor("fc_bias", [n], 3),
               tensor("logits", [1, n]), tensor("probs", [1, n])]
    ops = tfl.BuiltinOperator
    codes = [tfl.OperatorCodeT(deprecatedBuiltinCode=c, builtinCode=c)
             for c in (ops.MEAN, ops.FULLY_CONNECTED, ops.SOFTMAX)]
    options = tfl.BuiltinOptions
    softmax = tfl.SoftmaxOptionsT()
    softmax.beta = 1.0
    operators = [
        tfl.OperatorT(opcodeIndex=0, inputs=[0, 1], outputs=[2],
                      builtinOptionsType=options.ReducerOptions,
                      builtinOptions=tfl.ReducerOptionsT()),
        tfl.OperatorT(opcodeIndex=1, inputs=[2, 3, 4], outputs=[5],
                      builtinOptionsType=options.FullyConnectedOptions,
                      builtinOptions=tfl.FullyConnectedOptionsT()),
        tfl.OperatorT(opcodeIndex=2, inputs=[5], outputs=[6],
                      builtinOptionsType=options.SoftmaxOptions, builtinOptions=softmax),
    ]
    graph = tfl.SubGraphT(tensors=tensors, inputs=[0], outputs=[6], operators=operators,
                          name="main")
    signature = tfl.SignatureDefT(
        inputs=[tfl.TensorMapT(name="image", tensorIndex=0)],
        outputs=[tfl.TensorMapT(name="output_0", tensorIndex=6)],
        signatureKey="serving_default", subgraphIndex=0)
    model = tfl.ModelT(version=3, operatorCodes=codes, subgraphs=[graph], buffers=buffers,
                       description="usbills colour test classifier", signatureDefs=[signature])
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    _write(dest, bytes(builder.Output()), "tflite")
    return dest


def _write(dest: Path, data: bytes, fmt: str) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"model.{fmt}").write_bytes(data)
    card = {
        "schema_version": 1,
        "name": "usbills",
        "title": {"en": "US banknote identifier", "es": "Identificador de billetes de EE. UU."},
        "version": "0.0.0-colour-test",
        "task": "image-classification",
        "model_file": f"model.{fmt}",
        "format": fmt,
        "sha256": hashlib.sha256(data).hexdigest(),
        "input": {
            "height": SIZE, "width": SIZE, "channels": 3, "layout": "NHWC", "dtype": "float32",
            "color": "RGB", "scale": 1 / 255, "mean": MEAN.tolist(), "std": STD.tolist(),
        },
        "classes": [
            {"id": i, "label": lab, "value": value, "display": {"en": en, "es": es},
             **({"negative": True} if value is None else {})}
            for i, (lab, value, en, es) in enumerate(CLASSES)
        ],
        "threshold": 0.8,
        "metrics": {},
        "dataset": {"name": "none (test bundle: mean-colour classifier)"},
        "license": "MIT",
        "created": "2026-11-22T00:00:00Z",
    }
    (dest / "card.json").write_text(json.dumps(card, ensure_ascii=False, indent=1), "utf-8")
