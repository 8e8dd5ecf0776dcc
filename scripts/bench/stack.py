"""Benchmark the US-bills site as users reach it: through the host proxy over HTTPS.

Brings the whole stack up with `scripts/up` (host proxy + companion + site, own compose
projects, network and ports, default settings: the proxy's per-IP limit applies, as it does to
phones behind one carrier-NAT address),
then measures image sizes, app cold start, memory of every container (PSS: pages shared by the
gunicorn master and its workers count once) at idle and at the peak under load, the app's own
server time per frame, and predictions/s with wrk over HTTPS at several concurrencies:
page frames (640-1024 px JPEGs as the page sends them, in turn) and a 12 MP
phone photo. Answers are counted by status (200, 429, other) and socket errors / timeouts
apart; the machine's load average and the CPU time the hypervisor took (steal) are printed
beside every figure. Then our app against a seed-style reference server
(scripts/bench/reference_server.py, in a venv of its own), runs interleaved, with the ratio.
Writes artifacts/bench-stack.{json,md} (--out); the stack is removed afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import ssl
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
PROXY_SERVICES = ("proxy", "companion", "watchdog")
sys.path.insert(0, str(ROOT))

# Frames as the page sends them (app.js: ideal 1280x720 camera, longest side at most MAX_SIDE
# 1024, JPEG quality 0.8): a 640x480 webcam as is, a 1280x720 camera held landscape and upright,
# a 4:3 phone camera.
PAGE_SIZES = [(640, 480), (1024, 576), (576, 1024), (1024, 768)]
PROG = "bench-stack"  # names the failing benchmark in messages; bench/swarm.py sets its own
TLS = ssl.create_default_context()
TLS.check_hostname, TLS.verify_mode = False, ssl.CERT_NONE  # the proxy's self-signed fallback


def sh(*cmd, env=None, check=True, timeout=900) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        sys.exit(f"{PROG}: {' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
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
    """One page-sized frame (512x384, about 40 KB); returns its size."""
    from tests.synth import camera, jpeg

    data = jpeg(camera((512, 384), noise=5), quality=80)
    path.write_bytes(data)
    return len(data)


def bodies(work: Path) -> dict[str, list[Path]]:
    from tests.synth import camera, jpeg

    page = []
    for i, size in enumerate(PAGE_SIZES):
        p = work / "frame-{}x{}.jpg".format(*size)
        p.write_bytes(jpeg(camera(size, value=(1, 5, 20, 100)[i], seed=i, noise=5), 80))
        page.append(p)
    photo = work / "photo-12mp.jpg"
    photo.write_bytes(jpeg(camera((4000, 3000), noise=5), quality=90))
    return {"page frames": page, "12 MP photo": [photo]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def https_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2, context=TLS) as r:  # noqa: S310 - local
            return r.status
    except OSError as e:
        return getattr(e, "code", 0) or 0


class Project:
    """One compose project of a benchmark (the site, or the host proxy); bench-faults too."""

    def __init__(self, env: dict, name: str, file: str):
        self.env = env
        self.base = ["docker", "compose", "--env-file", env["USBILLS_ENV_FILE"], "-p", name,
                     "-f", file]

    def compose(self, *args) -> str:
        return sh(*self.base, *args, env=self.env)

    def cid(self, service: str) -> str:
        return self.compose("ps", "-a", "-q", service).split()[0]

    @staticmethod
    def health_of(cid: str) -> str:
        """Docker's health status, or the state for a container without a healthcheck."""
        return sh("docker", "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}"
                  "{{else}}{{.State.Status}}{{end}}", cid, check=False).strip()

    def health(self, service: str) -> str:
        return self.health_of(self.cid(service))

    def pids(self, service: str) -> list[int]:
        rows = sh("docker", "top", self.cid(service), "-eo", "pid").splitlines()[1:]
        return [int(r.split()[0]) for r in rows if r.strip()]

    def pss_mb(self, service: str) -> float:
        """Sum of the container's processes' PSS (shared pages such as the model mapped by the
        gunicorn master and its forked workers are split between them, not counted twice)."""
        return pss_mb(self.pids(service))

    def ip(self, service: str) -> str:
        return sh("docker", "inspect", "-f",
                  "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                  self.cid(service)).split()[0]


def pss_mb(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            total_kb += int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))
        except (OSError, AttributeError):
            pass  # the process has exited
    return total_kb / 1024


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / tick


