"""Unit tests: what the companion issues, its backoff, and the certbot command lines."""

import json

from proxygen.acme import Backoff, Dirs, certonly_args, load_requests, missing, renew_args
from proxygen.model import CertRequest


def test_requests_round_trip_and_missing(tmp_path):
    state = tmp_path / "acme.json"
    state.write_text(json.dumps({"certs": [
        {"name": "a.test", "domains": ["a.test", "www.a.test"], "email": "o@a.test"},
        {"name": "b.test", "domains": ["b.test"], "email": None}]}))
    reqs = load_requests(state)
    assert [r.name for r in reqs] == ["a.test", "b.test"]
    assert [r.name for r in missing(reqs, {"a.test", "b.test"})] == ["a.test"]
    assert missing(reqs, {"a.test", "www.a.test", "b.test"}) == []


def test_unreadable_state_means_nothing_to_do(tmp_path):
    (tmp_path / "acme.json").write_text("{half")
    assert load_requests(tmp_path / "acme.json") == []
    assert load_requests(tmp_path / "absent.json") == []


def test_backoff_doubles_is_capped_persists_and_resets(tmp_path):
    path = tmp_path / "backoff.json"
    b = Backoff(path, base=60, cap=300)
    assert b.allowed("a", 0)
    assert b.failed("a", 1000) == 60
    assert not b.allowed("a", 1059) and b.allowed("a", 1060)
    assert b.failed("a", 1060) == 120
    assert b.failed("a", 1180) == 240
    assert b.failed("a", 1420) == 300  # capped
    assert not Backoff(path, 60, 300).allowed("a", 1500)  # survives a restart
    b.succeeded("a")
    assert Backoff(path, 60, 300).allowed("a", 0)


def test_certonly_uses_webroot_ca_and_email():
    args = certonly_args(CertRequest("a.test", ("a.test", "www.a.test"), None),
                         "https://pebble:14000/dir", Dirs(), default_email="ops@x.test")
    assert args[:2] == ["certbot", "certonly"]
    assert "--webroot" in args and "--non-interactive" in args
    assert args[args.index("--server") + 1] == "https://pebble:14000/dir"
    assert args[args.index("--email") + 1] == "ops@x.test"
    assert [args[i + 1] for i, a in enumerate(args) if a == "-d"] == ["a.test", "www.a.test"]
    assert "--deploy-hook" in args


def test_no_email_registers_without_one_and_renew_never_sleeps():
    args = certonly_args(CertRequest("a.test", ("a.test",)), "https://ca/dir", Dirs())
    assert "--register-unsafely-without-email" in args
    assert "--no-random-sleep-on-renew" in renew_args(Dirs())
    assert "--force-renewal" in renew_args(Dirs(), force=True)


def test_names_no_public_ca_can_validate_are_not_requested_from_lets_encrypt():
    from proxygen.acme import drop_not_public

    reqs = [CertRequest("digits.localhost", ("digits.localhost",)),
            CertRequest("a.example.com", ("a.example.com", "a.internal", "10.0.0.1")),
            CertRequest("b.test", ("b.test",)), CertRequest("pi.local", ("pi.local",)),
            CertRequest("bills.example.org", ("bills.example.org",))]
    le = "https://acme-v02.api.letsencrypt.org/directory"
    kept, dropped = drop_not_public(reqs, le)
    assert [(r.name, r.domains) for r in kept] == [
        ("a.example.com", ("a.example.com",)), ("bills.example.org", ("bills.example.org",))]
    assert dropped == {"digits.localhost": "a .localhost name", "a.internal": "a .internal name",
                       "10.0.0.1": "an IP address", "b.test": "a .test name",
                       "pi.local": "a .local name"}
    staging = "https://acme-staging-v02.api.letsencrypt.org/directory"
    assert drop_not_public(reqs, staging)[1] == dropped
    # A private ACME server (Pebble here, a company's CA) may well validate them.
    assert drop_not_public(reqs, "https://pebble:14000/dir") == (reqs, {})
