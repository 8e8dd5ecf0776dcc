"""Find which issued certificate serves which host, and make the self-signed fallback."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509


@dataclass(frozen=True)
class CertFiles:
    fullchain: str
    privkey: str
    not_after: dt.datetime
    domains: tuple[str, ...]
    # Let's Encrypt staging: browsers do not trust it, so no HSTS (it would lock visitors out).
    staging: bool = False


def _not_after(cert: x509.Certificate) -> dt.datetime:
    value = getattr(cert, "not_valid_after_utc", None)
    if value is None:  # cryptography < 42 (Debian bookworm's python3-cryptography)
        value = cert.not_valid_after.replace(tzinfo=dt.UTC)
    return value


def is_staging(cert: x509.Certificate) -> bool:
    issuer = cert.issuer.rfc4514_string().upper()
    return "STAGING" in issuer or "FAKE LE" in issuer


def read_cert(path: str | Path) -> tuple[tuple[str, ...], dt.datetime]:
    """(DNS names, expiry) of the first certificate in a PEM file."""
    names, not_after, _ = _read(path)
    return names, not_after


def _read(path: str | Path) -> tuple[tuple[str, ...], dt.datetime, bool]:
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(n.lower() for n in san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return names, _not_after(cert), is_staging(cert)


def scan_live(live_dir: str | Path, now: dt.datetime | None = None) -> dict[str, CertFiles]:
    """host -> the unexpired certificate under certbot's live/ that lasts longest for it."""
    now = now or dt.datetime.now(dt.UTC)
    found: dict[str, CertFiles] = {}
    root = Path(live_dir)
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir()):
        chain, key = entry / "fullchain.pem", entry / "privkey.pem"
        if not (chain.is_file() and key.is_file()):
            continue
        try:
            names, not_after, staging = _read(chain)
        except (OSError, ValueError):
            continue  # half-written or foreign file: ignore, next scan will see it again
        if not_after <= now:
            continue
        files = CertFiles(str(chain), str(key), not_after, names, staging)
        for name in names:
            if name not in found or found[name].not_after < not_after:
                found[name] = files
    return found


def fingerprint(paths: list[Path]) -> tuple:
    """Cheap change detector: resolved path, size and mtime of every file under paths."""
    items = []
    for base in paths:
        if base.is_file():
            st = base.stat()
            items.append((str(base), str(base), st.st_size, st.st_mtime_ns))
            continue
        if not base.exists():
            continue
        for dirpath, _dirs, files in os.walk(base, followlinks=True):
            for f in files:
                p = Path(dirpath) / f
                try:
                    st = p.stat()
                    items.append((str(p), str(p.resolve()), st.st_size, st.st_mtime_ns))
                except OSError:
                    continue
    return tuple(sorted(items))


def ensure_fallback(directory: str | Path) -> tuple[str, str]:
    """Self-signed certificate used until a real one exists (never a broken config)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "fallback.crt", d / "fallback.key"
    if not (cert.is_file() and key.is_file()):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "3650", "-subj", "/CN=usbills-proxy-fallback",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True)
        key.chmod(0o600)
    return str(cert), str(key)
