"""Fixtures for the site-stack tests: the real images on a real Docker engine, started by
`scripts/up --local` exactly as an operator would, once per test session.

Everything is unique to the session (compose project, proxy network, env file) and the site
nginx is published on an ephemeral 127.0.0.1 port, so other Docker tests can run beside these.
The app serves the colour test bundle (tests/bundles.py) mounted read-only, so answers are known.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import procs
from tests.bundles import cached_bundle
from tests.procs import wait_for  # noqa: F401 (re-exported to the stack tests)

ROOT = Path(__file__).resolve().parents[2]
sh = functools.partial(procs.sh, timeout=120)
MAX_UPLOAD_MB = 2  # small, so the over-the-limit upload is quick




@dataclass
class Stack:
    project: str
    network: str
    url: str
    env: dict = field(repr=False)

    def compose(self, *args, check=True, timeout=120):
        return sh("docker", "compose", "--env-file", self.env["USBILLS_ENV_FILE"],
                  "-p", self.project, "-f", "docker-compose.yml", *args,
                  env=self.env, check=check, timeout=timeout)

    def container(self, service: str) -> str:
        cid = self.compose("ps", "-a", "-q", service).stdout.split()
        assert len(cid) == 1, f"expected one {service} container, got {cid}"
        return cid[0]

    def inspect(self, service: str) -> dict:
        return json.loads(sh("docker", "inspect", self.container(service)).stdout)[0]

    def health(self, service: str) -> str:
        state = self.inspect(service)["State"]
        return (state.get("Health") or {}).get("Status", state["Status"])


def docker_available() -> None:
    if shutil.which("docker") is None or sh("docker", "info", check=False).returncode != 0:
        pytest.fail("Docker engine not running: run scripts/setup-dev (scripts/install-docker)")


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory) -> Path:
    """The colour test bundle, readable by the app's user (uid 10001) when mounted."""
    dest = tmp_path_factory.mktemp("stack-bundle") / "bundle"
    shutil.copytree(cached_bundle("tflite", 32), dest)
    dest.chmod(0o755)
    for f in dest.iterdir():
        f.chmod(0o644)
    return dest


@pytest.fixture(scope="session")
def stack(tmp_path_factory, bundle_dir) -> Stack:
    docker_available()
    suffix = uuid.uuid4().hex[:8]
    work = tmp_path_factory.mktemp("stack")
    env = dict(os.environ)
    env.update(
        USBILLS_ENV_FILE=str(work / "env"),
        COMPOSE_PROJECT_NAME=f"usbills-stack-{suffix}",
        PROXY_NETWORK=f"usbills-stack-proxy-{suffix}",
        LOCAL_PORT="0",
        MODEL_BUNDLE_DIR=str(bundle_dir),
        MAX_UPLOAD_MB=str(MAX_UPLOAD_MB),
    )
    for key in ("DOMAIN", "EMAIL", "VIRTUAL_HOST", "LETSENCRYPT_HOST", "LOCAL_ADDR"):
        env.pop(key, None)
    s = Stack(env["COMPOSE_PROJECT_NAME"], env["PROXY_NETWORK"], "", env)
    try:
        proc = sh("scripts/up", "--local", env=env, timeout=900)
        s.url = proc.stdout.strip().splitlines()[-1].rstrip("/")
        assert s.url.startswith("http://127.0.0.1:"), proc.stdout + proc.stderr
        yield s
    finally:
        s.compose("down", "-v", "--remove-orphans", "--timeout", "5", check=False)
        sh("docker", "network", "rm", s.network, check=False)
