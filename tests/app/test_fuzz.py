"""Property-based: whatever is thrown at the API, the answer is a JSON 4xx, never a 500."""

from __future__ import annotations

import base64
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from usbills_app import create_app
from usbills_app.config import Settings

PREDICT = "/api/v1/predict"
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fuzz_client(model, bundle_dir):
    # Small limits so the 413 paths are reachable by random data too.
    app = create_app(Settings(model_dir=bundle_dir, max_upload_mb=0.05, max_batch=3), model=model)
    return app.test_client()


def assert_json_4xx(resp):
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.get_data()[:300])
    assert resp.mimetype == "application/json"
    err = resp.get_json()["error"]
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]


content_types = st.sampled_from([
    "image/jpeg", "image/png", "image/webp", "image/heic", "image/gif", "image/", "image/*",
    "application/octet-stream", "application/json", "text/plain", "multipart/form-data",
    "multipart/form-data; boundary=xyz", "application/x-www-form-urlencoded", "", "garbage",
])
queries = st.sampled_from(["", "?lang=es", "?lang=xx", "?top_k=2", "?top_k=abc", "?top_k=999",
                           "?lang=&top_k=", "?lang=es-ES&top_k=1"])
# Real magic numbers, so the random tail reaches the decoders and not only format sniffing.
image_prefixes = st.sampled_from([
    b"", b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP",
    b"\x00\x00\x00\x18ftypheic", b"GIF89a", b"BM",
])


@FUZZ
@given(prefix=image_prefixes, body=st.binary(max_size=2000), ctype=content_types, q=queries)
def test_random_bytes(fuzz_client, prefix, body, ctype, q):
    headers = {"Content-Type": ctype} if ctype else {}
    assert_json_4xx(fuzz_client.post(PREDICT + q, data=prefix + body, headers=headers))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=20,
)
b64_text = st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode())
image_values = json_values | b64_text | b64_text.map(lambda s: "data:image/png;base64," + s)


@FUZZ
@given(doc=st.one_of(
    json_values,
    st.fixed_dictionaries({"image": image_values}),
    st.fixed_dictionaries({"images": st.lists(image_values, max_size=5) | json_values}),
))
def test_random_json(fuzz_client, doc):
    assert_json_4xx(fuzz_client.post(PREDICT, json=doc))


@FUZZ
@given(
    fields=st.lists(
        st.tuples(
            st.sampled_from(["image", "images", "file", "", "image[]"]) | st.text(max_size=8),
            st.binary(max_size=500),
            st.booleans(),  # as a file (True) or a text field (False)
        ),
        max_size=5,
    )
)
def test_random_multipart(fuzz_client, fields):
    data = {}
    for name, payload, as_file in fields:
        value = (io.BytesIO(payload), "x.jpg") if as_file else payload.decode("latin-1")
        data.setdefault(name, []).append(value)
    resp = fuzz_client.post(PREDICT, data=data, content_type="multipart/form-data")
    assert_json_4xx(resp)


def _valid_images() -> dict[str, bytes]:
    from tests import synth

    img = synth.bill(20, size=(160, 68))
    return {fmt: synth.encode(img, fmt) for fmt in ("JPEG", "PNG", "WEBP", "HEIF")}


VALID = _valid_images()


@FUZZ
@given(fmt=st.sampled_from(sorted(VALID)),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                      max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 10**6)))
def test_damaged_real_images(fuzz_client, fmt, flips, cut):
    """Real images with flipped bytes or cut short: an answer or a JSON 4xx, never a 500."""
    data = bytearray(VALID[fmt])
    for pos, val in flips:
        data[pos % len(data)] = val
    if cut is not None:
        data = data[: cut % len(data)]
    resp = fuzz_client.post(PREDICT, data=bytes(data), content_type="image/jpeg")
    if resp.status_code != 200:
        assert_json_4xx(resp)


@pytest.mark.parametrize(("path", "body", "needle"), [
    ("/api/v1/predict?top_k=\u00b2", None, "top_k must be an integer"),  # "²".isdigit()
    ("/api/v1/predict", "[" * 5000 + "]" * 5000, "nested too deeply"),
    ("/api/v1/predict", '{"pixels": ' + "[" * 3000 + "]" * 3000 + "}", "nested too deeply"),
])
def test_inputs_that_once_gave_500s(fuzz_client, path, body, needle):
    kw = {"data": body, "content_type": "application/json"} if body else {
        "data": b"x", "content_type": "image/jpeg"}
    r = fuzz_client.post(path, **kw)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert needle in r.get_json()["error"]["message"]
