"""The scan-level decision: a note is named only when consecutive frames agree on it.

One frame can be wrong with confidence (a finger over the numeral, motion blur); the same
wrong note in ``frames`` frames in a row is far rarer. Each frame casts a vote: the note the
per-frame answer identified (calibrated confidence over the bundle's threshold) or None
(not sure, or no note). A note is identified once ``frames`` consecutive votes name it, with
no pause longer than ``max_gap_s`` between them; it is announced once, and again only after
``frames`` votes without it (it left the view) or another note's identification.

The page runs the same rule in JavaScript (static/js/answer.js, ``scanStep``); a browser test
feeds both the same votes. The API keeps no state: the answer carries the scan state as an
opaque token that the client sends back with the next frame (docs/api.md, "Scans").
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass

DEFAULT_FRAMES = 3
DEFAULT_MAX_GAP_S = 2.0
# The OpenAPI format name of a scan state token (opaque: only this server makes valid ones).
STATE_FORMAT = "usbills-scan-state"


class ScanStateError(ValueError):
    """A scan token that this server did not make (or a client changed)."""


@dataclass(frozen=True)
class Rule:
    frames: int = DEFAULT_FRAMES  # consecutive agreeing votes before a note is named
    max_gap_s: float = DEFAULT_MAX_GAP_S  # a longer pause between frames starts over

    @classmethod
    def from_card(cls, card: dict) -> Rule:
        """The bundle's rule (card "scan"), else the defaults."""
        scan = card.get("scan") or {}
        return cls(int(scan.get("frames", DEFAULT_FRAMES)),
                   float(scan.get("max_gap_s", DEFAULT_MAX_GAP_S)))


@dataclass
class State:
    label: str | None = None  # the note of the current run of votes (None: no note)
    run: int = 0  # votes in the current run
    t: float | None = None  # time of the last vote, seconds
    announced: str | None = None  # the note last announced, until it has gone
    absent: int = 0  # votes in a row without the announced note


@dataclass(frozen=True)
class Decision:
    status: str  # "identified" or "searching"
    label: str | None  # the identified note (None while searching)
    agreeing: int  # votes in a row for the current note
    announce: bool  # first identification since the note came into view


def step(state: State, vote: str | None, t: float, rule: Rule) -> Decision:
    """Add one frame's vote (at time ``t``) to ``state`` (changed in place)."""
    if state.t is not None and (t - state.t > rule.max_gap_s or t < state.t):
        state.label, state.run, state.announced, state.absent = None, 0, None, 0
    state.t = t
    if vote is not None and vote == state.label:
        state.run += 1
    else:
        state.label, state.run = vote, (1 if vote is not None else 0)
    if state.announced is not None:
        state.absent = 0 if vote == state.announced else state.absent + 1
        if state.absent >= rule.frames:
            state.announced, state.absent = None, 0
    identified = state.label is not None and state.run >= rule.frames
    announce = identified and state.label != state.announced
    if announce:
        state.announced, state.absent = state.label, 0
    return Decision("identified" if identified else "searching",
                    state.label if identified else None, state.run, announce)


def vote_of(answer: dict) -> str | None:
    """A per-frame API answer's vote: its label when it identified a note."""
    return answer["label"] if answer.get("identified") else None


def encode(state: State) -> str:
    raw = json.dumps(asdict(state), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, labels: set[str]) -> State:
    """The state in a token from ``encode``; ScanStateError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        state = State(**data)
    except (binascii.Error, ValueError, TypeError, RecursionError):
        raise ScanStateError("not a scan state") from None
    ok = (all(v is None or v in labels for v in (state.label, state.announced))
          and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**6
                  for v in (state.run, state.absent))
          and (state.t is None or (isinstance(state.t, int | float)
                                   and not isinstance(state.t, bool) and 0 <= state.t < 1e11)))
    if not ok:
        raise ScanStateError("not a scan state")
    return state
