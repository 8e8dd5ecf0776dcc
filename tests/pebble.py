"""Pebble, Let's Encrypt's test ACME server, for the proxy and Swarm suites: its TLS files
and config, and an image made from the host's Debian binary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.procs import sh

IMAGE = "usbills-test/pebble:local"
DOCKERFILE = Path(__file__).resolve().parent / "proxy" / "pebble" / "Dockerfile"


def binary() -> str | None:
    found = shutil.which("pebble")
    return found or ("/usr/bin/pebble" if Path("/usr/bin/pebble").exists() else None)


def make_tls(directory: Path) -> None:
    """CA + server certificate for Pebble's own HTTPS endpoint (Debian ships none)."""
    d = str(directory)
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
       "-nodes", "-days", "2", "-subj", "/CN=usbills test pebble CA",
       "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem")
    sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-subj", "/CN=pebble", "-keyout", f"{d}/key.pem", "-out", f"{d}/server.csr")
    (directory / "ext.cnf").write_text("subjectAltName=DNS:pebble,DNS:localhost\n")
    sh("openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem",
       "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext.cnf",
       "-out", f"{d}/cert.pem")
    (directory / "config.json").write_text(json.dumps({"pebble": {
        "listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
        "certificate": "/pebble/cert.pem", "privateKey": "/pebble/key.pem",
        "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
        # 90 days like Let's Encrypt (Mozilla's profile allows at most 366).
        "certificateValidityPeriod": 90 * 86400}}))
    for f in directory.iterdir():
        f.chmod(0o644)  # Pebble runs as nobody in its container


def build_image(ctx: Path) -> None:
    shutil.copy(binary() or "/usr/bin/pebble", ctx / "pebble")
    shutil.copy(DOCKERFILE, ctx / "Dockerfile")
    sh("docker", "build", "-q", "-t", IMAGE, str(ctx))
