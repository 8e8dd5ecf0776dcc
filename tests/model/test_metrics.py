"""Evaluation figures split by kind of bill picture (numpy only, no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model import evaluate
from model.classes import LABELS, NONE
from model.data import Item
from model.samples import Source


def test_by_kind_separates_single_note_photos_from_piles():
    one = Item(Path("one.jpg"), "valid", [(0, 0.1, 0.1, 0.9, 0.5)])
    pile = Item(Path("pile.jpg"), "valid", [(4, 0, 0, 0.5, 0.5), (4, 0.5, 0.5, 1, 1)])
    folder = Item(Path("mine.jpg"), "valid", label=2)
    srcs = [Source("box", 0, one, one.boxes[0][1:]), Source("whole", 0, one),
            Source("box", 4, pile, pile.boxes[0][1:]), Source("box", 4, pile, pile.boxes[1][1:]),
            Source("whole", 2, folder), Source("photo", NONE, photo="coffee")]
    y = np.array([s.label for s in srcs])
    probs = np.full((len(srcs), len(LABELS)), 0.01, np.float32)
    for i, (cls, conf) in enumerate([(0, 0.9), (0, 0.6), (4, 0.95), (5, 0.9), (2, 0.85),
                                     (NONE, 0.9)]):
        probs[i, cls] = conf
    rows = {r["kind"]: r for r in evaluate.by_kind(srcs, probs, y, 0.8)}
    assert set(rows) == {"note crop, one note in the photo", "whole photo, one note in the photo",
                         "note crop, several notes in the photo", evaluate.IMAGE_LABEL_KIND}
    assert rows["note crop, one note in the photo"]["answered_accuracy"] == 1.0
    assert rows["whole photo, one note in the photo"]["coverage"] == 0.0  # 0.6 < threshold
    pile = rows["note crop, several notes in the photo"]
    assert (pile["n"], pile["top1_accuracy"], pile["answered_accuracy"]) == (2, 0.5, 0.5)
    assert rows[evaluate.IMAGE_LABEL_KIND]["n"] == 1
