"""Benchmark the US-bills site stack (app + site nginx) on the local Docker engine.

Brings the stack up with `scripts/up --local` (unique project, ephemeral port), then measures
image sizes, app cold start (container start -> /readyz 200 through nginx, and -> Docker
"healthy"), RSS of every container at idle and under load (sum of its processes' RSS, from
`docker top`), and requests/s through the site nginx with wrk POSTing a small JPEG to
/api/v1/predict. Writes artifacts/bench-stack.{json,md}; the stack is removed afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ART = ROOT / "artifacts"
SERVICES = ("app", "nginx", "watchdog")
sys.path.insert(0, str(ROOT))


def sh(*cmd, env=None, check=True, timeout=900) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        sys.exit(f"bench-stack: {' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def make_bundle(kind: str, dest: Path) -> str:
    """Copy or build the bundle to serve; returns a description for the report."""
    real = ROOT / "model/bundles/usbills"
    mobilenet = ROOT / ".cache/bench/mobilenetv2.tflite"
    if kind == "auto":
        kind = "real" if (real / "card.json").exists() else (
            "mobilenet" if mobilenet.exists() else "colour")
    if kind == "real":
        shutil.copytree(real, dest)
        card = json.loads((dest / "card.json").read_text())
        desc = f"the committed bundle model/bundles/usbills ({card['name']} {card['version']})"
    elif kind == "mobilenet":
        # MobileNetV2 224x224 with random weights (scripts/bench-inference): the real model's
        # compute without its answers.
        from tests.bundles import card

        dest.mkdir(parents=True)
        data = mobilenet.read_bytes()
        (dest / "model.tflite").write_bytes(data)
        c = card("model.tflite", "tflite", 224, hashlib.sha256(data).hexdigest())
        (dest / "card.json").write_text(json.dumps(c))
        desc = "MobileNetV2 224x224 tflite, random weights (.cache/bench/mobilenetv2.tflite)"
    else:
        from tests.bundles import cached_bundle

        shutil.copytree(cached_bundle("tflite", 32), dest)
        desc = "the colour test bundle (tests/bundles.py, 32x32 input, trivial inference)"
    for p in [dest, *dest.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return desc


def small_jpeg(path: Path) -> int:
    from tests.synth import bill, jpeg

    data = jpeg(bill(20, size=(480, 204)), quality=80)  # a downsized phone frame
    path.write_bytes(data)
    return len(data)


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - local benchmark URL
            return r.status
    except OSError as e:
        return getattr(e, "code", 0) or 0


class Stack:
    def __init__(self, env: dict):
        self.env = env
        self.base = ["docker", "compose", "--env-file", env["USBILLS_ENV_FILE"], "-p",
                     env["COMPOSE_PROJECT_NAME"], "-f", "docker-compose.yml"]

    def compose(self, *args) -> str:
        return sh(*self.base, *args, env=self.env)

    def cid(self, service: str) -> str:
        return self.compose("ps", "-a", "-q", service).split()[0]

    def health(self, service: str) -> str:
        return sh("docker", "inspect", "-f", "{{.State.Health.Status}}", self.cid(service)).strip()

    def rss_mb(self, service: str) -> float:
        """Sum of the container's processes' PSS (shared pages such as the model mapped by the
        gunicorn master and its forked workers are split between them, not counted twice)."""
        rows = sh("docker", "top", self.cid(service), "-eo", "pid,rss").splitlines()[1:]
        total_kb = 0
        for r in rows:
            pid, rss = r.split()[:2]
            try:
                text = Path(f"/proc/{pid}/smaps_rollup").read_text()
                total_kb += int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))
            except (OSError, AttributeError):
                total_kb += int(rss)  # no access to smaps: RSS (an upper bound)
        return total_kb / 1024


def cold_starts(stack: Stack, url: str, runs: int) -> dict:
    ready, healthy = [], []
    for _ in range(runs):
        stack.compose("stop", "app")
        t0 = time.monotonic()
        stack.compose("start", "app")
        while http_status(f"{url}/readyz") != 200:
            time.sleep(0.02)
        ready.append(time.monotonic() - t0)
        while stack.health("app") != "healthy":
            time.sleep(0.05)
        healthy.append(time.monotonic() - t0)
    return {"ready_s": ready, "healthy_s": healthy}


def server_times(url: str, body: Path, n: int = 30) -> dict:
    """The app's own timings_ms (decode, preprocess, inference, total) for sequential requests:
    what one request costs the server, apart from queueing under load."""
    data, rows = body.read_bytes(), []
    for _ in range(n):
        req = urllib.request.Request(f"{url}/api/v1/predict", data=data,  # noqa: S310
                                     headers={"Content-Type": "image/jpeg"})
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - local benchmark URL
            rows.append(json.loads(r.read())["timings_ms"])
    return {k: statistics.median(row[k] for row in rows) for k in rows[0]}


def wrk(url: str, body: Path, duration: int, connections: int, threads: int) -> dict:
    lua = body.with_suffix(".lua")
    lua.write_text(
        f'local f = io.open("{body}", "rb")\nwrk.method = "POST"\nwrk.body = f:read("*all")\n'
        'f:close()\nwrk.headers["Content-Type"] = "image/jpeg"\n')
    out = sh("wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
             "-s", str(lua), f"{url}/api/v1/predict")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)$", out, re.M))
    return {"rps": rps, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "latency": lat, "raw": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--runs", type=int, default=5, help="cold starts to time")
    ap.add_argument("--bundle", choices=["auto", "real", "mobilenet", "colour"], default="auto")
    ap.add_argument("--web-concurrency", default="1")
    ap.add_argument("--gunicorn-threads", default="4")
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    bundle_desc = make_bundle(a.bundle, work / "bundle")
    jpeg_bytes = small_jpeg(work / "frame.jpg")
    suffix = uuid.uuid4().hex[:8]
    env = dict(os.environ, USBILLS_ENV_FILE=str(work / "env"),
               COMPOSE_PROJECT_NAME=f"usbills-bench-{suffix}",
               PROXY_NETWORK=f"usbills-bench-proxy-{suffix}", LOCAL_PORT="0",
               MODEL_BUNDLE_DIR=str(work / "bundle"), WEB_CONCURRENCY=a.web_concurrency,
               GUNICORN_THREADS=a.gunicorn_threads)
    stack = Stack(env)
    report: dict = {"host": f"{platform.node()} ({os.cpu_count()} CPUs)", "bundle": bundle_desc,
                    "loadavg_before": os.getloadavg()[0],
                    "jpeg_bytes": jpeg_bytes, "args": vars(a)}
    try:
        t0 = time.monotonic()
        url = sh("scripts/up", "--local", env=env).strip().splitlines()[-1].rstrip("/")
        report["scripts_up_s"] = time.monotonic() - t0  # images already built: start + health
        report["images_mb"] = {
            img: int(sh("docker", "image", "inspect", "-f", "{{.Size}}", img)) / 1e6
            for img in ("usbills/app:0.1.0", "usbills/site-nginx:0.1.0")}
        report["cold_start"] = cold_starts(stack, url, a.runs)
        for _ in range(3):  # warm up: first requests load code paths and caches
            subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", "Content-Type: image/jpeg",
                            "--data-binary", f"@{work / 'frame.jpg'}", f"{url}/api/v1/predict"],
                           check=False)
        report["server_ms"] = server_times(url, work / "frame.jpg")
        time.sleep(3)
        report["rss_idle_mb"] = {s: stack.rss_mb(s) for s in SERVICES}
        peak = {s: 0.0 for s in SERVICES}
        stop = threading.Event()

        def sample():
            while not stop.wait(1.0):
                for s in SERVICES:
                    peak[s] = max(peak[s], stack.rss_mb(s))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        report["load"] = wrk(url, work / "frame.jpg", a.duration, a.connections, a.threads)
        stop.set()
        sampler.join()
        report["rss_load_peak_mb"] = peak
        report["loadavg_after"] = os.getloadavg()[0]
    finally:
        sh(*stack.base, "down", "--timeout", "5", env=env, check=False)
        sh("docker", "network", "rm", env["PROXY_NETWORK"], check=False)
        shutil.rmtree(work, ignore_errors=True)

    ART.mkdir(exist_ok=True)
    (ART / "bench-stack.json").write_text(json.dumps(report, indent=2))
    (ART / "bench-stack.md").write_text(markdown(report))
    print(markdown(report))


def markdown(r: dict) -> str:
    cs = r["cold_start"]
    med = statistics.median
    lines = [
        f"Host: {r['host']}, load average {r['loadavg_before']:.1f} before / "
        f"{r['loadavg_after']:.1f} after (other jobs share these cores). Bundle: {r['bundle']}. "
        f"JPEG: {r['jpeg_bytes']} bytes.",
        f"Args: {r['args']}", "",
        "| image | size |", "|---|---|",
        *[f"| `{k}` | {v:.1f} MB ({v * 1e6 / 2**20:.1f} MiB) |" for k, v in r["images_mb"].items()],
        "",
        f"`scripts/up --local` with images built: {r['scripts_up_s']:.1f} s to a healthy stack.",
        f"App cold start (`docker compose start app`, {len(cs['ready_s'])} runs): /readyz 200 "
        f"through nginx after median {med(cs['ready_s']):.2f} s (min {min(cs['ready_s']):.2f}, "
        f"max {max(cs['ready_s']):.2f}); Docker health `healthy` after median "
        f"{med(cs['healthy_s']):.2f} s.", "",
        "Server time per request (app's timings_ms, median of 30 sequential requests): "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in r["server_ms"].items()), "",
        "| container | memory idle (PSS) | peak under load (PSS) |", "|---|---|---|",
        *[f"| {s} | {r['rss_idle_mb'][s]:.1f} MB | {r['rss_load_peak_mb'][s]:.1f} MB |"
          for s in SERVICES],
        "",
        f"Load: {r['load']['rps']:.1f} requests/s (non-2xx: {r['load']['non_2xx']}), latency "
        + ", ".join(f"p{k} {v}" for k, v in r["load"]["latency"].items()), "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
