"""Compare exported model files (float vs quantised, LiteRT vs ONNX Runtime) on accuracy and
latency, and write a markdown report.

    python -m model.bench --data ../shared/data/usbills [--exports model/work/export]

Latency: one image per call, one CPU thread, after a warm-up; p50/p90 over --runs calls.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from model import data as mdata
from model import evaluate, options, scenes
from model.backbone import normalise
from model.predictors import Predictor

REPO = Path(__file__).resolve().parent.parent


def latency(pred: Predictor, x: np.ndarray, runs: int) -> tuple[float, float]:
    pred.one(x[0])
    times = []
    for i in range(runs):
        t = time.perf_counter()
        pred.one(x[i % len(x)])
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 90))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.bench", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path)
    mdata.add_image_labels_option(p)
    p.add_argument("--exports", type=Path, default=REPO / "model" / "work" / "export")
    p.add_argument("--runs", type=options.whole_number(1), default=200,
                   help="timed calls per export")
    p.add_argument("--bundle", type=Path, default=REPO / "model" / "bundles" / "usbills",
                   help="its card gives the exports' input size and normalisation")
    p.add_argument("--threshold", type=options.threshold, default=None,
                   help="default: the card's")
    p.add_argument("--report", type=Path, default=REPO / "model" / "work" / "bench-model.md")
    args = p.parse_args(argv)
    files = sorted(f for f in args.exports.glob("*") if f.suffix in (".tflite", ".onnx")
                   and f.stem != "model") if args.exports.is_dir() else []
    if not files:
        print(f"error: no .tflite/.onnx files in {args.exports} (run python -m model.train)",
              file=sys.stderr)
        return 2
    try:
        ds = mdata.dedup(mdata.load(args.data, args.image_labels))
    except mdata.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        card = json.loads((args.bundle / "card.json").read_text(encoding="utf-8"))
        spec = card["input"]
        thr = card["threshold"] if args.threshold is None else args.threshold
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {args.bundle}: no readable card.json ({e})", file=sys.stderr)
        return 2
    _, images, y = evaluate.validation_set(ds.split("valid"), scenes.SKIMAGE_VALID,
                                           spec["height"])
    x = normalise(images[:50], spec["mean"], spec["std"])
    rows = []
    for f in files:
        pred = Predictor(f)
        rep, _ = evaluate.evaluate_predictor(pred, images, y, thr, spec)
        p50, p90 = latency(pred, x, args.runs)
        rows.append({"file": f.name, "MB": round(f.stat().st_size / 1e6, 2), "p50_ms": p50,
                     "p90_ms": p90, **{k: rep[k] for k in ("top1_accuracy", "none_as_bill_rate",
                                                           "answered_accuracy", "coverage",
                                                           "accuracy_at_90_coverage")}})
        print(json.dumps(rows[-1]))
    lines = [f"# Model export benchmark ({platform.processor() or platform.machine()}, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"`python -m model.bench {' '.join(sys.argv[1:] if argv is None else argv)}`; "
             "validation "
             f"pictures: {len(y)}; threshold {thr}.", "",
             "| file | size | p50 ms | p90 ms | top-1 | no-banknote answered | answered acc. | "
             "coverage | acc. at 90 % coverage |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['file']} | {r['MB']} MB | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
              f"{100 * r['top1_accuracy']:.1f} % | {100 * r['none_as_bill_rate']:.1f} % | "
              f"{100 * r['answered_accuracy']:.1f} % | {100 * r['coverage']:.1f} % | "
              f"{evaluate.pct(r['accuracy_at_90_coverage'])} |" for r in rows]
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
