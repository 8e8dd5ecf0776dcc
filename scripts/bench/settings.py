"""Compare serving settings side by side: the current defaults against each given variant.

One host proxy (scripts/up, as bench-stack starts it) and one site per setting, all up at once
behind it (own compose projects, each its own host name), then the phone page's frames POSTed
over HTTPS through the proxy with wrk (bench-stack's runner and bodies), the settings in turn
within each round and each round in a rotated order, so every setting meets the same load.
For every run: answers/s, p50/p90/p99, errors apart, the load average, and the CPU time the
app, the site nginx and the proxy spent per answer (their processes' user + system time over
the answers: what a frame costs the host, whatever else the cores do). Also, on the current
site: new TLS connections with and without the session of the previous one (what a phone's
reconnect costs the proxy). The proxy's per-IP limit is lifted (one address measures the
host). Writes artifacts/bench-settings.{json,md} (--out); everything it started is removed
afterwards.

A setting is KEY=VALUE[,KEY=VALUE...]: the app's and site nginx's environment (as in .env),
or one of the nginx experiments below, which change the generated config of this run only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stack  # noqa: E402 (the sibling benchmark: scripts/up env, wrk runner, frames, CPU time)

PROG = "bench-settings"
stack.PROG = PROG
TEMPLATE = stack.ROOT / "nginx/templates/nginx.conf.template"

# Site settings passed to the stack's environment, with the ranges usbills_app/config.py and
# the site nginx's entrypoint accept.
ENV_KEYS = {"WEB_CONCURRENCY": (1, 64), "GUNICORN_THREADS": (1, 64),
            "INFERENCE_THREADS": (1, 64), "NGINX_WORKER_PROCESSES": (1, 99)}
# nginx experiments: what each value changes (current value first).
NGINX_KEYS = {
    "PROXY_KEEPALIVE": ("on", "off: the proxy talks HTTP/1.0 to the site nginx, a new "
                        "connection per request (on: its upstream keeps 16 idle connections)"),
    "PROXY_REQUEST_BUFFERING": ("on", "off: the proxy streams the upload to the site nginx as "
                                "it arrives instead of reading it whole first"),
    "PROXY_BODY_BUFFER": ("16k", "SIZE: the proxy keeps uploads up to SIZE in memory (16k, "
                          "nginx's default: a larger one goes to a temporary file)"),
    "SITE_KEEPALIVE": ("off", "N: the site nginx keeps up to N idle connections to gunicorn "
                       "(an upstream block, resolved once at start; off: the app's address "
                       "is looked up per request and each request opens a connection)"),
    "SITE_REQUEST_BUFFERING": ("on", "off: the site nginx streams the upload to gunicorn "
                               "instead of reading it whole first"),
}
SIZE_RE = re.compile(r"^[1-9][0-9]{0,5}[km]?$")


def parse_setting(text: str) -> dict[str, str]:
    """``KEY=VALUE[,KEY=VALUE...]`` -> {KEY: VALUE}; raises ValueError with the reason."""
    out: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.strip().partition("=")
        key = key.upper()
        if not sep or not value:
            raise ValueError(f"{part!r} is not KEY=VALUE")
        if key in ENV_KEYS:
            lo, hi = ENV_KEYS[key]
            if not value.isdigit() or not lo <= int(value) <= hi:
                raise ValueError(f"{key} must be a whole number in {lo}..{hi}, got {value!r}")
        elif key in ("PROXY_KEEPALIVE", "PROXY_REQUEST_BUFFERING", "SITE_REQUEST_BUFFERING"):
            if value not in ("on", "off"):
                raise ValueError(f"{key} must be on or off, got {value!r}")
        elif key == "PROXY_BODY_BUFFER":
            if not SIZE_RE.match(value):
                raise ValueError(f"{key} must be a size like 64k, got {value!r}")
        elif key == "SITE_KEEPALIVE":
            if value != "off" and not (value.isdigit() and 1 <= int(value) <= 1024):
                raise ValueError(f"{key} must be off or a number of connections, got {value!r}")
        else:
            known = ", ".join([*ENV_KEYS, *NGINX_KEYS])
            raise ValueError(f"unknown setting {key!r} (known: {known})")
        if key in out:
            raise ValueError(f"{key} given twice")
        out[key] = value
    return out


def vhost_include(s: dict[str, str]) -> str:
    """The proxy's per-host additions (proxy/vhost.d/<host>, the operator's own mechanism)."""
    lines = []
    if s.get("PROXY_KEEPALIVE") == "off":
        lines.append("proxy_http_version 1.0;")
    if s.get("PROXY_REQUEST_BUFFERING") == "off":
        lines.append("proxy_request_buffering off;")
    if "PROXY_BODY_BUFFER" in s:
        lines.append(f"client_body_buffer_size {s['PROXY_BODY_BUFFER']};")
    return "".join(f"{line}\n" for line in lines)


# The app's location in the site template: the request's upstream, looked up per request.
PER_REQUEST = ("            set $app_upstream http://${APP_UPSTREAM};\n"
               "            proxy_pass $app_upstream;\n"
               "            proxy_http_version 1.1;\n")


def site_template(s: dict[str, str]) -> str | None:
    """The site nginx's template with this setting's changes, or None when it has none."""
    keep, buffering = s.get("SITE_KEEPALIVE", "off"), s.get("SITE_REQUEST_BUFFERING", "on")
    if keep == "off" and buffering == "on":
        return None
    text = TEMPLATE.read_text()
    if text.count(PER_REQUEST) != 1 or "\n    server {\n" not in text:
        sys.exit(f"{PROG}: {TEMPLATE.relative_to(stack.ROOT)} no longer has the app's "
                 "location this benchmark edits; update scripts/bench/settings.py")
    location = PER_REQUEST
    if keep != "off":
        location = location.replace("            set $app_upstream http://${APP_UPSTREAM};\n"
                                    "            proxy_pass $app_upstream;\n",
                                    "            proxy_pass http://usbills_app;\n")
        text = text.replace("\n    server {\n", "\n    upstream usbills_app {\n"
                            "        server ${APP_UPSTREAM};\n"
                            f"        keepalive {keep};\n    }}\n\n    server {{\n", 1)
    if buffering == "off":
        location += "            proxy_request_buffering off;\n"
    return text.replace(PER_REQUEST, location)


def label(s: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in s.items()) or "current"


class Site:
    """One setting's site: its compose project behind the shared proxy, under its own name."""

    def __init__(self, i: int, setting: dict[str, str], base_env: dict, work: Path):
        self.setting, self.label = setting, label(setting)
        self.host = f"v{i}.bench.localhost"
        env = dict(base_env, COMPOSE_PROJECT_NAME=f"{base_env['COMPOSE_PROJECT_NAME']}-{i}",
                   VIRTUAL_HOST=self.host)
        env.update({k: v for k, v in setting.items() if k in ENV_KEYS})
        self.env = env
        self.project = stack.Project(env, env["COMPOSE_PROJECT_NAME"], "docker-compose.yml")
        self.project.base += ["-f", "compose.model.yml"]
        template = site_template(setting)
        if template is not None:
            path = work / f"nginx-{i}.conf.template"
            path.write_text(template)
            path.chmod(0o644)
            override = work / f"site-{i}.yml"
            override.write_text(json.dumps({"services": {"nginx": {"volumes": [
                {"type": "bind", "source": str(path), "read_only": True,
                 "target": "/etc/nginx/usbills/nginx.conf.template"}]}}}))
            self.project.base += ["-f", str(override)]
        include = vhost_include(setting)
        if include:
            (work / "vhost.d" / self.host).write_text(include)


