"""Throughput of the US-bills site on Docker Swarm: 1 app replica against 2 on 2 nodes.

Runs on a swarm manager where `scripts/up --swarm` has deployed the site. Scales the stack's
app service to 1 replica and to 2 with at most --max-per-node a node, in turn over --rounds
(1 then 2, then 2 then 1, ...), and at each setting POSTs the phone page's frames over HTTPS
through the host proxy with wrk (the runner and bodies of scripts/bench/stack.py) at each
--concurrency: answers/s, p50/p90/p99, 429s, other non-2xx, socket errors and timeouts apart,
with the load average and CPU steal beside each figure, the nodes the app's tasks ran on and
how many answers each task gave (`docker service logs`). Before a setting is measured every
one of its tasks must have answered (the site nginx looks the tasks up again every 2 s). The
service's replica count and placement limit are restored afterwards, on failure too.
Writes artifacts/bench-swarm.{json,md} (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stack  # noqa: E402 (the sibling benchmark: wrk runner, page frames, TLS context)

PROG = "bench-swarm"
stack.PROG = PROG
SETTINGS = (1, 2)  # app replicas compared


class Failed(Exception):
    """A one-line reason the benchmark cannot go on; exit status beside it."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def docker(*args: str, timeout: int = 120) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise Failed(f"docker {' '.join(args[:3])} ...: {why}")
    return proc.stdout


def placement(service: str) -> tuple[int, int]:
    """The service's replica count and its limit of replicas a node (0: none)."""
    spec = json.loads(docker("service", "inspect", service))[0]["Spec"]
    if "Replicated" not in spec.get("Mode", {}):
        raise Failed(f"{service} is not a replicated service", 2)
    limit = spec["TaskTemplate"].get("Placement", {}).get("MaxReplicas", 0)
    return spec["Mode"]["Replicated"].get("Replicas", 1), limit


def running_tasks(service: str) -> list[tuple[str, str]]:
    """(task id, node) of the service's tasks that run (healthy: Swarm reports a task with a
    healthcheck running only once it passes)."""
    out = docker("service", "ps", service, "--filter", "desired-state=running", "--format",
                 "{{.ID}} {{.Node}} {{.CurrentState}}")
    rows = [line.split() for line in out.splitlines() if line.strip()]
    return [(r[0], r[1]) for r in rows if len(r) > 2 and r[2] == "Running"]


def scale(service: str, replicas: int, limit: int, timeout: float = 300) -> None:
    """Set the replica count (and the limit a node when it differs), then wait until exactly
    ``replicas`` tasks run and no rolling update is going on."""
    args = ["service", "update", "--detach", "-q", "--replicas", str(replicas)]
    if placement(service)[1] != limit:
        args += ["--replicas-max-per-node", str(limit)]
    docker(*args, service)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = docker("service", "inspect", "-f",
                       "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", service).strip()
        tasks = docker("service", "ps", service, "--filter", "desired-state=running",
                       "--format", "{{.CurrentState}}").split("\n")
        states = [t for t in tasks if t.strip()]
        if state not in ("updating", "rollback_started") and len(states) == replicas \
                and all(s.startswith("Running") for s in states):
            return
        time.sleep(1)
    raise Failed(f"{service} did not run {replicas} tasks within {timeout:.0f} s "
                 f"(see: docker service ps {service} --no-trunc)")


LOG_PREFIX = re.compile(r"^(\S+)\.\d+\.(\w+)@(\S+)\s*\|")


def answers_by_task(service: str, since: float) -> dict[str, int]:
    """Predictions answered 200 by each task since ``since`` (epoch seconds), from the app's
    access log: {"<task id>@<node>": answers}."""
    proc = subprocess.run(["docker", "service", "logs", "--since", f"{since:.3f}", service],
                          capture_output=True, text=True, timeout=120, check=False)
    counts: dict[str, int] = {}
    for line in (proc.stdout + proc.stderr).splitlines():
        m = LOG_PREFIX.match(line)
        if m and '"path":"/api/v1/predict"' in line and '"status":200' in line:
            key = f"{m.group(2)}@{m.group(3)}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def settled_answers_by_task(service: str, since: float, answered: int,
                            timeout: float = 30) -> dict[str, int]:
    """answers_by_task once the service log holds the ``answered`` 200s the client counted:
    `docker service logs` can lag the tasks' output (CI once read none right after a 2 s run
    that had answered). No cache sits in front of the app, so each 200 is one app log line."""
    deadline = time.monotonic() + timeout
    while True:
        counts = answers_by_task(service, since)
        if sum(counts.values()) >= answered or time.monotonic() > deadline:
            return counts
        time.sleep(1)


