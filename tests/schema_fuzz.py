"""schemathesis for this API: the command line (with tests/schemathesis.toml) and strategies for
the API's opaque string formats (OpenAPI `format` names), loaded as its hooks module.

A scan token is opaque to clients (the server made it, the client sends it back), so no JSON
schema pattern can describe the valid ones: schemathesis learns them here. Used by
tests/app/test_schema.py (a short seeded pass) and scripts/bench-fuzz (10,000+ cases).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOOKS = "tests.schema_fuzz"


def command(url: str, max_examples: int, seed: int | None = None) -> list[str]:
    """schemathesis with every check against the server at ``url`` (run it with ENV, in ROOT)."""
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
    cmd = [exe, "--no-color", "--config-file", str(ROOT / "tests" / "schemathesis.toml"), "run",
           url + "/api/v1/openapi.json", "--checks", "all", "--max-examples", str(max_examples)]
    return cmd + (["--seed", str(seed)] if seed is not None else [])


ENV = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS}


def _register() -> None:
    from hypothesis import strategies as st
    from schemathesis import openapi

    from usbills_app import scan

    notes = ["USD-1", "USD-2", "USD-5", "USD-10", "USD-20", "USD-50", "USD-100"]
    note = st.none() | st.sampled_from(notes)
    count = st.integers(0, 10**6 - 1)
    states = st.just("new") | st.builds(
        scan.State, recent=st.lists(note, max_size=scan.MAX_WINDOW), announced=note,
        absent=count,
        t=st.none() | st.floats(0, 1e11, exclude_max=True),
    ).map(scan.encode)
    openapi.format(scan.STATE_FORMAT, states)


if os.environ.get("SCHEMATHESIS_HOOKS") == HOOKS:  # imported by schemathesis as its hooks
    _register()
