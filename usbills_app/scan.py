"""The scan-level decision: a note is named only when several recent frames agree on it.

One frame can be wrong with confidence (a finger over the numeral, motion blur); the same
wrong note in several frames of a short window is far rarer. Each frame casts a vote: the note
the per-frame answer identified (calibrated confidence over the bundle's threshold, and over
the rule's own ``threshold`` when it has one) or None (not sure, or no note). A note is
identified once ``frames`` votes among the last ``frames + unsure`` name it and no other note
was named after the first of them, with no pause longer than ``max_gap_s`` between frames; it
is announced once, and again only after ``frames`` votes without it (it left the view) or
another note's identification. ``unsure`` 0 is the strict rule, that many consecutive votes;
1 lets a hand-held scan go through one unsure frame (a blur, a finger passing) without starting
over.

The page runs the same rule in JavaScript (static/js/answer.js, ``scanStep``); a browser test
feeds both the same votes. The API keeps no state: the answer carries the scan state as an
opaque token that the client sends back with the next frame (docs/api.md, "Scans").
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass, field

DEFAULT_FRAMES = 3
DEFAULT_UNSURE = 0  # consecutive votes, as before there was a choice; bundles say (card "scan")
DEFAULT_MAX_GAP_S = 2.0
MAX_WINDOW = 40  # frames + unsure, at most (20 each in a bundle)
# The OpenAPI format name of a scan state token (opaque: only this server makes valid ones).
STATE_FORMAT = "usbills-scan-state"


class ScanStateError(ValueError):
    """A scan token that this server did not make (or a client changed)."""


@dataclass(frozen=True)
class Rule:
    frames: int = DEFAULT_FRAMES  # agreeing votes before a note is named
    max_gap_s: float = DEFAULT_MAX_GAP_S  # a longer pause between frames starts over
    unsure: int = DEFAULT_UNSURE  # unsure frames the agreeing votes may straddle
    # A frame votes only at this confidence or more (0: any identified frame). A scan may ask
    # more of each frame than a single photo's answer: it has other frames to wait for.
    threshold: float = 0.0

    @property
    def window(self) -> int:
        """The votes count among the last this many frames."""
        return self.frames + self.unsure

    @classmethod
    def from_card(cls, card: dict) -> Rule:
        """The bundle's rule (card "scan"), else the defaults."""
        scan = card.get("scan") or {}
        return cls(int(scan.get("frames", DEFAULT_FRAMES)),
                   float(scan.get("max_gap_s", DEFAULT_MAX_GAP_S)),
                   int(scan.get("unsure", DEFAULT_UNSURE)),
                   float(scan.get("threshold", 0.0)))


@dataclass
class State:
    recent: list = field(default_factory=list)  # the last votes, oldest first (up to window)
    t: float | None = None  # time of the last vote, seconds
    announced: str | None = None  # the note last announced, until it has gone
    absent: int = 0  # votes in a row without the announced note


@dataclass(frozen=True)
class Decision:
    status: str  # "identified" or "searching"
    label: str | None  # the identified note (None while searching)
    agreeing: int  # votes in the window for the latest note, since another note's
    announce: bool  # first identification since the note came into view


def agreeing(recent: list) -> tuple[str | None, int]:
    """The note last voted for among ``recent`` and its votes since another note's."""
    named = [v for v in recent if v is not None]
    if not named:
        return None, 0
    run = 0
    for v in reversed(named):
        if v != named[-1]:
            break
        run += 1
    return named[-1], run


def step(state: State, vote: str | None, t: float, rule: Rule) -> Decision:
    """Add one frame's vote (at time ``t``) to ``state`` (changed in place)."""
    if state.t is not None and (t - state.t > rule.max_gap_s or t < state.t):
        state.recent, state.announced, state.absent = [], None, 0
    state.t = t
    state.recent = (state.recent + [vote])[-rule.window:]
    label, run = agreeing(state.recent)
    if state.announced is not None:
        state.absent = 0 if vote == state.announced else state.absent + 1
        if state.absent >= rule.frames:
            state.announced, state.absent = None, 0
    identified = label is not None and run >= rule.frames
    announce = identified and label != state.announced
    if announce:
        state.announced, state.absent = label, 0
    return Decision("identified" if identified else "searching",
                    label if identified else None, run, announce)


def vote_of(answer: dict, rule: Rule) -> str | None:
    """A per-frame API answer's vote: its label when it identified a note with at least the
    rule's confidence."""
    if answer.get("identified") and (not rule.threshold or answer["confidence"] >= rule.threshold):
        return answer["label"]
    return None


def encode(state: State) -> str:
    raw = json.dumps(asdict(state), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, labels: set[str]) -> State:
    """The state in a token from ``encode``; ScanStateError for anything else. A token from
    before the vote window (a note and its run of votes) is read as that many votes."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if isinstance(data, dict) and "run" in data and "recent" not in data:
            run, label = data.pop("run"), data.pop("label", None)
            if not _count(run):
                raise ValueError(run)
            data["recent"] = [label] * min(run, MAX_WINDOW) if label is not None else []
        state = State(**data)
    except (binascii.Error, ValueError, TypeError, RecursionError):
        raise ScanStateError("not a scan state") from None
    ok = (isinstance(state.recent, list) and len(state.recent) <= MAX_WINDOW
          and all(v is None or v in labels for v in (*state.recent, state.announced))
          and _count(state.absent)
          and (state.t is None or (isinstance(state.t, int | float)
                                   and not isinstance(state.t, bool) and 0 <= state.t < 1e11)))
    if not ok:
        raise ScanStateError("not a scan state")
    return state


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**6
