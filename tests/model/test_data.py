"""Data-set loaders, class-name mapping and perceptual-hash de-duplication."""

from __future__ import annotations

import random
import shutil

import pytest

from model import data, samples
from model.classes import LABELS, NONE, class_index

pytestmark = pytest.mark.train


def test_class_names_map_to_served_labels():
    assert [class_index(n) for n in ["One", "Two", "Five", "Ten", "Twenty", "Fifty", "Hundred"]] \
        == list(range(7))
    assert class_index("USD-20") == class_index("$20") == class_index("20") == 4
    assert class_index("background") == NONE == LABELS.index("none")
    with pytest.raises(ValueError, match="unknown class name"):
        class_index("Euro-5")


def test_yolo_layout(yolo_dir):
    ds = data.load(yolo_dir)
    assert ds.layout == "yolo"
    assert len(ds.split("train")) == 14 and len(ds.split("valid")) == 7
    assert ds.unlabelled == 1  # the empty label file is neither a bill nor a negative
    fifty = next(it for it in ds.items if it.path.name.startswith("Fifty"))
    assert fifty.boxes[0][0] == LABELS.index("USD-50")
    assert all(0 <= v <= 1 for v in fifty.boxes[0][1:])


def test_image_labels_give_box_less_images_a_whole_image_class(tmp_path, yolo_dir):
    labels = tmp_path / "labels.csv"
    labels.write_text("# hand-labelled\n"
                      "train/images/empty.jpg, Twenty  # the box-less picture\n"
                      "train/images/Ten_0.jpg,USD-1\n"  # has a box: a correction
                      "train/images/Five_0.jpg,USD-5\n"  # already right: not counted
                      "valid/images/not-in-this-set.jpg,USD-5\n")
    ds = data.load(yolo_dir, labels)
    assert (ds.image_labelled, ds.unlabelled, ds.relabelled) == (1, 0, 1)
    empty = next(it for it in ds.items if it.path.name == "empty.jpg")
    assert (empty.split, empty.boxes, empty.label) == ("train", [], LABELS.index("USD-20"))
    ten = next(it for it in ds.items if it.path.name == "Ten_0.jpg")
    assert ten.label is None and {b[0] for b in ten.boxes} == {LABELS.index("USD-1")}
    plain = next(it for it in data.load(yolo_dir, None).items if it.path == ten.path)
    assert [b[1:] for b in ten.boxes] == [b[1:] for b in plain.boxes]  # same place, new class
    srcs = samples.sources(ds.split("train"), [], random.Random(0))
    assert any(s.kind == "whole" and s.item is empty and s.label == empty.label for s in srcs)
    assert data.load(yolo_dir, None).image_labelled == 0


@pytest.mark.parametrize("line, message", [
    ("train/images/empty.jpg,Euro-5", r"labels.csv:2: unknown class name 'Euro-5'"),
    ("train/images/empty.jpg", r"labels.csv:2: expected '<split>/images/<file>,<class>'"),
])
def test_image_labels_file_errors_name_the_line(tmp_path, yolo_dir, line, message):
    labels = tmp_path / "labels.csv"
    labels.write_text(f"# header\n{line}\n")
    with pytest.raises(data.DataError, match=message):
        data.load(yolo_dir, labels)
    with pytest.raises(data.DataError, match="cannot read image labels"):
        data.load(yolo_dir, tmp_path / "missing.csv")


def test_note_sides_file(tmp_path, yolo_dir):
    sides = tmp_path / "sides.csv"
    sides.write_text("# header\nvalid/images/Five_0.jpg,0,face\n"
                     "valid/images/Two_0.jpg,0,back  # a comment\n")
    assert data.read_sides(sides) == {("valid/images/Five_0.jpg", 0): "face",
                                      ("valid/images/Two_0.jpg", 0): "back"}
    item = next(it for it in data.load(yolo_dir).split("valid") if it.path.name == "Five_0.jpg")
    assert data.image_key(item) == "valid/images/Five_0.jpg"
    for line in ("valid/images/Five_0.jpg,0,front", "valid/images/Five_0.jpg,face",
                 "valid/images/Five_0.jpg,x,back"):
        sides.write_text(f"# header\n{line}\n")
        with pytest.raises(data.DataError, match=r"sides.csv:2: expected '<split>/images/"):
            data.read_sides(sides)
    with pytest.raises(data.DataError, match="cannot read note sides"):
        data.read_sides(tmp_path / "missing.csv")


