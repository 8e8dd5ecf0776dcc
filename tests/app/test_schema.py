"""The OpenAPI document matches the server: schemathesis generates requests from it (valid and
invalid) against real gunicorn, and every answer must match the document, with no 5xx.

A short seeded pass runs here; `scripts/bench-fuzz` runs the same command with 10,000+ cases
and the served bundle (its last result is in docs/benchmarks.md).
"""

from __future__ import annotations

import subprocess

from tests import schema_fuzz


def test_api_matches_its_openapi_document(server):
    r = subprocess.run(schema_fuzz.command(server.url, 40, seed=1), cwd=schema_fuzz.ROOT,
                       env=schema_fuzz.ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert "No issues found" in r.stdout
