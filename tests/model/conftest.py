"""Tiny generated data sets in both layouts (never ../shared)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.synth import bill, photo

NAMES = ["Fifty", "Five", "Hundred", "One", "Ten", "Twenty", "Two"]  # Roboflow's order
VALUES = {"Fifty": 50, "Five": 5, "Hundred": 100, "One": 1, "Ten": 10, "Twenty": 20, "Two": 2}


def scene(value: int, seed: int, size: int = 160):
    """A synthetic photo with one bill pasted in it; returns (image, yolo box cx cy w h)."""
    rnd = random.Random(seed)
    img = photo((size, size), seed=seed)
    bw, bh = rnd.randint(size // 2, size - 10), rnd.randint(size // 4, size // 2)
    x, y = rnd.randint(0, size - bw), rnd.randint(0, size - bh)
    img.paste(bill(value, (bw, bh), seed=seed), (x, y))
    return img, ((x + bw / 2) / size, (y + bh / 2) / size, bw / size, bh / size)


def write_yolo(root: Path, per_class: dict[str, int]) -> Path:
    (root / "data.yaml").write_text(f"train: ../train/images\nval: ../valid/images\nnc: 7\n"
                                    f"names: {NAMES!r}\n")
    seed = 0
    for split, n in per_class.items():
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for c, name in enumerate(NAMES):
            for k in range(n):
                seed += 1
                img, box = scene(VALUES[name], seed)
                stem = f"{name}_{k}"
                img.save(root / split / "images" / f"{stem}.jpg", quality=90)
                (root / split / "labels" / f"{stem}.txt").write_text(
                    f"{c} " + " ".join(f"{v:.5f}" for v in box) + "\n")
    # An unannotated image (Roboflow "null" export): left out by the loader.
    photo((160, 160), seed=999).save(root / "train" / "images" / "empty.jpg")
    (root / "train" / "labels" / "empty.txt").write_text("")
    return root


def write_folders(root: Path, n: int = 2) -> Path:
    seed = 500
    for split in ("train", "valid"):
        for name in ["USD-1", "USD-2", "USD-5", "USD-10", "USD-20", "USD-50", "USD-100", "none"]:
            d = root / split / name
            d.mkdir(parents=True)
            for k in range(n):
                seed += 1
                img = photo((128, 128), seed=seed) if name == "none" else scene(
                    int(name.split("-")[1]), seed, 128)[0]
                img.save(d / f"{k}.jpg", quality=90)
    return root


@pytest.fixture(scope="session")
def yolo_dir(tmp_path_factory) -> Path:
    return write_yolo(tmp_path_factory.mktemp("yolo"), {"train": 2, "valid": 1})


@pytest.fixture(scope="session")
def folder_dir(tmp_path_factory) -> Path:
    return write_folders(tmp_path_factory.mktemp("folders"))