def post(url: str, body: bytes) -> int:
    req = urllib.request.Request(f"{url}/api/v1/predict", data=body,  # noqa: S310 - our site
                                 headers={"Content-Type": "image/jpeg"})
    try:
        with urllib.request.urlopen(req, timeout=30, context=stack.TLS) as r:  # noqa: S310
            r.read()
            return r.status
    except OSError as e:
        return getattr(e, "code", 0) or 0


def every_task_answers(url: str, service: str, frames: list[bytes], timeout: float = 120):
    """Warm up until a batch of requests is answered by exactly the running tasks: each of them
    has answered (first requests load code paths) and none that is going away has (a removed
    task leaves the nodes' DNS by gossip, and the site nginx keeps an answer 2 s); returns the
    tasks."""
    deadline, n = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        since = time.time()
        for _ in range(4 * len(frames)):
            post(url, frames[n % len(frames)])
            n += 1
        tasks = running_tasks(service)
        answered = {k.split("@")[0] for k in answers_by_task(service, since)}
        if tasks and answered == {t for t, _ in tasks}:
            return tasks
    raise Failed(f"the tasks of {service} that answer through {url} were not the running ones "
                 f"within {timeout:.0f} s")


def run(a, service: str, frames: list[Path]) -> list[dict]:
    bodies = [f.read_bytes() for f in frames]
    runs = []
    for rnd in range(a.rounds):
        for replicas in SETTINGS if rnd % 2 == 0 else SETTINGS[::-1]:
            print(f"{PROG}: round {rnd + 1}: {replicas} replica(s)", file=sys.stderr, flush=True)
            scale(service, replicas, a.max_per_node)
            tasks = every_task_answers(a.url, service, bodies)
            for c in a.levels:
                t0 = time.time()
                r = stack.wrk(a.url, frames, a.duration, c)
                r.update(round=rnd + 1, replicas=replicas, nodes=sorted(n for _, n in tasks),
                         by_task=settled_answers_by_task(service, t0, r["ok"]))
                runs.append(r)
                print(f"{PROG}: {replicas} replica(s) c={c}: {r['ok_per_s']:.1f}/s, p99 "
                      f"{r['latency'].get('99')}, load {r['load']:.1f}", file=sys.stderr,
                      flush=True)
    return runs


def nodes() -> list[dict]:
    out = docker("node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.Availability}} "
                 "{{.ManagerStatus}}")
    rows = []
    for line in out.splitlines():
        f = line.split()
        if f:
            rows.append({"hostname": f[0], "status": f[1], "availability": f[2],
                         "manager": len(f) > 3})
    return rows


