"""Docker Swarm services as the proxy routes them: each running task of a service that sets
VIRTUAL_HOST becomes one upstream server, as a container does in compose mode.

Only a manager's API lists services and tasks; the proxy's stack pins it to one. Tasks on other
nodes start and stop without an event on this node, so the proxy polls (``POLL_SECONDS``).
"""

from __future__ import annotations

import docker

from .model import Container, parse_env

POLL_SECONDS = 2.0
TASK_LABEL = "com.docker.swarm.task.id"  # on every container the swarm runs


def is_manager(client: docker.DockerClient) -> bool:
    swarm = (client.info() or {}).get("Swarm") or {}
    return swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))


def service_env(service: dict) -> dict[str, str]:
    """The environment a service gives its tasks."""
    spec = (service.get("Spec") or {}).get("TaskTemplate") or {}
    return parse_env((spec.get("ContainerSpec") or {}).get("Env"))


def task_containers(service: dict, tasks: list[dict]) -> list[Container]:
    """The routable tasks of one service (API objects as the Engine returns them): running
    (with a healthcheck, Swarm reports a task running once it is healthy), with an address
    on each overlay network they are attached to."""
    spec = service.get("Spec") or {}
    env = service_env(service)
    out = []
    for task in tasks:
        if (task.get("Status") or {}).get("State") != "running" \
                or task.get("DesiredState") != "running":
            continue
        networks = {}
        for att in task.get("NetworksAttachments") or []:
            name = ((att.get("Network") or {}).get("Spec") or {}).get("Name")
            addresses = att.get("Addresses") or []
            if name and addresses:
                networks[name] = addresses[0].split("/")[0]
        slot = task.get("Slot") or task.get("ID", "")[:12]
        out.append(Container(id=task.get("ID", ""), name=f"{spec.get('Name', '?')}.{slot}",
                             env=env, networks=networks))
    return out


def services(client: docker.DockerClient) -> list[Container]:
    """Every running task of the swarm's services that ask for a VIRTUAL_HOST."""
    out = []
    for svc in client.services.list():
        if service_env(svc.attrs).get("VIRTUAL_HOST", "").strip():
            out += task_containers(svc.attrs, svc.tasks(filters={"desired-state": "running"}))
    return out
