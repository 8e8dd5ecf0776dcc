"""The scan-level decision (usbills_app/scan.py) and the API's ?scan= parameter."""

from __future__ import annotations

import base64
import json

import pytest

from tests.app.conftest import solid
from usbills_app import scan

PREDICT = "/api/v1/predict"
RULE = scan.Rule(frames=3, max_gap_s=2.0)


def run(votes, rule=RULE, dt=0.5):
    state = scan.State()
    return [scan.step(state, v, i * dt, rule) for i, v in enumerate(votes)]


@pytest.mark.parametrize("frames", [1, 2, 3, 4, 5])
def test_never_names_a_note_fewer_than_k_frames_agree_on(frames):
    rule = scan.Rule(frames=frames)
    # Every pattern of up to 8 votes over two notes and "not sure".
    import itertools

    for votes in itertools.product(["USD-1", "USD-100", None], repeat=min(8, frames + 3)):
        for i, d in enumerate(run(votes, rule)):
            if d.status == "identified":
                assert d.label is not None
                assert votes[i - frames + 1:i + 1] == (d.label,) * frames


@pytest.mark.parametrize("frames,unsure", [(1, 1), (2, 1), (3, 1), (3, 2), (4, 1)])
def test_with_unsure_frames_still_k_votes_and_no_other_note(frames, unsure):
    """With ``unsure`` frames allowed, a named note still has ``frames`` votes among the last
    ``frames + unsure`` frames, and no other note was voted for since the first of them."""
    import itertools

    rule = scan.Rule(frames=frames, unsure=unsure)
    for votes in itertools.product(["USD-1", "USD-100", None], repeat=min(7, frames + 3)):
        for i, d in enumerate(run(votes, rule)):
            if d.status == "identified":
                window = votes[max(0, i - rule.window + 1):i + 1]
                named = [v for v in window if v is not None]
                assert named.count(d.label) >= frames
                first = len(named) - frames  # the run's first vote, counted from the end
                assert set(named[first:]) == {d.label}


def test_one_unsure_frame_does_not_start_over_two_do():
    rule = scan.Rule(frames=3, unsure=1)
    ds = run(["USD-20", "USD-20", None, "USD-20"], rule)
    assert [d.status for d in ds] == ["searching"] * 3 + ["identified"]
    assert ds[3].announce and ds[3].agreeing == 3
    ds = run(["USD-20", "USD-20", None, None, "USD-20"], rule)
    assert all(d.status == "searching" for d in ds)
    # Another note's vote starts over whatever the window.
    ds = run(["USD-20", "USD-20", "USD-1", "USD-20"], scan.Rule(frames=3, unsure=3))
    assert all(d.status == "searching" for d in ds) and ds[3].agreeing == 1
    # The strict rule (the default without a bundle's word) needs them in a row.
    assert run(["USD-20", "USD-20", None, "USD-20"])[3].status == "searching"


def test_announces_once_while_the_note_stays():
    ds = run(["USD-5"] * 10)
    assert [d.announce for d in ds] == [False, False, True] + [False] * 7
    assert all(d.status == "identified" and d.label == "USD-5" for d in ds[2:])
    assert [d.agreeing for d in ds[:3]] == [1, 2, 3]


def test_a_blip_does_not_name_a_note_or_announce_again():
    ds = run(["USD-5"] * 3 + ["USD-1"] + ["USD-5"] * 3 + [None] + ["USD-5"] * 3)
    assert [d.label for d in ds if d.announce] == ["USD-5"]
    assert "USD-1" not in {d.label for d in ds}


def test_announces_again_after_the_note_left_the_view():
    ds = run(["USD-5"] * 3 + [None] * 3 + ["USD-5"] * 3)
    assert [i for i, d in enumerate(ds) if d.announce] == [2, 8]


def test_a_different_note_is_announced_at_once_when_it_agrees():
    ds = run(["USD-5"] * 3 + ["USD-20"] * 3)
    assert [(i, d.label) for i, d in enumerate(ds) if d.announce] == [(2, "USD-5"), (5, "USD-20")]


def test_a_long_pause_starts_the_run_over():
    state = scan.State()
    assert scan.step(state, "USD-10", 0.0, RULE).agreeing == 1
    assert scan.step(state, "USD-10", 0.5, RULE).agreeing == 2
    d = scan.step(state, "USD-10", 5.0, RULE)  # 4.5 s later: another scan
    assert d.agreeing == 1 and d.status == "searching"
    # A clock going backwards (another replica, a restarted client) also starts over.
    assert scan.step(state, "USD-10", 1.0, RULE).agreeing == 1


def test_rule_from_card_with_defaults():
    assert scan.Rule.from_card({}) == scan.Rule(3, 2.0, 0)
    # A bundle made before "unsure" keeps the strict rule it was evaluated with.
    assert scan.Rule.from_card({"scan": {"frames": 2, "max_gap_s": 1.5}}) == scan.Rule(2, 1.5)
    rule = scan.Rule.from_card({"scan": {"frames": 3, "unsure": 1, "max_gap_s": 2.0}})
    assert rule == scan.Rule(3, 2.0, 1) and rule.window == 4
    # A bundle made before the scan's own threshold: every identified frame votes.
    assert rule.threshold == 0.0
    assert scan.Rule.from_card({"scan": {"frames": 2, "threshold": 0.9999}}).threshold == 0.9999