def request(url: str, host: str, data: bytes | None = None, timeout: float = 30) -> int:
    req = urllib.request.Request(url, data=data, headers={  # noqa: S310 - our own stack
        "Host": host, **({"Content-Type": "image/jpeg"} if data else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=stack.TLS) as r:  # noqa: S310
            r.read()
            return r.status
    except OSError as e:
        return getattr(e, "code", 0) or 0


def wait_routed(url: str, sites: list[Site], timeout: float = 180) -> None:
    """Until the proxy routes every site's name to a ready app."""
    deadline = time.monotonic() + timeout
    for site in sites:
        while request(f"{url}/readyz", site.host, timeout=5) != 200:
            if time.monotonic() > deadline:
                sys.exit(f"{PROG}: {site.label} ({site.host}) did not answer through the proxy "
                         f"within {timeout:.0f} s")
            time.sleep(0.5)


def ms(text: str | None) -> float | None:
    """wrk's latency ("812.00us", "45.12ms", "1.20s") in milliseconds."""
    m = re.match(r"^([\d.]+)(us|ms|s|m)$", text or "")
    if not m:
        return None
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[m.group(2)]


def run_one(site: Site, proxy: stack.Project, url: str, frames: list[Path], duration: int,
            connections: int) -> dict:
    for f in frames:  # warm: the first requests on a connection pool or worker pay extra
        request(f"{url}/api/v1/predict", site.host, f.read_bytes())
    pids = {"app": site.project.pids("app"), "site nginx": site.project.pids("nginx"),
            "proxy": proxy.pids("proxy")}
    cpu0 = {k: stack.cpu_s(p) for k, p in pids.items()}
    r = stack.wrk(url, frames, duration, connections, host=site.host)
    cpu = {k: stack.cpu_s(p) - cpu0[k] for k, p in pids.items()}
    r.pop("raw")
    r["cpu_ms_per_answer"] = {k: 1000 * v / r["ok"] if r["ok"] else None
                              for k, v in cpu.items()}
    r["latency_ms"] = {q: ms(v) for q, v in r["latency"].items()}
    return r


def handshakes(port: int, host: str, proxy: stack.Project, n: int) -> dict:
    """``n`` requests each on a new TLS connection, in blocks of 10 alternating between a full
    handshake and one resuming the previous connection's session (as a browser does): time to
    the answer, the proxy's CPU time per connection, and how many were resumed."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    req = (f"GET /nginx-healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").encode()
    out = {m: {"ms": [], "cpu_s": 0.0, "resumed": 0, "n": 0} for m in ("full", "resumed")}
    session, pids = None, proxy.pids("proxy")
    for block in range(max(1, n // 20)):
        for mode in ("full", "resumed") if block % 2 == 0 else ("resumed", "full"):
            cpu0 = stack.cpu_s(pids)
            for _ in range(10):
                t0 = time.perf_counter()
                with socket.create_connection(("localhost", port), timeout=10) as raw, \
                        ctx.wrap_socket(raw, server_hostname="localhost",
                                        session=session if mode == "resumed" else None) as s:
                    s.sendall(req)
                    while s.recv(65536):
                        pass
                    out[mode]["ms"].append(1000 * (time.perf_counter() - t0))
                    out[mode]["resumed"] += s.session_reused
                    out[mode]["n"] += 1
                    session = s.session
            out[mode]["cpu_s"] += stack.cpu_s(pids) - cpu0
    return {m: {"n": v["n"], "resumed": v["resumed"], "p50_ms": statistics.median(v["ms"]),
                "proxy_cpu_ms_per_connection": 1000 * v["cpu_s"] / v["n"]}
            for m, v in out.items()} | {"load": os.getloadavg()[0]}


def main() -> None:
    keys = "\n".join([f"  {k}: the site's {k} (.env), {lo}..{hi}" for k, (lo, hi) in
                      ENV_KEYS.items()] + [f"  {k}={cur} (current) or {what}" for k, (cur, what)
                                           in NGINX_KEYS.items()])
    ap = argparse.ArgumentParser(
        prog=PROG, description=__doc__.splitlines()[0], epilog=f"settings:\n{keys}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("settings", nargs="+", metavar="KEY=VALUE[,KEY=VALUE]",
                    help="a setting to compare with the current defaults (several: each one)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per load run")
    ap.add_argument("--concurrency", default="4,16", help="wrk connections, e.g. 1,4,16")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds; each runs every setting at every concurrency, order rotated")
    ap.add_argument("--handshakes", type=int, default=400,
                    help="new TLS connections, full against resumed (0: skip)")
    ap.add_argument("--bundle", choices=["auto", "real", "mobilenet", "colour"], default="auto")
    ap.add_argument("--out", type=Path, default=stack.ART, help="report folder")
    a = ap.parse_args()
    if a.rounds < 1 or a.duration < 1 or a.handshakes < 0:
        ap.error("--rounds and --duration must be at least 1, --handshakes at least 0")
    try:
        levels = [int(c) for c in a.concurrency.split(",")]
        assert levels and all(c >= 1 for c in levels)
    except (ValueError, AssertionError):
        ap.error(f"--concurrency {a.concurrency!r}: expected numbers like 1,4,16")
    settings: list[dict[str, str]] = [{}]
    for text in a.settings:
        try:
            settings.append(parse_setting(text))
        except ValueError as e:
            ap.error(f"setting {text!r}: {e}")
    if len({label(s) for s in settings}) != len(settings):
        ap.error("a setting is given twice (or is the current defaults)")

    work = Path(tempfile.mkdtemp(prefix="bench-settings-"))
    work.chmod(0o755)
    (work / "vhost.d").mkdir(mode=0o755)
    bundle_desc = stack.make_bundle(a.bundle, work / "bundle")
    frames = stack.bodies(work)["page frames"]
    suffix, port = uuid.uuid4().hex[:8], stack.free_port()
    (work / "env").write_text("")
    base_env = dict(os.environ, USBILLS_ENV_FILE=str(work / "env"),
                    COMPOSE_PROJECT_NAME=f"usbills-bset-{suffix}",
                    PROXY_PROJECT=f"usbills-bset-proxy-{suffix}",
                    PROXY_NETWORK=f"usbills-bset-net-{suffix}", HTTPS_PORT=str(port),
                    HTTP_PORT=str(stack.free_port()), VHOST_DIR=str(work / "vhost.d"),
                    MODEL_BUNDLE_DIR=str(work / "bundle"),
                    # The proxy's per-IP limit lifted: one address measures the host here.
                    RATE_LIMIT="100000", RATE_BURST="1000000")
    gid = os.stat("/var/run/docker.sock").st_gid if Path("/var/run/docker.sock").exists() else 0
    if gid:  # as scripts/up runs the watchdog: the app user in the socket's group
        base_env.setdefault("WATCHDOG_USER", f"10001:{gid}")
    sites = [Site(i, s, base_env, work) for i, s in enumerate(settings)]
    proxy = stack.Project(base_env, base_env["PROXY_PROJECT"], "proxy/docker-compose.yml")
    url = f"https://localhost:{port}"
    report: dict = {"host": f"{platform.node()} ({os.cpu_count()} CPUs)",
                    "bundle": bundle_desc, "loadavg_before": os.getloadavg()[0],
                    "body_bytes": [p.stat().st_size for p in frames],
                    "command": "scripts/bench-settings " + " ".join(sys.argv[1:]),
                    "settings": [s.label for s in sites], "runs": []}
    try:
        # The first site as an operator starts it (builds images, starts the host proxy); the
        # others beside it, with their own settings and config files.
        stack.sh("scripts/up", env=sites[0].env)
        for site in sites[1:]:
            site.project.compose("up", "-d", "--wait", "--wait-timeout", "180")
        wait_routed(url, sites)
        for site in sites:
            request(f"{url}/api/v1/predict", site.host, frames[-1].read_bytes())
        time.sleep(2)
        report["pss_idle_mb"] = {s.label: {svc: s.project.pss_mb(svc) for svc in ("app", "nginx")}
                                 for s in sites}
        for rnd in range(a.rounds):
            for c in levels:
                order = sites[rnd % len(sites):] + sites[:rnd % len(sites)]
                for site in order:
                    r = run_one(site, proxy, url, frames, a.duration, c)
                    r.update(setting=site.label, round=rnd + 1)
                    report["runs"].append(r)
                    print(f"{PROG}: round {rnd + 1} c={c} {site.label}: {r['ok_per_s']:.1f}/s, "
                          f"load {r['load']:.1f}", file=sys.stderr)
        if a.handshakes:
            report["tls"] = handshakes(port, sites[0].host, proxy, a.handshakes)
        report["loadavg_after"] = os.getloadavg()[0]
    finally:
        for site in sites:
            stack.sh(*site.project.base, "down", "--timeout", "5", env=site.env, check=False)
        stack.sh(*proxy.base, "down", "--volumes", "--timeout", "5", env=base_env, check=False)
        stack.sh("docker", "network", "rm", base_env["PROXY_NETWORK"], check=False)
        shutil.rmtree(work, ignore_errors=True)

    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "bench-settings.json").write_text(json.dumps(report, indent=2))
    (a.out / "bench-settings.md").write_text(markdown(report))
    print(markdown(report))


def num(x: float) -> str:
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


def markdown(r: dict) -> str:
    med = statistics.median
    base = r["settings"][0]
    lines = [
        f"Command: `{r['command']}`. Host: {r['host']}, load average {r['loadavg_before']:.1f} "
        f"before / {r['loadavg_after']:.1f} after (wrk, the proxy and every site share these "
        f"cores). Bundle: {r['bundle']}. Page frames (KB): "
        + ", ".join(f"{b / 1000:.0f}" for b in r["body_bytes"]) + ".", "",
        "| setting | memory idle (PSS): app | site nginx |", "|---|---|---|",
        *[f"| {k} | {v['app']:.1f} MB | {v['nginx']:.1f} MB |"
          for k, v in r["pss_idle_mb"].items()], "",
        "POST /api/v1/predict over HTTPS through the proxy; medians over the rounds; CPU ms per "
        "answer: user + system time of the app's, the site nginx's and the proxy's processes "
        "over the answers; cores used: answers/s x that total, the share of the host the "
        "stack got (other jobs take the rest).", "",
        "| connections | setting | answered 200/s | against current | p50 | p99 | CPU ms / "
        "answer: app + site nginx + proxy | total | against current | cores used | errors | "
        "load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in sorted({x["connections"] for x in r["runs"]}):
        rows = {}
        for s in r["settings"]:
            runs = [x for x in r["runs"] if x["connections"] == c and x["setting"] == s]
            cpu = {k: med(x["cpu_ms_per_answer"][k] or 0 for x in runs)
                   for k in runs[0]["cpu_ms_per_answer"]}
            rows[s] = {"rate": med(x["ok_per_s"] for x in runs), "cpu": cpu,
                       "total": med(sum(v or 0 for v in x["cpu_ms_per_answer"].values())
                                    for x in runs),
                       "cores": med(x["ok_per_s"] * sum(v or 0 for v in
                                                            x["cpu_ms_per_answer"].values())
                                    / 1000 for x in runs),
                       "p50": med(x["latency_ms"].get("50") or 0 for x in runs),
                       "p99": med(x["latency_ms"].get("99") or 0 for x in runs),
                       "errors": sum(x["429"] + x["other"] + x["socket_errors"] + x["timeouts"]
                                     for x in runs),
                       "loads": [x["load"] for x in runs]}
        for s, v in rows.items():
            b = rows[base]
            lines.append(
                f"| {c} | {s} | {v['rate']:.1f} | "
                f"{v['rate'] / b['rate'] if b['rate'] else 0:.2f}x | {num(v['p50'])} ms | "
                f"{num(v['p99'])} ms | " + " + ".join(f"{x:.1f}" for x in v["cpu"].values())
                + f" | {v['total']:.1f} | {v['total'] / b['total'] if b['total'] else 0:.2f}x | "
                f"{v['cores']:.2f} | {v['errors']} | {min(v['loads']):.1f}-{max(v['loads']):.1f} |")
    if "tls" in r:
        t = r["tls"]
        lines += ["", f"New TLS connections to the proxy, one GET each (load {t['load']:.1f}):",
                  "", "| handshake | connections | resumed | p50 to the answer | proxy CPU ms "
                  "/ connection |", "|---|---|---|---|---|",
                  *[f"| {m} | {t[m]['n']} | {t[m]['resumed']} | {t[m]['p50_ms']:.2f} ms | "
                    f"{t[m]['proxy_cpu_ms_per_connection']:.2f} |" for m in ("full", "resumed")]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
