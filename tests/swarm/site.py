"""The site as a phone sees it on a swarm: a handle on the deployed stacks and phones sending
predictions under load. Shared by the single-node and multi-node suites."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import threading
from dataclasses import dataclass, field

import requests

from tests import procs
from tests.procs import wait_for

sh = functools.partial(procs.sh, timeout=300)


def predictions_in(log) -> int:
    """Predictions logged in a ``docker logs`` result (both of its streams): gunicorn writes
    a request's access line after answering it, so callers wait for the count they expect."""
    return (log.stderr + log.stdout).count('"path":"/api/v1/predict"')


def frame() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 120, 80)).save(buf, "JPEG")
    return buf.getvalue()


@dataclass
class Swarm:
    site: str
    proxy: str
    url: str
    env: dict = field(repr=False)
    body: bytes = field(default_factory=frame, repr=False)

    def predict(self, session=None, timeout=10) -> requests.Response:
        return (session or requests).post(f"{self.url}api/v1/predict", verify=False,
                                          timeout=timeout,
                                          files={"image": ("f.jpg", self.body, "image/jpeg")})

    def tasks(self, service: str) -> list[str]:
        """Containers of the service's running tasks on this node."""
        out = sh("docker", "ps", "-q", "--filter",
                 f"label=com.docker.swarm.service.name={self.site}_{service}").stdout
        return out.split()

    def replicas(self, service: str) -> str:
        return sh("docker", "service", "ls", "--filter", f"name={self.site}_{service}",
                  "--format", "{{.Replicas}}").stdout.strip()

    def proxy_task(self, service: str) -> str:
        """The container of the proxy stack's task (proxy, companion, pebble)."""
        return sh("docker", "ps", "-q", "--filter",
                  f"label=com.docker.swarm.service.name={self.proxy}_{service}").stdout.split()[0]

    def spec(self, service: str) -> dict:
        return json.loads(sh("docker", "service", "inspect", f"{self.site}_{service}").stdout)[0]


@contextlib.contextmanager
def under_load(swarm, clients=2):
    """Predictions from ``clients`` phones, each about 5 a second, while the block runs and
    for 3 s after; yields their outcome."""
    outcome = {"answered": 0, "failures": []}
    stop = threading.Event()

    def phone():
        session = requests.Session()
        while not stop.is_set():
            try:
                r = swarm.predict(session)
                if r.status_code == 200:
                    outcome["answered"] += 1
                else:
                    outcome["failures"].append(r.status_code)
            except requests.RequestException as e:
                outcome["failures"].append(type(e).__name__)
            stop.wait(0.2)

    threads = [threading.Thread(target=phone) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        yield outcome
        stop.wait(3)
    finally:
        stop.set()
        for t in threads:
            t.join()




def remove_stacks(env: dict) -> None:
    """Remove what scripts/up --swarm made with ``env``'s names: the site, proxy and registry
    stacks, then what `docker stack rm` leaves while their tasks stop (it returns at once): the
    overlay network and the stacks' volumes, which outlive the swarm itself."""
    stacks = (env["SWARM_STACK"], env["PROXY_STACK"], env["REGISTRY_STACK"])
    for stack in stacks:
        sh("docker", "stack", "rm", stack, check=False)
    for stack in stacks:
        label = f"label=com.docker.stack.namespace={stack}"
        wait_for(f"the containers of stack {stack} gone", lambda lb=label: not sh(
            "docker", "ps", "-aq", "--filter", lb).stdout.strip(), timeout=120)
    wait_for("the overlay network removed", lambda: sh(
        "docker", "network", "rm", env["SWARM_NETWORK"], check=False).returncode == 0
             or sh("docker", "network", "inspect", env["SWARM_NETWORK"],
                   check=False).returncode != 0, timeout=60)
    for stack in stacks:
        for vol in sh("docker", "volume", "ls", "-q", "--filter",
                      f"label=com.docker.stack.namespace={stack}").stdout.split():
            wait_for(f"volume {vol} removed", lambda v=vol: sh(
                "docker", "volume", "rm", v, check=False).returncode == 0, timeout=60)
