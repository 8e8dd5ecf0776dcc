"""A 3-node swarm on one machine: this host's engine is the manager and two docker-in-docker
containers (node.Dockerfile) join it as workers over a bridge network of their own.

    python -m tests.multinode.cluster up      # then scripts/up --swarm, scripts/bench-swarm
    python -m tests.multinode.cluster down

The manager is this host, not a third container, because it already holds the images that
scripts/up --swarm builds and pushes; the workers pull them from its registry, as a second VPS
would. Containers get every capability but CAP_SYS_RESOURCE instead of --privileged: this
machine's engine runs without that one, and --privileged asks for all.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.procs import sh, wait_for

HERE = Path(__file__).resolve().parent
IMAGE = "usbills-test/swarm-node:local"
NETWORK = "usbills-multinode"
WORKERS = ("usbills-node2", "usbills-node3")


@dataclass
class Cluster:
    manager_addr: str
    workers: tuple[str, ...]

    def on(self, worker: str, *cmd: str, check: bool = True, timeout: int = 120):
        """Run a docker command on a worker's own engine."""
        return sh("docker", "exec", worker, "docker", *cmd, check=check, timeout=timeout)

    def node_id(self, worker: str) -> str:
        return self.on(worker, "info", "-f", "{{.Swarm.NodeID}}").stdout.strip()


def up(registry_port: int) -> Cluster:
    if sh("docker", "info", "-f", "{{.Swarm.LocalNodeState}}").stdout.strip() != "inactive":
        raise SystemExit("cluster: this engine is already in a swarm; the manager must advertise "
                         "on the nodes' network: docker swarm leave --force first")
    sh("scripts/base-image", timeout=900)
    sh("docker", "build", "-q", "-t", IMAGE, "-f", str(HERE / "node.Dockerfile"), str(HERE),
       timeout=900)
    if sh("docker", "network", "inspect", NETWORK, check=False).returncode != 0:
        sh("docker", "network", "create", NETWORK)
    addr = sh("docker", "network", "inspect", NETWORK, "-f",
              "{{(index .IPAM.Config 0).Gateway}}").stdout.strip()
    sh("docker", "swarm", "init", "--advertise-addr", addr)
    token = sh("docker", "swarm", "join-token", "-q", "worker").stdout.strip()
    cluster = Cluster(addr, WORKERS)
    for name in WORKERS:
        sh("docker", "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK,
           "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
           "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
           "--security-opt", "systempaths=unconfined", "-v", "/sys/fs/cgroup:/sys/fs/cgroup",
           "--tmpfs", "/run", "-e", f"MANAGER_ADDR={addr}", "-e", f"REGISTRY_PORT={registry_port}",
           IMAGE)
    for name in WORKERS:
        wait_for(f"the engine in {name}",
                 lambda n=name: cluster.on(n, "info", check=False).returncode == 0, timeout=60)
        cluster.on(name, "swarm", "join", "--token", token, f"{addr}:2377")
    wait_for("3 nodes ready", lambda: sh("docker", "node", "ls", "--format", "{{.Status}}")
             .stdout.split().count("Ready") == 3, timeout=60)
    return cluster


def down() -> None:
    for name in WORKERS:
        sh("docker", "rm", "-fv", name, check=False)
    sh("docker", "swarm", "leave", "--force", check=False)
    sh("docker", "network", "rm", NETWORK, check=False)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.multinode.cluster",
                                description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("--registry-port", type=int, default=5000,
                   help="REGISTRY_PORT that scripts/up --swarm will use (default 5000)")
    a = p.parse_args(argv)
    if a.action == "up":
        c = up(a.registry_port)
        print(f"manager {c.manager_addr}, workers {', '.join(c.workers)}")
    else:
        down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
