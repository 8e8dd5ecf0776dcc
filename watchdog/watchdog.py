"""Start again the host's containers that were killed (`docker kill`) rather than stopped, and
restart the ones of its own stack whose healthcheck reports them unhealthy.

Docker's restart policy brings back a container whose process crashed, but treats `docker kill`
like `docker stop`: a manual stop, never restarted; and it never acts on a failing healthcheck
(a hung app stays hung). This watcher closes both gaps for containers that carry the label
`usbills.restart-on-kill=true`: one that dies with no `stop` request (which `docker stop`,
`docker compose stop/down` send) is started again after a short grace period, whichever Compose
project it belongs to (the proxy, every site, the other watchdog: the proxy stack and the first
site each run one, so a killed watchdog is started again by the other); one of its own project
that turns unhealthy is restarted (only its own: two watchdogs never restart one container).

Stdlib only (HTTP over the Docker socket), so it runs from the app or proxy image with no
extra dependencies; it needs the socket mounted and no network at all.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import sys
import threading
import time
import urllib.parse

SOCKET = os.environ.get("DOCKER_SOCKET", "/var/run/docker.sock")
LABEL = "usbills.restart-on-kill=true"
GRACE_S = float(os.environ.get("WATCHDOG_GRACE_S", "1"))  # `stop` follows `die` at once


def log(msg: str) -> None:
    print(f"watchdog: {msg}", flush=True)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None = 10):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def api(method: str, path: str, timeout: float = 30) -> tuple[int, dict | None]:
    conn = UnixHTTPConnection(SOCKET, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, (json.loads(body) if body.strip() else None)
    finally:
        conn.close()


def own_project() -> str:
    status, me = api("GET", f"/containers/{socket.gethostname()}/json")
    if status != 200 or not me:
        raise SystemExit("watchdog: cannot inspect my own container (Docker socket mounted?)")
    project = (me["Config"].get("Labels") or {}).get("com.docker.compose.project")
    if not project:
        raise SystemExit("watchdog: not started by Docker Compose (no project label)")
    return project


def read_events(project: str, out: queue.Queue) -> None:
    """Blocking reader of the Docker event stream (one JSON object per line)."""
    filters = {"type": ["container"], "label": [LABEL]}
    path = "/events?filters=" + urllib.parse.quote(json.dumps(filters))
    while True:
        try:
            conn = UnixHTTPConnection(SOCKET, timeout=None)
            conn.request("GET", path)
            resp = conn.getresponse()
            for line in resp:
                if line.strip():
                    out.put(json.loads(line))
        except (OSError, http.client.HTTPException, ValueError) as e:
            log(f"event stream lost ({e}); reconnecting")
        time.sleep(1)


def main() -> None:
    project = own_project()
    events: queue.Queue = queue.Queue()
    threading.Thread(target=read_events, args=(project, events), daemon=True).start()
    log(f"watching the host's containers labelled {LABEL} (unhealthy ones: project {project!r})")
    due: dict[str, float] = {}  # container id -> when to check it
    while True:
        try:
            ev = events.get(timeout=0.5)
            cid, action = ev.get("id", ""), ev.get("Action") or ev.get("status", "")
            attrs = ev.get("Actor", {}).get("Attributes") or {}
            if action == "die":
                due[cid] = time.monotonic() + GRACE_S
            elif action in ("stop", "destroy", "start"):
                due.pop(cid, None)
            elif action == "health_status: unhealthy" and attrs.get(
                    "com.docker.compose.project") == project:
                name = attrs.get("name", cid[:12])
                # Events can be old (a paused or busy watcher): act only on a current state.
                status, info = api("GET", f"/containers/{cid}/json")
                health = ((info or {}).get("State") or {}).get("Health") or {}
                if status == 200 and health.get("Status") == "unhealthy":
                    status, _ = api("POST", f"/containers/{cid}/restart?t=10", timeout=60)
                    log(f"{name} is unhealthy: restarted (HTTP {status})")
        except queue.Empty:
            pass
        except (OSError, http.client.HTTPException) as e:
            log(f"Docker API call failed: {e}")
        for cid, at in list(due.items()):
            if time.monotonic() < at:
                continue
            del due[cid]
            try:
                status, info = api("GET", f"/containers/{cid}/json")
                if status != 200 or not info or info["State"]["Status"] != "exited":
                    continue  # removed, or already restarted by its restart policy
                name = info["Name"].lstrip("/")
                status, _ = api("POST", f"/containers/{cid}/start")
                if status == 304:
                    continue  # another watchdog was first
                log(f"{name} was killed without a stop request: started again (HTTP {status})")
            except (OSError, http.client.HTTPException) as e:
                log(f"Docker API call failed: {e}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
