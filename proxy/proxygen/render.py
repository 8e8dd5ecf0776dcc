"""Render the nginx http-level config for a plan with Jinja2."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from .certs import CertFiles
from .model import Plan
from .settings import ProxySettings

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,  # noqa: S701 - output is nginx config, not HTML; values are validated
)


@dataclass(frozen=True)
class Paths:
    fallback_cert: str
    fallback_key: str
    acme_webroot: str = "/var/www/acme"
    vhost_dir: str = "/etc/nginx/vhost.d"


def render(plan: Plan, certs: dict[str, CertFiles], settings: ProxySettings, paths: Paths,
           vhost_includes: set[str] | None = None) -> str:
    """vhost_includes: hosts (or 'default') that have a file in vhost.d to include."""
    includes = vhost_includes or set()
    upstreams: dict[str, list[str]] = {}
    vhosts = []
    for host in sorted(plan.vhosts):
        vh = plan.vhosts[host]
        cert = certs.get(host)
        locations = []
        for path in sorted(vh.locations, key=lambda p: (-len(p), p)):
            loc = vh.locations[path]
            upstreams[loc.upstream] = loc.servers
            locations.append({"path": path, "upstream": loc.upstream})
        vhosts.append({
            "host": host,
            "cert": cert.fullchain if cert else paths.fallback_cert,
            "key": cert.privkey if cert else paths.fallback_key,
            "trusted": cert is not None and not cert.staging,
            "include": f"{paths.vhost_dir}/{host}" if host in includes else None,
            "locations": locations,
        })
    return _ENV.get_template("proxy.conf.j2").render(
        s=settings, p=paths, vhosts=vhosts, upstreams=sorted(upstreams.items()),
        default_include=f"{paths.vhost_dir}/default" if "default" in includes else None,
    )
