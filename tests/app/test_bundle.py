"""Bundle loading: valid bundles in both formats, and every way a bundle can be wrong."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.bundles import COLOURS, cached_bundle
from usbills_app import StartupError, create_app, runtime
from usbills_app.bundle import BundleError, load_bundle
from usbills_app.config import Settings


def copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(src, dst)
    return dst


def edit_card(d: Path, fn) -> None:
    card = json.loads((d / "card.json").read_text())
    fn(card)
    (d / "card.json").write_text(json.dumps(card))


def reseal(d: Path) -> None:
    """Update the card's sha256 after changing the model file on purpose."""
    card = json.loads((d / "card.json").read_text())
    card["sha256"] = hashlib.sha256((d / card["model_file"]).read_bytes()).hexdigest()
    (d / "card.json").write_text(json.dumps(card))


@pytest.mark.parametrize("fmt, name", [("tflite", "litert"), ("onnx", "onnxruntime"),
                                       ("tflite-int8", "litert")])
def test_runtimes_give_the_same_answers(fmt, name):
    m = runtime.load_model(cached_bundle(fmt))
    assert m.ready and m.runtime_name == name
    x = np.stack([np.full((32, 32, 3), np.array(c, np.float32) / 255) for c in COLOURS.values()])
    probs = m.predict(x)
    assert probs.shape == (8, 8) and probs.dtype == np.float32
    assert list(probs.argmax(1)) == list(range(8))
    # int8 outputs come in steps of 1/256; the service rescales each row to sum to 1.
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    assert (probs.max(1) > 0.95).all()


def test_committed_usbills_bundle_serves_probabilities():
    m = runtime.load_model(Path(__file__).resolve().parents[2] / "model" / "bundles" / "usbills")
    inp = m.card["input"]
    x = np.random.default_rng(0).normal(size=(3, inp["height"], inp["width"], 3))
    probs = m.predict(x.astype(np.float32))
    assert probs.shape == (3, len(m.card["classes"]))
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and (probs >= 0).all()


def test_onnx_app_serves_a_batch(onnx_bundle_dir):
    from .conftest import solid

    c = create_app(Settings(model_dir=onnx_bundle_dir)).test_client()
    labels = ["USD-100", "USD-1", "none"]
    r = c.post("/api/v1/predict", data={"image": [(_io(solid(x)), "a.jpg") for x in labels]})
    assert [a["label"] for a in r.get_json()["results"]] == labels
    assert c.get("/readyz").get_json()["runtime"] == "onnxruntime"


def _io(b):
    import io

    return io.BytesIO(b)