def test_repository_sides_name_validation_notes():
    sides = data.read_sides(data.DEFAULT_SIDES)
    assert len(sides) == 261 and set(sides.values()) == {"face", "back"}
    assert {key.split("/images/")[0] for key, _ in sides} == {"valid"}


def test_folder_layout(folder_dir):
    ds = data.load(folder_dir)
    assert ds.layout == "folders"
    assert {it.label for it in ds.split("valid")} == set(range(len(LABELS)))


def test_folder_layout_rejects_unknown_class(tmp_path):
    (tmp_path / "train" / "Euro").mkdir(parents=True)
    with pytest.raises(data.DataError, match="unknown class name 'Euro'"):
        data.load(tmp_path)


def test_dedup_moves_near_duplicates_out_of_validation(tmp_path, yolo_dir):
    root = tmp_path / "d"
    shutil.copytree(yolo_dir, root)
    src = root / "train" / "images" / "Ten_0.jpg"
    img = data.open_rgb(src).resize((150, 150))  # a rescaled, re-encoded copy
    img.save(root / "valid" / "images" / "copy.jpg", quality=60)
    shutil.copy(root / "train" / "labels" / "Ten_0.txt", root / "valid" / "labels" / "copy.txt")
    ds = data.dedup(data.load(root))
    assert [d[:2] for d in ds.duplicates] == [("copy.jpg", "Ten_0.jpg")]
    assert all(it.path.name != "copy.jpg" for it in ds.split("valid"))


def test_samples_cover_bills_and_negatives(yolo_dir):
    ds = data.load(yolo_dir)
    rng = random.Random(0)
    srcs = samples.sources(ds.split("train"), ["astronaut"], rng, synthetic=2)
    kinds = {s.kind for s in srcs}
    assert {"box", "whole", "photo", "synthetic"} <= kinds
    assert "background" not in kinds  # unreliable in Roboflow exports: opt-in only
    with_bg = samples.sources(ds.split("train"), [], rng, backgrounds=True)
    assert any(s.kind == "background" for s in with_bg)
    for s in srcs[:6] + srcs[-1:]:
        img = samples.render(s, rng)
        assert img.size == (samples.SIZE, samples.SIZE) and img.mode == "RGB"
        assert samples.render(s, None).size == (samples.SIZE, samples.SIZE)


def test_repository_image_labels_are_denominations_of_both_splits():
    labels = data.read_image_labels(data.DEFAULT_IMAGE_LABELS)
    assert len(labels) == 108 and NONE not in labels.values()
    assert {name.split("/images/")[0] for name in labels} == {"train", "valid"}


def test_train_cli_image_labels_option(tmp_path, yolo_dir, capsys):
    from model import train

    assert train.parse(["--data", "d", "--image-labels", "none"]).image_labels is None
    assert train.parse(["--data", "d"]).image_labels == data.DEFAULT_IMAGE_LABELS
    bad = tmp_path / "labels.csv"
    bad.write_text("train/images/empty.jpg,Euro-5\n")
    assert train.main(["--data", str(yolo_dir), "--image-labels", str(bad),
                       "--out", str(tmp_path / "b"), "--work", str(tmp_path / "w")]) == 2
    assert "labels.csv:1: unknown class name 'Euro-5'" in capsys.readouterr().err