def test_a_frame_votes_only_at_the_rules_confidence():
    rule = scan.Rule(frames=2, threshold=0.9999)
    sure = {"identified": True, "label": "USD-5", "confidence": 0.9999}
    assert scan.vote_of(sure, rule) == "USD-5"
    # Named on its own (over the card's threshold) but not sure enough for a scan.
    assert scan.vote_of({**sure, "confidence": 0.99989}, rule) is None
    assert scan.vote_of({**sure, "identified": False}, scan.Rule()) is None


def test_state_token_round_trip_and_refusals():
    labels = {"USD-1", "USD-5", "none"}
    state = scan.State(["USD-5", None, "USD-5"], 12.5, "USD-1", 1)
    assert scan.decode(scan.encode(state), labels) == state
    forged = [base64.urlsafe_b64encode(json.dumps(x).encode()).decode() for x in (
        {"recent": ["USD-7"]}, {"recent": "USD-5"}, {"recent": [None] * 41}, {"absent": -1},
        {"label": "USD-7", "run": 1}, {"run": -1}, {"run": True}, {"t": "now"}, {"extra": 1},
        [1, 2])]
    for token in ["", "!!!", "bm90IGpzb24", *forged]:
        with pytest.raises(scan.ScanStateError):
            scan.decode(token, labels)


def test_token_from_before_the_window_goes_on():
    """A scan in flight across an upgrade: the old token (a note and its run) still counts."""
    old = {"label": "USD-5", "run": 2, "t": 12.5, "announced": None, "absent": 0}
    token = base64.urlsafe_b64encode(json.dumps(old).encode()).decode().rstrip("=")
    state = scan.decode(token, {"USD-5", "none"})
    assert state == scan.State(["USD-5", "USD-5"], 12.5, None, 0)
    d = scan.step(state, "USD-5", 13.0, RULE)
    assert d.status == "identified" and d.announce


def test_api_scan_of_consecutive_frames(client):
    """A client sends frames with ?scan=: the third agreeing frame names the note, once."""
    token, seen = "new", []
    for label in ["USD-20", "USD-20", "USD-20", "USD-20"]:
        r = client.post(f"{PREDICT}?scan={token}", data=solid(label), content_type="image/jpeg")
        assert r.status_code == 200
        s = r.get_json()["scan"]
        token = s["state"]
        seen.append((s["status"], s["announce"], s["agreeing_frames"]))
    # agreeing_frames counts within the window (3 frames: this bundle's card has no "unsure").
    assert seen == [("searching", False, 1), ("searching", False, 2), ("identified", True, 3),
                    ("identified", False, 3)]
    assert s["label"] == "USD-20" and s["display_name"] == "Twenty dollars"
    assert s["value"] == 20 and s["frames_needed"] == 3 and s["window_frames"] == 3
    assert s["min_confidence"] == 0.0  # this bundle's card has no scan threshold


def test_api_scan_frames_under_the_rules_threshold_do_not_vote(bundle_dir, settings, tmp_path):
    """Frames each named on their own still name nothing in a scan below the card's
    scan.threshold; at it, the scan names the note."""
    import dataclasses
    import shutil

    from usbills_app import create_app, runtime
    from usbills_app.bundle import write_card

    def scan_of(threshold):
        dest = shutil.copytree(bundle_dir, tmp_path / str(threshold))
        card = json.loads((dest / "card.json").read_text())
        card["scan"] = {"frames": 2, "threshold": threshold}
        write_card(dest, card)
        app = create_app(dataclasses.replace(settings, model_dir=dest),
                         model=runtime.load_model(dest))
        token, out = "new", []
        for _ in range(3):
            body = app.test_client().post(f"{PREDICT}?scan={token}", data=blend,
                                          content_type="image/png").get_json()
            token = body["scan"]["state"]
            out.append((body["identified"], body["confidence"], body["scan"]["status"]))
            assert body["scan"]["min_confidence"] == threshold
        return out

    blend = solid((90, 166, 166), fmt="PNG")  # the $20's colour towards grey: about 0.9996
    named = scan_of(0.5)
    confidence = named[0][1]
    assert [s for _, _, s in named] == ["searching", "identified", "identified"]
    assert 0.99 < confidence < 0.9999
    higher = scan_of(confidence + 1e-6)
    assert all(ok for ok, _, _ in higher) and [s for _, _, s in higher] == ["searching"] * 3


def test_api_scan_not_sure_frames_break_the_run(client):
    token = "new"
    for label in ["USD-20", "USD-20", "grey", "USD-20"]:
        s = client.post(f"{PREDICT}?scan={token}&lang=es", data=solid(label),
                        content_type="image/jpeg").get_json()["scan"]
        token = s["state"]
    # Two votes among the last 3 frames: not the 3 in a row this bundle's rule needs.
    assert s["status"] == "searching" and s["agreeing_frames"] == 2 and s["label"] is None


def test_api_scan_batch_counts_as_consecutive_frames(client):
    imgs = [base64.b64encode(solid("USD-1")).decode()] * 3
    body = client.post(f"{PREDICT}?scan=new", json={"images": imgs}).get_json()
    assert len(body["results"]) == 3
    assert body["scan"]["status"] == "identified" and body["scan"]["announce"] is True
    # Without ?scan= nothing changes: no scan object.
    assert "scan" not in client.post(PREDICT, json={"images": imgs}).get_json()


def test_api_rejects_a_forged_scan_state(client):
    r = client.post(f"{PREDICT}?scan=abc", data=solid("USD-1"), content_type="image/jpeg")
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["code"] == "invalid_parameter" and "scan must be 'new'" in err["message"]