def layout(stack_name: str) -> dict[str, list[str]]:
    """The nodes each service of the stack runs on, before the benchmark."""
    out = docker("stack", "ps", stack_name, "--filter", "desired-state=running", "--format",
                 "{{.Name}} {{.Node}}")
    where: dict[str, list[str]] = {}
    for line in out.splitlines():
        if line.strip():
            name, node = line.split()
            where.setdefault(name.rsplit(".", 1)[0], []).append(node)
    return {k: sorted(v) for k, v in sorted(where.items())}


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return int(text)


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="scripts/bench-swarm",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--stack", default=os.environ.get("SWARM_STACK")
                    or os.environ.get("COMPOSE_PROJECT_NAME") or "usbills",
                    help="the site's stack, as scripts/up --swarm named it (default: "
                    "$SWARM_STACK, else $COMPOSE_PROJECT_NAME, else usbills); its service "
                    "<stack>_app is scaled")
    ap.add_argument("--url", default=f"https://localhost:{os.environ.get('HTTPS_PORT', '443')}",
                    help="the site through the host proxy (default: https://localhost:"
                    "$HTTPS_PORT, 443 when unset); a DOMAIN-only site: https://DOMAIN")
    ap.add_argument("--duration", type=positive, default=15, help="seconds per load run")
    ap.add_argument("--concurrency", default="4,16", help="wrk connections, e.g. 4,16")
    ap.add_argument("--rounds", type=positive, default=3,
                    help="rounds; each measures both settings, in turn (1 then 2, 2 then 1, ...)")
    ap.add_argument("--max-per-node", type=int, default=1,
                    help="most app replicas a node runs while measuring (default 1: 2 replicas "
                    "on 2 nodes); 0 lifts the limit, for a single-node swarm")
    ap.add_argument("--out", type=Path, default=stack.ART, help="report folder")
    a = ap.parse_args(argv)
    try:
        a.levels = [int(c) for c in a.concurrency.split(",")]
        assert a.levels and all(c >= 1 for c in a.levels)
    except (ValueError, AssertionError):
        ap.error(f"--concurrency {a.concurrency!r}: expected numbers like 4,16")
    if a.max_per_node < 0:
        ap.error(f"--max-per-node {a.max_per_node}: expected 0 (no limit) or more")
    u = urllib.parse.urlsplit(a.url.rstrip("/"))
    if u.scheme not in ("http", "https") or not u.hostname or u.path or u.query:
        ap.error(f"--url {a.url!r}: expected the site's address, like https://localhost:443")
    a.url = a.url.rstrip("/")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", a.stack):
        ap.error(f"--stack {a.stack!r}: not a stack name")
    return a


def check_swarm(a) -> str:
    """The app service to scale; Failed(status 2) when this host or the input cannot do it."""
    if shutil.which("wrk") is None:
        raise Failed("wrk is not installed (scripts/bench-swarm installs it from Debian)")
    try:
        manager = docker("info", "-f", "{{.Swarm.ControlAvailable}}").strip()
    except (Failed, OSError) as e:
        raise Failed(f"no Docker engine here ({e})", 2) from None
    if manager != "true":
        raise Failed("this engine is not a swarm manager: run it on the manager where "
                     "scripts/up --swarm deployed the site", 2)
    service = f"{a.stack}_app"
    if subprocess.run(["docker", "service", "inspect", service], capture_output=True,
                      check=False, timeout=60).returncode != 0:
        raise Failed(f"no service {service} on this swarm (deploy it with scripts/up --swarm, "
                     "or name its stack with --stack)", 2)
    active = [n for n in nodes() if n["status"] == "Ready" and n["availability"] == "Active"]
    if a.max_per_node and a.max_per_node * len(active) < max(SETTINGS):
        raise Failed(f"{max(SETTINGS)} replicas at most {a.max_per_node} a node need "
                     f"{-(-max(SETTINGS) // a.max_per_node)} active nodes; this swarm has "
                     f"{len(active)} (--max-per-node 0 lifts the limit)", 2)
    placement(service)  # a replicated service (Failed, status 2, otherwise)
    return service


def main(argv=None) -> int:
    a = parse(argv)
    try:
        service = check_swarm(a)
        try:
            a.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise Failed(f"--out {a.out}: {e.strerror}", 2) from None
        work = Path(tempfile.mkdtemp(prefix="bench-swarm-"))
        try:
            report = bench(a, service, stack.bodies(work)["page frames"])
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except Failed as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.status
    (a.out / "bench-swarm.json").write_text(json.dumps(report, indent=2))
    (a.out / "bench-swarm.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def bench(a, service: str, frames: list[Path]) -> dict:
    status = post(a.url, frames[-1].read_bytes())
    if status != 200:
        raise Failed(f"{a.url}/api/v1/predict answered {status or 'nothing'}: is the site up on "
                     "this swarm (scripts/up --swarm) and is --url its address?")
    before = placement(service)
    report = {"host": f"{platform.node()} ({os.cpu_count()} CPUs)", "service": service,
              "url": a.url, "nodes": nodes(), "layout": layout(a.stack),
              "replicas_before": before[0], "max_per_node_before": before[1],
              "body_bytes": [f.stat().st_size for f in frames],
              "loadavg_before": os.getloadavg()[0],
              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}}
    try:
        report["runs"] = run(a, service, frames)
    finally:
        print(f"{PROG}: restoring {service} to {before[0]} replica(s)", file=sys.stderr)
        try:
            scale(service, *before)
        except Failed as e:
            print(f"{PROG}: error: could not restore {service}: {e}", file=sys.stderr)
    report["loadavg_after"] = os.getloadavg()[0]
    return report


