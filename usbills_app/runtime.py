"""Inference runtimes (LiteRT for .tflite, ONNX Runtime for .onnx) and the process-wide model.

No TensorFlow here: only the small serving runtimes. Each backend takes a float32 NHWC batch
and returns probabilities [n, classes]. Both are imported lazily so an image may ship only one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .bundle import Bundle


class RuntimeUnavailable(RuntimeError):
    """The runtime a bundle needs is not installed, or cannot open the model file."""


class LiteRTBackend:
    name = "litert"

    def __init__(self, path: Path, threads: int = 1):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:  # pragma: no cover - depends on the image
            raise RuntimeUnavailable("ai-edge-litert is not installed (needed for .tflite)") from e
        try:
            self._interp = Interpreter(model_path=str(path), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise RuntimeUnavailable(f"LiteRT cannot open {path.name}: {e}") from e
        inp = self._interp.get_input_details()
        out = self._interp.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise RuntimeUnavailable(f"{path.name}: expected 1 input and 1 output tensor")
        self._in, self._out = inp[0], out[0]
        self.input_shape = [int(d) for d in self._in.get("shape_signature", self._in["shape"])]
        self.output_shape = [int(d) for d in self._out.get("shape_signature", self._out["shape"])]
        self.input_dtype = np.dtype(self._in["dtype"])
        self._in_q = self._in.get("quantization", (0.0, 0))
        self._out_q = self._out.get("quantization", (0.0, 0))
        # The interpreter is not thread-safe; gunicorn threads share one per worker.
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray) -> np.ndarray:
        outs = []
        with self._lock:
            # One image per invoke: the exported graph is usually fixed at batch 1 and
            # resizing tensors per request costs more than it saves at these batch sizes.
            for x in batch:
                self._interp.set_tensor(self._in["index"], self._quantize(x[None]))
                self._interp.invoke()
                outs.append(self._interp.get_tensor(self._out["index"])[0].copy())
        out = np.stack(outs)
        scale, zero = self._out_q
        if out.dtype != np.float32 and scale:  # fully-quantised model: int8/uint8 output
            return ((out.astype(np.float32) - zero) * scale).astype(np.float32)
        return out.astype(np.float32)

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        scale, zero = self._in_q
        if self.input_dtype == np.float32 or not scale:
            return x.astype(self.input_dtype)
        info = np.iinfo(self.input_dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input_dtype)


class OnnxBackend:
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int = 1):
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - depends on the image
            raise RuntimeUnavailable("onnxruntime is not installed (needed for .onnx)") from e
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        try:
            self._sess = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # ORT raises its own exception types (Fail, InvalidProtobuf...)
            raise RuntimeUnavailable(f"ONNX Runtime cannot open {path.name}: {e}") from e
        inp, out = self._sess.get_inputs(), self._sess.get_outputs()
        if len(inp) != 1 or len(out) != 1:
            raise RuntimeUnavailable(f"{path.name}: expected 1 input and 1 output tensor")
        self._in_name = inp[0].name
        # Symbolic dims ("N", None) become -1, like LiteRT's shape_signature.
        self.input_shape = [d if isinstance(d, int) else -1 for d in inp[0].shape]
        self.output_shape = [d if isinstance(d, int) else -1 for d in out[0].shape]
        self.input_dtype = np.dtype(np.float32)
        self._fixed_batch = self.input_shape[0] == 1

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = batch.astype(np.float32, copy=False)
        if self._fixed_batch and len(batch) > 1:
            outs = [self._sess.run(None, {self._in_name: x[None]})[0] for x in batch]
            return np.concatenate(outs).astype(np.float32)
        return self._sess.run(None, {self._in_name: batch})[0].astype(np.float32)


def as_probabilities(out: np.ndarray) -> np.ndarray:
    """Rows rescaled to sum to 1. An int8 softmax output comes in steps of 1/256, so its rows
    sum to 1 only within a few steps; the API reports them as a distribution."""
    probs = out.astype(np.float32)  # a copy: the backend's array is left as it is
    total = probs.sum(axis=1, keepdims=True)
    return np.divide(probs, total, out=probs, where=total > 0)


BACKENDS = {"tflite": LiteRTBackend, "onnx": OnnxBackend}


def open_backend(fmt: str, path: Path, threads: int = 1):
    return BACKENDS[fmt](path, threads)


@dataclass
class Model:
    """A loaded bundle: its card, its runtime, its localiser's runtime (None when the bundle
    has no localiser, or ``use_localiser`` is off) and whether it has been warmed up."""

    bundle: Bundle
    backend: object
    ready: bool = False
    extra: dict = field(default_factory=dict)
    localiser: object | None = None

    @property
    def card(self) -> dict:
        return self.bundle.card

    @property
    def runtime_name(self) -> str:
        return self.backend.name

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return as_probabilities(self.backend.run(batch))

    def heat(self, img) -> np.ndarray:
        """The localiser's grid of "note here" probabilities for a whole PIL picture."""
        from . import imaging

        loc = self.card["localiser"]
        spec = {**self.card["input"], "height": loc["input"]["height"],
                "width": loc["input"]["width"]}  # same normalisation as the classifier
        out = self.localiser.run(imaging.to_array(img, spec)[None])[0]
        return out.reshape(loc["grid"], loc["grid"])

    def locate(self, img):
        """The crop box for a PIL picture (usbills_app.locate), None for the whole frame."""
        if self.localiser is None:
            return None
        from . import locate

        loc = self.card["localiser"]
        return locate.locate(self.heat(img), loc["threshold"], loc["margin"])

    def warm_up(self) -> None:
        inp = self.bundle.card["input"]
        x = np.zeros((1, inp["height"], inp["width"], inp["channels"]), np.float32)
        self.predict(x)
        if self.localiser is not None:
            loc = self.card["localiser"]["input"]
            self.localiser.run(np.zeros((1, loc["height"], loc["width"], inp["channels"]),
                                        np.float32))
        self.ready = True


_model: Model | None = None
_model_lock = threading.Lock()


def get_model() -> Model | None:
    """The process-wide model (None until load_model ran in this process)."""
    return _model


def set_model(model: Model | None) -> None:
    global _model
    with _model_lock:
        _model = model


def load_model(model_dir: Path | str, threads: int = 1, warm: bool = True,
               use_localiser: bool = True) -> Model:
    """Validate the bundle, open it (and its localiser, if any) with the runtime its card
    names, and warm it up. ``use_localiser=False`` classifies whole frames only."""
    from .bundle import BundleError, check_localiser_shapes, check_shapes, load_bundle

    bundle = load_bundle(Path(model_dir))
    try:
        backend = open_backend(bundle.card["format"], bundle.model_path, threads)
        localiser = None
        if bundle.localiser_path is not None and use_localiser:
            localiser = open_backend(bundle.card["localiser"]["format"], bundle.localiser_path,
                                     threads)
    except RuntimeUnavailable as e:
        raise BundleError(f"{bundle.path}: {e}") from e
    check_shapes(bundle, backend.input_shape, backend.output_shape)
    if localiser is not None:
        check_localiser_shapes(bundle, localiser.input_shape, localiser.output_shape)
    model = Model(bundle, backend, localiser=localiser)
    if warm:
        model.warm_up()
    return model
