"""Settings from environment variables, validated once at start-up.

A wrong value raises ConfigError whose message is the one line the operator sees.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# In the image the bundle lives at /app/model; in a checkout, next to the training code.
IMAGE_MODEL_DIR = Path("/app/model")
DEFAULT_MODEL_DIR = str(
    IMAGE_MODEL_DIR if IMAGE_MODEL_DIR.is_dir() else REPO_ROOT / "model/bundles/usbills"
)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(ValueError):
    """A bad environment variable: the message names it, its value and what is allowed."""


@dataclass(frozen=True)
class Settings:
    model_dir: Path
    port: int = 8000
    web_concurrency: int = 1
    gunicorn_threads: int = 4
    max_upload_mb: float = 10
    max_batch: int = 8
    top_k: int = 3
    confidence_threshold: float | None = None
    inference_threads: int = 1
    log_level: str = "info"
    max_pixels: int = 50_000_000
    shutdown_delay_s: float = 0

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer (allowed {lo}..{hi})") from None
    if not lo <= v <= hi:
        raise ConfigError(f"{name}={v} is out of range (allowed {lo}..{hi})")
    return v


def _float(env: Mapping[str, str], name: str, default, lo: float, hi: float, lo_open=False):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        v = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if v != v or v > hi or v < lo or (lo_open and v == lo):
        bound = "(" if lo_open else "["
        raise ConfigError(f"{name}={raw} is out of range (allowed {bound}{lo}, {hi}])")
    return v


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    level = env.get("LOG_LEVEL", "info").strip().lower() or "info"
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={level!r} is not one of {', '.join(LOG_LEVELS)}")
    return Settings(
        model_dir=Path(env.get("MODEL_DIR", "").strip() or DEFAULT_MODEL_DIR),
        port=_int(env, "PORT", 8000, 1, 65535),
        web_concurrency=_int(env, "WEB_CONCURRENCY", 1, 1, 64),
        gunicorn_threads=_int(env, "GUNICORN_THREADS", 4, 1, 64),
        max_upload_mb=_float(env, "MAX_UPLOAD_MB", 10, 0, 100, lo_open=True),
        max_batch=_int(env, "MAX_BATCH", 8, 1, 64),
        top_k=_int(env, "TOP_K", 3, 1, 100),
        confidence_threshold=_float(env, "CONFIDENCE_THRESHOLD", None, 0, 1, lo_open=True),
        inference_threads=_int(env, "INFERENCE_THREADS", 1, 1, 64),
        log_level=level,
        max_pixels=_int(env, "MAX_IMAGE_PIXELS", 50_000_000, 1_000_000, 500_000_000),
        shutdown_delay_s=_float(env, "SHUTDOWN_DELAY_S", 0, 0, 15),
    )
