"""Which validation pictures the error sheet shows, and in what order (numpy only)."""

from __future__ import annotations

import numpy as np

from model import error_sheet
from model.classes import LABELS, NONE


def probs_for(rows):
    p = np.zeros((len(rows), len(LABELS)), np.float32)
    for i, (cls, conf) in enumerate(rows):
        p[i, cls] = conf
        p[i, (cls + 1) % len(LABELS)] = 1 - conf
    return p


def test_failures_are_what_a_visitor_sees_go_wrong():
    y = np.array([0, 1, NONE, NONE, 2, 3, 4])
    probs = probs_for([(0, 0.9),     # right answer: not shown
                       (0, 0.95),    # $2 answered as $1
                       (3, 0.85),    # no note answered as $10
                       (NONE, 0.9),  # no note found: right
                       (2, 0.5),     # $5 left unanswered
                       (NONE, 0.9),  # $10 said to be no note
                       (5, 0.99)])   # $20 answered as $50, most confident
    got = error_sheet.failures(probs, y, 0.8)
    assert [(i, what) for i, what, _ in got] == [
        (6, "USD-20 -> USD-50"), (1, "USD-2 -> USD-1"), (2, "none -> USD-10"),
        (5, "USD-10 -> none"), (4, "USD-5 -> no answer")]
    assert got[-1][2] == "top: USD-5 0.50"


def test_no_failures_no_sheet(tmp_path):
    y = np.array([0, NONE])
    probs = probs_for([(0, 0.99), (NONE, 0.6)])  # an unsure "none" is not a failure
    out = tmp_path / "errors.png"
    assert error_sheet.write(np.zeros((2, 8, 8, 3), np.uint8), y, probs, 0.8, ["a", "b"], out) == 0
    assert not out.exists()
