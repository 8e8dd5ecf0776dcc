"""The proxy process: runs nginx and keeps its config in step with Docker.

Lists containers at start, then follows Docker events; also polls the certificate volume and
vhost.d so a new or renewed certificate (or an operator's override) is picked up without a
restart. Writes the certificates it wants to a state file that the companion reads, so only
this container needs the (read-only) Docker socket.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker

from . import swarm
from .certs import ensure_fallback, fingerprint, scan_live
from .model import Container, Plan, build_plan, parse_env
from .nginxctl import NginxConfig
from .render import Paths, render
from .settings import ProxySettings, SettingsError

log = logging.getLogger("proxygen")

CONF = Path(os.environ.get("PROXY_CONF", "/var/lib/proxy/conf/proxy.conf"))
STATE = Path(os.environ.get("PROXY_STATE", "/var/lib/proxy/state/acme.json"))
FALLBACK_DIR = Path(os.environ.get("PROXY_FALLBACK_DIR", "/var/lib/proxy/fallback"))
LETSENCRYPT = Path(os.environ.get("LETSENCRYPT_DIR", "/etc/letsencrypt"))
VHOST_DIR = Path(os.environ.get("VHOST_DIR", "/etc/nginx/vhost.d"))
# Container events that can change routing (exec_* from healthchecks are noise).
_ACTIONS = {"start", "die", "stop", "kill", "destroy", "pause", "unpause", "rename", "update",
            "connect", "disconnect"}


def to_container(attrs: dict) -> Container:
    config = attrs.get("Config") or {}
    env = parse_env(config.get("Env"))
    nets = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    networks = {name: (net or {}).get("IPAddress") or "" for name, net in nets.items()}
    exposed = tuple(sorted(int(p.split("/")[0]) for p in (config.get("ExposedPorts") or {})
                           if p.endswith("/tcp")))
    return Container(id=attrs.get("Id", ""), name=attrs.get("Name", "").lstrip("/"), env=env,
                     networks=networks, exposed_ports=exposed)


def own_container_id() -> str:
    """This container's id: from the mount table (reliable on cgroup v1 and v2), else hostname."""
    if os.environ.get("PROXY_CONTAINER"):
        return os.environ["PROXY_CONTAINER"]
    try:
        match = re.search(r"/containers/([0-9a-f]{64})/", Path("/proc/self/mountinfo").read_text())
        if match:
            return match.group(1)
    except OSError:
        pass
    return socket.gethostname()


class Generator:
    def __init__(self, client: docker.DockerClient, settings: ProxySettings, paths: Paths,
                 nginx: NginxConfig) -> None:
        self.client = client
        self.settings = settings
        self.paths = paths
        self.nginx = nginx
        self.self_id = own_container_id()
        self.problems: list[str] = []
        self.routes: dict[str, list[str]] = {}
        self.state_text = ""
        self.containers: list[Container] = []
        self.proxy_networks: set[str] = set()
        self.swarm = False

    def load_docker(self) -> None:
        try:
            me = self.client.containers.get(self.self_id)
            self.proxy_networks = set(me.attrs["NetworkSettings"]["Networks"])
        except docker.errors.NotFound:
            log.warning("cannot find the proxy's own container %s; set PROXY_CONTAINER",
                        self.self_id[:12])
        local = [c for c in self.client.containers.list() if not c.id.startswith(self.self_id)]
        self.swarm = swarm.is_manager(self.client)
        if self.swarm:
            # Swarm's own containers come from its service listing (every node's, running
            # and healthy only); the others on this node are routed as in compose mode.
            local = [c for c in local if swarm.TASK_LABEL not in (c.labels or {})]
        self.containers = [to_container(c.attrs) for c in local]
        if self.swarm:
            self.containers += swarm.services(self.client)

    def plan(self) -> Plan:
        plan = build_plan(self.containers, self.proxy_networks)
        if plan.problems != self.problems:
            for line in plan.problems:
                log.warning("%s", line)
            self.problems = plan.problems
        return plan

    def includes(self) -> set[str]:
        if not VHOST_DIR.is_dir():
            return set()
        return {f.name for f in VHOST_DIR.iterdir() if f.is_file() and not f.name.startswith(".")}

    def apply(self) -> bool:
        """Render and install; True when nginx needs a reload."""
        plan = self.plan()
        certs = scan_live(LETSENCRYPT / "live")
        text = render(plan, certs, self.settings, self.paths, self.includes())
        changed = self.nginx.install(text)
        if self.nginx.current is None:
            # First start and the full config is refused (e.g. a broken vhost.d file): serve
            # the sites without per-host includes rather than nothing.
            changed = self.nginx.install(render(plan, certs, self.settings, self.paths, set()))
        if changed:
            routes = {h: sorted({s for loc in v.locations.values() for s in loc.servers})
                      for h, v in plan.vhosts.items()}
            if routes != self.routes:
                log.info("routing %s", json.dumps(routes, sort_keys=True) if routes else "nothing")
                self.routes = routes
        self.write_state(plan)
        return changed

    def write_state(self, plan: Plan) -> None:
        text = json.dumps({"certs": [{"name": c.name, "domains": list(c.domains),
                                      "email": c.email} for c in plan.certs]},
                          indent=1, sort_keys=True)
        if text == self.state_text:
            return
        STATE.parent.mkdir(parents=True, exist_ok=True)
        tmp = STATE.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, STATE)
        self.state_text = text


