"""Data-set loaders: a YOLO/Roboflow export and a folder-per-class tree, plus de-duplication.

Both layouts give a list of :class:`Item` (one image, its split and its labelled boxes or its
whole-image class). Training/evaluation turn items into samples (see ``model.samples``).
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from scipy.fft import dct

from model.classes import class_index

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
# Hand labels for Dollar Classify v1: box-less images and corrected boxes (the file's header).
DEFAULT_IMAGE_LABELS = Path(__file__).resolve().parent / "labels" / "usbills.csv"
# Face or back of each Dollar Classify validation note, by hand (the file's header).
DEFAULT_SIDES = Path(__file__).resolve().parent / "labels" / "usbills-sides.csv"
SIDES = ("face", "back")
TRAIN_NAMES = ("train", "training")
VALID_NAMES = ("valid", "val", "validation", "test")


class DataError(ValueError):
    """A data set that cannot be read (wrong layout, unknown class...)."""


@dataclass
class Item:
    path: Path
    split: str  # "train" or "valid"
    # Boxes as (class index, x0, y0, x1, y1) in 0..1 image coordinates; empty for whole images.
    boxes: list[tuple[int, float, float, float, float]] = field(default_factory=list)
    label: int | None = None  # whole-image class (folder layout), None for box-labelled items

    @property
    def labelled(self) -> bool:
        return bool(self.boxes) or self.label is not None


@dataclass
class Dataset:
    items: list[Item]
    layout: str
    unlabelled: int = 0  # YOLO images without boxes or image label (left out: see load_yolo)
    image_labelled: int = 0  # YOLO images without boxes given a whole-image label
    relabelled: int = 0  # YOLO images whose boxes the whole-image labels file corrects
    image_labels: Path | None = None  # the whole-image labels file read, if any
    held_back: int = 0  # picked for the held-out split but kept in train (see hold_out)
    duplicates: list[tuple[str, str, int]] = field(default_factory=list)

    def split(self, name: str) -> list[Item]:
        return [it for it in self.items if it.split == name]


def open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def _split_of(name: str) -> str | None:
    name = name.lower()
    if name in TRAIN_NAMES:
        return "train"
    if name in VALID_NAMES:
        return "valid"
    return None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def _yolo_names(root: Path) -> list[str]:
    yaml = root / "data.yaml"
    if not yaml.is_file():
        raise DataError(f"{root}: YOLO layout needs data.yaml with the class names")
    text = yaml.read_text(encoding="utf-8")
    m = re.search(r"^names:\s*\[(.*?)\]", text, re.M | re.S)
    if m:
        return [n.strip().strip("'\"") for n in m.group(1).split(",") if n.strip()]
    m = re.search(r"^names:\s*\n((?:\s+.*\n?)+)", text, re.M)  # block list / mapping form
    if m:
        return [re.sub(r"^\s*(-|\d+:)\s*", "", ln).strip().strip("'\"")
                for ln in m.group(1).splitlines() if ln.strip()]
    raise DataError(f"{yaml}: no 'names' list")


def _label_lines(path: Path, what: str):
    """(line number, text) of a hand-labels file's entries: ``#`` starts a comment."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read {what} ({e.strerror})") from None
    for n, ln in enumerate(lines, 1):
        ln = ln.split("#", 1)[0].strip()
        if ln:
            yield n, ln


def read_image_labels(path: Path) -> dict[str, int]:
    """Whole-image labels: ``<split>/images/<file>,<class>`` lines."""
    out = {}
    for n, ln in _label_lines(path, "image labels"):
        name, sep, cls = (v.strip() for v in ln.rpartition(","))
        if not sep or not name:
            raise DataError(f"{path}:{n}: expected '<split>/images/<file>,<class>', got {ln!r}")
        try:
            out[name] = class_index(cls)
        except ValueError as e:
            raise DataError(f"{path}:{n}: {e}") from None
    return out


