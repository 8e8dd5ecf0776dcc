"""Evaluate a model bundle on a data set's validation split and write the model card.

    python -m model.evaluate --data ../shared/data/usbills [--bundle model/bundles/usbills]

Works on either layout (YOLO/Roboflow or folder per class). Prints per-class accuracy, the
confusion matrix, calibration (ECE), accuracy and coverage at the served threshold, and
writes docs/model-card.md (``--card``; ``--no-card`` to skip). ``--errors errors.png`` also
draws the validation pictures the served model gets wrong. ``--threshold T --set-threshold``
makes T the bundle's served threshold (card.json, with its figures at T) without retraining.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from model import data as mdata
from model import error_sheet, options, samples, scenes
from model.classes import LABELS, NONE
from usbills_app.bundle import write_card

REPO = Path(__file__).resolve().parent.parent
THRESHOLDS = [0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 0.993, 0.999, 0.9995, 0.9999]


# Held-out photo crops: the whole photo, four 60 % corners and nine 40 % tiles.
PHOTO_CROPS = [(0, 0, 1, 1), (0, 0, 0.6, 0.6), (0.4, 0, 1, 0.6), (0, 0.4, 0.6, 1),
               (0.4, 0.4, 1, 1)] + [(x, y, x + 0.4, y + 0.4) for x in (0, 0.3, 0.6)
                                    for y in (0, 0.3, 0.6)]


def validation_set(items, photos, size: int = samples.SIZE, seed: int = 1234,
                   backgrounds: bool = False):
    """Deterministic plain views: every box (8 % margin), every single-denomination image,
    14 crops of each held-out photo, and (optionally) up to 3 background regions per image."""
    rng = random.Random(seed)
    srcs = samples.sources(items, [], rng)
    for it in items if backgrounds else []:
        if not it.boxes:
            continue
        for _ in range(3):
            r = samples.background_region(it, rng)
            if r is not None:
                srcs.append(samples.Source("background", NONE, it, r))
    crops = PHOTO_CROPS
    for name in scenes.available_photos(photos):
        srcs += [samples.Source("photo", NONE, box=c, photo=name) for c in crops]
    cache: dict = {}
    images = []
    for s in srcs:
        key = s.photo or s.item.path
        if key not in cache:
            cache.clear()  # sources of one image are adjacent: keep only the current one
            cache[key] = samples._base_image(s)
        images.append(np.asarray(samples.render(s, None, cache[key], size)))
    y = np.array([s.label for s in srcs], np.int32)
    return srcs, np.stack(images), y


def rotated(images: np.ndarray, y: np.ndarray):
    """Bill pictures turned 90, 180 and 270 degrees (phones hold notes any way up)."""
    bill = y != NONE
    imgs = np.concatenate([np.rot90(images[bill], k, axes=(1, 2)) for k in (1, 2, 3)])
    return imgs, np.concatenate([y[bill]] * 3)


def ece(conf: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def answers(probs: np.ndarray, y: np.ndarray, thr: float):
    """Per picture: the top-1 class, whether it shows a bill, whether the app names a
    denomination for it, and whether that is a bill picture answered."""
    pred, conf = probs.argmax(1), probs.max(1)
    bill = y != NONE
    identified = (pred != NONE) & (conf >= thr)
    return pred, bill, identified, identified & bill


def at_threshold(probs: np.ndarray, y: np.ndarray, thr: float) -> dict:
    pred, bill, identified, answered = answers(probs, y, thr)
    return {
        "threshold": thr,
        "coverage": float(answered.sum() / max(1, bill.sum())),
        "answered_accuracy": float((pred[answered] == y[answered]).mean()) if answered.any()
        else 0.0,
        "none_as_bill_rate": float(identified[~bill].mean()) if (~bill).any() else 0.0,
    }


def interval(rate: float, n: float, level: float = 0.95) -> tuple[float, float] | None:
    """Wilson interval of a proportion measured on n pictures (None for n = 0): how far the
    true figure may be from one measured on a validation split this small. n may be an
    effective number of pictures (see photo_interval), so the formula is written out: scipy's
    binomtest takes whole counts only."""
    from scipy.stats import norm

    if n <= 0:
        return None
    z2 = norm.ppf(0.5 + level / 2) ** 2
    centre = (rate + z2 / (2 * n)) / (1 + z2 / n)
    half = np.sqrt(z2 * (rate * (1 - rate) / n + z2 / (4 * n * n))) / (1 + z2 / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def effective_pictures(hits: np.ndarray, photos: np.ndarray) -> float:
    """How many independent pictures ``hits`` (one 0/1 outcome per picture) are worth when
    pictures cut from the same photo share their outcome more often than chance: n divided
    by Kish's design effect, from the photo-clustered variance of the mean. When every
    outcome is the same the correlation cannot be measured, so each photo counts once (the
    worst case). Never fewer than the photos nor more than the pictures."""
    hits = np.asarray(hits, float)
    n = len(hits)
    _, group = np.unique(photos, return_inverse=True)
    g = int(group.max()) + 1 if n else 0
    rate = hits.mean() if n else 0.0
    if n == 0 or g == n:
        return float(n)
    if rate in (0.0, 1.0) or g == 1:
        return float(g)
    resid = np.bincount(group, hits - rate, minlength=g)  # per photo: hits - rate * pictures
    clustered = g / (g - 1) * (resid ** 2).sum() / n ** 2
    if clustered == 0:  # every photo has exactly the overall rate: nothing shared
        return float(n)
    return float(np.clip(rate * (1 - rate) / clustered, g, n))


def photo_interval(hits: np.ndarray, photos: np.ndarray, level: float = 0.95):
    """Wilson interval on the effective number of pictures (see effective_pictures)."""
    hits = np.asarray(hits, bool)
    if not len(hits):
        return None
    return interval(float(hits.mean()), effective_pictures(hits, photos), level)


def target_intervals(srcs: list[samples.Source], probs: np.ndarray, y: np.ndarray,
                     thr: float) -> dict:
    """95 % intervals of the figures with targets, counting photos rather than pictures:
    several pictures come from one photo (the boxes of a pile, 14 crops of each no-banknote
    photo) and tend to be right or wrong together."""
    photos = np.array([s.photo or str(s.item.path) for s in srcs])
    pred, bill, identified, answered = answers(probs, y, thr)
    return {
        "top1_accuracy": photo_interval(pred[bill] == y[bill], photos[bill]),
        "none_as_bill_rate": photo_interval(identified[~bill], photos[~bill]),
        "answered_accuracy": photo_interval(pred[answered] == y[answered], photos[answered]),
        "coverage": photo_interval(answered[bill], photos[bill]),
        "photos": {"bills": len(set(photos[bill])), "none": len(set(photos[~bill]))},
    }


def accuracy_at_coverage(probs: np.ndarray, y: np.ndarray, coverage: float = 0.9):
    """Accuracy on the ``coverage`` share of bill pictures the model is surest are a given
    note: what the best threshold for that coverage would give. It compares models
    independently of their threshold; it is never a way to choose one (None if fewer bill
    pictures than that have a denomination as top-1)."""
    bill = y != NONE
    pred, conf = probs[bill].argmax(1), probs[bill].max(1)
    score = np.where(pred != NONE, conf, -1.0)
    top = np.argsort(-score, kind="stable")[:int(np.ceil(coverage * bill.sum()))]
    if not len(top) or (score[top] < 0).any():
        return None
    return float((pred[top] == y[bill][top]).mean())


def report(probs: np.ndarray, y: np.ndarray, thr: float) -> dict:
    pred, conf = probs.argmax(1), probs.max(1)
    bill = y != NONE
    n = len(LABELS)
    confusion = np.zeros((n, n), int)
    np.add.at(confusion, (y, pred), 1)
    per_class = {LABELS[c]: (float((pred[y == c] == c).mean()) if (y == c).any() else None,
                             int((y == c).sum())) for c in range(n)}
    out = {
        "top1_accuracy": float((pred[bill] == y[bill]).mean()) if bill.any() else 0.0,
        "top1_accuracy_7": float((probs[bill, :NONE].argmax(1) == y[bill]).mean())
        if bill.any() else 0.0,
        "none_as_bill_argmax_rate": float((pred[~bill] != NONE).mean()) if (~bill).any() else 0.0,
        "ece": ece(conf, pred == y),
        "accuracy_at_90_coverage": accuracy_at_coverage(probs, y, 0.9),
        "validation_images": int(len(y)),
        "bill_images": int(bill.sum()),
        "none_images": int((~bill).sum()),
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "sweep": [at_threshold(probs, y, t) for t in THRESHOLDS],
    }
    out.update(at_threshold(probs, y, thr))
    return out


# Folder layout, and YOLO images labelled as a whole (--image-labels).
IMAGE_LABEL_KIND = "whole photo, image label (no boxes)"


def picture_kind(src: samples.Source) -> str:
    """How a validation bill picture was made; visitors mostly photograph a single note."""
    if src.item is None or not src.item.boxes:
        return IMAGE_LABEL_KIND
    what = "note crop" if src.kind == "box" else "whole photo"
    return f"{what}, {'one note' if len(src.item.boxes) == 1 else 'several notes'} in the photo"


def by_kind(srcs: list[samples.Source], probs: np.ndarray, y: np.ndarray, thr: float) -> list:
    """Top-1, coverage and accuracy on answered bills for each kind of bill picture."""
    kinds = np.array([picture_kind(s) if t != NONE else "" for s, t in zip(srcs, y, strict=True)])
    rows = []
    for kind in sorted(set(kinds) - {""}):
        bills = kinds == kind
        r = at_threshold(probs[bills], y[bills], thr)
        rows.append({"kind": kind, "n": int(bills.sum()),
                     "top1_accuracy": float((probs[bills].argmax(1) == y[bills]).mean()),
                     "coverage": r["coverage"], "answered_accuracy": r["answered_accuracy"]})
    return rows


def source_figures(srcs: list[samples.Source], probs: np.ndarray, y: np.ndarray,
                   thr: float) -> dict:
    """What the model card needs beyond report(), from where each picture came from: the
    figures by kind of picture and the photo-counted intervals."""
    return {"kinds": by_kind(srcs, probs, y, thr),
            "intervals": target_intervals(srcs, probs, y, thr)}


def card_metrics(rep: dict) -> dict:
    keys = ["top1_accuracy", "none_as_bill_rate", "ece", "answered_accuracy", "coverage",
            "accuracy_at_90_coverage", "validation_images"]
    return {k: (round(rep[k], 4) if isinstance(rep[k], float) else rep[k]) for k in keys}


def format_report(rep: dict, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"top-1 (bills, 8-way argmax): {rep['top1_accuracy']:.4f}   "
                 f"top-1 among 7 denominations: {rep['top1_accuracy_7']:.4f}")
    lines.append(f"no-banknote answered as a denomination: {rep['none_as_bill_rate']:.4f} at the "
                 f"threshold, {rep['none_as_bill_argmax_rate']:.4f} by argmax")
    lines.append(f"threshold {rep['threshold']}: accuracy on answered "
                 f"{rep['answered_accuracy']:.4f}, coverage {rep['coverage']:.4f}   "
                 f"ECE {rep['ece']:.4f}")
    lines.append(f"images: {rep['validation_images']} ({rep['bill_images']} bills, "
                 f"{rep['none_images']} no banknote)")
    lines.append("per-class accuracy: " + ", ".join(
        f"{k} {v[0]:.3f} (n={v[1]})" for k, v in rep["per_class"].items() if v[0] is not None))
    for k in rep.get("kinds", []):
        lines.append(f"  {k['kind']}: n={k['n']} top-1 {k['top1_accuracy']:.4f}, coverage "
                     f"{k['coverage']:.4f}, accuracy on answered {k['answered_accuracy']:.4f}")
    lines.append("confusion (rows = truth, cols = predicted): " + " ".join(LABELS))
    for lab, row in zip(LABELS, rep["confusion"], strict=True):
        lines.append(f"  {lab:>7} " + " ".join(f"{v:6d}" for v in row))
    return "\n".join(lines)


def evaluate_predictor(predict, images: np.ndarray, y: np.ndarray, thr: float, input_spec: dict):
    """predict(batch of normalised images) -> probs; images uint8 RGB at the model's size."""
    scale = input_spec.get("scale", 1 / 255)
    mean = np.array(input_spec.get("mean", [0, 0, 0]), np.float32)
    std = np.array(input_spec.get("std", [1, 1, 1]), np.float32)
    probs = []
    for start in range(0, len(images), 64):
        x = (images[start : start + 64].astype(np.float32) * scale - mean) / std
        probs.append(predict(x))
    probs = np.concatenate(probs)
    return report(probs, y, thr), probs


def pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def _shown(path: Path) -> str:
    """A path as the card shows it: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def write_model_card(result: dict, ds: mdata.Dataset, path: Path) -> None:
    """docs/model-card.md from an evaluation result and the bundle card's "training" record
    (see export.export_and_choose)."""
    rep, rot, card = result["report"], result.get("rotated"), result["card"]
    info = card.get("training", {})
    thr = rep["threshold"]
    cal = info.get("calibration")
    ok = lambda good: "met" if good else "**not met**"  # noqa: E731

    def ci(measure: str) -> str:
        lo_hi = rep["intervals"][measure]
        return f"{pct(lo_hi[0])} - {pct(lo_hi[1])}" if lo_hi else ""

    from model import backbones

    bb = backbones.get(info.get("backbone", "mobilenetv2"))
    backgrounds = ("regions of the photos that touch no box, "
                   if info.get("background_negatives") else "")
    t = [
        "# Model card: US banknote identifier (`usbills`)", "",
        f"Bundle `model/bundles/usbills/` version {card['version']}, file `{card['model_file']}` "
        f"({card['format']}), generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} by "
        "`python -m model.train` / `python -m model.evaluate`. All figures below are measured by "
        "those commands on the de-duplicated validation split; nothing is copied from elsewhere.",
        "",
        "## What it does", "",
        "Classifies one photo into `USD-1, USD-2, USD-5, USD-10, USD-20, USD-50, USD-100` or "
        "`none` (no banknote). The app answers a denomination only when the top-1 class is a "
        f"denomination with probability >= the served threshold ({thr}); a confident `none` is "
        "\"No banknote found\", anything else \"cannot identify\", naming the notes it may be "
        "at 0.3 or more (none: \"No banknote found\").", "",
        "## Data", "",
        "**Dollar Classify v1** by a Roboflow user (workspace `ai-project-oessg`), "
        "https://universe.roboflow.com/ai-project-oessg/dollar-classify, licensed "
        "[CC BY 4.0](https://creativecommons.org/licenses/by/4.0/). 919 web images, resized by "
        "Roboflow to 640x640 (stretched), YOLO boxes for 7 classes. The data set is not "
        "redistributed in this repository; the bundle's weights are derived from it (CC BY 4.0 "
        "attribution above) and from the backbone's ImageNet weights (licence below).",
        "",
        f"- Layout read: `{ds.layout}`; {len(ds.split('train')) + len(ds.split('holdout'))} "
        f"training and {len(ds.split('valid'))} validation images after de-duplication"
        + (f" ({cal['images']} of the training images held out in a first, calibration "
           "pass: see Method)." if cal else "."),
        f"- **Near-duplicates**: {len(ds.duplicates)} validation images were perceptual-hash "
        "near-duplicates (64-bit DCT hash, Hamming distance <= 6) of a training image; they were "
        "moved to the training side so that no pair straddles the split.",
        f"- {ds.unlabelled + ds.image_labelled} images have no box at all. Looking at them, they "
        "show banknotes that were simply not annotated, so they are not negatives. "
        + (f"{ds.image_labelled} of them have a whole-image label in `{_shown(ds.image_labels)}` "
           "(one denomination each, labelled by hand; the validation split's are the \"image "
           f"label\" row below; the file says why the others have none); the other "
           f"{ds.unlabelled} are left out." if ds.image_labelled else "They are left out."),
        *([f"- **Label corrections**: the same file gives {ds.relabelled} boxed image"
           f"{'s' if ds.relabelled != 1 else ''} the right denomination (boxed as another one; "
           "found where a model disagreed with the training labels, `python -m model.evaluate "
           "--split train --errors FILE`, and checked by eye)."] if ds.relabelled else []),
        f"- Negatives (`none`): {backgrounds}procedural scenes, and other photos available "
        "offline (scikit-image and scikit-learn sample images; the validation uses photos "
        "never seen in training: "
        + ", ".join(scenes.SKIMAGE_VALID) + ").", "",
        "## Method", "",
        f"- Backbone: {bb.weights}. A test checks its ImageNet predictions on real photos "
        "(cat, coffee cup).",
        "- Samples: every box cropped with random margins (down to about half of the note), every "
        f"image holding one denomination as a whole, {backgrounds}procedural hard-negative "
        "scenes (hands, faces, people, wallets, cards, receipts, paper, screens, print; "
        "`model/scenes.py`) and sample photos as `none`; classes balanced by repetition. "
        f"{samples.HANDHELD_SHARE:.0%} of the box views are hand-held frames "
        "(`model/handheld.py`, the simulator of the hand-held evaluation below, on training "
        "scenes) cropped as the localiser crops them or left whole.",
        "- Augmentation (phone photos): any rotation (quarter turns and free angles), perspective, "
        "blur, low light, contrast/colour, glare blobs, sensor noise, JPEG quality 25-90.",
        f"- Training: {info.get('views', '?')} augmented views ({info.get('views_per_class', '?')}"
        " per class) pass once through the frozen lower part; its activations are cached. "
        "Stage 1 trains the softmax head on pooled features "
        f"({info.get('head_epochs', '?')} epochs), stage 2 fine-tunes {bb.split} and the head "
        f"({info.get('ft_epochs', '?')} epochs, Adam"
        + (f" warmed up over the first epoch to {info['ft_lr']:g}, then cosine-decayed"
           if info.get("ft_lr") else ", cosine-decayed") + ", BatchNorm frozen)"
        + (f", label smoothing {info['label_smoothing']:g}" if info.get("label_smoothing") else "")
        + f". Seed {info.get('seed', 0)}; {info.get('seconds', '?')} s on the 2-core build "
        "machine.",
        (f"- Calibration, pass 1 of 2: a model trained the same way, on the same views less "
         f"those of {cal['images']} held-out training images (picked by a hash of the file name; "
         f"{cal['held_back']} more were near-duplicates of training images and stayed in "
         f"training) is run on their {cal['pictures']} bill pictures, which fit a softmax "
         f"temperature of {cal['temperature']:g} (expected calibration error there "
         f"{cal['held_out_ece'][0]:.3f} -> {cal['held_out_ece'][1]:.3f}). Pass 2 trains the "
         "served model with the same seed on every training image and folds the temperature "
         "into it, so that its probabilities mean what they say. The validation split plays "
         "no part." if cal else "- No calibration pass (`--no-calibrate`): the probabilities "
         "are the network's own."),
        f"- Served threshold {thr}: "
        + (f"the highest that still answers {100 * cal['target_coverage']:g} % of the held-out "
           "notes (`--threshold auto`)" if cal and cal["auto"] and cal["threshold"] == thr
           else info["threshold_choice"] if info.get("threshold_choice")
           else "from `--threshold` (default 0.9998, chosen on simulated hand-held frames: "
           "docs/benchmarks.md, \"Threshold and scan rule\")")
        + (f"; on the held-out notes it answers {pct(cal['coverage'])} of them, "
           f"{pct(cal['answered_accuracy'])} of those right." if cal and cal["threshold"] == thr
           else "."),
        (f"- Localiser: the frozen lower network and a two-layer head map the whole frame to "
         f"a {card['localiser']['grid']}x{card['localiser']['grid']} grid of note coverage, "
         f"trained on {card['localiser']['training']['frames']} hand-held frames "
         f"(mean IoU {card['localiser']['training']['mean_iou']:.2f} on 10 % it did not fit); "
         "the service crops to the strongest blob (plus a margin) unless it fills most of "
         "the frame (`usbills_app/locate.py`)." if card.get("localiser") else
         "- No localiser: the classifier sees the whole frame."),
        f"- Input: RGB {card['input']['height']}x{card['input']['width']} (the crop or the "
        "whole photo, resized), `x/255`, then the card's mean/std; softmax inside the model."
        + (" The served model averages the probabilities for the photo and the photo turned "
           "180 degrees (both inside the model file, so twice the inference time of one pass)."
           if info.get("half_turn") else ""), "",
        "## Results (validation split, de-duplicated)", "",
        f"Validation pictures: {rep['validation_images']} ({rep['bill_images']} bill crops/images, "
        f"{rep['none_images']} without a banknote).", "",
        "The 95 % interval says how far each figure could be from the truth on a split this "
        "small: a target counts as met on the measured figure, but the interval shows whether "
        "the split is large enough to tell. Pictures cut from one photo tend to be right or "
        "wrong together, so the interval counts photos, not pictures: Wilson's interval on the "
        "effective number of pictures (Kish's design effect from the spread between photos; "
        "where every picture gives the same outcome, each photo counts once). The bill "
        f"pictures come from {rep['intervals']['photos']['bills']} photos, the no-banknote "
        f"pictures from {rep['intervals']['photos']['none']}.", "",
        "| measure | target | measured | 95 % interval | |", "|---|---|---|---|---|",
        f"| top-1 accuracy over the 7 denominations (8-way argmax) | >= 97 % | "
        f"{pct(rep['top1_accuracy'])} | {ci('top1_accuracy')} | "
        f"{ok(rep['top1_accuracy'] >= 0.97)} |",
        f"| top-1 among the 7 denominations only | | {pct(rep['top1_accuracy_7'])} | | |",
        f"| no-banknote answered as a denomination (threshold {thr}) | <= 2 % | "
        f"{pct(rep['none_as_bill_rate'])} | {ci('none_as_bill_rate')} "
        f"| {ok(rep['none_as_bill_rate'] <= 0.02)} |",
        f"| no-banknote whose argmax is a denomination | | "
        f"{pct(rep['none_as_bill_argmax_rate'])} | | |",
        f"| accuracy on answered bills (threshold {thr}) | >= 99 % | "
        f"{pct(rep['answered_accuracy'])} | {ci('answered_accuracy')} | "
        f"{ok(rep['answered_accuracy'] >= 0.99)} |",
        f"| coverage: bills answered (threshold {thr}) | >= 90 % | {pct(rep['coverage'])} | "
        f"{ci('coverage')} | {ok(rep['coverage'] >= 0.9)} |",
        "| accuracy on the 90 % of bills it is surest of (what the best threshold for 90 % "
        f"coverage would give; not a served setting) | | "
        f"{pct(rep.get('accuracy_at_90_coverage'))} | | |",
        f"| expected calibration error (15 bins) | | {rep['ece']:.3f} | | |",
    ]
    if rot:
        t.append(f"| top-1 on the bill pictures turned 90/180/270 degrees | | "
                 f"{pct(rot['top1_accuracy'])} | | |")
    t += ["", "Per class (accuracy, pictures):", "", "| class | accuracy | n |", "|---|---|---|"]
    t += [f"| {k} | {pct(v[0])} | {v[1]} |" for k, v in rep["per_class"].items()]
    t += ["", "Confusion matrix (rows = truth, columns = prediction):", "",
          "| | " + " | ".join(LABELS) + " |", "|---" * (len(LABELS) + 1) + "|"]
    t += [f"| **{lab}** | " + " | ".join(str(v) for v in row) + " |"
          for lab, row in zip(LABELS, rep["confusion"], strict=True)]
    if rep.get("kinds"):
        t += ["", "By kind of bill picture (a visitor usually photographs one note; crops from "
              "photos of several notes show parts of the neighbouring notes too):", "",
              f"| picture | n | top-1 | coverage (threshold {thr}) | accuracy on answered |",
              "|---|---|---|---|---|"]
        t += [f"| {k['kind']} | {k['n']} | {pct(k['top1_accuracy'])} | {pct(k['coverage'])} "
              f"| {pct(k['answered_accuracy'])} |" for k in rep["kinds"]]
    t += ["", "Threshold sweep (the served threshold is chosen without looking at validation):", "",
          "| threshold | accuracy on answered | coverage | no-banknote answered |",
          "|---|---|---|---|"]
    t += [f"| {s['threshold']} | {pct(s['answered_accuracy'])} | {pct(s['coverage'])} | "
          f"{pct(s['none_as_bill_rate'])} |" for s in rep["sweep"]]
    comp = info.get("comparison")
    if comp:
        t += ["", "## Export: float vs quantised", "",
              "Same validation pictures, one CPU thread, one image per call (median latency of "
              "the model call only):", "",
              "| export | size | top-1 | no-banknote answered | answered acc. | coverage | "
              "agrees with Keras (top-1) | median ms |", "|---|---|---|---|---|---|---|---|"]
        t += [f"| {c['name']} | {c['bytes'] / 1e6:.1f} MB | {pct(c['top1_accuracy'])} | "
              f"{pct(c['none_as_bill_rate'])} | {pct(c['answered_accuracy'])} | "
              f"{pct(c['coverage'])} | {pct(c['agreement'])} | {c['median_ms']:.1f} |"
              for c in comp]
        chosen = info.get("export")
        t += ["", f"Chosen: **{chosen}** (rule: among the `.tflite` exports, the app's default "
              "runtime, the fastest whose top-1, no-banknote rate, coverage and accuracy on "
              "answered notes at the served threshold are each no worse than the float "
              "model's by more than 0.5 points). "
              "Fastest measured: "
              f"{min(comp, key=lambda c: c['median_ms'])['name']}. The int8 export's softmax "
              "and half-turn mean run in float on its int8 logits (`model/export.py`, "
              "`float_softmax`), so its answers above 0.996 are not one step of 1/256"
              + (": this bundle's file was rewritten so after the table was measured "
                 "(`python -m model.export --float-softmax`; same weights)"
                 if info.get("float_softmax") else "") + "."]
    conf = np.array(rep["confusion"])
    pairs = sorted(((conf[i, j], LABELS[i], LABELS[j]) for i in range(len(LABELS))
                    for j in range(len(LABELS)) if i != j and conf[i, j]), reverse=True)[:4]
    handheld = result.get("handheld") or card.get("metrics", {}).get("handheld")
    if handheld:
        from model import handheld_eval

        t += [""] + handheld_eval.card_section(handheld)[:-1]
    t += ["", "## Limits", "",
          "- Most frequent validation errors (truth -> answer, count): "
          + "; ".join(f"{a} -> {b}: {n}" for n, a, b in pairs) + ". Errors concentrate on "
          "close-ups that show only a portrait or a corner numeral, fans and piles of notes, and "
          "old-series designs; the network fits its augmented training views almost perfectly, "
          "so the gap is generalisation from about a thousand annotated notes. "
          "`python -m model.evaluate --errors errors.png` draws the pictures it gets wrong.",
          "- The photos are web images (catalogue scans, stock photos, souvenir notes), not phone "
          "camera frames; real phone photos in poor light or at odd angles will do worse than "
          "the figures above, and the validation split is small (see the counts).",
          f"- The figures are those of one training run (seed {info.get('seed', 0)}). The same "
          "command rerun on another 2-core host gave other weights: web top-1 97.3 % (served int8 "
          "export; float 97.6 %), "
          "hand-held frames 61.3 % right and 1.99 % wrong (16), 1 wrong scan of 1072 (with "
          "the int8 softmax, at 0.995 and 4 agreeing frames in a row) "
          "(`python -m model.train --out DIR --card DIR.md "
          "--no-handheld-eval`, then `python -m model.handheld_eval --bundle DIR --no-card "
          "--no-page-sides`). Differences of that size between two trainings are noise, not "
          "a better recipe.",
          "- Negatives are procedural scenes (drawn hands, faces, wallets, cards, receipts, "
          "screens) and a few dozen sample photos, not photos of those things; coins and "
          "foreign currency were never seen and may be answered as a denomination. Foreign "
          "notes are the main risk. The "
          f"no-banknote figures rest on {rep['intervals']['photos']['none']} validation photos, "
          "hence their wide interval.",
          "- Old-series notes (before the 1996 designs) are a minority of the data, mostly "
          "catalogue scans.",
          "- Images holding several different denominations have no single right answer; the "
          "model names one of them.",
          "- Counterfeit detection is out of scope.", "",
          "## Reproduce", "", "```",
          "python -m model.train --data ../shared/data/usbills      # trains, exports, writes "
          "bundle + this card",
          "python -m model.evaluate --data ../shared/data/usbills   # re-evaluates the bundle",
          "python -m model.handheld_eval --data ../shared/data/usbills   # hand-held frames, "
          "negatives, scans",
          "```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(t), encoding="utf-8")


def set_threshold(bundle: Path, rep: dict) -> dict:
    """The report's threshold becomes the bundle's, with the card's figures at it. The
    hand-held figures (measured at the old one) go: python -m model.handheld_eval renews them."""
    card = json.loads((bundle / "card.json").read_text(encoding="utf-8"))
    if card["threshold"] != rep["threshold"]:
        card.setdefault("training", {})["threshold_choice"] = (
            f"set after training by `python -m model.evaluate --threshold {rep['threshold']} "
            f"--set-threshold` (it was {card['threshold']})")
    card["threshold"] = rep["threshold"]
    card["metrics"] = card_metrics(rep)
    write_card(bundle, card)
    return card


def evaluate_bundle(bundle: Path, data_dir: Path, threshold: float | None = None,
                    photos=None, image_labels: Path | None = mdata.DEFAULT_IMAGE_LABELS,
                    split: str = "valid") -> tuple[dict, mdata.Dataset]:
    """The bundle's figures on a split: "valid" (with held-out negative photos) or "train"
    (the images it learnt from, no photos: where its disagreements point at label errors)."""
    from model.predictors import Predictor

    card = json.loads((bundle / "card.json").read_text(encoding="utf-8"))
    thr = threshold if threshold is not None else card["threshold"]
    ds = mdata.dedup(mdata.load(data_dir, image_labels))
    if photos is None:
        photos = scenes.SKIMAGE_VALID if split == "valid" else []
    srcs, images, y = validation_set(ds.split(split), photos, card["input"]["height"])
    pred = Predictor(bundle / card["model_file"])
    rep, probs = evaluate_predictor(pred, images, y, thr, card["input"])
    rep.update(source_figures(srcs, probs, y, thr))
    rot = None
    if split == "valid":  # the label-error search on training pictures needs no turned copies
        rimgs, ry = rotated(images, y)
        rot = evaluate_predictor(pred, rimgs, ry, thr, card["input"])[0] if len(ry) else None
    names = [s.photo or s.item.path.name for s in srcs]
    return {"report": rep, "rotated": rot, "card": card, "images": images, "y": y,
            "probs": probs, "names": names}, ds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--bundle", type=Path, default=REPO / "model" / "bundles" / "usbills")
    p.add_argument("--threshold", type=options.threshold, default=None, help="default: the card's")
    p.add_argument("--set-threshold", action="store_true",
                   help="make --threshold the bundle's served threshold: write it and the "
                   "figures at it into card.json (the weights are unchanged)")
    mdata.add_image_labels_option(p)
    p.add_argument("--card", type=Path, default=REPO / "docs" / "model-card.md")
    p.add_argument("--no-card", action="store_true", help="do not write the model card")
    p.add_argument("--split", choices=("valid", "train"), default="valid",
                   help="'train': the pictures the model learnt from, to find mislabelled "
                   "ones with --errors (no model card)")
    p.add_argument("--errors", type=Path, metavar="IMAGE",
                   help="also write a contact sheet of the pictures the served model gets "
                   "wrong (.png, .jpg or .webp)")
    args = p.parse_args(argv)
    if args.errors and args.errors.suffix.lower() not in error_sheet.FORMATS:
        print(f"error: --errors {args.errors}: use a .png, .jpg or .webp file name",
              file=sys.stderr)
        return 2
    if args.set_threshold and (args.threshold is None or args.split != "valid"):
        print("error: --set-threshold needs --threshold T on the validation split",
              file=sys.stderr)
        return 2
    if not (args.bundle / "card.json").is_file():
        print(f"error: {args.bundle}: no card.json (train first: python -m model.train)",
              file=sys.stderr)
        return 2
    t0 = time.time()
    try:
        result, ds = evaluate_bundle(args.bundle, args.data, args.threshold,
                                     image_labels=args.image_labels, split=args.split)
    except (mdata.DataError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"data: {ds.layout} layout, {len(ds.split(args.split))} {args.split} images, "
          f"{len(ds.duplicates)} near-duplicates moved to train, {ds.image_labelled} labelled and "
          f"{ds.relabelled} corrected by --image-labels, {ds.unlabelled} unlabelled")
    print(format_report(result["report"], f"bundle {args.bundle}"))
    if result["rotated"]:
        print(f"rotated 90/180/270: top-1 {result['rotated']['top1_accuracy']:.4f}")
    print(f"({time.time() - t0:.0f} s)")
    if args.errors:
        try:
            n = error_sheet.write(result["images"], result["y"], result["probs"],
                                  result["report"]["threshold"], result["names"], args.errors)
        except OSError as e:
            print(f"error: --errors {args.errors}: {e}", file=sys.stderr)
            return 2
        print(f"wrote {args.errors}: {n} pictures the served model gets wrong" if n
              else f"the served model gets no {args.split} picture wrong: no error sheet written")
    if args.set_threshold:
        result["card"] = set_threshold(args.bundle, result["report"])
        print(f"wrote {args.bundle / 'card.json'}: threshold {args.threshold}")
    if args.split == "train":
        print("training split: the model learnt these pictures, so these figures say nothing "
              "about new photos; no model card written")
    elif not args.no_card:
        write_model_card(result, ds, args.card)
        print(f"wrote {args.card}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
