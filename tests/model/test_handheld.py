"""The hand-held simulator (model/handheld.py) and its scenes (model/scenes.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from model import handheld, scenes
from model.classes import NONE
from tests.synth import bill


def note():
    return bill(20, (240, 100), seed=3)


def test_frames_are_deterministic_with_a_seed():
    a = handheld.render(note(), 4, random.Random(11))
    b = handheld.render(note(), 4, random.Random(11))
    c = handheld.render(note(), 4, random.Random(12))
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert np.array_equal(a.quad, b.quad) and a.conditions == b.conditions
    assert not np.array_equal(np.asarray(a.image), np.asarray(c.image)) or \
        not np.array_equal(a.quad, c.quad)


def test_frames_look_hand_held():
    """Sizes 224-640, note 25-100 % of the width, at least half in view, tilt <= 30."""
    widths, tilts, fingers = [], [], 0
    for seed in range(60):
        f = handheld.render(note(), 4, random.Random(seed))
        assert f.image.size in handheld.FRAME_SIZES and f.label == 4 and f.kind == "note"
        assert f.visible >= handheld.MIN_VISIBLE - 0.05
        assert 0 <= f.conditions["tilt"] <= handheld.MAX_TILT
        widths.append(f.conditions["width"])
        tilts.append(f.conditions["tilt"])
        fingers += f.conditions["fingers"]
        extent = f.quad[:, 0].max() - f.quad[:, 0].min()
        assert extent == pytest.approx(f.conditions["width"] * f.image.size[0], rel=1e-6)
    assert min(widths) < 0.4 and max(widths) > 0.8 and max(tilts) > 20
    assert 15 < fingers < 55  # fingers over the note in most, not all, frames


def test_the_note_is_where_the_quad_says():
    """The coverage grid (the localiser's target) marks the cells the note covers."""
    frame = handheld.render(note(), 4, random.Random(5), frame_size=(320, 240),
                            pose=handheld.Pose(0.5, 0.0, 0.0, (160, 120)), occlude=False,
                            fold=False)
    grid = handheld.coverage_mask(frame.quad, (320, 240), 16)
    # 160 x 67 px of a 320 x 240 frame: 14 % of it
    assert grid.shape == (16, 16) and 0.12 < grid.mean() < 0.17
    assert grid[8, 8] == pytest.approx(1.0) and grid[0, 0] == 0.0
    assert handheld.coverage_mask(None, (320, 240), 16).sum() == 0


def test_negative_frames_have_no_note():
    for kind in scenes.KINDS:
        rng = random.Random(1)
        f = handheld.render(None, NONE, rng, background=scenes.scene(rng, (320, 240), kind))
        assert f.label == NONE and f.quad is None and f.kind == kind
        assert f.image.size == (320, 240)


def test_one_scene_sent_at_two_sizes():
    """sent_frames: a camera of twice a simulator size, shrunk to each longest side given, the
    same scene and JPEG quality in each (the page's frame-size comparison)."""
    big, small = handheld.sent_frames(note(), 4, random.Random(3), [1024, 512])
    w, h = big.image.size
    assert (w // 2, h // 2) in handheld.FRAME_SIZES and max(w, h) <= 1024
    assert max(small.image.size) == min(512, max(w, h))
    assert small.image.size[0] / w == pytest.approx(small.image.size[1] / h, rel=0.01)
    k = small.image.size[0] / w
    assert np.allclose(small.quad, big.quad * k, rtol=0.01, atol=1)
    assert big.conditions == small.conditions and big.label == small.label == 4
    again = handheld.sent_frames(note(), 4, random.Random(3), [1024, 512])
    assert np.array_equal(np.asarray(again[1].image), np.asarray(small.image))


def test_one_scan_sent_at_two_sizes():
    """sent_sequence: a scan through a camera of twice a simulator size, sent at each longest
    side given; the same scan's path and cameras in each (the page's scans at two sizes)."""
    big, small = handheld.sent_sequence(note(), 4, random.Random(5), [1024, 512])
    assert len(big) == len(small) == 12
    assert len({f.image.size for f in big}) == 1 and len({f.image.size for f in small}) == 1
    w, h = big[0].image.size
    assert (w // 2, h // 2) in handheld.FRAME_SIZES and max(w, h) <= 1024
    assert max(small[0].image.size) == min(512, max(w, h))
    k = small[0].image.size[0] / w
    assert all(np.allclose(s.quad, b.quad * k, rtol=0.01, atol=1) for s, b in zip(small, big))
    assert [f.visible for f in small] == [f.visible for f in big]
    assert min(f.visible for f in big[2:10]) >= 0.7 and big[0].visible < big[2].visible
    again = handheld.sent_sequence(note(), 4, random.Random(5), [1024, 512])
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image))
               for a, b in zip(small, again[1]))


def test_shrink_keeps_small_frames():
    from PIL import Image

    assert handheld.shrink(Image.new("RGB", (640, 480)), 1024).size == (640, 480)
    assert handheld.shrink(Image.new("RGB", (1280, 720)), 1024).size == (1024, 576)


@pytest.mark.parametrize("kind", scenes.KINDS)
def test_every_scene_kind_renders_at_every_size(kind):
    for seed in range(20):
        rng = random.Random(seed)
        size = rng.choice(handheld.FRAME_SIZES + [(64, 48)])
        img, got = scenes.scene(rng, size, kind)
        assert img.size == size and img.mode == "RGB" and got == kind


def test_a_scan_enters_holds_and_leaves():
    frames = handheld.sequence(note(), 4, random.Random(2))
    assert len(frames) == 12
    assert len({f.image.size for f in frames}) == 1
    visible = [f.visible for f in frames]
    assert min(visible[2:10]) >= 0.7  # held in view
    assert visible[0] < visible[2] and visible[-1] < visible[9]  # moving in, moving out
    again = handheld.sequence(note(), 4, random.Random(2))
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image))
               for a, b in zip(frames, again))


def test_a_scans_frames_keep_their_fingers_fold_and_light():
    # In one scan the hand holds the note the same way under the same light; only the pose,
    # blur, noise and JPEG change. Frames that redrew them would make errors look independent.
    bg = (Image.new("RGB", (320, 240), (120, 130, 140)), "flat")
    pose = handheld.Pose(0.6, 10.0, 0.0, (160.0, 120.0))

    def frame(seed, steady):
        return np.asarray(handheld.render(note(), 4, random.Random(seed), (320, 240), pose, bg,
                                          occlude=True, fold=True, axis_seed=3,
                                          steady_seed=steady).image, np.float32)

    for s in range(4):
        same_scan = np.abs(frame(s, 9) - frame(s + 100, 9)).mean()
        other_scan = np.abs(frame(s, 9) - frame(s, 10 + s)).mean()
        assert same_scan < other_scan / 2, (s, same_scan, other_scan)
