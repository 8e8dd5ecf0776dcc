"""Prometheus metrics. Works with several gunicorn workers through prometheus_client's
multiprocess mode: gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before the app is imported,
and /metrics then aggregates every worker's files (see docs/api.md)."""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)

REQUESTS = Counter(
    "usbills_http_requests_total", "HTTP requests", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "usbills_http_request_duration_seconds", "Request latency", ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
STAGE = Histogram(
    "usbills_predict_stage_seconds",
    "Per-image time by stage (decode, localise, preprocess, inference)",
    ["stage"], buckets=STAGE_BUCKETS,
)
PREDICTIONS = Counter(
    "usbills_predictions_total", "Answers per top-1 class", ["label", "identified"]
)
ERRORS = Counter("usbills_errors_total", "Error answers by status and code", ["status", "code"])


def record_error(status: int, code: str) -> None:
    ERRORS.labels(str(status), code).inc()


def record_prediction(label: str, identified: bool, timings_ms: dict) -> None:
    PREDICTIONS.labels(label, "true" if identified else "false").inc()
    for stage in ("decode", "localise", "preprocess", "inference"):
        if stage in timings_ms:  # no "localise" without a localiser (or for pixel grids)
            STAGE.labels(stage).observe(timings_ms[stage] / 1000)


# HTTP methods counted by name; any other (clients may send any token) counts as "other",
# so a client cannot grow /metrics without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def _method() -> str:
    return request.method if request.method in METHODS else "other"


def _endpoint() -> str:
    # The route pattern, not the raw path: bounded label cardinality.
    return request.url_rule.rule if request.url_rule else "unmatched"


def init_app(app: Flask) -> None:
    @app.before_request
    def _start():
        g._t0 = time.perf_counter()

    @app.after_request
    def _count(resp):
        ep = _endpoint()
        if ep != "/metrics":
            REQUESTS.labels(_method(), ep, str(resp.status_code)).inc()
            if "_t0" in g:
                LATENCY.labels(ep).observe(time.perf_counter() - g._t0)
        return resp

    @app.get("/metrics")
    def metrics():
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = REGISTRY
        # CONTENT_TYPE_LATEST already names its charset: as content_type, Flask adds none.
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
