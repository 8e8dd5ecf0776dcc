"""Certificate planning for the companion: what to issue, when to retry, certbot arguments.

Backoff: after n consecutive failures for a certificate the next try waits base * 2**(n-1)
seconds (capped), persisted on the certificate volume so restarts do not reset it; that keeps a
broken DNS record or firewall from hammering Let's Encrypt's rate limits in a loop.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from .model import CertRequest

HOOK = "/usr/local/bin/proxy-reload-hook"


@dataclass(frozen=True)
class Dirs:
    config: str = "/etc/letsencrypt"
    work: str = "/tmp/certbot-work"  # noqa: S108 - tmpfs in the container, certbot's scratch
    logs: str = "/tmp/certbot-logs"  # noqa: S108
    webroot: str = "/var/www/acme"


def load_requests(path: str | Path) -> list[CertRequest]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    out = []
    for item in data.get("certs", []):
        domains = tuple(item.get("domains") or ())
        if domains:
            out.append(CertRequest(name=item.get("name") or domains[0], domains=domains,
                                   email=item.get("email")))
    return out


# Special-use names (RFC 6761, RFC 2606, RFC 8375, ICANN's .internal): no public CA can
# validate them, so asking Let's Encrypt only earns a failure and a retry every few minutes.
NOT_PUBLIC = ("localhost", "local", "internal", "test", "example", "invalid", "home.arpa")
PUBLIC_CAS = ("api.letsencrypt.org",)  # and its staging directory, a subdomain of it


def not_public(domain: str) -> str | None:
    """Why a public CA can never validate ``domain``, or None when it may."""
    try:
        ipaddress.ip_address(domain.strip("[]"))
        return "an IP address"
    except ValueError:
        pass
    for suffix in NOT_PUBLIC:
        if domain == suffix or domain.endswith("." + suffix):
            return f"a .{suffix} name"
    return None


def public_ca(ca_uri: str) -> bool:
    host = urlsplit(ca_uri).hostname or ""
    return any(host == h or host.endswith("." + h) for h in PUBLIC_CAS)


def drop_not_public(requests: list[CertRequest], ca_uri: str
                    ) -> tuple[list[CertRequest], dict[str, str]]:
    """For a public CA: the requests without names it cannot validate, and those names with the
    reason. A private CA (Pebble, a company's ACME server) gets every name."""
    if not public_ca(ca_uri):
        return requests, {}
    kept, dropped = [], {}
    for r in requests:
        ok = []
        for d in r.domains:
            why = not_public(d)
            if why:
                dropped[d] = why
            else:
                ok.append(d)
        if ok:
            kept.append(r if len(ok) == len(r.domains)
                        else replace(r, name=ok[0], domains=tuple(ok)))
    return kept, dropped


def missing(requests: list[CertRequest], covered: set[str]) -> list[CertRequest]:
    """Requests with at least one domain no unexpired certificate covers yet."""
    return [r for r in requests if not all(d in covered for d in r.domains)]


class Backoff:
    def __init__(self, path: str | Path, base: int, cap: int) -> None:
        self.path = Path(path)
        self.base, self.cap = base, cap
        try:
            self.state: dict[str, dict] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.state = {}

    def allowed(self, name: str, now: float) -> bool:
        return now >= self.state.get(name, {}).get("next_try", 0)

    def failed(self, name: str, now: float) -> float:
        entry = self.state.setdefault(name, {"failures": 0})
        entry["failures"] += 1
        delay = min(self.cap, self.base * 2 ** (entry["failures"] - 1))
        entry["next_try"] = now + delay
        self._save()
        return delay

    def succeeded(self, name: str) -> None:
        if self.state.pop(name, None) is not None:
            self._save()

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


def _common(dirs: Dirs) -> list[str]:
    return ["--non-interactive", "--config-dir", dirs.config, "--work-dir", dirs.work,
            "--logs-dir", dirs.logs]


def certonly_args(req: CertRequest, ca_uri: str, dirs: Dirs,
                  default_email: str | None = None) -> list[str]:
    args = ["certbot", "certonly", *_common(dirs), "--agree-tos", "--webroot",
            "-w", dirs.webroot, "--server", ca_uri, "--cert-name", req.name,
            "--deploy-hook", HOOK]
    for domain in req.domains:
        args += ["-d", domain]
    email = req.email or default_email
    args += ["--email", email] if email else ["--register-unsafely-without-email"]
    return args


def renew_args(dirs: Dirs, force: bool = False) -> list[str]:
    # certbot renew keeps the current certificate when a renewal fails; it never deletes it.
    args = ["certbot", "renew", *_common(dirs), "--no-random-sleep-on-renew",
            "--deploy-hook", HOOK]
    if force:
        args.append("--force-renewal")
    return args
