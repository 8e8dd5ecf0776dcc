"""Fault benchmark of the US-bills site stack on the local Docker engine, under load.

Brings the stack up with `scripts/up` (host proxy + site, unique projects, its own ports),
sends a GET /api/v1/model and a POST /api/v1/predict in turn about 5 times a second over HTTPS
through the proxy, as a phone would, and while that runs: swaps the bundle with scripts/up (and
back), swaps it with plain `docker compose up -d`, tries a bundle the app cannot open, and
`docker kill`s each container of the site and of the proxy stack. For each it reports
requests sent, failed (any answer but 200, or no answer), the seconds in which they failed and,
for a kill, the seconds until the killed container is healthy again. Writes
artifacts/bench-faults.{json,md}; the stack is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import ART, ROOT, Project, free_port, make_bundle, small_jpeg  # noqa: E402 (the sibling benchmark)

from tests.bundles import variant  # noqa: E402 (ROOT is on sys.path now)

SITE_SERVICES = ("app", "nginx", "watchdog")
PROXY_SERVICES = ("proxy", "companion", "watchdog")
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the proxy's fallback cert


def sh(*cmd, env=None, check=True, timeout=600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        sys.exit(f"bench-faults: {' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


class Load:
    """Requests a few times a second, as a phone scanning sends them, each one timed."""

    def __init__(self, url: str, jpeg: bytes):
        self.url, self.jpeg = url, jpeg
        self.results: list[tuple[float, str]] = []  # (seconds since start, "200" or what else)
        self.stop = threading.Event()

    def one(self, n: int) -> str:
        try:
            if n % 2:
                r = requests.post(f"{self.url}/api/v1/predict", data=self.jpeg, timeout=15,
                                  headers={"Content-Type": "image/jpeg"},
                                  verify=False)  # noqa: S501 - the proxy's self-signed fallback
            else:
                r = requests.get(f"{self.url}/api/v1/model", timeout=15,
                                 verify=False)  # noqa: S501
            return str(r.status_code)
        except requests.RequestException as e:
            return type(e).__name__

    def run(self) -> None:
        t0, n = time.monotonic(), 0
        while not self.stop.is_set():
            self.results.append((time.monotonic() - t0, self.one(n)))
            n += 1
            self.stop.wait(0.2)

    def __enter__(self):
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        time.sleep(2)  # some requests before the fault
        return self

    def __exit__(self, *exc):
        time.sleep(3)  # and after it, when a replaced or killed container would be restarting
        self.stop.set()
        self.thread.join()

    def summary(self) -> dict:
        failed = [(t, what) for t, what in self.results if what != "200"]
        kinds: dict[str, int] = {}
        for _, what in failed:
            kinds[what] = kinds.get(what, 0) + 1
        return {"requests": len(self.results), "failed": len(failed),
                "failed_seconds": sorted({int(t) for t, _ in failed}), "failed_as": kinds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", choices=["auto", "real", "mobilenet", "colour"], default="auto")
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    bundle_desc = make_bundle(a.bundle, work / "bundle")
    small_jpeg(work / "frame.jpg")
    first = work / "bundle"
    second = variant(first, work / "second", version="bench-faults-2")
    bad = variant(first, work / "bad", corrupt=True)
    suffix = uuid.uuid4().hex[:8]
    port = free_port()
    (work / "env").write_text("")
    env = dict(os.environ, USBILLS_ENV_FILE=str(work / "env"),
               COMPOSE_PROJECT_NAME=f"usbills-faults-{suffix}",
               PROXY_PROJECT=f"usbills-faults-proxy-{suffix}",
               PROXY_NETWORK=f"usbills-faults-net-{suffix}", HTTPS_PORT=str(port),
               HTTP_PORT=str(free_port()), VIRTUAL_HOST="localhost",
               MODEL_BUNDLE_DIR=str(first))
    site = Project(env, env["COMPOSE_PROJECT_NAME"], "docker-compose.yml")
    proxy = Project(env, env["PROXY_PROJECT"], "proxy/docker-compose.yml")
    url = f"https://localhost:{port}"
    jpeg = (work / "frame.jpg").read_bytes()
    report: dict = {"host": f"{platform.node()} ({os.cpu_count()} CPUs)", "bundle": bundle_desc,
                    "loadavg_before": os.getloadavg()[0], "faults": []}

    def up(bundle: Path, check=True) -> subprocess.CompletedProcess:
        return sh("scripts/up", env=dict(env, MODEL_BUNDLE_DIR=str(bundle)), check=check)

    def fault(name: str, action) -> None:
        print(f"bench-faults: {name}", file=sys.stderr, flush=True)
        with Load(url, jpeg) as load:
            extra = action() or {}
        row = {"fault": name, **load.summary(), **extra}
        report["faults"].append(row)
        print(f"bench-faults:   {row}", file=sys.stderr, flush=True)

    def swap(bundle: Path):
        def act():
            t0 = time.monotonic()
            up(bundle)
            return {"command_s": round(time.monotonic() - t0, 1)}
        return act

    def compose_swap(bundle: Path):
        def act():
            t0 = time.monotonic()
            files = ["-f", "compose.model.yml"]
            if Path("/etc/ssl/certs/ca-certificates.crt").exists():
                files += ["-f", "compose.ca.yml"]
            sh(*site.base, *files, "up", "-d", "--wait",
               env=dict(env, MODEL_BUNDLE_DIR=str(bundle),
                        BUILD_CA_FILE="/etc/ssl/certs/ca-certificates.crt"))
            return {"command_s": round(time.monotonic() - t0, 1)}
        return act

    def bad_bundle():
        proc = up(bad, check=False)
        return {"exit": proc.returncode, "said": proc.stderr.strip().splitlines()[-1]}

    def kill(project: Project, service: str):
        def act():
            cid = project.cid(service)
            t0 = time.monotonic()
            sh("docker", "kill", cid)
            time.sleep(0.2)
            running = None
            while time.monotonic() - t0 < 60:
                state = sh("docker", "inspect", "-f", "{{.State.Status}}", cid,
                           check=False).stdout.strip()
                if running is None and state == "running":
                    running = round(time.monotonic() - t0, 1)
                if project.health_of(cid) == "healthy":
                    break
                time.sleep(0.2)
            return {"running_again_s": running,
                    "healthy_again_s": round(time.monotonic() - t0, 1)
                    if project.health_of(cid) == "healthy" else None}
        return act

    try:
        up(first)
        fault("bundle swap: scripts/up", swap(second))
        fault("bundle swap back: scripts/up", swap(first))
        fault("bundle swap: docker compose up -d", compose_swap(second))
        up(first)
        fault("bad bundle: scripts/up", bad_bundle)
        for s in SITE_SERVICES:
            fault(f"docker kill site {s}", kill(site, s))
        for s in PROXY_SERVICES:
            fault(f"docker kill proxy-stack {s}", kill(proxy, s))
    finally:
        sh(*site.base, "down", "-v", "-t", "5", check=False)
        sh(*proxy.base, "down", "-v", "-t", "5", check=False)
        sh("docker", "network", "rm", env["PROXY_NETWORK"], check=False)
        shutil.rmtree(work, ignore_errors=True)
    report["loadavg_after"] = os.getloadavg()[0]

    ART.mkdir(exist_ok=True)
    (ART / "bench-faults.json").write_text(json.dumps(report, indent=2))
    lines = [f"Command: `scripts/bench-faults --bundle {a.bundle}`; {report['host']}; "
             f"{report['bundle']}; load average {report['loadavg_before']:.1f} before, "
             f"{report['loadavg_after']:.1f} after. Load: GET /api/v1/model and POST "
             "/api/v1/predict in turn over HTTPS through the proxy, about 5 a second, from 2 s "
             "before the fault to 3 s after it is over.", "",
             "| fault | requests | failed | failed as | seconds with failures | healthy again | "
             "note |", "|---|---|---|---|---|---|---|"]
    for r in report["faults"]:
        secs = ", ".join(map(str, r["failed_seconds"])) or "-"
        healthy = (f"{r['healthy_again_s']} s" if r.get("healthy_again_s") is not None
                   else ("never (60 s)" if "healthy_again_s" in r else ""))
        if r.get("running_again_s") is not None:
            healthy = f"running {r['running_again_s']} s, healthy {healthy}"
        note = (f"took {r['command_s']} s" if "command_s" in r else
                f"exit {r['exit']}: {r['said']}" if "exit" in r else "")
        kinds = ", ".join(f"{k} x{v}" for k, v in r.get("failed_as", {}).items()) or "-"
        lines.append(f"| {r['fault']} | {r['requests']} | {r['failed']} | {kinds} | {secs} | "
                     f"{healthy} | {note} |")
    (ART / "bench-faults.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
