"""Environment settings of the proxy and the companion, validated once at start-up.

A bad value stops the process with one clear line instead of a stack trace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    pass


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise SettingsError(f"{name}={raw!r}: expected a whole number from {lo} to {hi}")
    return int(raw)


@dataclass(frozen=True)
class ProxySettings:
    client_max_body_size: str = "10m"
    # Requests per second per client address, and the burst on top. Above what a 2-core host
    # answers (docs/benchmarks.md, Site stack: up to 83 predictions/s), so phones sharing one
    # carrier-NAT address can use all of it; a flood beyond is refused at the proxy in
    # microseconds instead of queueing in front of the model.
    rate_limit: int = 150
    rate_burst: int = 300
    proxy_timeout: int = 60
    hsts_max_age: int = 63072000
    poll_seconds: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProxySettings:
        body = env.get("CLIENT_MAX_BODY_SIZE", "").strip()
        if not body:
            # Same variable as the sites use, so the proxy never rejects what a site accepts.
            mb = _int(env, "MAX_UPLOAD_MB", 10, 1, 4096)
            body = f"{mb}m"
        if not re.fullmatch(r"\d{1,6}[kKmMgG]?", body):
            raise SettingsError(f"CLIENT_MAX_BODY_SIZE={body!r}: expected nginx size like 10m")
        return cls(
            client_max_body_size=body,
            rate_limit=_int(env, "RATE_LIMIT", cls.rate_limit, 1, 100000),
            rate_burst=_int(env, "RATE_BURST", cls.rate_burst, 0, 1000000),
            proxy_timeout=_int(env, "PROXY_TIMEOUT", 60, 1, 3600),
            hsts_max_age=_int(env, "HSTS_MAX_AGE", 63072000, 0, 10 * 63072000),
            poll_seconds=_int(env, "CERT_POLL_SECONDS", 2, 1, 3600),
        )


@dataclass(frozen=True)
class CompanionSettings:
    ca_uri: str = "https://acme-v02.api.letsencrypt.org/directory"
    default_email: str | None = None
    renew_interval: int = 12 * 3600
    backoff_base: int = 300
    backoff_max: int = 86400
    poll_seconds: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CompanionSettings:
        uri = env.get("ACME_CA_URI", "").strip() or cls.ca_uri
        if not re.fullmatch(r"https://[^\s/]+(/\S*)?", uri):
            raise SettingsError(f"ACME_CA_URI={uri!r}: expected an https:// ACME directory URL")
        email = env.get("DEFAULT_EMAIL", "").strip() or None
        if email is not None and not re.fullmatch(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+", email):
            raise SettingsError(f"DEFAULT_EMAIL={email!r}: expected an e-mail address")
        return cls(
            ca_uri=uri,
            default_email=email,
            renew_interval=_int(env, "RENEW_INTERVAL_SECONDS", 12 * 3600, 60, 7 * 86400),
            backoff_base=_int(env, "ACME_BACKOFF_SECONDS", 300, 1, 86400),
            backoff_max=_int(env, "ACME_BACKOFF_MAX_SECONDS", 86400, 1, 7 * 86400),
            poll_seconds=_int(env, "ACME_POLL_SECONDS", 2, 1, 3600),
        )