def test_missing_dir(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        runtime.load_model(tmp_path / "nope")


def test_missing_card(bundle_dir, tmp_path):
    d = copy(bundle_dir, tmp_path)
    (d / "card.json").unlink()
    with pytest.raises(BundleError, match="no card.json"):
        load_bundle(d)


def test_card_not_json(bundle_dir, tmp_path):
    d = copy(bundle_dir, tmp_path)
    (d / "card.json").write_text("{oops")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(d)


def test_missing_model_file(bundle_dir, tmp_path):
    d = copy(bundle_dir, tmp_path)
    (d / "model.tflite").unlink()
    with pytest.raises(BundleError, match="model_file model.tflite is missing"):
        load_bundle(d)


def test_corrupt_model_sha(bundle_dir, tmp_path):
    d = copy(bundle_dir, tmp_path)
    data = bytearray((d / "model.tflite").read_bytes())
    data[-1] ^= 0xFF
    (d / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256 .* does not match card.json"):
        load_bundle(d)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_garbage_model_with_matching_sha(bundle_dir, onnx_bundle_dir, tmp_path, fmt):
    d = copy(bundle_dir if fmt == "tflite" else onnx_bundle_dir, tmp_path)
    (d / f"model.{fmt}").write_bytes(b"not a model at all" * 10)
    reseal(d)
    with pytest.raises(BundleError, match="cannot open model"):
        runtime.load_model(d)


def test_mismatched_classes(bundle_dir, tmp_path):
    d = copy(bundle_dir, tmp_path)
    edit_card(d, lambda c: c["classes"].pop())
    with pytest.raises(BundleError, match=r"output shape \[1, 8\] does not end in 7"):
        runtime.load_model(d)


def test_mismatched_input_size(onnx_bundle_dir, tmp_path):
    d = copy(onnx_bundle_dir, tmp_path)
    edit_card(d, lambda c: c["input"].update(height=224, width=224))
    with pytest.raises(BundleError, match=r"input shape \[-1, 32, 32, 3\] does not match"):
        runtime.load_model(d)


def _set(path, value):
    def fn(card):
        obj = card
        for k in path[:-1]:
            obj = obj[k]
        if value is KeyError:
            del obj[path[-1]]
        else:
            obj[path[-1]] = value
    return fn


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("schema_version",), 2, "schema_version must be 1"),
        (("name",), "Bad Name", "name 'Bad Name' must match"),
        (("version",), "", "version must be a non-empty string"),
        (("format",), "pt", "format must be 'tflite' or 'onnx'"),
        (("format",), "onnx", "does not end in .onnx"),
        (("model_file",), "../model.tflite", "model_file must be a plain file name"),
        (("model_file",), "/etc/passwd", "model_file must be a plain file name"),
        (("sha256",), "abc", "sha256 must be 64 hex digits"),
        (("input",), KeyError, "input must be an object"),
        (("input", "layout"), "NCHW", "input.layout must be NHWC"),
        (("input", "height"), 0, "input.height must be a positive integer"),
        (("input", "std"), [0, 1, 1], "input.std must not contain 0"),
        (("input", "mean"), [0.5], "input.mean must be a list of 3 numbers"),
        (("classes",), [], "classes must be a list of at least 2"),
        (("classes", 3, "id"), 7, "classes[3].id must be 3"),
        (("classes", 3, "label"), "USD-1", "classes[3].label 'USD-1' is a duplicate"),
        (("classes", 3, "display"), {"es": "x"}, "classes[3].display must have an 'en' string"),
        (("classes", 3, "value"), "ten", "classes[3].value must be a number or null"),
        (("classes", 0, "negative"), True, "at most one class may be negative"),
        (("threshold",), 0, "threshold must be in (0, 1]"),
        (("threshold",), 1.2, "threshold must be in (0, 1]"),
        (("text",), "digits", "text must be an object of languages"),
        (("text",), {"fr": {"no_note": "Aucun"}}, "text.fr: language must be one of en, es"),
        (("text",), {"en": ["No digit found."]}, "text.en must be an object of strings"),
        (("text",), {"en": {"no_notes": "x"}}, "text.en.no_notes is not a text key"),
        (("text",), {"en": {"no_note": ""}}, "text.en.no_note must be a non-empty string"),
        (("text",), {"en": {"may_be": "It may be {digit}."}},
         "text.en.may_be uses {digit}; it may use {name}"),
        (("text",), {"es": {"unsure": "Puede ser {a} o {b"}}, "text.es.unsure: "),
    ],
)
def test_bad_card(bundle_dir, tmp_path, path, value, message):
    d = copy(bundle_dir, tmp_path)
    edit_card(d, _set(path, value))
    with pytest.raises(BundleError) as e:
        load_bundle(d)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_card_not_an_object(bundle_dir, tmp_path):
    d = copy(bundle_dir, tmp_path)
    (d / "card.json").write_text("[]")
    with pytest.raises(BundleError, match="not a JSON object"):
        load_bundle(d)


def test_unknown_keys_and_missing_mean_std_allowed(bundle_dir, tmp_path):
    d = copy(bundle_dir, tmp_path)
    edit_card(d, lambda c: c.update(kind="digits", extra={"a": 1}))
    assert load_bundle(d).card["kind"] == "digits"


def test_create_app_bad_bundle_one_line(tmp_path, capsys, bundle_dir):
    d = copy(bundle_dir, tmp_path)
    edit_card(d, lambda c: c["classes"].pop())
    with pytest.raises(StartupError):
        create_app(Settings(model_dir=d))
    err = capsys.readouterr().err.strip()
    assert err.startswith("usbills: model bundle error: ") and "\n" not in err


def test_each_app_answers_with_its_own_model(app, onnx_bundle_dir):
    other = create_app(Settings(model_dir=onnx_bundle_dir))
    assert app.test_client().get("/readyz").get_json()["runtime"] == "litert"
    assert other.test_client().get("/readyz").get_json()["runtime"] == "onnxruntime"