def tree(pid: int) -> list[int]:
    """``pid`` and its child processes (the reference's gunicorn master and workers)."""
    kids = sh("pgrep", "-P", str(pid), check=False).split()
    return [pid, *[int(k) for k in kids]]


def cold_starts(site: Project, url: str, runs: int) -> dict:
    ready, healthy = [], []
    for _ in range(runs):
        site.compose("stop", "app")
        t0 = time.monotonic()
        site.compose("start", "app")
        while https_status(f"{url}/readyz") != 200:
            time.sleep(0.02)
        ready.append(time.monotonic() - t0)
        while site.health("app") != "healthy":
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
        with urllib.request.urlopen(req, timeout=10, context=TLS) as r:  # noqa: S310 - local
            rows.append(json.loads(r.read())["timings_ms"])
    return {k: statistics.median(row[k] for row in rows) for k in rows[0]}


# wrk POSTs the bodies in turn and counts answers by status in every thread (wrk's own
# "Non-2xx" line lumps 429s with errors and misses socket errors).
WRK_LUA = """
local paths = {%s}
local bodies, n = {}, 0
for i, p in ipairs(paths) do local f = io.open(p, "rb"); bodies[i] = f:read("*all"); f:close() end
statuses = {}
request = function()
  n = n %% #bodies + 1
  return wrk.format("POST", "/api/v1/predict", {["Content-Type"] = "image/jpeg"}, bodies[n])
end
response = function(status) statuses[status] = (statuses[status] or 0) + 1 end
local threads = {}
setup = function(t) table.insert(threads, t) end
done = function()
  for _, t in ipairs(threads) do
    for s, k in pairs(t:get("statuses")) do io.write(string.format("status %%d %%d\\n", s, k)) end
  end
end
"""


def cpu_times() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def steal_pct(before: list[int], after: list[int]) -> float:
    """Share of CPU time the hypervisor gave to other guests (shared cloud hosts)."""
    d = [b - a for a, b in zip(before, after, strict=True)]
    return 100 * d[7] / max(1, sum(d[:8]))


def wrk(url: str, files: list[Path], duration: int, connections: int,
        host: str | None = None) -> dict:
    """``host``: the Host header, for one of several sites behind the proxy (bench-settings)."""
    lua = files[0].parent / "post.lua"
    t0 = cpu_times()
    lua.write_text(WRK_LUA % ", ".join(f'"{p}"' for p in files))
    out = sh("wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{duration}s",
             "--timeout", "10s", "--latency", "-s", str(lua),
             *(["-H", f"Host: {host}"] if host else []), f"{url}/api/v1/predict",
             timeout=duration + 60)
    statuses: dict[int, int] = {}
    for s, k in re.findall(r"^status (\d+) (\d+)$", out, re.M):
        statuses[int(s)] = statuses.get(int(s), 0) + int(k)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", out, re.M))
    ok = statuses.get(200, 0)
    return {"connections": connections, "ok_per_s": ok / duration, "latency": lat,
            "ok": ok, "429": statuses.get(429, 0),
            "other": sum(k for s, k in statuses.items() if s not in (200, 429)),
            "socket_errors": sum(map(int, sock.groups()[:3])) if sock else 0,
            "timeouts": int(sock.group(4)) if sock else 0,
            "load": os.getloadavg()[0], "steal_pct": steal_pct(t0, cpu_times()), "raw": out}


REF_VENV = ROOT / ".cache/bench/reference-venv"
REF_REQS = ROOT / "scripts/bench/reference-requirements.txt"


def reference_python(given: str | None) -> str:
    """The reference server's interpreter: ``given``, else its own venv, built when missing or
    when its requirements changed (TensorFlow is about 1.6 GB installed)."""
    if given:
        return given
    py, stamp = REF_VENV / "bin/python", REF_VENV / ".requirements"
    if not py.exists() or not stamp.exists() or stamp.read_text() != REF_REQS.read_text():
        print(f"bench-stack: building the reference server's venv in {REF_VENV}", file=sys.stderr)
        sh("python3", "-m", "venv", str(REF_VENV))
        sh(str(py), "-m", "pip", "install", "-q", "-r", str(REF_REQS), timeout=3600)
        stamp.write_text(REF_REQS.read_text())
    return str(py)


