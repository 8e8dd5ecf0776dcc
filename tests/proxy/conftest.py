"""Fixtures for the proxy tests: the real proxy stack, a Pebble CA and tiny test sites.

Everything gets a random suffix (compose project, network, containers, volumes) and is removed
in teardown; no host ports are published - the tests talk to container IPs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests import pebble, procs
from tests.procs import sh

ROOT = Path(__file__).resolve().parents[2]
PROXY = ROOT / "proxy"
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(PROXY))  # the proxygen package is not installed on the host

BACKEND_IMAGE = "usbills-test/backend:local"

# Certificates and reloads take longer than container starts: a longer default poll.
wait_for = functools.partial(procs.wait_for, timeout=90, interval=0.5)




@pytest.fixture(scope="session")
def docker_client():
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        pytest.skip(f"no Docker engine: {exc}")
    return client


def build_images(ctx: Path) -> None:
    """Test backend, Pebble (from the host's Debian binary) and the two proxy images."""
    sh("docker", "build", "-q", "-t", BACKEND_IMAGE, str(HERE / "backend"))
    pebble.build_image(ctx)
    sh("docker", "compose", "-f", str(PROXY / "docker-compose.yml"), "build", "-q",
       timeout=900)


@pytest.fixture(scope="session")
def test_images(docker_client, tmp_path_factory):
    if not pebble.binary():
        pytest.skip("Debian's pebble package is not installed")
    build_images(tmp_path_factory.mktemp("pebble-ctx"))


class Stack:
    """One proxy + companion + Pebble on a private network, driven through docker compose."""

    def __init__(self, client, tmp: Path, suffix: str, env_extra: dict[str, str]):
        self.client = client
        self.suffix = suffix
        self.project = f"usbills-proxytest-{suffix}"
        self.network = f"usbills-proxytest-{suffix}"
        self.pebble_dir = tmp / "pebble"
        self.pebble_dir.mkdir()
        self.vhost_dir = tmp / "vhost.d"
        self.vhost_dir.mkdir()
        self.root_pem = tmp / "pebble-root.pem"
        self.sites: list = []
        self.env = dict(os.environ, PROXY_NETWORK=self.network, HTTP_PORT="127.0.0.1:0",
                        HTTPS_PORT="127.0.0.1:0", VHOST_DIR=str(self.vhost_dir),
                        PEBBLE_DIR=str(self.pebble_dir), ACME_CA_URI="https://pebble:14000/dir",
                        **env_extra)

    def compose(self, *args, check=True, timeout=300):
        return sh("docker", "compose", "-p", self.project, "-f", str(PROXY / "docker-compose.yml"),
                  "-f", str(HERE / "compose.pebble.yml"), *args, env=self.env, check=check,
                  timeout=timeout)

    def up(self):
        pebble.make_tls(self.pebble_dir)
        self.client.networks.create(self.network, driver="bridge",
                                    labels={"usbills.test": self.project})
        self.compose("up", "-d", "--no-build")
        self.proxy = self.service("proxy")
        self.companion = self.service("companion")
        self.pebble = self.service("pebble")
        self.proxy_ip = self.ip(self.proxy)
        wait_for("proxy on :80", lambda: self.http("nothing.test", "/").status == 503)
        self.root_pem.write_text(wait_for("pebble root", self._pebble_root))

    def service(self, name):
        return self.client.containers.list(filters={
            "label": [f"com.docker.compose.project={self.project}",
                      f"com.docker.compose.service={name}"]})[0]

    def ip(self, container):
        container.reload()
        return container.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"]

    def _pebble_root(self):
        import urllib3
        pool = urllib3.HTTPSConnectionPool(self.ip(self.pebble), 15000, server_hostname="pebble",
                                           assert_hostname="pebble", cert_reqs="CERT_REQUIRED",
                                           ca_certs=str(self.pebble_dir / "ca.pem"), retries=False)
        resp = pool.request("GET", "/roots/0")
        return resp.data.decode() if resp.status == 200 else None

    def start_site(self, name, env, networks=None):
        networks = [self.network] if networks is None else networks
        container = self.client.containers.run(
            BACKEND_IMAGE, detach=True, name=f"{self.project}-{name}",
            environment={"SITE_NAME": name, **env}, network=networks[0] if networks else "none",
            labels={"usbills.test": self.project})
        self.sites.append(container)
        return container

    def remove_site(self, container):
        container.remove(force=True)
        self.sites.remove(container)

    # HTTP helpers: always to the proxy's container IP, with the right Host header / SNI.
    def http(self, host, path, method="GET", body=None, headers=None):
        import urllib3
        pool = urllib3.HTTPConnectionPool(self.proxy_ip, 80, retries=False, timeout=10)
        return pool.request(method, path, body=body, headers={"Host": host, **(headers or {})},
                            redirect=False)

    def https_pool(self, host, verify=True, **kw):
        import urllib3
        if verify:
            return urllib3.HTTPSConnectionPool(
                self.proxy_ip, 443, server_hostname=host, assert_hostname=host,
                cert_reqs="CERT_REQUIRED", ca_certs=str(self.root_pem), timeout=10, **kw)
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # fallback cert
        return urllib3.HTTPSConnectionPool(self.proxy_ip, 443, server_hostname=host,
                                           cert_reqs="CERT_NONE", assert_hostname=False,
                                           timeout=10, **kw)

    def https(self, host, path="/", method="GET", verify=True, **kw):
        return self.https_pool(host, verify, retries=False).request(
            method, path, headers={"Host": host, **kw.pop("headers", {})}, redirect=False, **kw)

    def wait_cert(self, host, timeout=90):
        def ok():
            # Several in a row: just after a reload an old nginx worker (old config, fallback
            # certificate) can still accept a connection or two.
            for _ in range(4):
                if self.https(host, "/").status != 200:
                    return False
                time.sleep(0.3)
            return True
        return wait_for(f"Pebble certificate for {host}", ok, timeout=timeout)

    def logs(self, container):
        return container.logs().decode(errors="replace")

    def down(self):
        for c in list(self.sites):
            c.remove(force=True)
        self.compose("down", "-v", "--remove-orphans", "-t", "5", check=False)
        with contextlib.suppress(Exception):
            self.client.networks.get(self.network).remove()


@pytest.fixture(scope="module")
def stack(docker_client, test_images, tmp_path_factory):
    s = Stack(docker_client, tmp_path_factory.mktemp("proxy"), uuid.uuid4().hex[:8],
              # the limit's test floods one address: the old default keeps it quick to trip
              {"ACME_BACKOFF_SECONDS": "5", "RATE_LIMIT": "50", "RATE_BURST": "100"})
    try:
        s.up()
        yield s
    except Exception:
        for svc in ("proxy", "companion"):
            print(s.compose("logs", "--no-color", svc, check=False).stdout[-4000:])
        raise
    finally:
        s.down()
