"""argparse types shared by the model commands (train, evaluate, bench): a bad value gives
argparse's one-line error and exit status 2, never a traceback."""

from __future__ import annotations

import argparse


def number_in(lo: float, hi: float, lo_open: bool = False, hi_open: bool = True):
    """A number between ``lo`` and ``hi`` (each bound open or closed)."""
    def check(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = float("nan")  # fails every comparison below
        if not ((lo < v if lo_open else lo <= v) and (v < hi if hi_open else v <= hi)):
            raise argparse.ArgumentTypeError(
                f"{text!r}: must be in {'(' if lo_open else '['}{lo:g}, {hi:g}"
                f"{')' if hi_open else ']'}")
        return v
    return check


# A served confidence threshold: 1 answers only certain pictures, 0 would answer everything.
threshold = number_in(0, 1, lo_open=True, hi_open=False)


def whole_number(lo: int):
    """A whole number >= ``lo``."""
    def check(text: str) -> int:
        if not text.isdigit() or int(text) < lo:
            raise argparse.ArgumentTypeError(f"{text!r}: must be a whole number >= {lo}")
        return int(text)
    return check


def thresholds(text: str) -> list[float]:
    """A comma-separated list of thresholds, each as ``threshold`` accepts it."""
    return [threshold(t.strip()) for t in text.split(",")]