def start_reference(python: str, workers: str, threads: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603 - our own command line
        [python, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", workers, "--threads",
         threads, "-k", "gthread", "--timeout", "120", "--chdir", str(ROOT / "scripts/bench"),
         "reference_server:app"],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=""),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while https_status(f"{url}/readyz") != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"bench-stack: the reference server ({python}) did not start; run it by "
                     "hand to see why: gunicorn --chdir scripts/bench reference_server:app")
        time.sleep(0.5)
    return proc, url


def versus_reference(ours: tuple[str, list[int]], ref: tuple[str, list[int]],
                     frames: list[Path], levels: list[int], duration: int, rounds: int) -> list:
    """Our app (straight to its container, HTTP) and the reference (loopback, HTTP), each one
    gunicorn with the same workers and threads, the same frames, runs interleaved; CPU seconds
    of each server's processes per answer are the per-core cost."""
    rows = []
    for c in levels:
        for rnd in range(rounds):
            for name, (url, pids) in (("ours", ours), ("reference", ref)):
                for f in frames:  # warm: the first request of a server pays one-off costs
                    urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - local
                        f"{url}/api/v1/predict", data=f.read_bytes(),
                        headers={"Content-Type": "image/jpeg"}), timeout=60).read()
                cpu0 = cpu_s(pids)
                r = wrk(url, frames, duration, c)
                cpu = cpu_s(pids) - cpu0
                r.update(server=name, round=rnd + 1,
                         cpu_ms_per_answer=1000 * cpu / r["ok"] if r["ok"] else None,
                         server_cpu_share=cpu / duration)
                rows.append(r)
                print(f"bench-stack: {name} direct c={c}: {r['ok_per_s']:.1f}/s, load "
                      f"{r['load']:.1f}", file=sys.stderr)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=15, help="seconds per load run")
    ap.add_argument("--concurrency", default="1,4,16",
                    help="connections for the page frames (the 12 MP photo: the first two)")
    ap.add_argument("--runs", type=int, default=5, help="cold starts to time")
    ap.add_argument("--bundle", choices=["auto", "real", "mobilenet", "colour"], default="auto")
    ap.add_argument("--web-concurrency", default="1",
                    help="the app's gunicorn workers (WEB_CONCURRENCY); the reference's too")
    ap.add_argument("--gunicorn-threads", default="4",
                    help="threads per worker (GUNICORN_THREADS); the reference's too")
    ap.add_argument("--samples", type=int, default=30,
                    help="sequential requests for the server time per request")
    ap.add_argument("--rounds", type=int, default=2,
                    help="interleaved rounds of ours against the reference at each concurrency")
    ap.add_argument("--reference-python", metavar="PYTHON",
                    help="an interpreter with TensorFlow, Flask and gunicorn for the reference "
                    "server (default: its own venv, .cache/bench/reference-venv, built from "
                    "scripts/bench/reference-requirements.txt)")
    ap.add_argument("--no-reference", action="store_true", help="skip the reference server")
    ap.add_argument("--out", type=Path, default=ART, help="report folder")
    a = ap.parse_args()
    if a.samples < 1 or a.rounds < 1 or a.runs < 1 or a.duration < 1:
        ap.error("--samples, --rounds, --runs and --duration must be at least 1")
    try:
        levels = [int(c) for c in a.concurrency.split(",")]
        assert levels and all(c >= 1 for c in levels)
    except (ValueError, AssertionError):
        ap.error(f"--concurrency {a.concurrency!r}: expected numbers like 1,4,16")

    ref_python = None if a.no_reference else reference_python(a.reference_python)
    work = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    work.chmod(0o755)
    bundle_desc = make_bundle(a.bundle, work / "bundle")
    files = bodies(work)
    suffix = uuid.uuid4().hex[:8]
    port = free_port()
    (work / "env").write_text("")
    env = dict(os.environ, USBILLS_ENV_FILE=str(work / "env"),
               COMPOSE_PROJECT_NAME=f"usbills-bench-{suffix}",
               PROXY_PROJECT=f"usbills-bench-proxy-{suffix}",
               PROXY_NETWORK=f"usbills-bench-net-{suffix}", HTTPS_PORT=str(port),
               HTTP_PORT=str(free_port()), VIRTUAL_HOST="localhost",
               MODEL_BUNDLE_DIR=str(work / "bundle"), WEB_CONCURRENCY=a.web_concurrency,
               GUNICORN_THREADS=a.gunicorn_threads)
    site = Project(env, env["COMPOSE_PROJECT_NAME"], "docker-compose.yml")
    proxy = Project(env, env["PROXY_PROJECT"], "proxy/docker-compose.yml")
    sizes = {name: [p.stat().st_size for p in ps] for name, ps in files.items()}
    report: dict = {"host": f"{platform.node()} ({os.cpu_count()} CPUs)", "bundle": bundle_desc,
                    "loadavg_before": os.getloadavg()[0], "body_bytes": sizes,
                    "args": {k: str(v) if isinstance(v, Path) else v
                             for k, v in vars(a).items()}}
    try:
        t0 = time.monotonic()
        sh("scripts/up", env=env)
        url = f"https://localhost:{port}"
        report["scripts_up_s"] = time.monotonic() - t0  # images already built: start + health
        report["images_mb"] = {
            img: int(sh("docker", "image", "inspect", "-f", "{{.Size}}", img)) / 1e6
            for img in ("usbills/app:0.1.0", "usbills/site-nginx:0.1.0", "usbills/proxy:0.1.0")}
        report["cold_start"] = cold_starts(site, url, a.runs)
        for f in files["page frames"]:  # warm up: first requests load code paths and caches
            server_times(url, f, 2)
        report["server_ms"] = {f"{p.name} ({p.stat().st_size // 1000} KB)":
                               server_times(url, p, a.samples)
                               for p in (files["page frames"][-1], files["12 MP photo"][0])}
        time.sleep(3)
        containers = {**{f"site {s}": (site, s) for s in SERVICES},
                      **{f"proxy {s}": (proxy, s) for s in PROXY_SERVICES}}
        report["pss_idle_mb"] = {k: p.pss_mb(s) for k, (p, s) in containers.items()}
        peak = dict.fromkeys(containers, 0.0)
        stop = threading.Event()

        def sample():
            while not stop.wait(1.0):
                for k, (p, s) in containers.items():
                    peak[k] = max(peak[k], p.pss_mb(s))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        report["load"] = []
        for name, ps in files.items():
            for c in levels if name == "page frames" else levels[:2]:
                r = wrk(url, ps, a.duration, c)
                report["load"].append({"body": name, **r})
                print(f"bench-stack: {name} c={c}: {r['ok_per_s']:.1f}/s, p99 "
                      f"{r['latency'].get('99')}, load {r['load']:.1f}", file=sys.stderr)
        stop.set()
        sampler.join()
        report["pss_peak_mb"] = peak
        if ref_python:
            ref, ref_url = start_reference(ref_python, a.web_concurrency, a.gunicorn_threads)
            try:
                ref_pids = tree(ref.pid)
                ours = (f"http://{site.ip('app')}:8000", site.pids("app"))
                report["reference"] = {"python": ref_python, "pss_idle_mb": pss_mb(ref_pids)}
                report["versus"] = versus_reference(ours, (ref_url, ref_pids),
                                                    files["page frames"], levels, a.duration,
                                                    a.rounds)
                report["reference"]["pss_after_mb"] = pss_mb(ref_pids)
            finally:
                ref.terminate()
                ref.wait(30)
        report["loadavg_after"] = os.getloadavg()[0]
    finally:
        sh(*site.base, "down", "--timeout", "5", env=env, check=False)
        sh(*proxy.base, "down", "--volumes", "--timeout", "5", env=env, check=False)
        sh("docker", "network", "rm", env["PROXY_NETWORK"], check=False)
        shutil.rmtree(work, ignore_errors=True)

    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "bench-stack.json").write_text(json.dumps(report, indent=2))
    (a.out / "bench-stack.md").write_text(markdown(report))
    print(markdown(report))


