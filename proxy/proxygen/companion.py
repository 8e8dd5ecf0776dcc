"""The ACME companion: issues certificates the proxy asks for and renews them on a schedule.

Usage: python3 -m proxygen.companion            (the service)
       python3 -m proxygen.companion renew [--force]   (one renewal run, e.g. from `docker exec`)
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from .acme import Backoff, Dirs, certonly_args, drop_not_public, load_requests, missing, renew_args
from .certs import scan_live
from .settings import CompanionSettings, SettingsError

log = logging.getLogger("companion")
STATE = Path(os.environ.get("PROXY_STATE", "/var/lib/proxy/state/acme.json"))
HEARTBEAT = "/tmp/companion-alive"  # noqa: S108 - tmpfs; read by the image's healthcheck


def run(args: list[str]) -> bool:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        log.error("%s failed (exit %s): %s", " ".join(args[:2]), proc.returncode, tail)
    return proc.returncode == 0


_said_not_public: set[str] = set()  # say it once per name, not every loop


def issue_missing(settings: CompanionSettings, dirs: Dirs, backoff: Backoff) -> None:
    covered = set(scan_live(Path(dirs.config) / "live"))
    requests, dropped = drop_not_public(load_requests(STATE), settings.ca_uri)
    for name, why in sorted(dropped.items()):
        if name not in _said_not_public:
            _said_not_public.add(name)
            log.warning("no certificate for %s: %s, which %s can never validate (the proxy "
                        "serves it with its self-signed certificate)", name, why, settings.ca_uri)
    for req in missing(requests, covered):
        now = time.time()
        if not backoff.allowed(req.name, now):
            continue
        log.info("requesting a certificate for %s from %s", ",".join(req.domains), settings.ca_uri)
        if run(certonly_args(req, settings.ca_uri, dirs, settings.default_email)):
            backoff.succeeded(req.name)
            log.info("certificate issued for %s", ",".join(req.domains))
        else:
            delay = backoff.failed(req.name, now)
            log.warning("will retry %s in %d s", req.name, delay)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "info").upper(),
                        format="companion: %(levelname)s %(message)s", stream=sys.stderr)
    try:
        settings = CompanionSettings.from_env(os.environ)
    except SettingsError as exc:
        print(f"companion: bad setting: {exc}", file=sys.stderr)
        return 2
    dirs = Dirs()
    if argv[:1] == ["renew"]:
        return 0 if run(renew_args(dirs, force="--force" in argv)) else 1
    if argv:
        print("usage: python3 -m proxygen.companion [renew [--force]]", file=sys.stderr)
        return 2
    backoff = Backoff(Path(dirs.config) / "usbills-backoff.json", settings.backoff_base,
                      settings.backoff_max)
    log.info("ACME directory %s; renewal check every %d s", settings.ca_uri,
             settings.renew_interval)
    # First renewal check within the hour, so a companion restarted after a long stop catches up.
    next_renew = time.time() + min(settings.renew_interval, 3600)
    while True:
        Path(HEARTBEAT).touch()
        issue_missing(settings, dirs, backoff)
        if time.time() >= next_renew:
            run(renew_args(dirs))
            next_renew = time.time() + settings.renew_interval
        time.sleep(settings.poll_seconds)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
