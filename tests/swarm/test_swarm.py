"""The stack on a real single-node Docker Swarm: HTTPS through the proxy to two app replicas,
a certificate from Pebble, a rolling update and a killed task under load (issue 30)."""

from __future__ import annotations

import time

import pytest
import requests

from tests.swarm.conftest import DOMAIN, sh, wait_for
from tests.swarm.site import predictions_in, under_load

pytestmark = [pytest.mark.docker, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]


def predictions_logged(container: str) -> int:
    return predictions_in(sh("docker", "logs", container))


def test_https_through_the_proxy_reaches_both_app_replicas(swarm):
    apps = swarm.tasks("app")
    assert len(apps) == 2 and swarm.replicas("app") == "2/2"
    before = {c: predictions_logged(c) for c in apps}
    session = requests.Session()
    for _ in range(30):
        r = swarm.predict(session)
        assert r.status_code == 200 and r.json()["model"]["name"] == "usbills"

    def all_logged():  # gunicorn logs a request after answering it: the lines can trail
        served = {c: predictions_logged(c) - before[c] for c in apps}
        assert sum(served.values()) >= 30, served
        return served

    served = wait_for("the 30 predictions in the replicas' logs", all_logged, timeout=10)
    assert sum(served.values()) == 30 and all(n > 0 for n in served.values()), served
    assert requests.get(swarm.url, verify=False, timeout=10).status_code == 200
    plain = requests.get(f"http://localhost:{swarm.env['HTTP_PORT']}/", allow_redirects=False,
                         timeout=10)
    assert plain.status_code == 308 and plain.headers["Location"].startswith("https://")


FETCH_ROOT = ("import ssl, urllib.request; print(urllib.request.urlopen("
              "'https://pebble:15000/roots/0', timeout=5, context=ssl.create_default_context("
              "cafile='/pebble/ca.pem')).read().decode())")


def test_the_companion_gets_a_certificate_from_pebble(swarm, tmp_path):
    import urllib3

    root = tmp_path / "pebble-root.pem"
    root.write_text(wait_for("Pebble's root certificate", lambda: sh(
        "docker", "exec", swarm.proxy_task("companion"), "python3", "-c", FETCH_ROOT,
        check=False).stdout.strip(), timeout=60))

    def pool():  # a new connection each time: the TLS handshake is what is checked
        return urllib3.HTTPSConnectionPool(
            "127.0.0.1", int(swarm.env["HTTPS_PORT"]), server_hostname=DOMAIN,
            assert_hostname=DOMAIN, cert_reqs="CERT_REQUIRED", ca_certs=str(root), retries=False,
            timeout=10)

    def verified():
        # Several in a row: just after a reload an old nginx worker (fallback certificate) can
        # still accept a connection or two.
        for _ in range(3):
            if pool().request("GET", "/", headers={"Host": DOMAIN}).status != 200:
                return False
            time.sleep(0.3)
        return True

    wait_for(f"a Pebble certificate for {DOMAIN}", verified, timeout=120, interval=1)
    r = pool().request("POST", "/api/v1/predict", headers={"Host": DOMAIN},
                     fields={"image": ("f.jpg", swarm.body, "image/jpeg")})
    assert r.status == 200 and r.json()["model"]["name"] == "usbills"
    # localhost still gets the proxy's self-signed fallback, not a failed handshake
    assert requests.get(swarm.url, verify=False, timeout=10).status_code == 200


def test_services_keep_the_compose_hardening(swarm):
    for service in ("app", "nginx"):
        spec = swarm.spec(service)["Spec"]["TaskTemplate"]["ContainerSpec"]
        assert spec["ReadOnly"] is True and spec["CapabilityDrop"] == ["ALL"]
        assert {m["Type"] for m in spec["Mounts"]} == {"tmpfs"}
        assert spec["Healthcheck"]["Test"][0] == "CMD"
    for c in swarm.tasks("app") + swarm.tasks("nginx"):
        assert sh("docker", "exec", c, "id", "-u").stdout.strip() != "0"
    update = swarm.spec("app")["Spec"]["UpdateConfig"]
    assert update["Order"] == "start-first"
    # A stopping task serves on while the site nginx's DNS cache (2 s) may still send to it.
    env = swarm.spec("app")["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "SHUTDOWN_DELAY_S=3" in env
    services = sh("docker", "stack", "services", swarm.site, "--format", "{{.Name}}").stdout
    assert sorted(services.split()) == [f"{swarm.site}_app", f"{swarm.site}_nginx"]  # no watchdog


def test_rolling_update_of_the_app_under_load_fails_no_request(swarm):
    old = set(swarm.tasks("app"))
    with under_load(swarm) as outcome:
        sh("docker", "service", "update", "--force", "--detach=false", f"{swarm.site}_app",
           timeout=300)
    assert outcome["failures"] == [] and outcome["answered"] >= 20
    assert not old & set(swarm.tasks("app")) and swarm.replicas("app") == "2/2"


def test_killed_task_is_rescheduled(swarm):
    victim = swarm.tasks("app")[0]
    with under_load(swarm) as outcome:
        sh("docker", "kill", victim)
        wait_for("a new app task", lambda: victim not in swarm.tasks("app")
                 and len(swarm.tasks("app")) == 2 and swarm.replicas("app") == "2/2",
                 timeout=90, interval=1)
    # The site nginx retries the other replica when one refuses: few or no failures.
    assert len(outcome["failures"]) <= 2, outcome
    assert outcome["answered"] >= 10