def read_sides(path: Path) -> dict[tuple[str, int], str]:
    """Face or back of labelled notes: ``<split>/images/<file>,<box>,<face|back>`` lines, keyed
    by (image key, the box's position among the image's boxes from 0)."""
    out = {}
    for n, ln in _label_lines(path, "note sides"):
        parts = [v.strip() for v in ln.split(",")]
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or parts[2] not in SIDES:
            raise DataError(f"{path}:{n}: expected '<split>/images/<file>,<box>,face|back', "
                            f"got {ln!r}")
        out[(parts[0], int(parts[1]))] = parts[2]
    return out


def image_key(item: Item) -> str:
    """``<split folder>/images/<file>``: how the labels files name a YOLO image."""
    return item.path.relative_to(item.path.parents[2]).as_posix()


def add_image_labels_option(parser) -> None:
    """The --image-labels option of the commands that load a data set (argparse)."""
    parser.add_argument(
        "--image-labels", metavar="FILE", default=DEFAULT_IMAGE_LABELS,
        type=lambda v: None if v.lower() in ("", "none") else Path(v),
        help="whole-image labels for YOLO images without boxes, and corrections of images "
        "whose boxes carry the wrong class (default: the repository's labels for Dollar "
        "Classify; 'none' leaves box-less images out and corrects nothing)")


def load_yolo(root: Path, image_labels: dict[str, int] | None = None) -> Dataset:
    """Roboflow/YOLO export: <split>/images/*.jpg + <split>/labels/*.txt + data.yaml.

    Images without any box are left out unless ``image_labels`` (keyed by the path relative
    to ``root``) gives them a whole-image class: in Roboflow exports they are usually "null"
    (unannotated) images, and in this data set they show banknotes, so they are not negatives.
    An image with boxes that ``image_labels`` names shows that one denomination: its boxes
    take that class (a hand-checked correction of a mislabelled box).
    """
    names = [class_index(n) for n in _yolo_names(root)]
    image_labels = image_labels or {}
    items, unlabelled, image_labelled, relabelled = [], 0, 0, 0
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        split = _split_of(sub.name)
        if split is None or not (sub / "images").is_dir():
            continue
        for img in _images(sub / "images"):
            lbl = sub / "labels" / (img.stem + ".txt")
            boxes = []
            if lbl.is_file():
                for ln in lbl.read_text(encoding="utf-8").splitlines():
                    parts = ln.split()
                    if len(parts) < 5:
                        continue
                    c = int(parts[0])
                    if not 0 <= c < len(names):
                        raise DataError(f"{lbl}: class id {c} not in data.yaml names")
                    cx, cy, w, h = (float(v) for v in parts[1:5])
                    boxes.append((names[c], max(0.0, cx - w / 2), max(0.0, cy - h / 2),
                                  min(1.0, cx + w / 2), min(1.0, cy + h / 2)))
            whole = image_labels.get(img.relative_to(root).as_posix())
            if boxes and whole is not None and any(b[0] != whole for b in boxes):
                boxes = [(whole, *b[1:]) for b in boxes]
                relabelled += 1
            if boxes:
                items.append(Item(img, split, boxes))
            elif whole is not None:
                items.append(Item(img, split, [], whole))
                image_labelled += 1
            else:
                unlabelled += 1
    if not items:
        raise DataError(f"{root}: no labelled images found in YOLO layout")
    return Dataset(items, "yolo", unlabelled, image_labelled, relabelled=relabelled)


def _name_fraction(path: Path, salt: str = "") -> float:
    """A stable pseudo-random number in [0, 1) from a file name: the same split every run."""
    return int.from_bytes(hashlib.sha256((salt + path.name).encode()).digest()[:4], "big") / 2**32


def _stable_split(path: Path, valid_fraction: float) -> str:
    return "valid" if _name_fraction(path) < valid_fraction else "train"


