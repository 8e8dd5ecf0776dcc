"""The proxy's compose file (and the test overlay) validate with Compose v2, and with
docker-compose 1.29 (Debian 12's) when it is installed."""

import json
import os
import shutil
import subprocess

import pytest

from .conftest import HERE, PROXY

pytestmark = pytest.mark.docker

FILES = ["-f", str(PROXY / "docker-compose.yml"), "-f", str(HERE / "compose.pebble.yml")]
ENV = dict(os.environ, PEBBLE_DIR="/tmp", PROXY_NETWORK="usbills-proxy-config-check")


def _config(cmd, *extra):
    proc = subprocess.run([*cmd, *FILES, "config", *extra], capture_output=True, text=True, env=ENV,
                          check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_compose_v2_config():
    if subprocess.run(["docker", "compose", "version"], capture_output=True,
                      check=False).returncode != 0:
        pytest.skip("Compose v2 is not installed")
    cfg = json.loads(_config(["docker", "compose"], "--format", "json"))
    proxy, companion = cfg["services"]["proxy"], cfg["services"]["companion"]
    assert proxy["image"] == "usbills/proxy:0.1.0"
    assert companion["image"] == "usbills/acme-companion:0.1.0"
    # The Docker socket: read-only, and only in the proxy.
    sockets = [v for v in proxy["volumes"] if v["source"] == "/var/run/docker.sock"]
    assert len(sockets) == 1 and sockets[0]["read_only"] is True
    assert all("docker.sock" not in v["source"] for v in companion["volumes"])
    assert proxy["read_only"] and companion["read_only"]
    assert cfg["networks"]["proxy"]["external"] is True
    assert all("healthcheck" in svc for svc in (proxy, companion))


def test_compose_v1_config():
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose 1.29 is not installed")
    _config(["docker-compose"])
