"""Benchmark the serving runtimes on a MobileNetV2-sized classifier (one thread).

Exports keras.applications.MobileNetV2(weights=None) + an 8-way softmax to .tflite (TF Lite
converter) and .onnx (tf2onnx via keras' export), cached under .cache/bench/, then measures each
runtime in a fresh process: RSS before/after loading, p50/p90 latency of one 224x224 image.
Writes artifacts/bench-inference.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "bench"
ART = ROOT / "artifacts"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def export_models() -> dict[str, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    out = {
        "tflite": CACHE / "mobilenetv2.tflite",
        "onnx": CACHE / "mobilenetv2.onnx",
        "tflite-int8w": CACHE / "mobilenetv2-int8w.tflite",
    }
    if all(p.exists() for p in out.values()):
        return out
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, weights=None, pooling="avg"
    )
    head = keras.layers.Dense(8, activation="softmax")(base.output)
    model = keras.Model(base.input, head)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    out["tflite"].write_bytes(conv.convert())
    model.export(str(out["onnx"]), format="onnx", verbose=False)
    # Dynamic-range quantisation (int8 weights, float activations): a one-line option for model/.
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    out["tflite-int8w"].write_bytes(conv.convert())
    return out


def measure(fmt: str, path: Path, runs: int) -> dict:
    """Runs in a fresh child process so RSS is not polluted by TensorFlow or the other runtime."""
    import importlib.util

    import numpy as np

    base = rss_mb()
    if fmt.startswith("tflite"):
        import ai_edge_litert.interpreter  # noqa: F401
    else:
        import onnxruntime  # noqa: F401
    imported = rss_mb()
    # The app's backend module on its own, without Flask & co. from the package's __init__.
    spec = importlib.util.spec_from_file_location("rt", ROOT / "usbills_app" / "runtime.py")
    rt = sys.modules["rt"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rt)
    open_backend = rt.open_backend
    t0 = time.perf_counter()
    be = open_backend(fmt.split("-")[0], path, threads=1)
    load_ms = (time.perf_counter() - t0) * 1000
    rng = np.random.default_rng(0)
    x = rng.random((1, 224, 224, 3), dtype=np.float32)
    for _ in range(10):
        be.run(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        be.run(x)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "runtime": be.name,
        "format": fmt,
        "model_bytes": path.stat().st_size,
        "load_ms": round(load_ms, 1),
        "p50_ms": round(times[len(times) // 2], 2),
        "p90_ms": round(times[int(len(times) * 0.9)], 2),
        "min_ms": round(times[0], 2),
        "rss_before_mb": round(base, 1),
        "rss_import_mb": round(imported, 1),
        "rss_after_mb": round(rss_mb(), 1),
        "runs": runs,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--child", nargs=2, metavar=("FORMAT", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(measure(a.child[0], Path(a.child[1]), a.runs)))
        return 0
    models = export_models()
    results = []
    for fmt, path in models.items():
        cmd = [sys.executable, __file__, "--runs", str(a.runs), "--child", fmt, str(path)]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        results.append(json.loads(res.stdout.strip().splitlines()[-1]))
    report = {
        "command": f"scripts/bench-inference --runs {a.runs}",
        "host": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "results": results,
    }
    ART.mkdir(exist_ok=True)
    (ART / "bench-inference.json").write_text(json.dumps(report, indent=2))
    lines = [
        "| runtime | model file | load | p50 | p90 | RSS: numpy | + runtime import"
        " | + model, after runs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['runtime']} | {r['format']}, {r['model_bytes'] / 1e6:.1f} MB | {r['load_ms']} ms"
            f" | {r['p50_ms']} ms | {r['p90_ms']} ms | {r['rss_before_mb']} MB"
            f" | {r['rss_import_mb']} MB"
            f" | {r['rss_after_mb']} MB |"
        )
    md = "\n".join(lines)
    (ART / "bench-inference.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
