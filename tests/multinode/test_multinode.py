"""The stack on a 3-node swarm (this host as manager, two docker-in-docker workers): a request
answered by a replica on another node, and a node drained under load (issue 30)."""

from __future__ import annotations

import pytest
import requests

from tests.procs import sh, wait_for
from tests.swarm.site import predictions_in, under_load

pytestmark = [pytest.mark.multinode, pytest.mark.docker, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]


def app_nodes(swarm) -> list[str]:
    """Hostnames of the nodes running the app's tasks."""
    out = sh("docker", "service", "ps", f"{swarm.site}_app", "--filter", "desired-state=running",
             "--format", "{{.Node}} {{.CurrentState}}").stdout
    return [line.split()[0] for line in out.splitlines() if " Running " in f" {line} "]


def predictions_on(cluster, worker: str, swarm) -> int:
    ids = cluster.on(worker, "ps", "-q", "--filter",
                     f"label=com.docker.swarm.service.name={swarm.site}_app").stdout.split()
    return sum(predictions_in(cluster.on(worker, "logs", c)) for c in ids)


def test_three_nodes_and_a_replica_on_a_worker_answers(cluster):
    c, swarm = cluster
    nodes = sh("docker", "node", "ls", "--format", "{{.Hostname}} {{.Status}}").stdout.split("\n")
    assert sum(" Ready" in n for n in nodes) == 3
    workers = [w for w in c.workers if w in app_nodes(swarm)]
    assert workers, app_nodes(swarm)
    before = {w: predictions_on(c, w, swarm) for w in workers}
    session = requests.Session()
    for _ in range(30):
        r = swarm.predict(session)
        assert r.status_code == 200 and r.json()["model"]["name"] == "usbills"

    def answered():  # gunicorn logs a request after answering it: the lines can trail
        counts = {w: predictions_on(c, w, swarm) - before[w] for w in workers}
        assert all(n > 0 for n in counts.values()), counts
        return counts

    wait_for("a prediction in each worker replica's log", answered, timeout=10)


def test_a_node_drained_under_load_fails_no_request(cluster):
    c, swarm = cluster
    worker = next(w for w in c.workers if w in app_nodes(swarm))
    node = c.node_id(worker)
    with under_load(swarm) as outcome:
        sh("docker", "node", "update", "--availability", "drain", node)
        wait_for(f"the app's tasks off {worker}", lambda: worker not in app_nodes(swarm)
                 and len(app_nodes(swarm)) == 2, timeout=120, interval=1)
    try:
        assert outcome["failures"] == [] and outcome["answered"] >= 10, outcome
        assert swarm.replicas("app") == "2/2"
    finally:
        sh("docker", "node", "update", "--availability", "active", node)