def errors(x: dict) -> int:
    return x["429"] + x["other"] + x["socket_errors"] + x["timeouts"]


def shares(by_task: dict[str, int]) -> str:
    total = sum(by_task.values())
    return ", ".join(f"{100 * v / total:.0f} %" for v in sorted(by_task.values(), reverse=True)
                     ) if total else "-"


def markdown(r: dict) -> str:
    med = statistics.median
    a = r["args"]
    node_list = ", ".join(f"{n['hostname']}{' (manager)' if n['manager'] else ''}"
                          for n in r["nodes"])
    lines = [
        f"Host: {r['host']}; swarm nodes: {node_list}. Service `{r['service']}` "
        f"({r['replicas_before']} replicas before, restored), through {r['url']}; "
        f"at most {a['max_per_node'] or 'any number of'} replica(s) a node while measuring. "
        f"Where the stack ran: " + "; ".join(f"{k} on {', '.join(v)}"
                                             for k, v in r["layout"].items()) + ". "
        f"Load average {r['loadavg_before']:.1f} before / {r['loadavg_after']:.1f} after.",
        f"Page frames POSTed in turn ({', '.join(f'{b / 1000:.0f}' for b in r['body_bytes'])} "
        f"KB), wrk, keep-alive connections, {a['duration']} s a run, {a['rounds']} round(s).",
        f"Args: {a}", "",
        "| round | app replicas | their nodes | connections | answered 200/s | p50 | p90 | "
        "p99 | 429 | other non-2xx | socket errors | timeouts | answers a task | load | "
        "CPU steal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[f"| {x['round']} | {x['replicas']} | {', '.join(x['nodes'])} | {x['connections']} | "
          f"{x['ok_per_s']:.1f} | {x['latency'].get('50', '?')} | {x['latency'].get('90', '?')} "
          f"| {x['latency'].get('99', '?')} | {x['429']} | {x['other']} | {x['socket_errors']} "
          f"| {x['timeouts']} | {shares(x['by_task'])} | {x['load']:.1f} | "
          f"{x['steal_pct']:.0f} % |" for x in r["runs"]],
        "",
        "| connections | 1 replica 200/s | 2 replicas 200/s | 2 / 1 | p99, 1 replica | "
        "p99, 2 replicas | errors (1, 2) | load |",
        "|---|---|---|---|---|---|---|---|"]
    for c in sorted({x["connections"] for x in r["runs"]}):
        by = {n: [x for x in r["runs"] if x["connections"] == c and x["replicas"] == n]
              for n in SETTINGS}
        rate = {n: med(x["ok_per_s"] for x in v) for n, v in by.items()}
        p99 = {n: ", ".join(x["latency"].get("99", "?") for x in v) for n, v in by.items()}
        loads = [x["load"] for v in by.values() for x in v]
        ratio = f"{rate[2] / rate[1]:.2f}x" if rate[1] else "-"
        lines.append(f"| {c} | {rate[1]:.1f} | {rate[2]:.1f} | {ratio} | {p99[1]} | {p99[2]} | "
                     f"{sum(map(errors, by[1]))}, {sum(map(errors, by[2]))} | "
                     f"{min(loads):.1f}-{max(loads):.1f} |")
    lines += ["", "200/s are medians over the rounds; errors are 429s, other non-2xx, socket "
              "errors and timeouts together; answers a task: each app task's share of the "
              "run's answers (its access log). Nodes that are containers on one machine "
              "(tests/multinode) share its cores: there the ratio shows what spreading the app "
              "over nodes costs and how evenly its tasks are used, not scaling.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
