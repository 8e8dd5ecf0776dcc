"""Fixtures more than one test folder uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chromium import CHROMIUM


@pytest.fixture(scope="session")
def pw():
    """One Playwright for the whole run: a second sync_playwright() in the same process fails
    while the first is open (its event loop is running)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup-dev (installs Debian's chromium)")
    with sync_playwright() as p:
        yield p