def load_folders(root: Path, valid_fraction: float = 0.2) -> Dataset:
    """Folder per class: root/<split>/<class>/*.jpg, or root/<class>/*.jpg (split by name hash)."""
    subs = [p for p in sorted(root.iterdir()) if p.is_dir()]
    split_dirs = [p for p in subs if _split_of(p.name)]
    groups = [(_split_of(p.name), p) for p in split_dirs] if split_dirs else [(None, root)]
    items = []
    for split, folder in groups:
        for cdir in sorted(p for p in folder.iterdir() if p.is_dir()):
            try:
                label = class_index(cdir.name)
            except ValueError as e:
                raise DataError(f"{cdir}: {e}") from None
            for img in _images(cdir):
                items.append(Item(img, split or _stable_split(img, valid_fraction), [], label))
    if not items:
        raise DataError(f"{root}: no images found in folder-per-class layout")
    return Dataset(items, "folders")


def load(root: str | Path, image_labels: Path | None = DEFAULT_IMAGE_LABELS) -> Dataset:
    """Either layout; ``image_labels`` (a file, see read_image_labels) only affects YOLO sets,
    and only its entries naming an image of this data set."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    if (root / "data.yaml").is_file() or any((p / "labels").is_dir() for p in root.iterdir()):
        ds = load_yolo(root, read_image_labels(image_labels) if image_labels else None)
        ds.image_labels = Path(image_labels) if image_labels else None
        return ds
    return load_folders(root)


# Cached: dedup and hold_out hash the same training images in one run (files do not change
# during a command).
@functools.cache
def phash(path: Path) -> int:
    """64-bit perceptual hash (DCT of a 32x32 grey image, sign of the low 8x8 against median)."""
    grey = open_rgb(path).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    coef = dct(dct(np.asarray(grey, np.float64), axis=0, norm="ortho"), axis=1, norm="ortho")
    low = coef[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def _nearest(hashes: np.ndarray, h: int) -> tuple[int, int]:
    """(index, Hamming distance) of the hash in ``hashes`` nearest to ``h``; (-1, 65) if none."""
    if not len(hashes):
        return -1, 65
    dist = np.array([bin(int(x)).count("1") for x in (hashes ^ np.uint64(h))])
    return int(dist.argmin()), int(dist.min())


def dedup(ds: Dataset, max_distance: int = 6) -> Dataset:
    """Move validation images that nearly duplicate a training image into train.

    Keeps every near-duplicate pair on one side so validation figures are not inflated.
    Records (valid name, train name, hamming distance) in ``ds.duplicates``.
    """
    train = ds.split("train")
    hashes = np.array([phash(it.path) for it in train], dtype=np.uint64)
    found = []
    for it in ds.split("valid"):
        j, d = _nearest(hashes, phash(it.path))
        if d <= max_distance:
            found.append((it.path.name, train[j].path.name, d))
            it.split = "train"
    ds.duplicates = found
    return ds


def hold_out(ds: Dataset, fraction: float, max_distance: int = 6) -> list[Item]:
    """Set aside about ``fraction`` of the training images as the "holdout" split, for a
    calibration model that never trains on them (see model.train), so that the temperature
    and the served threshold are chosen without looking at validation.

    Picked by a salted hash of the name (the same images every run). A picked image that
    nearly duplicates one left in training stays in training (counted in ``ds.held_back``),
    so the held-out figures are not inflated the way validation's would be.
    """
    train = ds.split("train")
    picked = [it for it in train if _name_fraction(it.path, "holdout:") < fraction]
    chosen = {id(it) for it in picked}
    rest = np.array([phash(it.path) for it in train if id(it) not in chosen], dtype=np.uint64)
    held = []
    for it in picked:
        if _nearest(rest, phash(it.path))[1] > max_distance:
            it.split = "holdout"
            held.append(it)
    ds.held_back = len(picked) - len(held)
    return held
