"""The OpenAPI 3.1 document for /api/v1 (served at /api/v1/openapi.json)."""

from __future__ import annotations

from . import scan
from .config import Settings

ERROR = {"$ref": "#/components/schemas/Error"}


def _err(desc: str) -> dict:
    return {"description": desc, "content": {"application/json": {"schema": ERROR}}}


def _exactly_one_key(alternatives: dict[str, dict]) -> list[dict]:
    """JSON bodies that each need their key and may not carry another alternative's key."""
    return [{"type": "object", **schema, "required": [key],
             "not": {"anyOf": [{"required": [k]} for k in alternatives if k != key]}}
            for key, schema in alternatives.items()]


def spec(settings: Settings, n_classes: int | None = None) -> dict:
    """The document; ``n_classes`` (the loaded model's) bounds top_k when known."""
    candidate = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "example": "USD-20"},
            "display_name": {"type": "string", "example": "Twenty dollars"},
            "value": {"type": ["number", "null"], "example": 20},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["label", "display_name", "value", "confidence"],
    }
    answer = {
        "type": "object",
        "properties": {
            "identified": {"type": "boolean",
                           "description": "top-1 is a note and confidence >= threshold"},
            **candidate["properties"],
            "no_object": {"type": "boolean",
                          "description": "top-1 is the negative class ('none') above threshold"},
            "message": {"type": "string", "description": "what to say to the user"},
            "candidates": {"type": "array", "items": {"$ref": "#/components/schemas/Candidate"},
                           "description": "the two likeliest notes (negative class excluded)"},
            "top_k": {"type": "array", "items": {"$ref": "#/components/schemas/Candidate"}},
            "threshold": {"type": "number"},
            "lang": {"type": "string", "enum": ["en", "es"]},
            "model": {"$ref": "#/components/schemas/ModelRef"},
            "timings_ms": {
                "type": "object",
                "properties": {k: {"type": "number"} for k in
                               ("decode", "localise", "preprocess", "inference", "total")},
            },
            "note_box": {
                "type": ["array", "null"], "minItems": 4, "maxItems": 4,
                "items": {"type": "number", "minimum": 0, "maximum": 1},
                "description": "[left, top, right, bottom], fractions of the frame: the located "
                               "note with a margin, the part of the frame classified; null: "
                               "the whole frame was (no localiser, no note found, or the "
                               "note fills most of it)"},
            "scan": {"$ref": "#/components/schemas/Scan"},
        },
        "required": ["identified", "label", "confidence", "no_object", "message",
                     "candidates", "top_k", "threshold", "lang", "model", "timings_ms"],
    }
    b64 = {"type": "string", "format": "byte", "minLength": 1,
           "description": "base64 (a data: URL also works)"}
    json_bodies = _exactly_one_key({
        "image": {"properties": {"image": b64}},
        "images": {"properties": {"images": {"type": "array", "items": b64, "minItems": 1,
                                             "maxItems": settings.max_batch}}},
        "pixels": {"description": (
            "one image as grey values, light on dark: 8x8 to 256x256; 0..16 for 8x8 "
            "(load_digits), else 0..255 (MNIST 28x28), unless max_value is given"),
            "properties": {
                "pixels": {"type": "array", "minItems": 8, "maxItems": 256,
                           "items": {"type": "array", "minItems": 8, "maxItems": 256,
                                     "items": {"type": "number"}}},
                "max_value": {"type": ["number", "null"], "minimum": 1, "maximum": 65535,
                              "description": "null: the default range"}}},
    })
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "usbills model-site API",
            "version": "1",
            "description": (
                "Identify a US banknote in a photo. Images: JPEG, PNG, WebP or HEIC, at most "
                f"{settings.max_upload_mb:g} MB per request and {settings.max_batch} per batch."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/api/v1/predict": {
                "post": {
                    "summary": "Identify the banknote in one image or several (batch)",
                    "parameters": [
                        {"name": "lang", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": ["en", "es"]},
                         "description": "answer language (else Accept-Language, else en)"},
                        {"name": "top_k", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1,
                                    **({"maximum": n_classes} if n_classes else {})},
                         "description": f"entries in top_k (default {settings.top_k})"},
                        {"name": "scan", "in": "query", "required": False,
                         "schema": {"type": "string", "format": scan.STATE_FORMAT},
                         "description": "'new' to start a scan of consecutive frames, then "
                                        "the scan.state of the previous answer: the answer "
                                        "gets the scan-level decision in scan"},
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {"type": "object", "properties": {"image": {
                                    "type": "array", "minItems": 1,
                                    "maxItems": settings.max_batch,
                                    "items": {"type": "string", "format": "binary",
                                              "minLength": 1},
                                    "description": "repeat the field for a batch"}},
                                    "required": ["image"]},
                            },
                            **{t: {"schema": {"type": "string", "format": "binary",
                                              "minLength": 1}}
                               for t in ("image/jpeg", "image/png", "image/webp", "image/heic",
                                         "image/heif", "application/octet-stream")},
                            "application/json": {"schema": {"oneOf": json_bodies}},
                        },
                    },
                    "responses": {
                        "200": {"description": "The answer (a batch gets {results, model})",
                                "content": {"application/json": {"schema": {"oneOf": [
                                    {"$ref": "#/components/schemas/Answer"},
                                    {"$ref": "#/components/schemas/BatchAnswer"}]}}}},
                        "400": _err("Bad request: invalid JSON or base64, missing image, "
                                    "bad parameter, more than one of image, images and "
                                    "pixels, pixels not a 2-D array of numbers"),
                        "405": _err("Method not allowed"),
                        "413": _err("Upload over MAX_UPLOAD_MB, or more images than MAX_BATCH"),
                        "414": {"description": "Request line over 8 KB (answered by gunicorn "
                                               "or nginx, before the app: an HTML page)",
                                "content": {"text/html": {"schema": {"type": "string"}}}},
                        "415": _err("Unsupported Content-Type or image format"),
                        "422": _err("Not a decodable image, truncated, or too many pixels; "
                                    "pixels grid of a wrong size, ragged, or with values "
                                    "out of range"),
                        "429": _err("Busy: retry after the Retry-After header"),
                        "503": _err("Model not loaded yet"),
                    },
                }
            },
            "/api/v1/model": {"get": {"summary": "The model card (card.json) and serving settings",
                                      "responses": {"200": {"description": "card.json + serving"},
                                                    "503": _err("Model not loaded yet")}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document",
                                             "responses": {"200": {"description": "OpenAPI"}}}},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {
                "description": '{"status": "ok"}'}}}},
            "/readyz": {"get": {"summary": "Readiness: model loaded and warmed", "responses": {
                "200": {"description": '{"status": "ready", ...}'},
                "503": _err("Not ready")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "text exposition format"}}}},
        },
        "components": {"schemas": {
            "Candidate": candidate,
            "Answer": answer,
            "BatchAnswer": {"type": "object", "properties": {
                "results": {"type": "array", "items": {"$ref": "#/components/schemas/Answer"}},
                "model": {"$ref": "#/components/schemas/ModelRef"},
                "scan": {"$ref": "#/components/schemas/Scan"}},
                "required": ["results", "model"]},
            "Scan": {"type": "object", "description": (
                "The scan-level decision (with ?scan=): a note is identified only when "
                "frames_needed of the last window_frames frames name it and no other note "
                "was named after the first of them"), "properties": {
                "status": {"type": "string", "enum": ["identified", "searching"]},
                "label": {"type": ["string", "null"]},
                "display_name": {"type": ["string", "null"]},
                "value": {"type": ["number", "null"]},
                "announce": {"type": "boolean",
                             "description": "first identification since the note came into view"},
                "agreeing_frames": {"type": "integer", "minimum": 0},
                "frames_needed": {"type": "integer", "minimum": 1},
                "window_frames": {"type": "integer", "minimum": 1},
                "min_confidence": {"type": "number", "minimum": 0, "maximum": 1,
                                   "description": "an identified frame votes only at this "
                                   "confidence or more (0: every identified frame)"},
                "state": {"type": "string", "description": "send back as ?scan= next time"}},
                "required": ["status", "label", "announce", "agreeing_frames", "frames_needed",
                             "window_frames", "state"]},
            "ModelRef": {"type": "object", "properties": {
                "name": {"type": "string"}, "version": {"type": "string"}}},
            "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}},
                "required": ["code", "message"]}}, "required": ["error"]},
        }},
    }
