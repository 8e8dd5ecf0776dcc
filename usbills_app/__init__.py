"""usbills model-site service: Flask app factory.

gunicorn -c usbills_app/gunicorn.conf.py "usbills_app:create_app()"
"""

from __future__ import annotations

import io
import logging
import sys

from flask import Flask, Request

from . import metrics, runtime
from .bundle import BundleError
from .config import ConfigError, Settings, load_settings
from .errors import register_error_handlers

__all__ = ["create_app", "StartupError"]
log = logging.getLogger("usbills")


class StartupError(SystemExit):
    """Bad configuration or bundle: exit non-zero after printing one line."""


class InMemoryRequest(Request):
    """Multipart files stay in memory (Werkzeug spools big ones to a temp file by default):
    uploads never touch the disk. The body size is already capped by MAX_CONTENT_LENGTH."""

    def _get_file_stream(self, total_content_length, content_type, filename=None,
                         content_length=None):
        return io.BytesIO()


def create_app(settings: Settings | None = None, *, load: bool = True,
               model: runtime.Model | None = None) -> Flask:
    """Build the app. Settings come from the environment unless given; the model is loaded
    (and warmed) from MODEL_DIR unless `model` is given or load=False (then /readyz is 503)."""
    try:
        settings = settings or load_settings()
    except ConfigError as e:
        _fail(f"usbills: configuration error: {e}")
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(settings.log_level.upper())

    app = Flask(__name__)
    app.request_class = InMemoryRequest
    app.config.update(
        USBILLS_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_upload_bytes,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    app.json.ensure_ascii = False  # "Veinte dólares", not "d\\u00f3lares"

    if model is None and load:
        current = runtime.get_model()
        if current is not None and current.bundle.path == settings.model_dir:
            model = current  # already loaded in this process (e.g. a second app in tests)
        else:
            try:
                model = runtime.load_model(settings.model_dir, settings.inference_threads)
            except BundleError as e:
                _fail(f"usbills: model bundle error: {e}")
            log.info("model %s %s loaded from %s (%s)", model.card["name"],
                     model.card["version"], settings.model_dir, model.runtime_name)
    if model is not None:
        runtime.set_model(model)

    from .api import Inflight, bp, health

    # Each app answers with its own model (None: not ready, 503); runtime.get_model() is the
    # process-wide one for code outside an app context.
    app.extensions["usbills"] = model
    app.extensions["usbills_inflight"] = Inflight(settings.gunicorn_threads * 2)
    register_error_handlers(app)
    app.before_request(_buffer_chunked_body)
    metrics.init_app(app)
    app.register_blueprint(health)
    app.register_blueprint(bp)
    from . import offline, ondevice, pages

    app.register_blueprint(pages.bp)
    app.register_blueprint(ondevice.bp)
    app.register_blueprint(offline.bp)
    return app


def _buffer_chunked_body() -> None:
    """A chunked body (no Content-Length) is read here, up to MAX_UPLOAD_MB: Werkzeug would cut
    it at the limit without a word (a 200, 400 or 422 for half a photo); over the limit it is a
    413 like any other upload. Uploads are read into memory anyway."""
    from flask import current_app, request

    env = request.environ
    if request.content_length is not None or "wsgi.input_terminated" not in env:
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    data = env["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        from werkzeug.exceptions import RequestEntityTooLarge

        raise RequestEntityTooLarge()
    env["wsgi.input"] = io.BytesIO(data)
    env["CONTENT_LENGTH"] = str(len(data))
    env.pop("HTTP_TRANSFER_ENCODING", None)


def _fail(line: str):
    print(line, file=sys.stderr, flush=True)
    raise StartupError(1)
