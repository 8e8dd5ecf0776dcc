"""The hand-held camera simulator: a note as a phone or laptop camera sees it when a person
holds it up, and short scans (the note moves into view, is held, moves out).

A frame is a note picture (cut from a photo by its box) warped onto a scene (model.scenes):
25-100 % of the frame width, any rotation, tilted up to 30 degrees, partly out of frame (at
least half of the note in view), sometimes folded, with fingers and thumbs over it, then the
camera: motion and defocus blur, low light or over-exposure, colour casts and wrong white
balance, noise, JPEG quality 30-70, 224-640 px frames. Everything comes from one
``random.Random``: the same seed gives the same frames. Training renders frames of training
notes on training scenes; the hand-held evaluation renders validation notes on other scenes.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from model import scenes

FRAME_SIZES = [(640, 480), (480, 640), (512, 384), (384, 512), (640, 360), (360, 640),
               (320, 240), (240, 320), (224, 224), (512, 512)]
MAX_TILT = 30.0  # degrees
MIN_VISIBLE = 0.5  # share of the note in view (EyeNote asks for at least half)
JPEG_QUALITY = (30, 70)  # a cheap camera's or a page's JPEG, lowest and highest


@dataclass
class Frame:
    image: Image.Image
    label: int  # a class index; NONE for a scene without a note
    quad: np.ndarray | None  # the note's corners in frame pixels (4x2), None without a note
    visible: float  # share of the note's area inside the frame
    kind: str  # "note" or the scene's kind
    conditions: dict | None = None  # width share, tilt, fingers, fold (for the report)


def perspective_coeffs(dst, src) -> tuple:
    """PIL's PERSPECTIVE coefficients mapping output points ``dst`` to input points ``src``."""
    a, b = [], []
    for (X, Y), (x, y) in zip(dst, src, strict=True):
        a.append([X, Y, 1, 0, 0, 0, -x * X, -x * Y])
        a.append([0, 0, 0, X, Y, 1, -y * X, -y * Y])
        b += [x, y]
    return tuple(np.linalg.solve(np.array(a, float), np.array(b, float)))


def note_quad(rng: random.Random, frame: tuple[int, int], note: tuple[int, int],
              width_share: float, angle: float, tilt: float, centre) -> np.ndarray:
    """Corners of a ``note`` (w, h) picture seen by a pinhole camera: turned by ``angle``,
    tilted by ``tilt`` degrees about a random axis in its plane, centred at ``centre``, its
    extent ``width_share`` of the frame width."""
    nw, nh = note
    pts = np.array([[-nw / 2, -nh / 2, 0], [nw / 2, -nh / 2, 0], [nw / 2, nh / 2, 0],
                    [-nw / 2, nh / 2, 0]], float)
    a = math.radians(angle)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    axis = rng.uniform(0, math.pi)
    u = np.array([math.cos(axis), math.sin(axis), 0.0])
    t = math.radians(tilt)
    k = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    rt = np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * (k @ k)  # Rodrigues
    p = pts @ (rt @ rz).T
    dist = 2.5 * max(nw, nh)  # a hand-held distance: noticeable but not extreme foreshortening
    xy = p[:, :2] * dist / (dist + p[:, 2:3])
    extent = xy[:, 0].max() - xy[:, 0].min()
    xy *= width_share * frame[0] / max(1e-6, extent)
    return xy - xy.mean(0) + np.asarray(centre, float)


def visible_share(quad: np.ndarray, frame: tuple[int, int], grid: int = 48) -> float:
    """Share of the quad's area inside the frame (rasterised on a coarse grid)."""
    x0, y0 = quad.min(0)
    x1, y1 = quad.max(0)
    w, h = max(1.0, x1 - x0), max(1.0, y1 - y0)
    s = grid / max(w, h)
    mask = Image.new("L", (grid + 2, grid + 2), 0)
    ImageDraw.Draw(mask).polygon([tuple((q - (x0, y0)) * s + 1) for q in quad], fill=255)
    m = np.asarray(mask) > 127
    if not m.any():
        return 0.0
    ys, xs = np.nonzero(m)
    fx, fy = (xs - 1) / s + x0, (ys - 1) / s + y0
    inside = (fx >= 0) & (fx < frame[0]) & (fy >= 0) & (fy < frame[1])
    return float(inside.mean())


