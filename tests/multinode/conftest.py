"""The multi-node suite is opt-in (it starts two extra Docker engines and takes minutes):
USBILLS_MULTINODE=1 .venv/bin/python -m pytest tests/multinode
Run it on its own: it makes this engine the manager of a new swarm and leaves it afterwards."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.multinode import cluster as mn
from tests.procs import free_port, sh, wait_for
from tests.swarm.site import Swarm, remove_stacks


def pytest_collection_modifyitems(config, items):
    if os.environ.get("USBILLS_MULTINODE") != "1":
        skip = pytest.mark.skip(reason="multi-node swarm: opt-in, set USBILLS_MULTINODE=1")
        for item in items:
            if "multinode" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    registry_port = free_port()
    c = mn.up(registry_port)
    tag = uuid.uuid4().hex[:6]
    env = dict(os.environ, USBILLS_ENV_FILE=str(tmp_path_factory.mktemp("mn") / ".env"),
               SWARM_STACK=f"usbills-mn-{tag}", PROXY_STACK=f"usbills-mn-{tag}-proxy",
               REGISTRY_STACK=f"usbills-mn-{tag}-registry", SWARM_NETWORK=f"usbills-mn-{tag}",
               HTTP_PORT=str(free_port()), HTTPS_PORT=str(free_port()),
               REGISTRY_PORT=str(registry_port), APP_REPLICAS="2",
               # Two site nginx tasks: one on the drained node leaves the proxy none to route
               # to until its replacement is healthy (measured: 80 of 90 requests 503).
               NGINX_REPLICAS="2")
    try:
        url = sh("scripts/up", "--swarm", env=env, timeout=900).stdout.strip()
        s = Swarm(env["SWARM_STACK"], env["PROXY_STACK"], url, env)
        wait_for("the proxy routing to the site", lambda: s.predict().status_code == 200,
                 timeout=60)
        yield c, s
    finally:
        remove_stacks(env)  # the stacks' volumes would outlive the swarm
        mn.down()
