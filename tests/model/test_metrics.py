"""Evaluation figures split by kind of bill picture (numpy only, no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model import calibrate, evaluate
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


def _answers(rows: list[tuple[int, int, float]]):
    """(truth, answer, confidence) rows -> probs, y."""
    probs = np.full((len(rows), len(LABELS)), 0.0, np.float32)
    for i, (_, answer, conf) in enumerate(rows):
        probs[i] = (1 - conf) / (len(LABELS) - 1)
        probs[i, answer] = conf
    return probs, np.array([t for t, _, _ in rows])


def test_threshold_is_the_most_cautious_that_answers_the_target_share():
    # Ten notes at confidences 0.95, 0.90, ... 0.50 (one of them wrong), a no-banknote picture.
    rows = [(1, 1, round(0.95 - 0.05 * i, 2)) for i in range(9)] + [(2, 3, 0.5)]
    probs, y = _answers(rows + [(NONE, NONE, 0.99)])
    choice = calibrate.choose_threshold(probs, y, 0.9)
    assert choice["threshold"] == 0.55  # answers the nine surest notes, not the tenth
    assert (choice["coverage"], choice["answered_accuracy"]) == (0.9, 1.0)
    assert (choice["pictures"], choice["target"]) == (10, 0.9)
    assert calibrate.choose_threshold(probs, y, 0.5)["threshold"] == 0.75
    assert calibrate.choose_threshold(probs, y, 1.0)["threshold"] == 0.5


def test_threshold_falls_to_the_bottom_of_the_grid_when_too_few_notes_are_answered():
    probs, y = _answers([(1, NONE, 0.9), (1, 1, 0.2)])
    assert calibrate.choose_threshold(probs, y, 0.9)["threshold"] == calibrate.CHOICE_GRID[0]


def test_temperature_sharpens_an_unsure_model_without_changing_its_answers():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (2000, len(LABELS)))
    true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(len(LABELS), p=p) for p in true])  # softmax(logits) is calibrated
    probs = np.exp(logits / 4)  # the model says it with a quarter of the logits
    probs /= probs.sum(1, keepdims=True)
    t = calibrate.fit_temperature([probs], y)
    assert 0.2 < t < 0.3  # undoes the 4x flattening
    sharp = calibrate.tempered([probs], t)
    assert (sharp.argmax(1) == probs.argmax(1)).all()
    right = probs.argmax(1) == y
    assert evaluate.ece(sharp.max(1), right) < evaluate.ece(probs.max(1), right) / 3
    assert np.allclose(calibrate.tempered([probs, probs[::-1]], 1.0), (probs + probs[::-1]) / 2)


def test_accuracy_at_coverage_counts_the_surest_bill_pictures():
    # Ten bill pictures: the surest nine hold one mistake, the least sure one is also wrong.
    rows = [(1, 1, 0.99 - 0.01 * i) for i in range(8)] + [(2, 3, 0.95), (4, 5, 0.4)]
    probs, y = _answers(rows + [(NONE, 1, 0.99)])  # a no-banknote picture does not count
    assert evaluate.accuracy_at_coverage(probs, y, 0.9) == 8 / 9
    assert evaluate.accuracy_at_coverage(probs, y, 1.0) == 0.8
    probs, y = _answers([(1, NONE, 0.9), (1, 1, 0.9)])  # half the notes read as "no note"
    assert evaluate.accuracy_at_coverage(probs, y, 0.9) is None


def test_interval_shows_what_a_small_split_can_tell():
    # 0 of 84 no-banknote pictures answered: the true rate could still be above the 2 % target.
    lo, hi = evaluate.interval(0.0, 84)
    assert lo == 0.0 and 0.04 < hi < 0.05
    lo, hi = evaluate.interval(0.5, 100)  # Wilson: symmetric about 1/2, about +-9.6 points
    assert abs(lo - 0.4038) < 1e-3 and abs(hi - 0.5962) < 1e-3
    assert evaluate.interval(0.9, 10_000)[1] - evaluate.interval(0.9, 10_000)[0] < 0.013
    assert evaluate.interval(1.0, 0) is None


def test_pictures_from_one_photo_count_as_fewer_in_the_interval():
    photos = np.repeat(np.arange(10), 5)  # ten photos, five pictures cut from each
    # Each photo's pictures all right or all wrong: worth one picture per photo.
    together = np.repeat(np.arange(10) < 5, 5)
    assert evaluate.effective_pictures(together, photos) == 10
    # Right and wrong mixed the same way in every photo: nothing shared, worth all fifty.
    mixed = np.tile([True, False, True, False, True], 10)
    assert evaluate.effective_pictures(mixed, photos) == 50
    # Every picture its own photo: plain Wilson.
    assert evaluate.photo_interval(together, np.arange(50)) == evaluate.interval(0.5, 50)
    lo, hi = evaluate.photo_interval(together, photos)
    assert (lo, hi) == evaluate.interval(0.5, 10) and hi - lo > 0.5
    # No error at all: the correlation is unknown, so each photo counts once. 14 crops of
    # each of 6 no-banknote photos tell little more than 6 photos would.
    none = np.zeros(84, bool)
    assert evaluate.effective_pictures(none, np.repeat(np.arange(6), 14)) == 6
    assert evaluate.photo_interval(none, np.repeat(np.arange(6), 14))[1] > 0.35
    assert evaluate.photo_interval(none[:0], photos[:0]) is None


def test_an_export_replaces_float_only_if_visitors_would_not_notice():
    from model.export import MAX_BUNDLE_BYTES, acceptable

    ref = {"top1_accuracy": 0.932, "none_as_bill_rate": 0.0, "coverage": 0.818,
           "answered_accuracy": 0.9922, "bytes": 9e6}
    assert acceptable({**ref, "top1_accuracy": 0.937, "bytes": 3e6}, ref)
    assert acceptable({**ref, "coverage": 0.814}, ref)
    assert not acceptable({**ref, "coverage": 0.763}, ref)  # same answers, fewer given
    assert not acceptable({**ref, "top1_accuracy": 0.92}, ref)
    assert not acceptable({**ref, "none_as_bill_rate": 0.024}, ref)
    assert not acceptable({**ref, "bytes": MAX_BUNDLE_BYTES + 1}, ref)
    # 2 more wrong answers of about 385 (5 instead of 3): more top-1 and coverage do not pay
    assert not acceptable({**ref, "top1_accuracy": 0.934, "coverage": 0.820,
                           "answered_accuracy": 380 / 385}, ref)
    assert acceptable({**ref, "answered_accuracy": 382 / 386}, ref)  # one more wrong
