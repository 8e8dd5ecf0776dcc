"""Health, readiness, model card, OpenAPI, docs page and metrics."""

from __future__ import annotations

import re

from .conftest import solid


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}


def test_readyz(client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ready", "runtime": "litert",
                            "model": {"name": "usbills-test", "version": "0.0.1-test"}}


def test_model_card(client, bundle_dir):
    import json

    body = client.get("/api/v1/model").get_json()
    card = json.loads((bundle_dir / "card.json").read_text())
    assert {k: body[k] for k in card} == card
    assert body["serving"] == {"runtime": "litert", "threshold": 0.8, "top_k": 3, "max_batch": 8,
                               "max_upload_mb": 10, "languages": ["en", "es"]}


def test_openapi(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/predict", "/api/v1/model", "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"]
    responses = spec["paths"]["/api/v1/predict"]["post"]["responses"]
    assert set(responses) == {"200", "400", "405", "413", "414", "415", "422", "429", "503"}
    # Every $ref resolves.
    text = str(spec)
    for ref in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert ref in spec["components"]["schemas"]


def test_docs_page_is_local(client):
    r = client.get("/api/v1/docs")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert "/api/v1/predict" in html and "openapi.json" in html
    # No CDN: every stylesheet/script/image comes from this site.
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not url.startswith(("http:", "https:", "//")), url
    css = re.search(r'href="([^"]+\.css)"', html).group(1)
    assert client.get(css).status_code == 200


def test_metrics(client):
    client.post("/api/v1/predict", data=solid("USD-1"), content_type="image/jpeg")
    client.post("/api/v1/predict", data=b"junk", content_type="image/jpeg")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.mimetype.startswith("text/plain")
    text = r.get_data(as_text=True)
    assert re.search(r'usbills_predictions_total\{identified="true",label="USD-1"\} [1-9]', text)
    assert re.search(r'usbills_errors_total\{code="invalid_image",status="422"\} [1-9]', text)
    assert re.search(
        r'usbills_http_requests_total\{endpoint="/api/v1/predict",method="POST",status="200"\}',
        text)
    assert 'usbills_http_request_duration_seconds_bucket{endpoint="/api/v1/predict"' in text
    assert 'usbills_predict_stage_seconds_count{stage="inference"}' in text


def test_metrics_stay_bounded_under_made_up_methods(client):
    """Any token is a valid HTTP method: made-up ones count as "other", not a series each."""
    for i in range(50):
        client.open("/api/v1/predict", method=f"X{i}ZZ")
    r = client.get("/metrics")
    assert r.headers["Content-Type"].count("charset") == 1
    text = r.get_data(as_text=True)
    assert "X1ZZ" not in text and 'method="other"' in text


def test_answers_match_the_openapi_schemas(client):
    """Real answers validate against the schema the document gives them, and only that one of
    the 200 response's oneOf (an Answer is no BatchAnswer and the other way round)."""
    import base64

    import jsonschema

    spec = client.get("/api/v1/openapi.json").get_json()

    def valid(doc, name):
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        return jsonschema.Draft202012Validator(schema).is_valid(doc)

    single = client.post("/api/v1/predict?scan=new", data=solid("USD-1"),
                         content_type="image/jpeg").get_json()
    b64 = base64.b64encode(solid("USD-5")).decode()
    batch = client.post("/api/v1/predict?scan=new", json={"images": [b64, b64]}).get_json()
    assert valid(single, "Answer") and not valid(single, "BatchAnswer")
    assert valid(batch, "BatchAnswer") and not valid(batch, "Answer")
    assert valid(single["scan"], "Scan") and valid(batch["scan"], "Scan")
    body = spec["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]
    assert "image/gif" not in body and "image/*" not in body and "image/jpeg" in body
    assert body["multipart/form-data"]["schema"]["required"] == ["image"]
    images = next(o for o in body["application/json"]["schema"]["oneOf"]
                  if "images" in o["properties"])["properties"]["images"]
    assert images["maxItems"] == 8  # MAX_BATCH's default
