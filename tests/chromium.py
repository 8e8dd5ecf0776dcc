"""Debian's Chromium for the tests that drive a page (tests/browser, tests/stack) and the
benchmarks that reuse them."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
