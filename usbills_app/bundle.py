"""Model bundle loading and validation (the rules of docs/bundle-format.md)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from . import site_text

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EXT = {"tflite": ".tflite", "onnx": ".onnx"}


class BundleError(ValueError):
    """A missing, corrupt or inconsistent bundle: the message is one line for the operator."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    card: dict
    model_path: Path
    localiser_path: Path | None = None  # the optional note localiser (card "localiser")

    @property
    def classes(self) -> list[dict]:
        return self.card["classes"]

    @property
    def negative_id(self) -> int | None:
        return next((c["id"] for c in self.classes if c.get("negative")), None)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def validate_card(card: object) -> list[str]:
    """Return every problem with the card (empty when valid)."""
    if not isinstance(card, dict):
        return ["card.json is not a JSON object"]
    errs: list[str] = []
    if card.get("schema_version") != 1:
        errs.append(f"schema_version must be 1, got {card.get('schema_version')!r}")
    name = card.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        errs.append(f"name {name!r} must match {NAME_RE.pattern}")
    if not isinstance(card.get("version"), str) or not card.get("version"):
        errs.append("version must be a non-empty string")
    errs += _file_errors("", card.get("format"), card.get("model_file"))
    sha = card.get("sha256")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        errs.append("sha256 must be 64 hex digits")
    inp = card.get("input")
    if not isinstance(inp, dict):
        errs.append("input must be an object")
    else:
        for k in ("height", "width", "channels"):
            if not isinstance(inp.get(k), int) or isinstance(inp.get(k), bool) or inp[k] < 1:
                errs.append(f"input.{k} must be a positive integer")
        if inp.get("channels") not in (1, 3):
            errs.append("input.channels must be 3 (RGB) or 1 (grey)")
        if inp.get("layout", "NHWC") != "NHWC":
            errs.append(f"input.layout must be NHWC, got {inp.get('layout')!r}")
        if inp.get("dtype", "float32") not in ("float32", "uint8"):
            errs.append("input.dtype must be float32 or uint8")
        if not _num(inp.get("scale", 1.0)):
            errs.append("input.scale must be a number")
        ch = inp.get("channels") if isinstance(inp.get("channels"), int) else 3
        for k in ("mean", "std"):
            v = inp.get(k)
            if v is None:
                continue
            if not isinstance(v, list) or len(v) != ch or not all(_num(x) for x in v):
                errs.append(f"input.{k} must be a list of {ch} numbers")
            elif k == "std" and any(x == 0 for x in v):
                errs.append("input.std must not contain 0")
    classes = card.get("classes")
    if not isinstance(classes, list) or len(classes) < 2:
        errs.append("classes must be a list of at least 2 classes")
    else:
        labels, negatives = set(), 0
        for i, c in enumerate(classes):
            if not isinstance(c, dict):
                errs.append(f"classes[{i}] is not an object")
                continue
            if c.get("id") != i:
                errs.append(f"classes[{i}].id must be {i} (ids are 0..N-1 in order)")
            lab = c.get("label")
            if not isinstance(lab, str) or not lab:
                errs.append(f"classes[{i}].label must be a non-empty string")
            elif lab in labels:
                errs.append(f"classes[{i}].label {lab!r} is a duplicate")
            labels.add(lab)
            if c.get("value") is not None and not _num(c.get("value")):
                errs.append(f"classes[{i}].value must be a number or null")
            disp = c.get("display")
            if not isinstance(disp, dict) or not isinstance(disp.get("en"), str):
                errs.append(f"classes[{i}].display must have an 'en' string")
            negatives += bool(c.get("negative"))
        if negatives > 1:
            errs.append("at most one class may be negative")
    thr = card.get("threshold")
    if not _num(thr) or not 0 < thr <= 1:
        errs.append(f"threshold must be in (0, 1], got {thr!r}")
    if "localiser" in card:
        errs += _localiser_errors(card["localiser"])
    if "scan" in card:
        errs += _scan_errors(card["scan"])
    if "text" in card:
        errs += site_text.card_text_errors(card["text"])
    return errs


def _file_errors(where: str, fmt: object, mf: object) -> list[str]:
    errs = []
    if fmt not in EXT:
        errs.append(f"{where}format must be 'tflite' or 'onnx', got {fmt!r}")
    if not isinstance(mf, str) or not mf or "/" in mf or "\\" in mf or mf in (".", ".."):
        errs.append(f"{where}model_file must be a plain file name in the bundle, got {mf!r}")
    elif fmt in EXT and not mf.endswith(EXT[fmt]):
        errs.append(f"{where}model_file {mf!r} does not end in {EXT[fmt]} as format {fmt!r} "
                    "requires")
    return errs


