"""Turn containers' environment (the nginx-proxy contract) into a routing plan.

Contract: VIRTUAL_HOST (comma list), VIRTUAL_PORT, VIRTUAL_PATH, LETSENCRYPT_HOST / ACME_HOST,
LETSENCRYPT_EMAIL / ACME_EMAIL. Every bad value is reported as a problem line and only the
affected container (or host) is left out, so one wrong value never takes other sites down.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

# RFC 1123 host names, lower case, at most 253 characters; no wildcards or IP literals
# because certificates and server_name matching stay predictable that way.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_EMAIL_RE = re.compile(r"^[^@\s,;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


@dataclass(frozen=True)
class Container:
    """What the generator needs to know about one running container."""

    id: str
    name: str
    env: dict[str, str]
    # network name -> IPv4 address on that network
    networks: dict[str, str]
    exposed_ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class CertRequest:
    name: str
    domains: tuple[str, ...]
    email: str | None = None


@dataclass
class Location:
    path: str
    servers: list[str] = field(default_factory=list)

    @property
    def upstream(self) -> str:
        return upstream_name(self.path, self.servers)


@dataclass
class VHost:
    host: str
    locations: dict[str, Location] = field(default_factory=dict)


@dataclass
class Plan:
    vhosts: dict[str, VHost] = field(default_factory=dict)
    certs: list[CertRequest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_env(items: list[str] | None) -> dict[str, str]:
    """Docker's ``["KEY=value", ...]`` (a container's or a service's Env) as a dict."""
    env = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    return env


def upstream_name(path: str, servers: list[str]) -> str:
    digest = hashlib.sha256((path + "|" + ",".join(sorted(servers))).encode()).hexdigest()
    return f"up_{digest[:16]}"


def valid_host(host: str) -> bool:
    return bool(_HOST_RE.match(host))


def split_hosts(value: str) -> list[str]:
    """Comma (or space) separated list, lower-cased, order kept, duplicates dropped."""
    seen: list[str] = []
    for item in re.split(r"[,\s]+", value or ""):
        item = item.strip().lower().rstrip(".")
        if item and item not in seen:
            seen.append(item)
    return seen


def parse_port(value: str | None, exposed: tuple[int, ...]) -> int:
    """VIRTUAL_PORT, else the only exposed port, else 80 (nginx-proxy's rule)."""
    if value is None or value.strip() == "":
        return exposed[0] if len(exposed) == 1 else 80
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"VIRTUAL_PORT={value!r} is not a port number 1-65535")
    return int(text)


def parse_path(value: str | None) -> str:
    if value is None or value.strip() == "":
        return "/"
    text = value.strip()
    if not _PATH_RE.match(text) or "//" in text or "/../" in text + "/":
        raise ValueError(f"VIRTUAL_PATH={value!r} must be a plain absolute path like /api/")
    return text


def _first(env: dict[str, str], *names: str) -> str | None:
    for name in names:
        if env.get(name, "").strip():
            return env[name]
    return None


def build_plan(containers: list[Container], proxy_networks: set[str]) -> Plan:
    """Routing and certificate plan for the containers the proxy can reach."""
    plan = Plan()
    seen_certs: set[tuple[str, ...]] = set()
    for c in sorted(containers, key=lambda c: c.name):
        raw_hosts = _first(c.env, "VIRTUAL_HOST")
        if raw_hosts is None:
            continue
        label = f"container {c.name}"
        try:
            port = parse_port(c.env.get("VIRTUAL_PORT"), c.exposed_ports)
            path = parse_path(c.env.get("VIRTUAL_PATH"))
        except ValueError as exc:
            plan.problems.append(f"{label}: {exc}; not routed")
            continue
        hosts = []
        for host in split_hosts(raw_hosts):
            if valid_host(host):
                hosts.append(host)
            else:
                plan.problems.append(f"{label}: VIRTUAL_HOST entry {host!r} is not a valid host "
                                     "name; skipped")
        if not hosts:
            continue
        shared = sorted(n for n in c.networks if n in proxy_networks and c.networks[n])
        if not shared:
            plan.problems.append(
                f"{label} (VIRTUAL_HOST={','.join(hosts)}) shares no network with the proxy "
                f"(it is on: {', '.join(sorted(c.networks)) or 'none'}; proxy is on: "
                f"{', '.join(sorted(proxy_networks))}); not routed")
            continue
        server = f"{c.networks[shared[0]]}:{port}"
        for host in hosts:
            vhost = plan.vhosts.setdefault(host, VHost(host))
            loc = vhost.locations.setdefault(path, Location(path))
            if server not in loc.servers:
                loc.servers.append(server)
                loc.servers.sort()
        _add_cert(plan, c, label, hosts, seen_certs)
    return plan


def _add_cert(plan: Plan, c: Container, label: str, hosts: list[str],
              seen: set[tuple[str, ...]]) -> None:
    raw = _first(c.env, "LETSENCRYPT_HOST", "ACME_HOST")
    if raw is None:
        return
    domains = []
    for host in split_hosts(raw):
        if host in hosts:
            domains.append(host)
        else:
            plan.problems.append(f"{label}: LETSENCRYPT_HOST entry {host!r} is not one of its "
                                 "valid VIRTUAL_HOST names; no certificate for it")
    if not domains or tuple(domains) in seen:
        return
    seen.add(tuple(domains))
    email = _first(c.env, "LETSENCRYPT_EMAIL", "ACME_EMAIL")
    if email is not None:
        email = email.strip()
        if not _EMAIL_RE.match(email):
            plan.problems.append(f"{label}: LETSENCRYPT_EMAIL={email!r} is not an e-mail "
                                 "address; registering without one")
            email = None
    plan.certs.append(CertRequest(name=domains[0], domains=tuple(domains), email=email))
