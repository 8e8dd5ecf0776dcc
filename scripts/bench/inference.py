"""Benchmark the serving runtimes on a MobileNetV2-sized classifier (one thread), and the served
bundle against one pass of the plain backbone.

Exports keras.applications.MobileNetV2(weights=None) + an 8-way softmax to .tflite (TF Lite
converter) and .onnx (tf2onnx via keras' export), cached under .cache/bench/, then measures each
runtime in a fresh process: RSS before/after loading, p50/p90 latency of one 224x224 image.

Then, in one process and interleaved call by call (so machine load hits both alike): the served
bundle's localise + classify on page-sized frames, as the service runs it
(usbills_app.inference.classify), against one pass of a plain MobileNetV2 at the bundle's input
size, float32 and full-integer int8 (the served classifier's format). Timing does not depend on
the weights, so the plain models have random ones.
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


def export_plain(size: int) -> dict[str, Path]:
    """Plain MobileNetV2 at size x size: float32 and full-integer int8 with float I/O."""
    out = {"float32": CACHE / f"mobilenetv2-{size}.tflite",
           "int8": CACHE / f"mobilenetv2-{size}-int8.tflite"}
    if all(p.exists() for p in out.values()):
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), include_top=False, weights=None, pooling="avg"
    )
    model = keras.Model(base.input, keras.layers.Dense(8, activation="softmax")(base.output))
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    out["float32"].write_bytes(conv.convert())
    rng = np.random.default_rng(0)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: (
        [rng.standard_normal((1, size, size, 3), dtype=np.float32)] for _ in range(16))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    out["int8"].write_bytes(conv.convert())
    return out


def page_frames(n: int) -> list:
    """Frames of the sizes the page uploads (bench-stack's PAGE_SIZES: 640-1024 px), with some
    structure for the localiser."""
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from stack import PAGE_SIZES  # the sibling benchmark's frame sizes (stdlib imports only)

    rng = np.random.default_rng(1)
    frames = []
    for i in range(n):
        w, h = PAGE_SIZES[i % len(PAGE_SIZES)]
        a = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
        frames.append(Image.fromarray(a).resize((w, h), Image.BILINEAR))
    return frames


def measure_served(bundle: Path, plain: dict[str, Path], runs: int) -> dict:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from usbills_app import inference, runtime

    model = runtime.load_model(bundle, threads=1)
    inp = model.card["input"]
    backends = {k: runtime.open_backend("tflite", p, threads=1) for k, p in plain.items()}
    x = np.random.default_rng(0).random((1, inp["height"], inp["width"], 3), dtype=np.float32)
    frames = page_frames(25)
    times: dict[str, list[float]] = {"served": [], **{k: [] for k in backends}}
    parts: dict[str, list[float]] = {}
    for i in range(runs + 10):
        t = time.perf_counter()
        _, _, timing = inference.classify(model, [frames[i % len(frames)]])
        served = (time.perf_counter() - t) * 1000
        plain_ms = {}
        for k, be in backends.items():
            t = time.perf_counter()
            be.run(x)
            plain_ms[k] = (time.perf_counter() - t) * 1000
        if i < 10:  # warm-up
            continue
        times["served"].append(served)
        for k, v in plain_ms.items():
            times[k].append(v)
        for k, v in timing[0].items():
            parts.setdefault(k, []).append(v)

    def p50(v):
        return round(float(np.median(v)), 2)

    floor = min(p50(times[k]) for k in backends)
    return {
        "bundle": str(bundle.relative_to(ROOT) if bundle.is_relative_to(ROOT) else bundle),
        "input": f"{inp['width']}x{inp['height']}",
        "localiser": model.localiser is not None,
        "half_turn": bool(model.card.get("training", {}).get("half_turn")),
        "served_p50_ms": p50(times["served"]),
        "served_p90_ms": round(float(np.percentile(times["served"], 90)), 2),
        "served_parts_p50_ms": {k: p50(v) for k, v in parts.items()},
        "plain_p50_ms": {k: p50(times[k]) for k in backends},
        "floor_ms": floor,
        "ratio": round(p50(times["served"]) / floor, 2),
        "runs": runs,
        "load_before": round(os.getloadavg()[0], 2),
    }


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


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return int(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=positive, default=300, help="timed calls per measurement")
    ap.add_argument("--bundle", type=Path, default=ROOT / "model" / "bundles" / "usbills",
                    help="served bundle to time against the plain backbone")
    ap.add_argument("--out", type=Path, default=ART, help="report folder")
    ap.add_argument("--child", nargs=2, metavar=("FORMAT", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        fmt, path = a.child[0], Path(a.child[1])
        if fmt == "served":
            card = json.loads((path / "card.json").read_text(encoding="utf-8"))
            result = measure_served(path, export_plain(int(card["input"]["height"])), a.runs)
        else:
            result = measure(fmt, path, a.runs)
        print(json.dumps(result))
        return 0
    try:
        card = json.loads((a.bundle / "card.json").read_text(encoding="utf-8"))
        size = int(card["input"]["height"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: {a.bundle}: no readable card.json ({e})", file=sys.stderr)
        return 2
    models = export_models()
    results = []
    for fmt, path in models.items():
        cmd = [sys.executable, __file__, "--runs", str(a.runs), "--child", fmt, str(path)]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        results.append(json.loads(res.stdout.strip().splitlines()[-1]))
    export_plain(size)
    cmd = [sys.executable, __file__, "--runs", str(a.runs), "--child", "served", str(a.bundle)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False,
                         env=dict(os.environ, OMP_NUM_THREADS="1"))
    if res.returncode != 0:  # e.g. a bundle that does not load: its one-line reason
        last = (res.stderr.strip().splitlines() or [f"exit status {res.returncode}"])[-1]
        print(f"error: {a.bundle}: {last}", file=sys.stderr)
        return 1
    served = json.loads(res.stdout.strip().splitlines()[-1])
    served["load_after"] = round(os.getloadavg()[0], 2)
    report = {
        "command": f"scripts/bench-inference --runs {a.runs}",
        "host": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "results": results,
        "served_vs_plain": served,
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "bench-inference.json").write_text(json.dumps(report, indent=2))
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
    sv = served
    parts = ", ".join(f"{k} {v} ms" for k, v in sv["served_parts_p50_ms"].items())
    lines += [
        "",
        f"Served bundle `{sv['bundle']}` against one pass of the plain backbone (MobileNetV2"
        f" {sv['input']}), interleaved in one process, one thread, {sv['runs']} calls each;"
        f" load {sv['load_before']} before, {sv['load_after']} after:",
        "",
        "| what | p50 |",
        "|---|---|",
        f"| served: localise + classify a page frame ({parts}) | {sv['served_p50_ms']} ms |",
        *(f"| plain MobileNetV2 {sv['input']}, {k}, one pass | {v} ms |"
          for k, v in sv["plain_p50_ms"].items()),
        f"| served / fastest plain pass | {sv['ratio']}x |",
    ]
    md = "\n".join(lines)
    (a.out / "bench-inference.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
