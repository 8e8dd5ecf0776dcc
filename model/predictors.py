"""Run an exported model file (.tflite or .onnx) on pre-processed NHWC float32 batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from usbills_app.runtime import as_probabilities  # the service's output rescaling


class Predictor:
    """Probabilities for a batch, one image at a time (the serving path), on ``threads`` CPUs."""

    def __init__(self, path: str | Path, threads: int = 1):
        self.path = Path(path)
        if self.path.suffix == ".tflite":
            from ai_edge_litert.interpreter import Interpreter

            self.interp = Interpreter(model_path=str(self.path), num_threads=threads)
            self.interp.allocate_tensors()
            self.inp = self.interp.get_input_details()[0]
            self.out = self.interp.get_output_details()[0]
            self.kind = "tflite"
        elif self.path.suffix == ".onnx":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            self.sess = ort.InferenceSession(str(self.path), opts,
                                             providers=["CPUExecutionProvider"])
            self.name = self.sess.get_inputs()[0].name
            self.kind = "onnx"
        else:
            raise ValueError(f"{path}: expected a .tflite or .onnx file")

    def one(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x[None], np.float32)
        if self.kind == "tflite":
            self.interp.set_tensor(self.inp["index"], x)
            self.interp.invoke()
            return self.interp.get_tensor(self.out["index"])[0].copy()
        return self.sess.run(None, {self.name: x})[0][0]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return as_probabilities(np.stack([self.one(x) for x in batch]))
