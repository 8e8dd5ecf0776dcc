"""Smoke test of scripts/bench-swarm on the single-node swarm: a short run of 1 against 2 app
replicas (no limit a node: there is one node) checks the report's fields, not the figures (those
are in docs/benchmarks.md), and that the service has its replicas back afterwards."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.swarm.conftest import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]
RUN_FIELDS = {"round", "replicas", "nodes", "connections", "ok_per_s", "latency", "ok", "429",
              "other", "socket_errors", "timeouts", "by_task", "load", "steal_pct"}


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["scripts/bench-swarm", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def test_bench_swarm_reports_one_replica_against_two(swarm, tmp_path):
    proc = bench("--stack", swarm.site, "--url", swarm.url, "--duration", "2", "--rounds", "2",
                 "--concurrency", "2", "--max-per-node", "0", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((tmp_path / "bench-swarm.json").read_text())
    assert [x["replicas"] for x in r["runs"]] == [1, 2, 2, 1]  # interleaved
    for x in r["runs"]:
        assert set(x) >= RUN_FIELDS and {"50", "90", "99"} <= set(x["latency"])
        assert x["ok"] > 0 and len(x["nodes"]) == x["replicas"]
        assert sum(x["by_task"].values()) >= x["ok"]  # every answer the client got, by task
        assert len(x["by_task"]) == x["replicas"]  # every task answered, and no other
    assert r["replicas_before"] == 2 and swarm.replicas("app") == "2/2"
    md = (tmp_path / "bench-swarm.md").read_text()
    assert "| connections | 1 replica 200/s | 2 replicas 200/s | 2 / 1 |" in md
    assert "| round | app replicas | their nodes | connections | answered 200/s |" in md


def test_bench_swarm_refuses_bad_input(swarm):
    proc = bench("--rounds", "0")
    assert proc.returncode == 2 and "--rounds: '0': expected a whole number" in proc.stderr
    proc = bench("--stack", "no-such-stack")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("bench-swarm: error: no service no-such-stack_app on this "
                                   "swarm (deploy it with scripts/up --swarm, or name its stack "
                                   "with --stack)")
    # One node cannot hold 2 replicas at most 1 a node.
    proc = bench("--stack", swarm.site, "--url", swarm.url, "--max-per-node", "1")
    assert proc.returncode == 2
    assert "2 replicas at most 1 a node need 2 active nodes; this swarm has 1" in proc.stderr
    assert "Traceback" not in proc.stderr
