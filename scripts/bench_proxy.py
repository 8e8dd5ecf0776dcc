"""Benchmark the master proxy (issue 5): requests/s and latency over HTTPS through the proxy
versus straight to the site (same run, same load generator), RSS of proxy + companion, and the
time from `docker compose up` of a new site to its first HTTPS 200 with a Pebble certificate.

Usage: scripts/bench-proxy [--duration 15] [--connections 32]
Writes artifacts/bench-proxy.md (and prints it). Needs Docker and Debian's pebble.
"""

import argparse
import datetime as dt
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.proxy.conftest import HERE, Stack, build_images, sh  # noqa: E402

SITE_IMAGE = "usbills-test/bench-site:local"
WRK_IMAGE = "usbills-test/wrk:local"
HOST = "bench.usbills.test"


def memory(container) -> dict:
    """Sum of RSS and PSS (shared pages split) over the container's processes, in MB."""
    out = sh("docker", "top", container.id, "-eo", "pid").stdout.split()[1:]
    rss = pss = 0
    for pid in out:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        rss += int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1))
        pss += int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))
    return {"rss": rss / 1024, "pss": pss / 1024, "procs": len(out)}


def wrk(network, url, args, add_host=None) -> dict:
    cmd = ["docker", "run", "--rm", "--network", network]
    if add_host:
        cmd += ["--add-host", add_host]
    cmd += [WRK_IMAGE, "-t2", f"-c{args.connections}", f"-d{args.duration}s", "--latency", url]
    text = sh(*cmd, timeout=args.duration + 120).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", text, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: (.*)", text)
    return {"rps": rps, "p50": pct(50), "p99": pct(99),
            "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sock.group(1) if sock else "none"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    import docker
    client = docker.from_env()
    tmp = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    (tmp / "ctx").mkdir()
    build_images(tmp / "ctx")
    sh("docker", "build", "-q", "-t", SITE_IMAGE, "-f", str(HERE / "bench" / "Dockerfile.site"),
       str(HERE / "bench"))
    sh("docker", "build", "-q", "-t", WRK_IMAGE, "-f", str(HERE / "bench" / "Dockerfile.wrk"),
       str(HERE / "bench"))
    # The bench measures the proxy, not its per-IP limit (all load comes from one IP).
    stack = Stack(client, tmp, uuid.uuid4().hex[:8],
                  {"RATE_LIMIT": "100000", "RATE_BURST": "100000"})
    site_project = f"{stack.project}-site"
    compose_file = tmp / "site.yml"
    compose_file.write_text(f"""services:
  site:
    image: {SITE_IMAGE}
    environment:
      VIRTUAL_HOST: {HOST}
      VIRTUAL_PORT: "8080"
      LETSENCRYPT_HOST: {HOST}
    networks: [proxy]
networks:
  proxy:
    name: {stack.network}
    external: true
""")
    try:
        stack.up()
        time.sleep(3)
        idle = {"proxy": memory(stack.proxy), "companion": memory(stack.companion)}
        t0 = time.monotonic()
        sh("docker", "compose", "-p", site_project, "-f", str(compose_file), "up", "-d")
        while True:
            try:
                if stack.https(HOST, "/").status == 200:
                    break
            except Exception as exc:  # fallback certificate or not routed yet: keep polling
                last = exc  # noqa: F841
            if time.monotonic() - t0 > 120:
                raise SystemExit("bench-proxy: no HTTPS 200 within 120 s")
            time.sleep(0.1)
        first_200 = time.monotonic() - t0
        time.sleep(3)  # let the old nginx workers of the last reload exit
        site = client.containers.list(filters={
            "label": f"com.docker.compose.project={site_project}"})[0]
        site_ip = stack.ip(site)
        direct = wrk(stack.network, f"http://{site_ip}:8080/", args)
        proxied = wrk(stack.network, f"https://{HOST}:443/", args,
                      add_host=f"{HOST}:{stack.proxy_ip}")
        loaded = {"proxy": memory(stack.proxy), "companion": memory(stack.companion)}
    finally:
        sh("docker", "compose", "-p", site_project, "-f", str(compose_file), "down", "-t", "2",
           check=False)
        stack.down()

    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on this host ({cpu} CPUs, load "
        "generator on the same machine). Command: "
        f"`scripts/bench-proxy --duration {args.duration} --connections {args.connections}`",
        "",
        f"wrk, 2 threads, {args.connections} keep-alive connections, {args.duration} s each, "
        "to a static nginx site container:",
        "",
        "| path | req/s | p50 ms | p99 ms | non-2xx | socket errors |",
        "|---|---|---|---|---|---|",
        f"| direct to the site, HTTP | {direct['rps']:.0f} | {direct['p50']:.2f} | "
        f"{direct['p99']:.2f} | {direct['non2xx']} | {direct['socket_errors']} |",
        f"| through the proxy, HTTPS | {proxied['rps']:.0f} | {proxied['p50']:.2f} | "
        f"{proxied['p99']:.2f} | {proxied['non2xx']} | {proxied['socket_errors']} |",
        "",
        "| memory (sum over the container's processes) | RSS MB | PSS MB |",
        "|---|---|---|",
    ]
    for label, m in (("idle", idle), ("after the load", loaded)):
        total_rss = m["proxy"]["rss"] + m["companion"]["rss"]
        total_pss = m["proxy"]["pss"] + m["companion"]["pss"]
        lines += [
            f"| proxy, {label} ({m['proxy']['procs']} processes) | {m['proxy']['rss']:.1f} | "
            f"{m['proxy']['pss']:.1f} |",
            f"| companion, {label} | {m['companion']['rss']:.1f} | {m['companion']['pss']:.1f} |",
            f"| **proxy + companion, {label}** (target <= 80) | **{total_rss:.1f}** | "
            f"**{total_pss:.1f}** |",
        ]
    lines += ["", f"`docker compose up -d` of a new site -> first verified HTTPS 200 with its "
              f"Pebble certificate: **{first_200:.1f} s**", ""]
    report = "\n".join(lines)
    out = ROOT / "artifacts" / "bench-proxy.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
