"""Test backend: GET / names the site, GET /headers echoes request headers, POST echoes size."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SITE = os.environ.get("SITE_NAME", "site")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status, body, ctype="text/plain; charset=utf-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/headers"):
            self._send(200, json.dumps(dict(self.headers.items())), "application/json")
        else:
            self._send(200, f"hello from {SITE} path={self.path}\n")

    def do_POST(self):
        size = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(size)
        self._send(200, f"{SITE} got {size} bytes\n")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
