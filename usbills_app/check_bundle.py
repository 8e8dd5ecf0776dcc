"""Check a model bundle the way the app loads it, without serving it:

    python -m usbills_app.check_bundle [DIR]      # DIR: MODEL_DIR, else the image's bundle

Validates card.json, the model (and localiser) files and their hashes, opens them with the
card's runtime and runs one inference. Exit 0 with one line naming the bundle, or exit 1 with
the same one-line error gunicorn would stop with. The stack runs it (service ``model-check``)
before it replaces a running app, so a bad bundle never takes a working site down.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .bundle import BundleError
from .config import ConfigError, load_settings
from .runtime import load_model


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print("usage: python -m usbills_app.check_bundle [DIR]", file=sys.stderr)
        return 2
    try:
        model_dir = Path(argv[0]) if argv else load_settings().model_dir
        model = load_model(model_dir, threads=1, warm=True)
    except (BundleError, ConfigError) as e:
        print(f"usbills: model bundle error: {e}", file=sys.stderr, flush=True)
        return 1
    card = model.card
    print(f"usbills: model bundle OK: {model_dir} ({card['name']} {card['version']}, "
          f"{card['model_file']}" + (", with localiser" if model.localiser else "") + ")",
          flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
