"""API errors: one exception type, rendered as {"error": {"code", "message"}} JSON."""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    """Bad input or a state the client can act on; never a stack trace to the user."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


# Werkzeug's HTTP errors (raised by routing and request parsing) mapped to stable codes.
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "not_ready",
}


def error_response(err: ApiError):
    from . import metrics

    metrics.record_error(err.status, err.code)
    resp = jsonify(err.to_dict())
    resp.status_code = err.status
    for k, v in err.headers.items():
        resp.headers[k] = v
    return resp


def wants_json() -> bool:
    """API paths always get JSON; other paths too unless the client prefers HTML."""
    if request.path.startswith("/api/") or request.path in ("/healthz", "/readyz", "/metrics"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        return error_response(err)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        if not wants_json():
            return err
        status = err.code or 500
        code = HTTP_CODES.get(status, "http_error")
        message = err.description or err.name
        if status == 413:
            limit = app.config["USBILLS_SETTINGS"].max_upload_mb
            message = f"The upload is larger than the {limit:g} MB limit (MAX_UPLOAD_MB)."
            length = request.content_length
            if length is not None and length <= app.config["MAX_CONTENT_LENGTH"]:
                # Within the size limit: Werkzeug's other 413 is a form of too many parts.
                message = (f"The form has more than {app.config['MAX_FORM_PARTS']} parts; send "
                           "one field per image.")
        headers = {}
        if status == 405 and getattr(err, "valid_methods", None):
            headers["Allow"] = ", ".join(sorted(err.valid_methods))
        return error_response(ApiError(status, code, message, headers))

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):  # pragma: no cover - a bug, logged with its traceback
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ApiError(500, "internal_error", "Internal server error."))