def _localiser_errors(loc: object) -> list[str]:
    """The optional note localiser: its own file, input size and grid (docs/bundle-format.md)."""
    if not isinstance(loc, dict):
        return ["localiser must be an object"]
    errs = _file_errors("localiser.", loc.get("format"), loc.get("model_file"))
    sha = loc.get("sha256")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        errs.append("localiser.sha256 must be 64 hex digits")
    inp = loc.get("input")
    if not isinstance(inp, dict) or not all(
            isinstance(inp.get(k), int) and not isinstance(inp.get(k), bool) and inp[k] >= 1
            for k in ("height", "width")):
        errs.append("localiser.input must have positive integer height and width")
    grid = loc.get("grid")
    if not isinstance(grid, int) or isinstance(grid, bool) or not 1 <= grid <= 256:
        errs.append("localiser.grid must be an integer 1..256")
    if not _num(loc.get("threshold")) or not 0 < loc["threshold"] < 1:
        errs.append("localiser.threshold must be in (0, 1)")
    if not _num(loc.get("margin")) or not 0 <= loc["margin"] <= 1:
        errs.append("localiser.margin must be in [0, 1]")
    return errs


def _scan_errors(scan: object) -> list[str]:
    if not isinstance(scan, dict):
        return ["scan must be an object"]
    errs = []
    frames = scan.get("frames", 3)
    if not isinstance(frames, int) or isinstance(frames, bool) or not 1 <= frames <= 20:
        errs.append("scan.frames must be an integer 1..20")
    unsure = scan.get("unsure", 0)
    if not isinstance(unsure, int) or isinstance(unsure, bool) or not 0 <= unsure <= 20:
        errs.append("scan.unsure must be an integer 0..20")
    gap = scan.get("max_gap_s", 2.0)
    if not _num(gap) or not 0 < gap <= 60:
        errs.append("scan.max_gap_s must be in (0, 60]")
    thr = scan.get("threshold", 0.0)
    if not _num(thr) or not 0 <= thr <= 1:
        errs.append("scan.threshold must be in [0, 1]")
    return errs


def write_card(path: Path, card: dict) -> None:
    """Write a bundle's card.json (path: the bundle directory) as every tool writes it."""
    (path / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n",
                                    encoding="utf-8")


def load_bundle(path: Path) -> Bundle:
    """Read and check card.json and the model file it names (not yet the model's shapes)."""
    if not path.is_dir():
        raise BundleError(
            f"model bundle {path} does not exist or is not a directory (set MODEL_DIR)"
        )
    card_path = path / "card.json"
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"model bundle {path} has no card.json") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{card_path} is not valid JSON: {e}") from None
    errs = validate_card(card)
    if errs:
        raise BundleError(f"{card_path}: " + "; ".join(errs))
    model_path = _checked_file(path, card["model_file"], card["sha256"], "model_file")
    loc = card.get("localiser")
    loc_path = (_checked_file(path, loc["model_file"], loc["sha256"], "localiser.model_file")
                if loc else None)
    return Bundle(path, card, model_path, loc_path)


def _checked_file(bundle: Path, name: str, sha: str, key: str) -> Path:
    model_path = bundle / name
    if not model_path.is_file():
        raise BundleError(f"model bundle {bundle}: {key} {name} is missing")
    digest = sha256_file(model_path)
    if digest != sha.lower():
        raise BundleError(
            f"{model_path}: sha256 {digest[:12]}... does not match card.json "
            f"{sha[:12]}... (corrupt or swapped model file)"
        )
    return model_path


def check_shapes(bundle: Bundle, input_shape: list[int], output_shape: list[int]) -> None:
    """The model's real tensors must agree with the card (-1 means a dynamic dimension)."""
    inp = bundle.card["input"]
    want = [inp["height"], inp["width"], inp["channels"]]
    ok_in = (
        len(input_shape) == 4
        and input_shape[0] in (1, -1)
        and all(d in (w, -1) for d, w in zip(input_shape[1:], want, strict=True))
    )
    if not ok_in:
        raise BundleError(
            f"{bundle.model_path}: model input shape {input_shape} does not match the card's "
            f"[1, {want[0]}, {want[1]}, {want[2]}] (NHWC)"
        )
    n = len(bundle.classes)
    if len(output_shape) < 1 or output_shape[-1] != n:
        raise BundleError(
            f"{bundle.model_path}: model output shape {output_shape} does not end in {n} "
            f"(the card lists {n} classes)"
        )


def check_localiser_shapes(bundle: Bundle, input_shape: list[int],
                           output_shape: list[int]) -> None:
    """The localiser takes the card's input size and gives a grid x grid map."""
    loc = bundle.card["localiser"]
    want = [loc["input"]["height"], loc["input"]["width"], bundle.card["input"]["channels"]]
    ok_in = (len(input_shape) == 4 and input_shape[0] in (1, -1)
             and all(d in (w, -1) for d, w in zip(input_shape[1:], want, strict=True)))
    cells = 1
    for d in output_shape[1:]:
        cells *= d
    if not ok_in or cells != loc["grid"] ** 2:
        raise BundleError(
            f"{bundle.localiser_path}: localiser shapes {input_shape} -> {output_shape} do "
            f"not match the card's [1, {want[0]}, {want[1]}, {want[2]}] -> "
            f"{loc['grid']}x{loc['grid']} grid"
        )
