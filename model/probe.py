"""Compare ImageNet backbones on a data set before fine-tuning one: a linear probe.

    python -m model.probe --data ../shared/data/usbills [--views-per-class 300]

Each backbone stays frozen; a logistic regression on its pooled features of the same
augmented training views is scored on the de-duplicated validation split (same pictures as
``model.evaluate``). Backbones whose weights package is not installed are skipped.
Writes docs/model-backbones.md (``--out``).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

from model import backbones, evaluate, samples
from model import data as mdata
from model.train import balanced_views

REPO = Path(__file__).resolve().parent.parent
# scripts/setup-dev installs the weights of these (lite1 is optional).
DEFAULT = ["mobilenetv2", "efficientnet-lite0", "efficientnet-lite2"]


def load_backbone(name: str):
    """(lower, upper, normalise, input size) for a backbone name."""
    bb = backbones.get(name)
    return (*bb.build(bb.size), bb.normalise, bb.size)


def pooled_features(lower, upper, normalise, pictures, batch: int = 32) -> np.ndarray:
    import tensorflow as tf

    fn = tf.function(lambda x: upper(lower(x, training=False), training=False), autograph=False)
    out = [fn(tf.constant(normalise(np.stack([np.asarray(p) for p in pictures[i:i + batch]]))))
           .numpy() for i in range(0, len(pictures), batch)]
    return np.concatenate(out)


def probe(name: str, ds: mdata.Dataset, views_per_class: int, seed: int = 0) -> dict:
    from sklearn.linear_model import LogisticRegression

    lower, upper, normalise, size = load_backbone(name)
    rng = random.Random(seed)
    srcs = samples.sources(ds.split("train"), samples.available_photos(samples.SKIMAGE_TRAIN),
                           rng, synthetic=20)
    views = balanced_views(srcs, views_per_class, rng)
    rngs = [random.Random(rng.randrange(2**31)) for _ in views]
    t0 = time.time()
    x = pooled_features(lower, upper, normalise,
                        [samples.render(srcs[v], r, size=size) for v, r in zip(views, rngs,
                                                                                strict=True)])
    y = np.array([srcs[v].label for v in views])
    _, vimg, vy = evaluate.validation_set(ds.split("valid"), samples.SKIMAGE_VALID, size)
    vx = pooled_features(lower, upper, normalise, list(vimg))
    clf = LogisticRegression(C=0.1, max_iter=3000).fit(x, y)
    rep = evaluate.report(clf.predict_proba(vx), vy, 0.8)
    return {"backbone": name, "size": size, "views": len(views),
            "params": lower.count_params() + upper.count_params(),
            "seconds": round(time.time() - t0), "bills": rep["bill_images"], **{k: rep[k] for k in (
                "top1_accuracy", "none_as_bill_argmax_rate", "answered_accuracy", "coverage")}}


def write_doc(rows: list[dict], path: Path, views_per_class: int) -> None:
    t = ["# Backbone probe", "",
         "Measured by `python -m model.probe --data ../shared/data/usbills "
         f"--views-per-class {views_per_class}`: each ImageNet backbone frozen, a logistic "
         "regression (C=0.1) on its pooled features of the same augmented training views, scored "
         "on the de-duplicated validation split (threshold 0.8). It ranks backbones cheaply "
         "before fine-tuning; fine-tuning adds a lot on top (see model-card.md).", "",
         "| backbone | input | parameters | top-1 | no-banknote argmax a bill | "
         "answered acc. | coverage | seconds |", "|---|---|---|---|---|---|---|---|"]
    t += [f"| {r['backbone']} | {r['size']} | {r['params'] / 1e6:.1f} M | "
          f"{100 * r['top1_accuracy']:.1f} % | {100 * r['none_as_bill_argmax_rate']:.1f} % | "
          f"{100 * r['answered_accuracy']:.1f} % | {100 * r['coverage']:.1f} % | {r['seconds']} |"
          for r in rows]
    best = max(rows, key=lambda r: r["top1_accuracy"])
    p, n = best["top1_accuracy"], best["bills"]
    t += ["", f"Highest probe top-1: {best['backbone']}. On {n} bill pictures one standard error "
          f"of that figure is {100 * (p * (1 - p) / n) ** 0.5:.1f} points, so smaller gaps are "
          "noise; the probe only rules out a clearly weaker backbone."]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(t) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.probe", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path)
    mdata.add_image_labels_option(p)
    p.add_argument("--backbones", nargs="*", default=DEFAULT, choices=list(backbones.BACKBONES))
    p.add_argument("--views-per-class", type=int, default=300)
    p.add_argument("--out", type=Path, default=REPO / "docs" / "model-backbones.md")
    args = p.parse_args(argv)
    try:
        ds = mdata.dedup(mdata.load(args.data, args.image_labels))
    except (mdata.DataError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = []
    for name in args.backbones:
        try:
            rows.append(probe(name, ds, args.views_per_class))
        except FileNotFoundError as e:  # weights package not installed
            print(f"skipped {name}: {e}", file=sys.stderr)
            continue
        r = rows[-1]
        print(f"{name}: top-1 {r['top1_accuracy']:.4f}, coverage {r['coverage']:.4f} "
              f"({r['seconds']} s)", flush=True)
    if not rows:
        print("error: no backbone weights installed", file=sys.stderr)
        return 2
    write_doc(rows, args.out, args.views_per_class)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
