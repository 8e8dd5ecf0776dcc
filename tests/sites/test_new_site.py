"""scripts/new-site and scripts/remove-site: argument checks (no Docker), then two real model
sites (US bills + digits) behind the real proxy with certificates from a Pebble CA (the proxy
tests' Stack, tests/proxy/conftest.py). Sites get random names; everything is removed after."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.proxy.conftest import Stack, build_images, sh, wait_for

ROOT = Path(__file__).resolve().parents[2]
NEW, REMOVE = str(ROOT / "scripts" / "new-site"), str(ROOT / "scripts" / "remove-site")
DIGIT_ZERO = [[0, 0, 5, 13, 9, 1, 0, 0], [0, 0, 13, 15, 10, 15, 5, 0], [0, 3, 15, 2, 0, 11, 8, 0],
              [0, 4, 12, 0, 0, 8, 8, 0], [0, 5, 8, 0, 0, 9, 8, 0], [0, 4, 11, 0, 1, 12, 7, 0],
              [0, 2, 14, 5, 10, 12, 0, 0], [0, 0, 6, 13, 10, 0, 0, 0]]  # load_digits()[0]


def run(*args, env=None):
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)


# --- argument validation: fast, no Docker (checked before anything is created) ---------------

@pytest.fixture
def sites(tmp_path):
    return tmp_path / "sites"


@pytest.mark.parametrize(("args", "needle"), [
    ([], "usage"),
    (["Bad_Name", "--domain", "d.example.com", "--bundle", "model/bundles/digits"], "NAME"),
    (["-x", "--domain", "d.example.com"], "unknown option"),
    (["a", "b", "--domain", "d.example.com"], "one site NAME"),
    (["d", "--bundle", "model/bundles/digits"], "--domain is required"),
    (["d", "--domain", "not a domain", "--bundle", "model/bundles/digits"], "not a host name"),
    (["d", "--domain", "-x.example.com", "--bundle", "model/bundles/digits"], "not a host name"),
    (["d", "--domain", "d.example.com"], "--bundle is required"),
    (["d", "--domain", "d.example.com", "--bundle", "/nonexistent"], "not a directory"),
    (["d", "--domain", "d.example.com", "--bundle", "docs"], "no card.json"),
    (["d", "--domain", "d.example.com", "--bundle", "model/bundles/digits", "--email", "x"],
     "not an e-mail"),
    (["d", "--domain"], "needs a value"),
])
def test_new_site_rejects_bad_arguments(sites, args, needle):
    r = run(NEW, *args, env=dict(os.environ, SITES_DIR=str(sites)))
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("new-site: error:") and needle in lines[0]
    assert not sites.exists()


def test_new_site_writes_files_and_refuses_a_second_time(sites):
    env = dict(os.environ, SITES_DIR=str(sites), PROXY_NETWORK="net-x")
    args = (NEW, "dg", "--domain", "D.Example.com", "--bundle", "model/bundles/digits",
            "--email", "ops@example.com", "--no-start")
    assert run(*args, env=env).returncode == 0
    envfile = (sites / "dg" / ".env").read_text()
    for line in ("VIRTUAL_HOST=d.example.com", "LETSENCRYPT_HOST=d.example.com",
                 "VIRTUAL_PORT=8080", "LETSENCRYPT_EMAIL=ops@example.com",
                 "PROXY_NETWORK=net-x", f"MODEL_BUNDLE_DIR={ROOT}/model/bundles/digits"):
        assert line in envfile.splitlines()
    assert (sites / "dg" / "docker-compose.yml").is_file()
    r = run(*args, env=env)
    assert r.returncode != 0 and "already exists" in r.stderr


def test_remove_site_rejects_unknown(sites):
    r = run(REMOVE, "nope", env=dict(os.environ, SITES_DIR=str(sites)))
    assert r.returncode != 0 and "no site 'nope'" in r.stderr
    r = run(REMOVE, "../etc", env=dict(os.environ, SITES_DIR=str(sites)))
    assert r.returncode != 0 and "not a site name" in r.stderr


# --- two real sites behind the proxy --------------------------------------------------------

def _bundle_copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    dest.chmod(0o755)
    for f in dest.iterdir():
        f.chmod(0o644)
    return dest


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """Proxy + companion + Pebble (a.usbills.test and b.usbills.test are validated), fresh
    app/site-nginx images from this tree, and a SITES_DIR for scripts/new-site."""
    docker = pytest.importorskip("docker")
    try:
        docker_client = docker.from_env()
        docker_client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine here
        pytest.skip(f"no Docker engine: {exc}")
    tmp = tmp_path_factory.mktemp("sites")
    if not (shutil.which("pebble") or Path("/usr/bin/pebble").exists()):
        pytest.skip("Debian's pebble package is not installed")
    build_images(tmp_path_factory.mktemp("pebble-ctx"))
    sh("docker", "compose", "-f", str(ROOT / "docker-compose.yml"),
       "-f", str(ROOT / "compose.ca.yml"), "build", "--quiet", "app", "nginx",
       env=dict(os.environ, PROXY_NETWORK="unused"), timeout=900)
    s = Stack(docker_client, tmp, uuid.uuid4().hex[:8],
              {"ACME_BACKOFF_SECONDS": "5", "RATE_LIMIT": "1000", "RATE_BURST": "1000"})
    s.sites_env = dict(os.environ, SITES_DIR=str(tmp / "sites"), PROXY_NETWORK=s.network)
    s.names = []
    s.bills = _bundle_copy(ROOT / "model" / "bundles" / "usbills", tmp / "b-usbills")
    s.digits = _bundle_copy(ROOT / "model" / "bundles" / "digits", tmp / "b-digits")
    try:
        s.up()
        yield s
    finally:
        for name in s.names:
            run(REMOVE, name, env=s.sites_env)
        s.down()


def new_site(host, name, domain, bundle):
    r = run(NEW, name, "--domain", domain, "--bundle", str(bundle), "--email", "ops@example.com",
            env=host.sites_env)
    assert r.returncode == 0, r.stderr[-3000:]
    host.names.append(name)


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 140, 90)).save(buf, "JPEG")
    return buf.getvalue()


def _containers(host, name):
    return host.client.containers.list(all=True, filters={
        "label": f"com.docker.compose.project=usbills-site-{name}"})


class Load:
    """GET /api/v1/model on one host over verified HTTPS, ~20/s, in a thread, on keep-alive
    connections as a browser would; collects statuses (or the exception) of every request."""

    def __init__(self, host, name):
        self.host, self.name, self.results = host, name, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _get(self, pool):
        return pool.request("GET", "/api/v1/model", headers={"Host": self.name})

    def _run(self):
        import http.client

        import urllib3

        pool = self.host.https_pool(self.name, retries=False)
        while not self.stop.is_set():
            try:
                try:
                    r = self._get(pool)
                except urllib3.exceptions.ProtocolError as e:
                    # A proxy reload closes idle keep-alive connections; a request sent on
                    # one at that instant gets no response byte at all. Browsers resend it
                    # on a new connection (RFC 9112 9.3.1), so visitors never see it. Any
                    # other failure, or a second one, still counts.
                    if not isinstance(e.args[-1], http.client.RemoteDisconnected):
                        raise
                    r = self._get(pool)
                self.results.append(r.status)
            except Exception as e:  # noqa: BLE001 - a failed request is what we count
                self.results.append(repr(e))
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self.results

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


@pytest.mark.docker
@pytest.mark.acme
def test_two_sites_own_certificates_and_models(host):
    sfx = host.suffix[:6]
    bills, digits = f"bills-{sfx}", f"digits-{sfx}"
    new_site(host, bills, "a.usbills.test", host.bills)
    host.wait_cert("a.usbills.test")

    # Load on the first site while the second is added: no request may fail.
    with Load(host, "a.usbills.test") as results:
        new_site(host, digits, "b.usbills.test", host.digits)
        host.wait_cert("b.usbills.test")
    failed = [r for r in results if r != 200]
    assert len(results) > 20 and not failed, failed[:5]

    # Each site answers with its own model, over its own verified certificate.
    r = host.https("a.usbills.test", "/api/v1/predict", method="POST", body=_jpeg(),
                   headers={"Content-Type": "image/jpeg"})
    assert r.status == 200 and r.json()["model"]["name"] == "usbills"
    r = host.https("b.usbills.test", "/api/v1/predict", method="POST",
                   json={"pixels": DIGIT_ZERO}, headers={"Content-Type": "application/json"})
    assert r.status == 200, r.data[:300]
    assert r.json()["model"]["name"] == "digits" and r.json()["value"] == 0
    page = host.https("b.usbills.test", "/").data.decode()
    assert "Handwritten digit reader" in page

    # Killing one site's app leaves the other answering, and the proxy stack's watchdog starts
    # it again (a site made by new-site has no watchdog of its own).
    app = next(c for c in _containers(host, digits) if c.labels.get(
        "com.docker.compose.service") == "app")
    app.kill()
    for _ in range(10):
        assert host.https("a.usbills.test", "/api/v1/model").status == 200
    assert wait_for("digits site answering again after docker kill", lambda: host.https(
        "b.usbills.test", "/api/v1/model").status == 200, timeout=15)

    # remove-site: no containers, volumes or networks left; the proxy drops the host.
    r = run(REMOVE, digits, env=host.sites_env)
    assert r.returncode == 0, r.stderr
    host.names.remove(digits)
    assert not _containers(host, digits)
    label = f"com.docker.compose.project=usbills-site-{digits}"
    assert not host.client.volumes.list(filters={"label": label})
    assert not host.client.networks.list(filters={"label": label})
    assert not (Path(host.sites_env["SITES_DIR"]) / digits).exists()
    assert wait_for("vhost dropped", lambda: host.https(
        "b.usbills.test", "/", verify=False).status == 503, timeout=30)
    assert host.https("a.usbills.test", "/api/v1/model").status == 200

    # Blue/green bundle swap (docs/operator-guide.md): a second site on the same domain, then
    # the old one removed, under load: no failed request.
    bills2 = f"bills2-{sfx}"
    with Load(host, "a.usbills.test") as results:
        new_site(host, bills2, "a.usbills.test", host.bills)
        time.sleep(2)
        r = run(REMOVE, bills, env=host.sites_env)
        assert r.returncode == 0, r.stderr
        host.names.remove(bills)
        time.sleep(2)
    failed = [r for r in results if r != 200]
    assert len(results) > 20 and not failed, failed[:5]
    assert not _containers(host, bills)


def _unknown_text_key(bundle: Path) -> None:
    card = json.loads((bundle / "card.json").read_text())
    card["text"]["en"]["no_notes"] = "No digit found."
    (bundle / "card.json").write_text(json.dumps(card))


def _swapped_model(bundle: Path) -> None:
    (bundle / "model.tflite").write_bytes(b"not a model")


@pytest.mark.docker
@pytest.mark.parametrize(("spoil", "error"), [
    (_unknown_text_key, "card.json: text.en.no_notes is not a text key"),
    (_swapped_model, "model.tflite: sha256 "),
])
def test_new_site_checks_the_bundle_before_creating_anything(host, tmp_path, spoil, error):
    # The app image's loader reads the bundle first: its one line, with the operator's path,
    # and no site directory or container left to remove.
    bad = _bundle_copy(host.digits, tmp_path / "bad").resolve()
    spoil(bad)
    name = f"bad-{uuid.uuid4().hex[:6]}"
    r = run(NEW, name, "--domain", "c.usbills.test", "--bundle", str(bad), env=host.sites_env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"new-site: error: --bundle {bad}/{error}"), lines[0]
    assert not (Path(host.sites_env["SITES_DIR"]) / name).exists()
    assert not _containers(host, name)
