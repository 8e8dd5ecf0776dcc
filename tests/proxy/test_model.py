"""Unit tests: container env (nginx-proxy contract) -> routing and certificate plan."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from proxygen.model import Container, build_plan, parse_path, parse_port, split_hosts, valid_host

NET = {"usbills-proxy"}


def box(name, env, networks=None, exposed=()):
    return Container(id=name, name=name, env=env,
                     networks={"usbills-proxy": "172.20.0.5"} if networks is None else networks,
                     exposed_ports=tuple(exposed))


def test_virtual_host_comma_list_routes_every_host_to_the_container():
    plan = build_plan([box("a", {"VIRTUAL_HOST": "A.example.com, www.example.com ",
                                 "VIRTUAL_PORT": "8080"})], NET)
    assert sorted(plan.vhosts) == ["a.example.com", "www.example.com"]
    assert plan.vhosts["a.example.com"].locations["/"].servers == ["172.20.0.5:8080"]
    assert plan.problems == []


def test_localhost_is_a_routable_name_for_local_use():
    plan = build_plan([box("local", {"VIRTUAL_HOST": "localhost", "VIRTUAL_PORT": "8080"})], NET)
    assert list(plan.vhosts) == ["localhost"] and plan.certs == []


def test_port_defaults_to_single_exposed_port_else_80():
    assert parse_port(None, (8080,)) == 8080
    assert parse_port("", (8080, 9090)) == 80
    assert parse_port(" 3000 ", ()) == 3000


@pytest.mark.parametrize("bad", ["abc", "0", "65536", "-1", "80a", "8080,9090"])
def test_bad_virtual_port_is_rejected(bad):
    with pytest.raises(ValueError, match="VIRTUAL_PORT"):
        parse_port(bad, ())


def test_bad_port_skips_only_that_container():
    plan = build_plan([box("bad", {"VIRTUAL_HOST": "bad.example.com", "VIRTUAL_PORT": "http"}),
                       box("good", {"VIRTUAL_HOST": "good.example.com"})], NET)
    assert list(plan.vhosts) == ["good.example.com"]
    assert any("bad" in p and "VIRTUAL_PORT" in p for p in plan.problems)


@pytest.mark.parametrize("host", ["bad_host.example.com", "-x.example.com", "a..b",
                                  "x" * 64 + ".com", "exa mple.com", "$host", "a.b;return",
                                  "*.example.com", "ex\u00e4mple.com", "a.b}"])
def test_invalid_host_names_are_rejected(host):
    assert not valid_host(host)


def test_invalid_host_is_skipped_and_the_valid_ones_kept():
    plan = build_plan([box("a", {"VIRTUAL_HOST": "ok.example.com,evil;host.com"})], NET)
    assert list(plan.vhosts) == ["ok.example.com"]
    assert any("evil;host.com" in p for p in plan.problems)


@given(st.text(max_size=80))
def test_hosts_that_pass_validation_cannot_inject_nginx_syntax(text):
    for host in split_hosts(text):
        if valid_host(host):
            assert not set(host) & set(" \t\n;{}$'\"\\#")


def test_unreachable_container_is_reported_not_routed():
    plan = build_plan([box("lonely", {"VIRTUAL_HOST": "x.example.com"},
                           networks={"other": "10.0.0.2"})], NET)
    assert plan.vhosts == {}
    assert "shares no network with the proxy" in plan.problems[0]
    assert "other" in plan.problems[0]


def test_same_host_from_two_containers_is_load_balanced_and_paths_split():
    plan = build_plan([
        box("web1", {"VIRTUAL_HOST": "s.example.com"}, {"usbills-proxy": "172.20.0.2"}),
        box("web2", {"VIRTUAL_HOST": "s.example.com"}, {"usbills-proxy": "172.20.0.3"}),
        box("api", {"VIRTUAL_HOST": "s.example.com", "VIRTUAL_PATH": "/api/",
                    "VIRTUAL_PORT": "9000"}, {"usbills-proxy": "172.20.0.4"}),
    ], NET)
    locs = plan.vhosts["s.example.com"].locations
    assert locs["/"].servers == ["172.20.0.2:80", "172.20.0.3:80"]
    assert locs["/api/"].servers == ["172.20.0.4:9000"]
    assert locs["/"].upstream != locs["/api/"].upstream


@pytest.mark.parametrize("bad", ["api", "/a b", "/x;y", "/../etc", "/a//b", "/{x}"])
def test_bad_virtual_path_is_rejected(bad):
    with pytest.raises(ValueError, match="VIRTUAL_PATH"):
        parse_path(bad)


def test_letsencrypt_and_acme_aliases_make_cert_requests():
    plan = build_plan([
        box("a", {"VIRTUAL_HOST": "a.example.com,www.a.example.com",
                  "LETSENCRYPT_HOST": "a.example.com,www.a.example.com",
                  "LETSENCRYPT_EMAIL": "ops@example.com"}),
        box("b", {"VIRTUAL_HOST": "b.example.com", "ACME_HOST": "b.example.com",
                  "ACME_EMAIL": "not-an-email"}),
        box("c", {"VIRTUAL_HOST": "c.example.com"}),
    ], NET)
    by_name = {c.name: c for c in plan.certs}
    assert by_name["a.example.com"].domains == ("a.example.com", "www.a.example.com")
    assert by_name["a.example.com"].email == "ops@example.com"
    assert by_name["b.example.com"].email is None
    assert "c.example.com" not in by_name
    assert any("LETSENCRYPT_EMAIL" in p for p in plan.problems)


def test_letsencrypt_host_outside_virtual_host_gets_no_cert():
    plan = build_plan([box("a", {"VIRTUAL_HOST": "a.example.com",
                                 "LETSENCRYPT_HOST": "a.example.com,other.example.com"})], NET)
    assert plan.certs[0].domains == ("a.example.com",)
    assert any("other.example.com" in p for p in plan.problems)


def test_scaled_service_asks_for_one_certificate():
    env = {"VIRTUAL_HOST": "a.example.com", "LETSENCRYPT_HOST": "a.example.com"}
    plan = build_plan([box("a1", env, {"usbills-proxy": "172.20.0.2"}),
                       box("a2", env, {"usbills-proxy": "172.20.0.3"})], NET)
    assert len(plan.certs) == 1


def test_containers_without_virtual_host_are_ignored():
    plan = build_plan([box("db", {"POSTGRES_PASSWORD": "x"})], NET)
    assert plan.vhosts == {} and plan.problems == []


def test_docker_inspect_data_becomes_a_container():
    from proxygen.proxy import to_container

    c = to_container({
        "Id": "abc", "Name": "/site-nginx-1",
        "Config": {"Env": ["VIRTUAL_HOST=a.example.com", "EMPTY=", "NOEQUALS"],
                   "ExposedPorts": {"8080/tcp": {}, "53/udp": {}}},
        "NetworkSettings": {"Networks": {"usbills-proxy": {"IPAddress": "172.20.0.9"},
                                         "backend": None}},
    })
    assert c.name == "site-nginx-1" and c.env == {"VIRTUAL_HOST": "a.example.com", "EMPTY": ""}
    assert c.exposed_ports == (8080,)
    assert c.networks == {"usbills-proxy": "172.20.0.9", "backend": ""}
    plan = build_plan([c], NET)
    assert plan.vhosts["a.example.com"].locations["/"].servers == ["172.20.0.9:8080"]