def watch_events(client: docker.DockerClient, dirty: threading.Event) -> None:
    while True:
        try:
            for event in client.events(decode=True,
                                       filters={"type": ["container", "network", "service"]}):
                if (event.get("Action") or "").split(":")[0] in _ACTIONS:
                    dirty.set()
        except Exception as exc:  # noqa: BLE001 - the stream must survive daemon restarts
            log.warning("docker event stream ended (%s); reconnecting", exc)
        time.sleep(2)
        dirty.set()


def main() -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "info").upper(),
                        format="proxygen: %(levelname)s %(message)s", stream=sys.stderr)
    try:
        settings = ProxySettings.from_env(os.environ)
    except SettingsError as exc:
        print(f"proxygen: bad setting: {exc}", file=sys.stderr)
        return 2
    cert, key = ensure_fallback(FALLBACK_DIR)
    paths = Paths(fallback_cert=cert, fallback_key=key, vhost_dir=str(VHOST_DIR))
    client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST",
                                                         "unix:///var/run/docker.sock"))
    gen = Generator(client, settings, paths, NginxConfig(CONF))
    try:
        gen.load_docker()
    except docker.errors.DockerException as exc:
        log.error("cannot read containers from Docker (%s); serving no sites until it works", exc)
    gen.apply()
    nginx = subprocess.Popen(["nginx", "-e", "stderr", "-g", "daemon off;"])

    def stop(signum, _frame):
        nginx.send_signal(signal.SIGQUIT)  # graceful: finish in-flight requests
        nginx.wait(timeout=30)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    dirty = threading.Event()
    threading.Thread(target=watch_events, args=(client, dirty), daemon=True).start()
    watched = [LETSENCRYPT / "live", LETSENCRYPT / ".proxy-reload", VHOST_DIR]
    seen = fingerprint(watched)
    while nginx.poll() is None:
        woke = dirty.wait(min(settings.poll_seconds, swarm.POLL_SECONDS) if gen.swarm
                          else settings.poll_seconds)
        woke = woke or gen.swarm  # tasks on other nodes come and go without a local event
        current = fingerprint(watched)
        if not woke and current == seen:
            continue
        files_changed, seen = current != seen, current
        if woke:
            time.sleep(0.2)  # let a burst of events (compose up) settle into one reload
            dirty.clear()
            try:
                gen.load_docker()
            except docker.errors.DockerException as exc:
                log.error("cannot read containers from Docker (%s); keeping current routes", exc)
                continue
        changed = gen.apply()
        if not changed and files_changed:
            # Same config text but renewed certificate files: nginx reads them on reload.
            ok, out = gen.nginx.test()
            changed = ok
            if not ok:
                log.error("certificate change rejected by nginx -t, not reloading: %s", out)
        if changed:
            nginx.send_signal(signal.SIGHUP)
            log.info("nginx reloaded")
    log.error("nginx exited with status %s", nginx.returncode)
    return 1


if __name__ == "__main__":
    sys.exit(main())