def markdown(r: dict) -> str:
    cs = r["cold_start"]
    med = statistics.median
    kb = {k: ", ".join(f"{b / 1000:.0f}" for b in v) for k, v in r["body_bytes"].items()}
    idle = sum(r["pss_idle_mb"].values())
    lines = [
        f"Host: {r['host']}, load average {r['loadavg_before']:.1f} before / "
        f"{r['loadavg_after']:.1f} after (wrk and the stack share these cores). "
        f"Bundle: {r['bundle']}. Bodies (KB): page frames {kb['page frames']}; "
        f"12 MP photo {kb['12 MP photo']}.",
        f"Args: {r['args']}", "",
        "| image | size |", "|---|---|",
        *[f"| `{k}` | {v:.1f} MB ({v * 1e6 / 2**20:.1f} MiB) |" for k, v in r["images_mb"].items()],
        "",
        f"`scripts/up` (proxy + site), images built: {r['scripts_up_s']:.1f} s to healthy.",
        f"App cold start (`docker compose start app`, {len(cs['ready_s'])} runs): /readyz 200 "
        f"over HTTPS after median {med(cs['ready_s']):.2f} s (min {min(cs['ready_s']):.2f}, "
        f"max {max(cs['ready_s']):.2f}); Docker health `healthy` after median "
        f"{med(cs['healthy_s']):.2f} s.", "",
        "Server time per request (the app's timings_ms, median of 30 sequential requests):", "",
        *[f"- {k}: " + ", ".join(f"{n} {v:.1f} ms" for n, v in t.items())
          for k, t in r["server_ms"].items()], "",
        "| container | memory idle (PSS) | peak under load (PSS) |", "|---|---|---|",
        *[f"| {k} | {v:.1f} MB | {r['pss_peak_mb'][k]:.1f} MB |"
          for k, v in r["pss_idle_mb"].items()],
        f"| **whole stack** | **{idle:.1f} MB** | {sum(r['pss_peak_mb'].values()):.1f} MB |",
        "",
        "POST /api/v1/predict over HTTPS through the proxy (wrk, keep-alive connections, "
        f"{r['args']['duration']} s each):", "",
        "| body | connections | answered 200/s | p50 | p90 | p99 | 429 | other non-2xx | "
        "socket errors | timeouts | load | CPU steal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[f"| {x['body']} | {x['connections']} | {x['ok_per_s']:.1f} | "
          f"{x['latency'].get('50', '?')} | {x['latency'].get('90', '?')} | "
          f"{x['latency'].get('99', '?')} | {x['429']} | {x['other']} | {x['socket_errors']} | "
          f"{x['timeouts']} | {x['load']:.1f} | {x['steal_pct']:.0f} % |" for x in r["load"]],
        "",
    ]
    if "versus" in r:
        lines += versus_markdown(r)
    return "\n".join(lines)


