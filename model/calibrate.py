"""Calibration of the served model on held-out training images (never on validation): a
softmax temperature so that its probabilities mean what they say, then the served threshold.

A threshold chosen for 99 % right answers on a few hundred held-out pictures swings with
one or two confident mistakes (or mislabelled boxes: the training split has some), so the
threshold is chosen for coverage, which such a sample estimates well: the most cautious
threshold that still answers the target share of notes.

Label smoothing trains the model to be unsure (no target above 0.9), so its raw
probabilities are too low; temperature scaling (Guo et al., 2017) divides the logits by one
number fitted on pictures the model never saw. It cannot change which class comes first.
"""

from __future__ import annotations

import numpy as np

from model.classes import NONE
from model.evaluate import at_threshold

CHOICE_GRID = tuple(round(0.3 + 0.01 * i, 2) for i in range(70))  # 0.30 ... 0.99
# A grid over log T instead of an optimiser: one parameter, a few hundred cheap evaluations.
TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(10.0), 400))


def tempered(pass_probs: list[np.ndarray], t: float) -> np.ndarray:
    """The served probabilities with the logits divided by ``t``: each pass's softmax
    (softmax(log p / t) equals softmax(logits / t)), then their mean, as the model averages."""
    out = []
    for p in pass_probs:
        z = np.log(np.clip(p, 1e-12, 1.0)) / t
        z = np.exp(z - z.max(1, keepdims=True))
        out.append(z / z.sum(1, keepdims=True))
    return np.mean(out, 0)


def fit_temperature(pass_probs: list[np.ndarray], y: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of the true classes."""
    idx = np.arange(len(y))
    nll = [-np.log(np.clip(tempered(pass_probs, t)[idx, y], 1e-12, 1.0)).mean()
           for t in TEMPERATURES]
    return float(round(TEMPERATURES[int(np.argmin(nll))], 4))


def choose_threshold(probs: np.ndarray, y: np.ndarray, target_coverage: float,
                     grid=CHOICE_GRID) -> dict:
    """The highest grid threshold that still answers at least ``target_coverage`` of the bill
    pictures with a denomination (right or wrong): as cautious as the coverage target allows.
    The lowest grid value if none does."""
    chosen = grid[0]
    for t in grid:  # coverage only falls as the threshold rises
        if at_threshold(probs, y, t)["coverage"] < target_coverage:
            break
        chosen = t
    return {**at_threshold(probs, y, chosen), "target": target_coverage,
            "pictures": int((y != NONE).sum())}
