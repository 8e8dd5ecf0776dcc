"""Export the trained Keras model (.tflite float / dynamic-range int8, .onnx), compare the
exports on the validation split and write the chosen one as the serving bundle."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from model import evaluate
from model.backbone import MEAN, STD, normalise  # default: MobileNetV2's normalisation
from model.classes import DISPLAY, LABELS, NONE, VALUES
from model.predictors import Predictor
from usbills_app.bundle import write_card

MAX_BUNDLE_BYTES = 15 * 1024 * 1024
TOLERANCE = 0.005  # 0.5 points: two of about 400 validation bill pictures


def acceptable(c: dict, ref: dict) -> bool:
    """May export ``c`` replace the float32 export ``ref``? Only if a visitor would not
    notice: top-1, no-banknote answers, notes answered at the served threshold and how many
    of those are right each within 0.5 points of float (quantising can change the
    confidences, hence what is answered, without changing top-1), and a bundle small enough."""
    return (c["top1_accuracy"] >= ref["top1_accuracy"] - TOLERANCE
            and c["none_as_bill_rate"] <= ref["none_as_bill_rate"] + TOLERANCE
            and c["coverage"] >= ref["coverage"] - TOLERANCE
            and c["answered_accuracy"] >= ref["answered_accuracy"] - TOLERANCE
            and c["bytes"] <= MAX_BUNDLE_BYTES)


def half_turn_average(full):
    """The served model: mean of the probabilities for the photo and the photo turned 180
    degrees. Notes are held either way up; this test-time augmentation inside the model file
    needs no change in the service and costs twice the compute of one pass."""
    import keras

    inp = keras.Input(full.input_shape[1:], name="image")
    turned = keras.layers.Lambda(lambda x: keras.ops.flip(x, (1, 2)), name="half_turn")(inp)
    out = keras.layers.Average(name="mean_probs")([full(inp), full(turned)])
    return keras.Model(inp, out, name=f"{full.name}_half_turn")


def _serving_fn(full, batch: int | None):
    import tensorflow as tf

    size = full.input_shape[1]
    spec = tf.TensorSpec([batch, size, size, 3], tf.float32, name="image")
    return tf.function(lambda image: full(image, training=False), input_signature=[spec]), spec


def to_tflite(full, path: Path, mode: str = "float", calibration: np.ndarray | None = None) -> Path:
    """mode: 'float' (float32), 'dynamic' (int8 weights, float activations) or 'int8' (int8
    weights and activations, calibrated on ``calibration`` images; float32 input/output)."""
    import tensorflow as tf

    if mode not in ("float", "dynamic", "int8"):
        raise ValueError(f"unknown tflite mode {mode!r}")
    size = full.input_shape[1]
    kw = {"optimizations": [tf.lite.Optimize.DEFAULT]} if mode != "float" else {}
    if mode == "int8":
        if calibration is None:
            raise ValueError("int8 export needs calibration images")
        kw["representative_dataset"] = lambda: ([x[None].astype(np.float32)] for x in calibration)
    path.parent.mkdir(parents=True, exist_ok=True)
    full.export(str(path), format="litert", verbose=False,
                input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="image")],
                **kw)
    return float_softmax(path) if mode == "int8" else path


def float_softmax(path: Path) -> Path:
    """Rewrite a full-integer .tflite in place so that its softmax, and the half-turn mean
    after it, run in float on the dequantised int8 logits; returns ``path``.

    An int8 softmax answers in steps of 1/256, so every answer above 0.996 looked alike and
    the served threshold could not go higher. Written by hand with LiteRT's flatbuffer schema
    because the converter's own selective quantisation needs the Keras model, which the
    committed bundle no longer has. The tail it replaces is what ``half_turn_average``
    exports: one or two int8 SOFTMAX ops and the ops that read their outputs."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as tfl

    model = tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(path.read_bytes(), 0))
    g = model.subgraphs[0]
    ops, types = tfl.BuiltinOperator, tfl.TensorType

    def builtin(op) -> int:
        c = model.operatorCodes[op.opcodeIndex]
        return max(c.builtinCode, c.deprecatedBuiltinCode)

    soft = [i for i, op in enumerate(g.operators)
            if builtin(op) == ops.SOFTMAX and g.tensors[op.inputs[0]].type == types.INT8]
    if not soft:
        return path  # a float model: its softmax is float already
    out = g.outputs[0]
    if len(soft) > 2 or len(g.outputs) != 1 or g.tensors[out].type != types.FLOAT32:
        raise ValueError(f"{path.name}: not a one- or two-pass int8 classifier with float output")
    tail, read = set(soft), {t for i in soft for t in g.operators[i].outputs}
    for i, op in enumerate(g.operators):  # operators are stored in execution order
        if i not in tail and read & set(op.inputs):
            tail.add(i)
            read |= set(op.outputs)
    logits = [g.operators[i].inputs[0] for i in soft]
    g.operators = [op for i, op in enumerate(g.operators) if i not in tail]

    def code(op: int) -> int:
        for i, c in enumerate(model.operatorCodes):
            if max(c.builtinCode, c.deprecatedBuiltinCode) == op:
                return i
        model.operatorCodes.append(tfl.OperatorCodeT(
            deprecatedBuiltinCode=min(op, 127), builtinCode=op, version=1))
        return len(model.operatorCodes) - 1

    def tensor(name: str, shape, buffer: int = 0) -> int:
        g.tensors.append(tfl.TensorT(shape=list(shape), type=types.FLOAT32, buffer=buffer,
                                     name=name))
        return len(g.tensors) - 1

    def add_op(op: int, inputs: list[int], output: int, opt_type=None, opt=None) -> None:
        g.operators.append(tfl.OperatorT(opcodeIndex=code(op), inputs=inputs, outputs=[output],
                                         builtinOptionsType=opt_type or 0, builtinOptions=opt))

    shape = g.tensors[out].shape
    probs = []
    for n, k in enumerate(logits):
        f = tensor(f"float_softmax/logits_{n}", shape)
        add_op(ops.DEQUANTIZE, [k], f)
        p = out if len(logits) == 1 else tensor(f"float_softmax/probs_{n}", shape)
        softmax = tfl.SoftmaxOptionsT()
        softmax.beta = 1.0
        add_op(ops.SOFTMAX, [f], p, tfl.BuiltinOptions.SoftmaxOptions, softmax)
        probs.append(p)
    if len(probs) == 2:
        total = tensor("float_softmax/sum", shape)
        add_op(ops.ADD, probs, total, tfl.BuiltinOptions.AddOptions, tfl.AddOptionsT())
        model.buffers.append(tfl.BufferT(data=np.frombuffer(
            np.float32(0.5).tobytes(), np.uint8).copy()))
        half = tensor("float_softmax/half", [1], len(model.buffers) - 1)
        add_op(ops.MUL, [total, half], out, tfl.BuiltinOptions.MulOptions, tfl.MulOptionsT())
    builder = flatbuffers.Builder(path.stat().st_size + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def to_onnx(full, path: Path) -> Path:
    import tf2onnx

    fn, spec = _serving_fn(full, None)
    path.parent.mkdir(parents=True, exist_ok=True)
    tf2onnx.convert.from_function(fn, input_signature=[spec], opset=17, output_path=str(path))
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_card(model_file: Path, size: int, threshold: float, metrics: dict, version: str,
              training: dict | None = None, mean=MEAN, std=STD) -> dict:
    fmt = model_file.suffix.lstrip(".")
    classes = []
    for i, (lab, val, disp) in enumerate(zip(LABELS, VALUES, DISPLAY, strict=True)):
        c = {"id": i, "label": lab, "value": val, "display": disp}
        if i == NONE:
            c = {"id": i, "label": lab, "value": None, "negative": True, "display": disp}
        classes.append(c)
    card = {
        "schema_version": 1,
        "name": "usbills",
        "title": {"en": "US banknote identifier", "es": "Identificador de billetes de EE. UU."},
        "version": version,
        "task": "image-classification",
        "model_file": model_file.name,
        "format": fmt,
        "sha256": sha256(model_file),
        "input": {"height": size, "width": size, "channels": 3, "layout": "NHWC",
                  "dtype": "float32", "color": "RGB", "scale": 1 / 255,
                  "mean": list(mean), "std": list(std)},
        "classes": classes,
        "threshold": threshold,
        "metrics": metrics,
        "dataset": {"name": "Roboflow dollar-classify v1",
                    "url": "https://universe.roboflow.com/ai-project-oessg/dollar-classify",
                    "license": "CC BY 4.0"},
        "license": "CC BY 4.0 (data); model weights: see docs/model-card.md",
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if training:
        card["training"] = training
    return card


def write_bundle(model_file: Path, out: Path, card: dict) -> Path:
    """Replace the bundle in ``out`` with ``model_file`` + card.json (checks the size limit)."""
    if model_file.stat().st_size > MAX_BUNDLE_BYTES:
        raise ValueError(f"{model_file}: {model_file.stat().st_size} bytes exceeds 15 MB")
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("model.*")) + list(out.glob("localiser.*")):
        old.unlink()
    dest = out / model_file.name
    shutil.copyfile(model_file, dest)
    card = dict(card, sha256=sha256(dest))
    write_card(out, card)
    return dest


def add_localiser(loc_model, out: Path, stats: dict, work: Path,
                  calibration: np.ndarray | None = None) -> dict:
    """Export the note localiser into the bundle in ``out`` and name it in card.json
    (docs/bundle-format.md, "localiser"); returns the new card. Full-integer int8 (0.4 MB)
    when ``calibration`` frames are given, else float32 (1-2 MB)."""
    from usbills_app import locate

    work.mkdir(parents=True, exist_ok=True)
    mode = "int8" if calibration is not None else "float"
    path = to_tflite(loc_model, work / "localiser.tflite", mode, calibration)
    dest = out / "localiser.tflite"
    shutil.copyfile(path, dest)
    card = json.loads((out / "card.json").read_text(encoding="utf-8"))
    size = loc_model.input_shape[1]
    card["localiser"] = {"model_file": dest.name, "format": "tflite", "sha256": sha256(dest),
                         "input": {"height": size, "width": size},
                         "grid": int(loc_model.output_shape[1]),
                         "threshold": locate.THRESHOLD, "margin": locate.MARGIN,
                         "quantisation": mode, "training": stats}
    write_card(out, card)
    return card


def median_latency_ms(pred: Predictor, images: np.ndarray, n: int = 60, mean=MEAN,
                      std=STD) -> float:
    x = normalise(images[:n], mean, std)
    pred.one(x[0])  # warm-up
    times = []
    for xi in x:
        t = time.perf_counter()
        pred.one(xi)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def export_and_choose(full, ds, args, log, calibration: np.ndarray | None = None) -> dict:
    """Export every candidate, measure each on the validation split, write the chosen bundle."""
    size = full.input_shape[1]
    srcs, images, y = evaluate.validation_set(ds.split("valid"), args.valid_photos, size)
    mean, std = getattr(args, "mean", MEAN), getattr(args, "std", STD)
    spec = {"scale": 1 / 255, "mean": list(mean), "std": list(std)}
    keras_rep, keras_probs = evaluate.evaluate_predictor(
        lambda x: full.predict(x, batch_size=32, verbose=0), images, y, args.threshold, spec)
    log(evaluate.format_report(keras_rep, "Keras model on validation:"))
    work = Path(args.work) / "export"
    candidates = []
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    jobs = []
    if "tflite" in formats:
        jobs += [("tflite float32", lambda p: to_tflite(full, p, "float"), "float.tflite"),
                 ("tflite int8 weights (dynamic range)", lambda p: to_tflite(full, p, "dynamic"),
                  "dynamic.tflite")]
        if calibration is not None:
            jobs.append(("tflite int8 (full integer, float I/O)",
                         lambda p: to_tflite(full, p, "int8", calibration), "int8.tflite"))
    if "onnx" in formats:
        jobs.append(("onnx float32", lambda p: to_onnx(full, p), "float.onnx"))
    for name, fn, fname in jobs:
        try:
            path = fn(work / fname)
            pred = Predictor(path)
            rep, probs = evaluate.evaluate_predictor(pred, images, y, args.threshold, spec)
            rep.update(evaluate.source_figures(srcs, probs, y, args.threshold))
        except Exception as e:  # noqa: BLE001 - an export path that fails is reported, not fatal
            log(f"export {name} failed: {type(e).__name__}: {e}")
            continue
        c = {"name": name, "path": str(path), "bytes": path.stat().st_size,
             "agreement": float((probs.argmax(1) == keras_probs.argmax(1)).mean()),
             "max_abs_diff": float(np.abs(probs - keras_probs).max()),
             "median_ms": median_latency_ms(pred, images, args.latency_images, mean, std)}
        c.update({k: rep[k] for k in ("top1_accuracy", "none_as_bill_rate", "answered_accuracy",
                                      "coverage", "ece")})
        candidates.append((c, rep))
        log(f"{name}: {c['bytes'] / 1e6:.1f} MB, top-1 {c['top1_accuracy']:.4f}, no-banknote "
            f"answered {c['none_as_bill_rate']:.4f}, coverage {c['coverage']:.4f}, "
            f"agreement {c['agreement']:.4f}, "
            f"max |dp| {c['max_abs_diff']:.4f}, {c['median_ms']:.1f} ms")
    if not candidates:
        raise RuntimeError("no export succeeded")
    ref = candidates[0][0]
    # The bundle holds one file: pick among the preferred format (first in --formats).
    preferred = [(c, r) for c, r in candidates if c["path"].endswith("." + formats[0])]
    ok = [(c, r) for c, r in preferred or candidates if acceptable(c, ref)]
    chosen, rep = min(ok or candidates[:1], key=lambda cr: cr[0]["median_ms"])
    src = Path(chosen["path"])
    model_file = work / ("model" + src.suffix)
    shutil.copyfile(src, model_file)
    rimgs, ry = evaluate.rotated(images, y)
    rot, _ = evaluate.evaluate_predictor(Predictor(model_file), rimgs, ry, args.threshold, spec)
    comparison = [c for c, _ in candidates]
    training = {"views": getattr(args, "views", None), "views_per_class": args.views_per_class,
                "seconds": round(time.time() - getattr(args, "started", time.time())),
                "head_epochs": args.head_epochs,
                "ft_epochs": args.ft_epochs, "ft_lr": getattr(args, "ft_lr", None),
                "seed": args.seed, "export": chosen["name"],
                "half_turn": getattr(args, "half_turn", False),
                "backbone": getattr(args, "backbone", "mobilenetv2"),
                "background_negatives": getattr(args, "background_negatives", False),
                "label_smoothing": getattr(args, "label_smoothing", 0.0),
                "calibration": getattr(args, "calibration", None),
                "comparison": [{k: (round(v, 5) if isinstance(v, float) else v)
                                for k, v in c.items() if k != "path"} for c in comparison],
                "near_duplicates": len(ds.duplicates),
                "rotated_top1_accuracy": round(rot["top1_accuracy"], 4)}
    card = make_card(model_file, size, args.threshold, evaluate.card_metrics(rep), args.version,
                     training, mean, std)
    write_bundle(model_file, Path(args.out), card)
    return {"report": rep, "rotated": rot, "card": card, "comparison": comparison,
            "chosen": chosen["name"], "keras_probs": keras_probs}


def main(argv=None) -> int:
    """``python -m model.export --float-softmax BUNDLE``: give a bundle trained before
    ``float_softmax`` existed its float softmax, without retraining (same weights)."""
    import argparse
    import sys

    from usbills_app.bundle import BundleError, load_bundle

    p = argparse.ArgumentParser(prog="python -m model.export", description=main.__doc__)
    p.add_argument("--float-softmax", type=Path, metavar="BUNDLE", required=True,
                   help="rewrite this bundle's int8 .tflite and its card's sha256 in place")
    args = p.parse_args(argv)
    try:
        bundle = load_bundle(args.float_softmax)
        if bundle.card["format"] != "tflite":
            raise BundleError(f"{args.float_softmax}: not a .tflite bundle")
        float_softmax(bundle.model_path)
    except (BundleError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    card = dict(bundle.card, sha256=sha256(bundle.model_path))
    card.setdefault("training", {})["float_softmax"] = True
    write_card(args.float_softmax, card)
    print(f"wrote {bundle.model_path} and {args.float_softmax / 'card.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
