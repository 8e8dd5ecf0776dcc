"""Environment variables: defaults, validation, one clear line on a bad value."""

from __future__ import annotations

import pytest

from usbills_app import StartupError, create_app
from usbills_app.config import DEFAULT_MODEL_DIR, ConfigError, load_settings


def test_defaults():
    s = load_settings({})
    assert (s.port, s.web_concurrency, s.gunicorn_threads, s.max_upload_mb, s.max_batch,
            s.top_k, s.confidence_threshold, s.inference_threads, s.log_level) == (
        8000, 1, 4, 10, 8, 3, None, 1, "info")
    assert str(s.model_dir) == DEFAULT_MODEL_DIR
    assert s.max_upload_bytes == 10 * 1024 * 1024
    assert s.shutdown_delay_s == 0
    assert load_settings({"SHUTDOWN_DELAY_S": "3"}).shutdown_delay_s == 3


def test_values_read():
    s = load_settings({"MODEL_DIR": "/m", "PORT": "9000", "WEB_CONCURRENCY": "3",
                       "GUNICORN_THREADS": "8", "MAX_UPLOAD_MB": "2.5", "MAX_BATCH": "4",
                       "TOP_K": "2", "CONFIDENCE_THRESHOLD": "0.6", "INFERENCE_THREADS": "2",
                       "LOG_LEVEL": "DEBUG", "MAX_IMAGE_PIXELS": "2000000"})
    assert (str(s.model_dir), s.port, s.web_concurrency, s.gunicorn_threads, s.max_upload_mb,
            s.max_batch, s.top_k, s.confidence_threshold, s.inference_threads, s.log_level,
            s.max_pixels) == ("/m", 9000, 3, 8, 2.5, 4, 2, 0.6, 2, "debug", 2_000_000)


def test_empty_values_mean_default():
    assert load_settings({"PORT": "", "CONFIDENCE_THRESHOLD": " "}).port == 8000


@pytest.mark.parametrize(
    "name, value",
    [
        ("PORT", "http"), ("PORT", "0"), ("PORT", "70000"),
        ("WEB_CONCURRENCY", "0"), ("WEB_CONCURRENCY", "two"),
        ("GUNICORN_THREADS", "-1"), ("MAX_UPLOAD_MB", "0"), ("MAX_UPLOAD_MB", "ten"),
        ("MAX_UPLOAD_MB", "nan"), ("MAX_BATCH", "1000"), ("TOP_K", "0"),
        ("CONFIDENCE_THRESHOLD", "0"), ("CONFIDENCE_THRESHOLD", "1.5"),
        ("CONFIDENCE_THRESHOLD", "high"), ("INFERENCE_THREADS", "1.5"),
        ("LOG_LEVEL", "loud"), ("MAX_IMAGE_PIXELS", "10"), ("SHUTDOWN_DELAY_S", "60"),
        ("SHUTDOWN_DELAY_S", "soon"),
    ],
)
def test_bad_values(name, value):
    with pytest.raises(ConfigError) as e:
        load_settings({name: value})
    msg = str(e.value)
    assert msg.startswith(f"{name}=") and "\n" not in msg


def test_create_app_bad_env_one_line(monkeypatch, capsys):
    monkeypatch.setenv("MAX_BATCH", "lots")
    with pytest.raises(StartupError) as e:
        create_app()
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == "usbills: configuration error: MAX_BATCH='lots' is not an integer (allowed 1..64)"
