"""gunicorn access log as one JSON object per line (gunicorn's format string cannot escape
quotes in paths or user agents, so the record is built and json.dumps'ed here)."""

from __future__ import annotations

import json
import time

from gunicorn.glogging import Logger


class JsonLogger(Logger):
    def access(self, resp, req, environ, request_time):
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.syslog):
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "remote": environ.get("HTTP_X_FORWARDED_FOR", "").split(",")[0].strip()
            or environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "query": environ.get("QUERY_STRING") or None,
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "request_id": environ.get("HTTP_X_REQUEST_ID"),
        }
        try:
            self.access_log.info(json.dumps(record, separators=(",", ":")))
        except Exception:  # pragma: no cover - logging must never break a request
            self.exception("access log failed")
