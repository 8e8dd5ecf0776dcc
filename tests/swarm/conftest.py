"""A single-node swarm on this machine's engine, brought up by `scripts/up --swarm` exactly as
an operator would, with names and ports of its own; everything it made is removed afterwards,
the swarm too when the test started it (leaving one would change the engine for other tests).
The site answers on localhost (self-signed) and on DOMAIN, whose certificate comes from a Pebble
ACME server deployed with the proxy (tests/swarm/proxy.pebble.yml, PROXY_STACK_OVERRIDE).
"""

from __future__ import annotations

import functools
import os
import uuid
from pathlib import Path

import pytest

from tests import pebble, procs
from tests.procs import free_port, wait_for
from tests.swarm.site import Swarm, remove_stacks

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "swarm.usbills.test"
sh = functools.partial(procs.sh, timeout=300)


@pytest.fixture(scope="session")
def swarm(tmp_path_factory):
    if sh("docker", "info", check=False).returncode != 0:
        pytest.fail("Docker engine not running: run scripts/setup-dev (scripts/install-docker)")
    if not pebble.binary():
        pytest.fail("Debian's pebble package is not installed (scripts/setup-dev installs it)")
    started = sh("docker", "info", "-f", "{{.Swarm.LocalNodeState}}").stdout.strip() == "inactive"
    tag = uuid.uuid4().hex[:6]
    tmp = tmp_path_factory.mktemp("swarm")
    pebble_dir = tmp / "pebble"
    pebble_dir.mkdir()
    pebble.make_tls(pebble_dir)
    sh("scripts/base-image", timeout=900)
    pebble.build_image(tmp_path_factory.mktemp("pebble-ctx"))
    env = dict(os.environ, USBILLS_ENV_FILE=str(tmp / ".env"), SWARM_ADVERTISE_ADDR="127.0.0.1",
               SWARM_STACK=f"usbills-sw-{tag}", PROXY_STACK=f"usbills-sw-{tag}-proxy",
               REGISTRY_STACK=f"usbills-sw-{tag}-registry", SWARM_NETWORK=f"usbills-sw-{tag}",
               HTTP_PORT=str(free_port()), HTTPS_PORT=str(free_port()),
               REGISTRY_PORT=str(free_port()), APP_REPLICAS="2",
               VIRTUAL_HOST=f"localhost,{DOMAIN}", LETSENCRYPT_HOST=DOMAIN,
               LETSENCRYPT_EMAIL="ops@usbills.test", ACME_CA_URI="https://pebble:14000/dir",
               ACME_BACKOFF_SECONDS="5", PEBBLE_DIR=str(pebble_dir), SWARM_TEST_DOMAIN=DOMAIN,
               PROXY_STACK_OVERRIDE=str(ROOT / "tests" / "swarm" / "proxy.pebble.yml"))
    try:
        url = sh("scripts/up", "--swarm", env=env, timeout=900).stdout.strip()
        s = Swarm(env["SWARM_STACK"], env["PROXY_STACK"], url, env)
        wait_for("the proxy routing to the site", lambda: s.predict().status_code == 200,
                 timeout=60)
        yield s
    finally:
        remove_stacks(env)
        if started:
            sh("docker", "swarm", "leave", "--force", check=False)
