import pytest

pytestmark = [pytest.mark.docker, pytest.mark.acme]


def test_smoke(stack):
    site = stack.start_site("a", {"VIRTUAL_HOST": "a.usbills.test", "VIRTUAL_PORT": "8080",
                                  "LETSENCRYPT_HOST": "a.usbills.test"})
    stack.wait_cert("a.usbills.test")
    r = stack.https("a.usbills.test", "/")
    print(r.status, r.headers, r.data)