def versus_markdown(r: dict) -> list[str]:
    ref = r["reference"]
    lines = [
        "Ours against the seed-style reference (scripts/bench/reference_server.py: Flask + "
        "Keras MobileNetV2 256x256, `model.predict` per request), each one gunicorn with the "
        "same workers and threads, page frames over HTTP straight to the server (no proxy), "
        f"runs interleaved. Reference memory (PSS): {ref['pss_idle_mb']:.1f} MB idle, "
        f"{ref['pss_after_mb']:.1f} MB after the runs.", "",
        "| connections | ours 200/s | reference 200/s | ratio | ours CPU ms / answer | "
        "reference CPU ms / answer | per-core ratio | ours p99 | reference p99 | errors "
        "(ours, ref.) | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    med = statistics.median
    for c in sorted({x["connections"] for x in r["versus"]}):
        runs = {s: [x for x in r["versus"] if x["connections"] == c and x["server"] == s]
                for s in ("ours", "reference")}
        rate = {s: med(x["ok_per_s"] for x in v) for s, v in runs.items()}
        cpu = {s: med(x["cpu_ms_per_answer"] or 0 for x in v) for s, v in runs.items()}
        errs = {s: sum(x["other"] + x["429"] + x["socket_errors"] + x["timeouts"] for x in v)
                for s, v in runs.items()}
        p99 = {s: ", ".join(x["latency"].get("99", "?") for x in v) for s, v in runs.items()}
        ratio = rate["ours"] / rate["reference"] if rate["reference"] else float("inf")
        core = cpu["reference"] / cpu["ours"] if cpu["ours"] else float("inf")
        loads = ", ".join(f"{x['load']:.1f}" for v in runs.values() for x in v)
        lines.append(f"| {c} | {rate['ours']:.1f} | {rate['reference']:.1f} | {ratio:.1f}x | "
                     f"{cpu['ours']:.1f} | {cpu['reference']:.1f} | {core:.1f}x | {p99['ours']} "
                     f"| {p99['reference']} | {errs['ours']}, {errs['reference']} | {loads} |")
    lines += ["", "200/s are medians over the rounds; CPU ms / answer is the user + system "
              "time of the server's processes over its answers, so the per-core ratio holds "
              "whatever the cores did besides.", ""]
    return lines


if __name__ == "__main__":
    main()