def test_hold_out_sets_aside_the_same_training_images_every_run(yolo_dir):
    ds = data.load(yolo_dir)
    held = data.hold_out(ds, 0.15)
    paths = {it.path for it in held}
    assert paths and all(it.split == "holdout" for it in held)
    assert all(p.parent.parent.name == "train" for p in paths)
    assert not paths & {it.path for it in ds.split("train")}
    assert paths == {it.path for it in data.hold_out(data.load(yolo_dir), 0.15)}


def test_hold_out_keeps_near_duplicates_of_training_images_in_training(tmp_path, yolo_dir):
    picked = sorted(it.path.name for it in data.hold_out(data.load(yolo_dir), 0.15))[0]
    root = tmp_path / "d"
    shutil.copytree(yolo_dir, root)
    stem = picked.removesuffix(".jpg")
    data.open_rgb(root / "train" / "images" / picked).resize((150, 150)).save(
        root / "train" / "images" / "twin.jpg", quality=60)  # "twin" itself is not picked
    shutil.copy(root / "train" / "labels" / f"{stem}.txt", root / "train" / "labels" / "twin.txt")
    ds = data.load(root)
    held = data.hold_out(ds, 0.15)
    assert picked not in {it.path.name for it in held}
    assert ds.held_back == 1 and picked in {it.path.name for it in ds.split("train")}


def test_calibration_pass_trains_on_no_view_of_a_held_out_image(yolo_dir):
    import numpy as np

    from model import train

    ds = data.load(yolo_dir)
    held = data.hold_out(ds, 0.15)
    for it in held:
        it.split = "train"
    rng = random.Random(0)
    srcs = samples.sources(ds.split("train"), ["astronaut"], rng, synthetic=2)
    views = train.balanced_views(srcs, 6, rng)
    y = np.array([srcs[v].label for v in views])
    everything = train.Views(srcs, views, y, np.arange(len(views)))
    pass1 = everything.without(held)
    held_paths = {it.path for it in held}
    assert held_paths and 0 < len(pass1.views) < len(views)
    assert not {srcs[v].item.path for v in pass1.views if srcs[v].item} & held_paths
    # every view of a kept source stays, and its label and activations stay with it
    assert [v for v in views if srcs[v].item is None or srcs[v].item.path not in held_paths] \
        == pass1.views
    assert list(pass1.y) == [y[i] for i in pass1.x_low]
    assert [views[i] for i in pass1.x_low] == pass1.views
    assert NONE in pass1.y  # negatives from photos and scenes are never held out


def test_train_cli_calibration_needs_held_out_images(tmp_path, yolo_dir, capsys):
    from model import train

    args = ["--data", str(yolo_dir), "--out", str(tmp_path / "b"), "--work", str(tmp_path / "w")]
    assert train.main([*args, "--holdout", "0.01"]) == 2
    assert "no training image left to hold out for calibration" in capsys.readouterr().err
    default = train.parse(["--data", "d"])
    assert (default.threshold, default.calibrate, default.holdout) == (0.9998, True, 0.15)
    assert train.parse(["--data", "d", "--threshold", "auto"]).threshold is None
    with pytest.raises(SystemExit):
        train.parse(["--data", "d", "--threshold", "auto", "--no-calibrate"])
    assert "--threshold auto needs the calibration pass" in capsys.readouterr().err
    for flag, value in [("--threshold", "1.5"), ("--holdout", "1"), ("--label-smoothing", "-1"),
                        ("--localiser-size", "16"), ("--localiser-size", "100")]:
        with pytest.raises(SystemExit):
            train.parse(["--data", "d", flag, value])
        assert f"argument {flag}: '{value}': must be" in capsys.readouterr().err


def test_label_smoothing_needs_one_hot_targets():
    import numpy as np

    from model import train

    y = np.array([0, 7])
    assert train.loss_and_targets(y, 0.0) == ("sparse_categorical_crossentropy", y)
    loss, targets = train.loss_and_targets(y, 0.1)
    assert loss.get_config()["label_smoothing"] == 0.1
    assert targets.tolist() == np.eye(len(LABELS))[[0, 7]].tolist()