def coverage_mask(quad: np.ndarray | None, frame: tuple[int, int], grid: int) -> np.ndarray:
    """grid x grid share of each cell of the frame that the note covers (the localiser's
    target; zeros without a note)."""
    out = np.zeros((grid, grid), np.float32)
    if quad is None:
        return out
    sup = 4  # supersampling per cell
    mask = Image.new("L", (grid * sup, grid * sup), 0)
    scale = np.array([grid * sup / frame[0], grid * sup / frame[1]])
    ImageDraw.Draw(mask).polygon([tuple(q * scale) for q in quad], fill=255)
    m = np.asarray(mask, np.float32) / 255
    return m.reshape(grid, sup, grid, sup).mean((1, 3))


def _warp(note: Image.Image, quad: np.ndarray, frame: Image.Image) -> None:
    """Paste ``note`` onto ``frame`` (in place) with its corners at ``quad``."""
    nw, nh = note.size
    coeffs = perspective_coeffs([tuple(q) for q in quad], [(0, 0), (nw, 0), (nw, nh), (0, nh)])
    size = frame.size
    warped = note.transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    mask = Image.new("L", note.size, 255).transform(size, Image.Transform.PERSPECTIVE, coeffs,
                                                    Image.Resampling.BILINEAR)
    frame.paste(warped, (0, 0), mask)


def paste_note(frame: Image.Image, note: Image.Image, quad: np.ndarray,
               rng: random.Random, fold: bool) -> None:
    """The note onto the frame; ``fold``: bent along a line across it, one half shaded."""
    if not fold:
        _warp(note, quad, frame)
        return
    nw, nh = note.size
    f = rng.uniform(0.35, 0.65)
    a, b, c, d = quad
    top, bottom = a + (b - a) * f, d + (c - d) * f
    normal = np.array([-(bottom - top)[1], (bottom - top)[0]])
    normal /= max(1e-6, np.linalg.norm(normal))
    bend = normal * rng.uniform(-0.06, 0.06) * np.linalg.norm(b - a)
    top, bottom = top + bend, bottom + bend
    cut = int(nw * f)
    left, right = note.crop((0, 0, cut, nh)), note.crop((cut, 0, nw, nh))
    shade = rng.uniform(0.6, 0.9)
    if rng.random() < 0.5:
        left = ImageEnhance.Brightness(left).enhance(shade)
    else:
        right = ImageEnhance.Brightness(right).enhance(shade)
    _warp(left, np.array([a, top, bottom, d]), frame)
    _warp(right, np.array([top, b, c, bottom]), frame)


def fingers(frame: Image.Image, quad: np.ndarray, rng: random.Random) -> None:
    """Fingers and a thumb over the note from its edges, over 10-30 % of it, sometimes over a
    corner (where the numerals are)."""
    d = ImageDraw.Draw(frame)
    skin = rng.choice(scenes.SKIN)
    short = min(np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[3] - quad[0]))
    centre = quad.mean(0)
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(4)
        p, q = quad[i], quad[(i + 1) % 4]
        t = rng.choice([rng.uniform(0.05, 0.2), rng.uniform(0.8, 0.95)]) if rng.random() < 0.4 \
            else rng.uniform(0.2, 0.8)
        edge = p + (q - p) * t
        inward = (centre - edge) / max(1e-6, np.linalg.norm(centre - edge))
        width = short * rng.uniform(0.14, 0.26)
        reach = short * rng.uniform(0.2, 0.55)
        start = edge - inward * short * 0.6
        end = edge + inward * reach
        tone = tuple(max(0, min(255, v + rng.randrange(-15, 16))) for v in skin)
        d.line([tuple(start), tuple(end)], fill=tone, width=max(2, int(width)))
        r = width / 2
        d.ellipse([end[0] - r, end[1] - r, end[0] + r, end[1] + r], fill=tone)
        nail = end - inward * r * 0.4
        nr = r * 0.55
        d.ellipse([nail[0] - nr, nail[1] - nr, nail[0] + nr, nail[1] + nr],
                  fill=tuple(min(255, v + 35) for v in tone))


