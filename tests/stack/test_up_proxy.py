"""`scripts/up` as the README's main command: with proxy/ present it starts the host proxy and
the site behind it; with no DOMAIN the site answers on https://localhost (self-signed).

Its own projects and network (random suffix); the proxy publishes ephemeral host ports.
"""

from __future__ import annotations

import uuid

import pytest
import requests
import urllib3
from PIL import Image

from tests.stack.conftest import ROOT, sh, wait_for
from tests.synth import jpeg

pytestmark = pytest.mark.docker


@pytest.fixture
def proxied_site(stack, tmp_path):
    """Depends on `stack` only so the images are built once per session."""
    if not (ROOT / "proxy/docker-compose.yml").exists():
        pytest.skip("no proxy stack in this checkout")
    suffix = uuid.uuid4().hex[:8]
    env = dict(stack.env, USBILLS_ENV_FILE=str(tmp_path / "env"),
               COMPOSE_PROJECT_NAME=f"usbills-upx-{suffix}",
               PROXY_NETWORK=f"usbills-upx-net-{suffix}",
               PROXY_PROJECT=f"usbills-upx-proxy-{suffix}", HTTP_PORT="0", HTTPS_PORT="0")
    env.pop("LOCAL_PORT", None)
    try:
        proc = sh("scripts/up", env=env, timeout=900)
        proxy = sh("docker", "compose", "-p", env["PROXY_PROJECT"], "-f",
                   "proxy/docker-compose.yml", "ps", "-q", "proxy", env=env).stdout.split()[0]
        port = sh("docker", "port", proxy, "443").stdout.split()[0].rsplit(":", 1)[1]
        yield proc, port
    finally:
        sh("docker", "compose", "-p", env["COMPOSE_PROJECT_NAME"], "-f", "docker-compose.yml",
           "down", "--timeout", "5", env=env, check=False)
        sh("docker", "compose", "-p", env["PROXY_PROJECT"], "-f", "proxy/docker-compose.yml",
           "down", "-v", "--timeout", "5", env=env, check=False)
        sh("docker", "network", "rm", env["PROXY_NETWORK"], check=False)


def test_up_behind_the_proxy_serves_https_localhost(proxied_site):
    proc, port = proxied_site
    assert proc.stdout.strip().startswith("https://localhost")
    assert "self-signed" in proc.stderr
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    photo = jpeg(Image.new("RGB", (320, 200), (0, 255, 255)))

    def answers():  # the proxy configures itself from Docker events: allow it a moment
        r = requests.post(f"https://localhost:{port}/api/v1/predict", data=photo,
                          headers={"Content-Type": "image/jpeg"}, timeout=15, verify=False)
        return r.status_code == 200 and r.json()["label"] == "USD-20"

    wait_for("a prediction through the proxy", answers, timeout=30)
    page = requests.get(f"https://localhost:{port}/", timeout=15, verify=False)
    assert page.status_code == 200 and "camera=(self)" in page.headers["Permissions-Policy"]
