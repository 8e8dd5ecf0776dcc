"""Unit tests: proxy and companion settings are validated with one clear message."""

import pytest
from proxygen.settings import CompanionSettings, ProxySettings, SettingsError


def test_defaults():
    s = ProxySettings.from_env({})
    assert s.client_max_body_size == "10m" and s.rate_limit == 150 and s.rate_burst == 300
    c = CompanionSettings.from_env({})
    assert c.ca_uri.startswith("https://acme-v02.api.letsencrypt.org")


def test_body_size_follows_max_upload_mb_unless_set():
    assert ProxySettings.from_env({"MAX_UPLOAD_MB": "25"}).client_max_body_size == "25m"
    assert ProxySettings.from_env({"MAX_UPLOAD_MB": "25",
                                   "CLIENT_MAX_BODY_SIZE": "2g"}).client_max_body_size == "2g"


@pytest.mark.parametrize("env,name", [
    ({"RATE_LIMIT": "fast"}, "RATE_LIMIT"),
    ({"RATE_LIMIT": "0"}, "RATE_LIMIT"),
    ({"CLIENT_MAX_BODY_SIZE": "10mb; evil"}, "CLIENT_MAX_BODY_SIZE"),
    ({"MAX_UPLOAD_MB": "-3"}, "MAX_UPLOAD_MB"),
])
def test_bad_proxy_settings_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        ProxySettings.from_env(env)


@pytest.mark.parametrize("env,name", [
    ({"ACME_CA_URI": "http://insecure/dir"}, "ACME_CA_URI"),
    ({"DEFAULT_EMAIL": "nobody"}, "DEFAULT_EMAIL"),
    ({"RENEW_INTERVAL_SECONDS": "5"}, "RENEW_INTERVAL_SECONDS"),
])
def test_bad_companion_settings_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        CompanionSettings.from_env(env)