def _motion_blur(img: Image.Image, rng: random.Random, scale: float = 1.0) -> Image.Image:
    length = round(rng.randrange(3, 16) * scale)
    a = rng.uniform(0, math.pi)
    arr = np.asarray(img, np.float32)
    acc = np.zeros_like(arr)
    for k in range(length):
        s = k - length // 2
        acc += np.roll(arr, (round(s * math.sin(a)), round(s * math.cos(a))), axis=(0, 1))
    return Image.fromarray((acc / length).astype(np.uint8))


def optics(img: Image.Image, rng: random.Random, scale: float = 1.0,
           light: random.Random | None = None) -> Image.Image:
    """What a cheap camera's lens and sensor do: blur, exposure, colour cast, noise. ``scale``:
    the frame is ``scale`` times a FRAME_SIZES size, so blur spans as much of the scene.
    ``light``: where the exposure and colour draws come from, if not ``rng`` (a scan's frames
    share the room's light and the camera's white balance; blur and noise change)."""
    r = rng.random()
    if r < 0.3:
        img = _motion_blur(img, rng, scale)
    elif r < 0.55:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 2.5) * scale))
    lr = light or rng
    r = lr.random()
    if r < 0.2:  # low light
        img = ImageEnhance.Brightness(img).enhance(lr.uniform(0.3, 0.6))
    elif r < 0.35:  # over-exposed
        img = ImageEnhance.Brightness(img).enhance(lr.uniform(1.3, 1.8))
    else:
        img = ImageEnhance.Brightness(img).enhance(lr.uniform(0.8, 1.2))
    if lr.random() < 0.5:  # washed out
        img = ImageEnhance.Contrast(img).enhance(lr.uniform(0.5, 0.9))
        img = ImageEnhance.Color(img).enhance(lr.uniform(0.4, 0.9))
    arr = np.asarray(img, np.float32)
    if lr.random() < 0.6:  # white balance: blue, pink, yellow or green casts
        gains = np.array([lr.uniform(0.75, 1.25) for _ in range(3)], np.float32)
        arr = arr * gains
    if rng.random() < 0.5:
        arr = arr + np.random.default_rng(rng.randrange(2**31)).normal(
            0, rng.uniform(2, 10), arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def camera(img: Image.Image, rng: random.Random, quality: tuple[int, int] = JPEG_QUALITY,
           light: random.Random | None = None) -> Image.Image:
    """What a cheap camera does to a frame: optics, then JPEG."""
    img = optics(img, rng, light=light)
    return jpeg(img, rng.randrange(quality[0], quality[1] + 1))


def shrink(img: Image.Image, side: int) -> Image.Image:
    """``img`` with its longest side at most ``side``, as the phone page sends camera frames."""
    w, h = img.size
    s = side / max(w, h)
    if s >= 1:
        return img
    return img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)


@dataclass
class Pose:
    """Where the note is in a frame (see note_quad)."""

    width_share: float
    angle: float
    tilt: float
    centre: tuple[float, float]


