"""Unit tests: rendered nginx config (structure; nginx itself checks it in the Docker tests)."""

import datetime as dt
import subprocess
from pathlib import Path

from proxygen.certs import CertFiles, ensure_fallback, scan_live
from proxygen.model import Container, build_plan
from proxygen.render import Paths, render
from proxygen.settings import ProxySettings

PATHS = Paths(fallback_cert="/fb/fallback.crt", fallback_key="/fb/fallback.key")
FAR = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)


def plan():
    return build_plan([
        Container("a", "a", {"VIRTUAL_HOST": "a.test", "VIRTUAL_PORT": "8080"},
                  {"net": "172.20.0.2"}),
        Container("b", "b", {"VIRTUAL_HOST": "b.test", "VIRTUAL_PATH": "/api/"},
                  {"net": "172.20.0.3"}),
    ], {"net"})


def server_block(conf, host, port):
    for part in conf.split("\nserver {")[1:]:
        if f"server_name {host};" in part and f"listen {port}" in part:
            return part
    raise AssertionError(f"no {port} server block for {host}")


def test_every_host_gets_http_redirect_with_acme_and_https_proxy():
    conf = render(plan(), {}, ProxySettings(), PATHS)
    http = conf.split("server_name a.test;")[1].split("\n}\n")[0]
    assert "location ^~ /.well-known/acme-challenge/" in http
    assert "return 308 https://$host$request_uri;" in http
    https = server_block(conf, "a.test", "443 ssl http2").split("server_name a.test;")[-1]
    assert "ssl_certificate /fb/fallback.crt;" in conf
    assert "proxy_pass http://up_" in https
    assert "server 172.20.0.2:8080;" in conf
    assert "location /api/ {" in conf


def test_hsts_only_with_a_real_certificate():
    cert = CertFiles("/le/live/a.test/fullchain.pem", "/le/live/a.test/privkey.pem", FAR,
                     ("a.test",))
    conf = render(plan(), {"a.test": cert}, ProxySettings(), PATHS)
    a = conf[conf.index("ssl_certificate /le/live/a.test/fullchain.pem;"):]
    a = a[:a.index("\n}\n")]
    assert "Strict-Transport-Security" in a
    b = conf[conf.rindex("server_name b.test;"):]
    assert "Strict-Transport-Security" not in b[:b.index("\n}\n")]
    assert "ssl_certificate /fb/fallback.crt;" in b


def test_no_hsts_with_a_staging_certificate():
    cert = CertFiles("/le/live/a.test/fullchain.pem", "/le/live/a.test/privkey.pem", FAR,
                     ("a.test",), staging=True)
    conf = render(plan(), {"a.test": cert}, ProxySettings(), PATHS)
    assert "ssl_certificate /le/live/a.test/fullchain.pem;" in conf
    assert "Strict-Transport-Security" not in conf


def test_unknown_hosts_get_503_and_mozilla_intermediate_tls():
    conf = render(build_plan([], set()), {}, ProxySettings(), PATHS)
    assert conf.count("return 503") == 2
    assert "listen 80 default_server;" in conf and "listen 443 ssl http2 default_server;" in conf
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "ssl_session_tickets off;" in conf
    assert "ssl_ecdh_curve X25519:prime256v1:secp384r1;" in conf
    assert "limit_req_status 429;" in conf


def test_settings_and_vhost_includes_are_rendered():
    s = ProxySettings(client_max_body_size="25m", rate_limit=7, rate_burst=9)
    conf = render(plan(), {}, s, PATHS, vhost_includes={"a.test", "default"})
    assert "client_max_body_size 25m;" in conf
    assert "rate=7r/s" in conf and "burst=9 nodelay" in conf
    assert "include /etc/nginx/vhost.d/a.test;" in conf
    assert conf.count("include /etc/nginx/vhost.d/default;") == 2


def test_scan_live_maps_hosts_to_unexpired_certs_and_fallback_is_made(tmp_path):
    live = tmp_path / "live"
    for name, days, cn in (("a.test", 30, "a.test"), ("old.test", 1, "old.test"),
                           ("stg.test", 30, "(STAGING) Artificial Apricot R3")):
        d = live / name
        d.mkdir(parents=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", str(days), "-subj", f"/CN={cn}",
             "-addext", f"subjectAltName=DNS:{name},DNS:www.{name}",
             "-keyout", str(d / "privkey.pem"), "-out", str(d / "fullchain.pem")],
            check=True, capture_output=True)
    found = scan_live(live, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
    assert set(found) == {"a.test", "www.a.test", "stg.test", "www.stg.test"}
    assert not found["a.test"].staging and found["stg.test"].staging
    assert found["a.test"].fullchain.endswith("a.test/fullchain.pem")
    cert, key = ensure_fallback(tmp_path / "fb")
    assert Path(cert).read_text().startswith("-----BEGIN CERTIFICATE")
    assert ensure_fallback(tmp_path / "fb") == (cert, key)
