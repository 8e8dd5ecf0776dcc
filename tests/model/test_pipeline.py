"""Whole pipeline on a tiny generated data set: load, train a few steps, export, evaluate,
load the bundle the way the service does, and check exports agree with the Keras model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.train


@pytest.fixture(scope="module")
def trained(tmp_path_factory, yolo_dir):
    from model import train

    tmp = tmp_path_factory.mktemp("run")
    args = ["--data", str(yolo_dir), "--out", str(tmp / "bundle"), "--work", str(tmp / "work"),
            "--card", str(tmp / "card.md"), "--size", "96", "--views-per-class", "3",
            "--head-epochs", "1", "--ft-epochs", "1", "--train-photos", "astronaut",
            "--valid-photos", "coffee", "--formats", "tflite,onnx",
            "--calibration-images", "4", "--latency-images", "5", "--threshold", "auto",
            "--localiser-frames", "20", "--localiser-epochs", "1", "--localiser-size", "64",
            "--no-handheld-eval"]
    assert train.main(args) == 0
    return tmp


def test_bundle_follows_the_contract(trained):
    from model.classes import LABELS

    bundle = trained / "bundle"
    card = json.loads((bundle / "card.json").read_text())
    model_file = bundle / card["model_file"]
    assert sorted(p.name for p in bundle.iterdir()) == sorted(["card.json", model_file.name,
                                                                "localiser.tflite"])
    loc = card["localiser"]
    assert loc["sha256"] == hashlib.sha256((bundle / "localiser.tflite").read_bytes()).hexdigest()
    assert loc["input"] == {"height": 64, "width": 64} and loc["grid"] == 4  # 64 / 16
    assert loc["quantisation"] == "int8"  # --calibration-images 4
    assert loc["training"]["frames"] == 20
    assert card["format"] == model_file.suffix.lstrip(".") in ("tflite", "onnx")
    assert card["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()
    assert [c["label"] for c in card["classes"]] == LABELS
    assert [c["id"] for c in card["classes"]] == list(range(8))
    assert card["classes"][-1]["negative"] is True and card["classes"][-1]["value"] is None
    assert card["input"]["height"] == card["input"]["width"] == 96
    assert 0 < card["threshold"] <= 1
    # Temperature and threshold (auto) come from the held-out training images (Five_0, Ten_0).
    cal = card["training"]["calibration"]
    assert card["threshold"] == cal["threshold"] and cal["auto"]
    assert cal["images"] == 2 and cal["temperature"] > 0 and cal["target_coverage"] == 0.9
    assert card["training"]["label_smoothing"] == 0.1
    assert set(card["metrics"]) >= {"top1_accuracy", "none_as_bill_rate", "ece",
                                    "answered_accuracy", "coverage", "validation_images"}
    assert model_file.stat().st_size <= 15 * 1024 * 1024
    card_md = (trained / "card.md").read_text()
    assert "CC BY 4.0" in card_md and "Near-duplicates" in card_md
    assert ("a model trained the same way, on the same views less those of 2 held-out "
            "training images") in card_md
    assert (f"Served threshold {card['threshold']}: the highest that still answers 90 % of the "
            "held-out notes") in card_md
    assert "14 training and 7 validation images after de-duplication (2 of the" in card_md


def test_train_without_calibration_pass(yolo_dir, tmp_path):
    from model import train

    args = ["--data", str(yolo_dir), "--out", str(tmp_path / "bundle"), "--work",
            str(tmp_path / "work"), "--card", str(tmp_path / "card.md"), "--size", "96",
            "--views-per-class", "2", "--head-epochs", "1", "--ft-epochs", "0",
            "--train-photos", "astronaut", "--valid-photos", "coffee", "--formats", "tflite",
            "--calibration-images", "0", "--latency-images", "2", "--no-calibrate",
            "--threshold", "0.7", "--localiser-frames", "0", "--no-handheld-eval"]
    assert train.main(args) == 0
    card = json.loads((tmp_path / "bundle" / "card.json").read_text())
    assert card["threshold"] == 0.7 and card["training"]["calibration"] is None
    assert "localiser" not in card  # --localiser-frames 0: whole frames only
    card_md = (tmp_path / "card.md").read_text()
    assert "No calibration pass" in card_md
    assert "Served threshold 0.7: from `--threshold`" in card_md
    assert "14 training and 7 validation images after de-duplication." in card_md


def test_service_loads_the_bundle(trained):
    runtime = pytest.importorskip("usbills_app.runtime")
    model = runtime.load_model(trained / "bundle")
    assert model.ready and model.localiser is not None
    probs = np.asarray(model.predict(np.zeros((1, 96, 96, 3), np.float32)))
    assert probs.shape == (1, 8)
    assert abs(float(probs.sum()) - 1) < 1e-3
    from PIL import Image

    from usbills_app import inference

    probs, boxes, timings = inference.classify(model, [Image.new("RGB", (320, 240))])
    assert probs.shape == (1, 8) and "localise" in timings[0]
    assert model.heat(Image.new("RGB", (320, 240))).shape == (4, 4)  # --localiser-size 64


def test_handheld_evaluation_cli(trained, yolo_dir, tmp_path, capsys):
    """The hand-held evaluation runs the service's pipeline on simulated frames and scans and
    writes its figures into card.json and the model card."""
    import shutil

    from model import handheld_eval

    bundle = tmp_path / "bundle"
    shutil.copytree(trained / "bundle", bundle)
    card_md = tmp_path / "card.md"
    shutil.copyfile(trained / "card.md", card_md)
    assert handheld_eval.main(["--data", str(yolo_dir), "--bundle", str(bundle), "--card",
                               str(card_md), "--negatives", "12", "--frames-per-note", "1",
                               "--scans-per-note", "1"]) == 0
    out = capsys.readouterr().out
    assert "per frame (7 frames, threshold" in out
    assert "same frames, whole frame only (no localiser)" in out
    assert "negatives: " in out and "of 12 named as a note" in out
    assert "scans, 3 agreeing frames at 0.9999: 7 scans" in out
    assert "scans, 3 agreeing of 4 frames at 0.9999: 7 scans" in out
    assert "Frame size: 7 other frames of the same notes" in out
    card = json.loads((bundle / "card.json").read_text())
    hh = card["metrics"]["handheld"]
    assert hh["per_frame"]["frames"] == 7 and hh["negatives"]["images"] == 12
    assert set(hh["page_sides"]) == {"1024", "512"}
    assert hh["page_sides"]["512"]["frames"] == 7 and hh["page_sides"]["1024"]["server_ms_p50"] > 0
    # Scans at each page size too, through the served rule (one a note, as asked).
    assert [(v["scans"]["scans"], v["scans"]["frames"]) for v in hh["page_sides"].values()] == [
        (7, 2), (7, 2)]
    assert "7 scans of the same notes the same way, through the served rule" in out
    assert [(s["frames"], s["unsure"]) for s in hh["scans"]] == [(2, 0), (2, 1), (3, 0), (3, 1),
                                                                 (4, 0)]
    # In a scan a frame votes at the scan's own threshold, above the photo threshold.
    assert hh["scan_threshold"] == max(card["threshold"], 0.9999)
    assert card["scan"] == handheld_eval.SERVED_SCAN == {"frames": 2, "unsure": 1,
                                                         "threshold": 0.9999, "max_gap_s": 2.0}
    text = card_md.read_text()
    assert text.count("## Hand-held evaluation") == 1 and "| frames named right | >= 95 % |" in text
    assert "The page sends camera frames and photos at most 1024 px" in text
    # Run twice: the section is replaced, not repeated; same seed, same figures.
    assert handheld_eval.main(["--data", str(yolo_dir), "--bundle", str(bundle), "--card",
                               str(card_md), "--negatives", "12", "--frames-per-note", "1",
                               "--no-scans"]) == 0
    assert card_md.read_text().count("## Hand-held evaluation") == 1
    again = json.loads((bundle / "card.json").read_text())["metrics"]["handheld"]
    assert again["per_frame"] == hh["per_frame"] and again["negatives"] == hh["negatives"]
    assert "scans" not in again["page_sides"]["1024"]
    # Side by side with another bundle (here: itself, whole frames vs the same): no card change.
    before = (bundle / "card.json").read_text()
    assert handheld_eval.main(["--data", str(yolo_dir), "--bundle", str(bundle), "--compare",
                               str(trained / "bundle"), "--negatives", "4", "--frames-per-note",
                               "1", "--no-scans"]) == 0
    assert "compared with" in capsys.readouterr().out
    assert (bundle / "card.json").read_text() == before
    # A threshold sweep prints one line per threshold and leaves the card alone.
    assert handheld_eval.main(["--data", str(yolo_dir), "--bundle", str(bundle), "--seed", "7",
                               "--negatives", "4", "--frames-per-note", "1",
                               "--thresholds", "0.5,0.9"]) == 0
    out = capsys.readouterr().out
    assert "at threshold 0.5: frames right" in out and "scans, 3 agreeing of 4 frames: right" in out
    assert "at threshold 0.9: frames right" in out
    assert (bundle / "card.json").read_text() == before
    # Per side of the note, where a sides file names the notes: in the output and the card.
    sides = tmp_path / "sides.csv"
    sides.write_text("valid/images/Five_0.jpg,0,face\nvalid/images/Two_0.jpg,0,back\n")
    assert handheld_eval.main(["--data", str(yolo_dir), "--bundle", str(bundle), "--card",
                               str(card_md), "--negatives", "4", "--frames-per-note", "1",
                               "--sides", str(sides), "--scans-per-note", "2"]) == 0
    out = capsys.readouterr().out
    assert "  face: 1 frames, right" in out and "  back: 1 frames, right" in out
    hh = json.loads((bundle / "card.json").read_text())["metrics"]["handheld"]
    assert hh["by_class_side"]["USD-5"]["face"]["frames"] == 1
    assert hh["by_class_side"]["USD-5"]["back"]["frames"] == 0
    assert hh["scans_by_side"]["back"]["scans"] == 2  # each note scanned twice
    assert hh["scans"][0]["scans"] == 14 and hh["scans_per_note"] == 2
    text = card_md.read_text()
    assert "2 simulated scans a note" in text
    assert "| denomination | frames | right | wrong | face: right / wrong |" in text
    assert "Scans by side (the served rule, 2 agreeing of 3 frames)" in text
    assert handheld_eval.main(["--data", str(yolo_dir), "--bundle", str(bundle),
                               "--sides", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read note sides" in capsys.readouterr().err
    assert handheld_eval.main(["--data", str(tmp_path / "missing"), "--bundle",
                               str(bundle)]) == 2
    assert "error:" in capsys.readouterr().err


def test_exports_agree_with_keras(trained):
    import keras

    from model.predictors import Predictor

    full = keras.models.load_model(trained / "work" / "usbills.keras")
    from model.backbone import normalise
    from tests.synth import bill, photo

    pics = [bill(v, (96, 96), seed=3) for v in (1, 20, 100)] + [photo((96, 96), seed=3)]
    x = np.stack([normalise(np.asarray(p)) for p in pics])
    ref = full.predict(x, verbose=0)
    card = json.loads((trained / "bundle" / "card.json").read_text())
    assert card["training"]["half_turn"] is True  # the default: exports hold the half-turn mean
    ref = (ref + full.predict(np.ascontiguousarray(x[:, ::-1, ::-1]), verbose=0)) / 2
    exports = {p.name: p for p in (trained / "work" / "export").iterdir()
               if p.suffix in (".tflite", ".onnx") and p.stem != "model"}
    assert "float.tflite" in exports
    for name, path in exports.items():
        got = Predictor(path)(x)
        # Float exports match; quantised ones drift a bounded amount (full int8 was calibrated
        # on 4 pictures only here).
        tol = {"float": 1e-4, "dynamic": 0.1, "int8": 0.35}[name.split(".")[0]]
        assert np.allclose(got.sum(1), 1, atol=1e-2), name
        assert np.abs(got - ref).max() < tol, name
        if name == "int8.tflite":
            # Its softmax runs in float (export.float_softmax): rows are distributions, not
            # steps of 1/256 that sum to 1 only within a few steps.
            assert np.allclose(got.sum(1), 1, atol=1e-5)
            assert not np.allclose(got * 256, np.round(got * 256), atol=1e-3)


def test_upside_down_photo_gets_the_same_answer(trained):
    """People hold notes either way up: the served model answers the same for both."""
    from model.backbone import normalise
    from tests.synth import bill
    from usbills_app import runtime

    model = runtime.load_model(trained / "bundle")
    x = normalise(np.asarray(bill(20, (96, 96), seed=5)))[None]
    upright = np.asarray(model.predict(x))
    turned = np.asarray(model.predict(np.ascontiguousarray(x[:, ::-1, ::-1])))
    # An int8 export quantises its two passes separately: equal up to a few 1/256 steps.
    int8 = "int8 (full integer" in model.card["training"]["export"]
    assert np.allclose(upright, turned, atol=0.03 if int8 else 1e-5)


@pytest.mark.parametrize("layout", ["yolo", "folders"])
def test_evaluate_cli_on_both_layouts(trained, yolo_dir, folder_dir, layout, capsys):
    from model import evaluate

    data_dir = yolo_dir if layout == "yolo" else folder_dir
    card = trained / f"eval-{layout}.md"
    assert evaluate.main(["--data", str(data_dir), "--bundle", str(trained / "bundle"),
                          "--card", str(card)]) == 0
    out = capsys.readouterr().out
    assert "confusion" in out and "ECE" in out and "coverage" in out
    doc = card.read_text()
    assert "USD-100" in doc and "By kind of bill picture" in doc
    assert "| measure | target | measured | 95 % interval | |" in doc
    assert "the interval counts photos, not pictures" in doc
    kind = "note crop, one note in the photo" if layout == "yolo" else evaluate.IMAGE_LABEL_KIND
    row = f"| {kind} |"
    assert row in doc


def test_model_card_names_the_image_labels_file(trained, yolo_dir, tmp_path, capsys):
    from model import evaluate

    card = tmp_path / "card.md"
    args = ["--data", str(yolo_dir), "--bundle", str(trained / "bundle"), "--card", str(card)]
    assert evaluate.main(args + ["--image-labels", "none"]) == 0
    assert "1 images have no box at all." in card.read_text()
    assert "They are left out." in card.read_text()
    labels = tmp_path / "labels.csv"
    labels.write_text("train/images/empty.jpg,USD-5\ntrain/images/Ten_0.jpg,USD-1\n")
    assert evaluate.main(args + ["--image-labels", str(labels)]) == 0
    assert f"1 of them have a whole-image label in `{labels}`" in card.read_text()
    assert "**Label corrections**: the same file gives 1 boxed image the right" in card.read_text()
    assert "1 labelled and 1 corrected by --image-labels" in capsys.readouterr().out


def test_evaluate_sets_the_served_threshold(trained, yolo_dir, tmp_path, capsys):
    """--set-threshold: the bundle answers at the new threshold; its card's figures are those
    at it; the hand-held figures, measured at the old one, go."""
    import shutil

    from model import evaluate
    from usbills_app import runtime

    bundle = tmp_path / "bundle"
    shutil.copytree(trained / "bundle", bundle)
    card = json.loads((bundle / "card.json").read_text())
    card["metrics"]["handheld"] = {"seed": 1}
    (bundle / "card.json").write_text(json.dumps(card))
    args = ["--data", str(yolo_dir), "--bundle", str(bundle), "--card", str(tmp_path / "c.md")]
    assert evaluate.main(args + ["--set-threshold"]) == 2
    assert "--set-threshold needs --threshold" in capsys.readouterr().err
    assert evaluate.main(args + ["--threshold", "0.99", "--set-threshold"]) == 0
    assert "threshold 0.99" in capsys.readouterr().out
    after = json.loads((bundle / "card.json").read_text())
    assert after["threshold"] == 0.99 and "handheld" not in after["metrics"]
    assert "--set-threshold` (it was" in after["training"]["threshold_choice"]
    assert after["sha256"] == card["sha256"]
    assert runtime.load_model(bundle).card["threshold"] == 0.99  # still a valid bundle
    assert "| 0.99 |" in (tmp_path / "c.md").read_text()


def test_evaluate_cli_bad_input(tmp_path, capsys):
    from model import evaluate

    assert evaluate.main(["--data", str(tmp_path / "missing"), "--bundle", str(tmp_path)]) == 2
    assert "no card.json" in capsys.readouterr().err


def test_bench_cli_measures_every_export(trained, yolo_dir, tmp_path, capsys):
    from model import bench

    report = tmp_path / "bench.md"
    args = ["--data", str(yolo_dir), "--exports", str(trained / "work" / "export"),
            "--bundle", str(trained / "bundle"), "--runs", "3", "--report", str(report)]
    assert bench.main(args) == 0
    doc = report.read_text()
    assert f"python -m model.bench {' '.join(args)}" in doc
    assert "| float.tflite |" in doc and "| float.onnx |" in doc
    assert bench.main(["--data", str(yolo_dir), "--exports", str(trained / "work" / "export"),
                       "--bundle", str(tmp_path / "missing")]) == 2
    assert "no readable card.json" in capsys.readouterr().err


def test_evaluate_cli_draws_the_failures(trained, yolo_dir, tmp_path, capsys):
    """--errors: a sheet of the pictures answered wrongly (threshold 1: every note unanswered)."""
    from PIL import Image

    from model import error_sheet, evaluate

    sheet = tmp_path / "out" / "errors.png"
    assert evaluate.main(["--data", str(yolo_dir), "--bundle", str(trained / "bundle"),
                          "--no-card", "--threshold", "1", "--errors", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {sheet}: " in out and "pictures the served model gets wrong" in out
    with Image.open(sheet) as img:
        assert img.width == error_sheet.COLUMNS * error_sheet.TILE


def test_evaluate_cli_on_the_training_split(trained, yolo_dir, tmp_path, capsys):
    """--split train: a sheet of the training pictures the model disagrees with (where label
    errors show up); no model card (those figures do not describe new photos)."""
    from model import data, evaluate

    train_items = data.dedup(data.load(yolo_dir)).split("train")
    _, _, y = evaluate.validation_set(train_items, [])
    card, sheet = tmp_path / "card.md", tmp_path / "train-errors.png"
    assert evaluate.main(["--data", str(yolo_dir), "--bundle", str(trained / "bundle"),
                          "--split", "train", "--card", str(card), "--threshold", "1",
                          "--errors", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert f"{len(train_items)} train images" in out
    # Threshold 1 leaves every note unanswered: the sheet holds every training picture.
    assert f"wrote {sheet}: {len(y)} pictures the served model gets wrong" in out
    assert "no model card written" in out and not card.exists()
    with pytest.raises(SystemExit) as exit_:
        evaluate.main(["--data", str(yolo_dir), "--split", "test"])
    assert exit_.value.code == 2 and "invalid choice: 'test'" in capsys.readouterr().err


def _exit_code(main, args) -> int:
    try:
        return main(args)
    except SystemExit as e:  # argparse's own option errors
        return e.code


@pytest.mark.parametrize(("cli", "flag", "value", "message"), [
    ("evaluate", "--errors", "errors.txt", "use a .png, .jpg or .webp file name"),
    ("evaluate", "--threshold", "1.5", "'1.5': must be in (0, 1]"),
    ("evaluate", "--threshold", "0", "'0': must be in (0, 1]"),
    ("bench", "--threshold", "0", "'0': must be in (0, 1]"),
    ("bench", "--threshold", "x", "'x': must be in (0, 1]"),
    ("bench", "--runs", "0", "'0': must be a whole number >= 1"),
])
def test_model_clis_reject_bad_options(yolo_dir, tmp_path, capsys, cli, flag, value, message):
    import importlib

    main = importlib.import_module(f"model.{cli}").main
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "card.json").write_text("{}")
    assert _exit_code(main, ["--data", str(yolo_dir), "--bundle", str(bundle), flag, value]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_folded_temperature_gives_the_probabilities_it_was_fitted_on():
    import keras

    from model import calibrate, train

    inp = keras.Input((4,))
    head = keras.Model(inp, keras.layers.Dense(8, activation="softmax", name="probs")(inp))
    x = np.random.default_rng(0).normal(0, 2, (16, 4)).astype(np.float32)
    before = head.predict(x, verbose=0)
    train.fold_temperature(head, 0.5)
    after = head.predict(x, verbose=0)
    assert np.allclose(after, calibrate.tempered([before], 0.5), atol=1e-5)
    assert (after.argmax(1) == before.argmax(1)).all() and after.max() > before.max()


def test_float_softmax_command_on_a_bundle(tmp_path, capsys):
    """python -m model.export --float-softmax: the committed bundle already has it, so the file
    is left as it is and the card says so; a missing bundle is one line and exit 2."""
    import shutil

    from model import export

    bundle = shutil.copytree(Path(__file__).resolve().parents[2] / "model/bundles/usbills",
                             tmp_path / "usbills")
    before = (bundle / "model.tflite").read_bytes()
    assert export.main(["--float-softmax", str(bundle)]) == 0
    card = json.loads((bundle / "card.json").read_text())
    assert (bundle / "model.tflite").read_bytes() == before
    assert card["sha256"] == hashlib.sha256(before).hexdigest()
    assert card["training"]["float_softmax"] is True
    capsys.readouterr()
    assert export.main(["--float-softmax", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