def random_pose(rng: random.Random, frame: tuple[int, int], note: tuple[int, int],
                min_visible: float = MIN_VISIBLE) -> Pose:
    """A hand-held pose: 25-100 % of the frame width, any angle, tilt to 30 degrees, often
    off-centre, at least ``min_visible`` of the note in view."""
    W, H = frame
    for _ in range(30):
        p = Pose(rng.uniform(0.25, 1.0), rng.uniform(0, 360), rng.uniform(0, MAX_TILT),
                 (rng.uniform(0.1, 0.9) * W, rng.uniform(0.1, 0.9) * H))
        q = note_quad(random.Random(0), frame, note, p.width_share, p.angle, p.tilt, p.centre)
        if visible_share(q, frame) >= min_visible:
            return p
    return Pose(0.6, rng.uniform(0, 360), 0.0, (W / 2, H / 2))


def _scene_with_note(note, rng, size, pose, background, photos, occlude, fold, axis_seed,
                     hand=None):
    """The scene before the camera: the picture, the note's corners, what was done to it.
    ``hand``: where the fold and finger draws come from, if not ``rng``."""
    bg, kind = background or scenes.scene(rng, size, photos=photos)
    img = bg.resize(size) if bg.size != size else bg.copy()
    if note is None:
        return img, None, kind, None
    pose = pose or random_pose(rng, size, note.size)
    axis_rng = random.Random(axis_seed if axis_seed is not None else rng.randrange(2**31))
    quad = note_quad(axis_rng, size, note.size, pose.width_share, pose.angle, pose.tilt,
                     pose.centre)
    fold = fold if fold is not None else rng.random() < 0.2
    paste_note(img, note, quad, hand or rng, fold)
    occlude = occlude if occlude is not None else rng.random() < 0.6
    if occlude:
        fingers(img, quad, hand or rng)
    return img, quad, "note", {"width": pose.width_share, "tilt": pose.tilt,
                               "fingers": occlude, "fold": fold}


def render(note: Image.Image | None, label: int, rng: random.Random, frame_size=None,
           pose: Pose | None = None, background: tuple[Image.Image, str] | None = None,
           photos: list[str] = (), occlude: bool | None = None, fold: bool | None = None,
           axis_seed: int | None = None, steady_seed: int | None = None) -> Frame:
    """One frame: ``note`` (None: a scene alone) on a scene, through the camera.
    ``steady_seed``: what stays the same through a scan (see ``_Steady``)."""
    size = frame_size or (background[0].size if background else rng.choice(FRAME_SIZES))
    steady = _Steady(steady_seed)
    img, quad, kind, conds = _scene_with_note(note, rng, size, pose, background, photos,
                                              occlude, fold, axis_seed, steady.hand)
    visible = 0.0 if quad is None else visible_share(quad, size)
    return Frame(camera(img, rng, light=steady.light), label, quad, visible, kind, conds)


class _Steady:
    """Draws that repeat in every frame of a scan, from its ``seed``: where the fingers hold
    the note and how it is folded (``hand``), the room's light and the camera's white balance
    (``light``). Frame to frame only the pose, blur, noise and JPEG change: a scan whose frames
    redrew these would make a wrong answer look like chance, and agreeing frames prove more
    than they do. None: nothing repeats (single frames)."""

    def __init__(self, seed: int | None):
        self.hand = random.Random(seed) if seed is not None else None
        self.light = random.Random(seed + 1) if seed is not None else None


def sent_frames(note: Image.Image, label: int, rng: random.Random, sides: list[int],
                scale: float = 2.0, photos: list[str] = ()) -> list[Frame]:
    """One scene through a camera of ``scale`` times a FRAME_SIZES size (a 1280x720 phone
    camera at 2), then one frame per entry of ``sides``: the camera frame shrunk to that
    longest side as the page would send it, all with the same JPEG quality. For comparing how
    large the page's frames should be on the same scenes."""
    base = rng.choice(FRAME_SIZES)
    size = (round(base[0] * scale), round(base[1] * scale))
    scene = _scene_with_note(note, rng, size, None, None, photos, None, None, None)
    return _send(scene, size, label, rng, sides, scale)


def _send(scene: tuple, size: tuple[int, int], label: int, rng: random.Random,
          sides: list[int], scale: float, light: random.Random | None = None) -> list[Frame]:
    """A scene (``_scene_with_note``'s) through the camera, then shrunk to each of ``sides``
    and compressed at one JPEG quality."""
    img, quad, kind, conds = scene
    raw = optics(img, rng, scale, light)
    quality = rng.randrange(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)
    out = []
    for side in sides:
        sent = shrink(raw, side)
        out.append(Frame(jpeg(sent, quality), label, quad * (sent.size[0] / size[0]),
                         visible_share(quad, size), kind, conds))
    return out


def sequence(note: Image.Image, label: int, rng: random.Random, photos: list[str] = (),
             entering: int = 2, held: int = 8, leaving: int = 2) -> list[Frame]:
    """A short scan at 2 frames a second: the note slides into view from an edge, is held
    (small hand movement, changing blur), then slides out. The scene, the fingers, the fold and
    the light stay."""
    size = rng.choice(FRAME_SIZES)
    return _scan(note, rng, size, photos, (entering, held, leaving),
                 lambda pose, scene: render(note, label, rng, size, pose, scene.background,
                                            occlude=scene.occlude, fold=scene.fold,
                                            axis_seed=scene.axis_seed,
                                            steady_seed=scene.steady_seed))


def sent_sequence(note: Image.Image, label: int, rng: random.Random, sides: list[int],
                  scale: float = 2.0, photos: list[str] = (), entering: int = 2, held: int = 8,
                  leaving: int = 2) -> list[list[Frame]]:
    """``sequence`` through a camera of ``scale`` times a FRAME_SIZES size, sent at each of
    ``sides`` as ``sent_frames`` sends one frame: one scan per entry of ``sides``, the same
    scenes, poses and camera in each."""
    base = rng.choice(FRAME_SIZES)
    size = (round(base[0] * scale), round(base[1] * scale))

    def frame(pose, scene):
        steady = _Steady(scene.steady_seed)
        return _send(_scene_with_note(note, rng, size, pose, scene.background, photos,
                                      scene.occlude, scene.fold, scene.axis_seed, steady.hand),
                     size, label, rng, sides, scale, steady.light)

    frames = _scan(note, rng, size, photos, (entering, held, leaving), frame)
    return [[f[k] for f in frames] for k in range(len(sides))]


@dataclass
class _ScanScene:
    """What stays the same through a scan: the scene, and what is done to the note."""

    background: tuple[Image.Image, str]
    axis_seed: int
    occlude: bool
    fold: bool
    steady_seed: int  # the fingers' and the fold's places, the light: _Steady


def _scan(note, rng, size, photos, counts, frame):
    """The frames ``frame(pose, scene)`` gives along a scan's path: ``counts`` frames entering,
    held and leaving."""
    entering, held, leaving = counts
    background = scenes.scene(rng, size, photos=photos)
    rest = random_pose(rng, size, note.size, min_visible=0.75)
    axis_seed = rng.randrange(2**31)
    scene = _ScanScene(background, axis_seed, rng.random() < 0.6, rng.random() < 0.2,
                       rng.randrange(2**31))
    W, H = size
    d = rng.uniform(0, 2 * math.pi)
    away = np.array([math.cos(d), math.sin(d)]) * (W + H) * 0.6  # off-frame offset

    def at(centre, jitter: float):
        p = Pose(rest.width_share * (1 + rng.uniform(-jitter, jitter) * 0.1),
                 rest.angle + rng.uniform(-4, 4) * jitter, rest.tilt,
                 tuple(np.asarray(centre) + np.array([rng.uniform(-1, 1) * 0.03 * W,
                                                      rng.uniform(-1, 1) * 0.03 * H]) * jitter))
        return frame(p, scene)

    c = np.asarray(rest.centre)
    frames = [at(c + away * (1 - (i + 1) / (entering + 1)), 0.0) for i in range(entering)]
    frames += [at(c, 1.0) for _ in range(held)]
    frames += [at(c - away * (i + 1) / (leaving + 1), 0.0) for i in range(leaving)]
    return frames
