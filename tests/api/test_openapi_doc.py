"""docs/openapi.json is the document the running code generates."""

import json
import pathlib


def test_published_copy_is_current(api):
    served = api.session.get(api.base + "/openapi.json").json()
    copy = json.loads((pathlib.Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
    assert copy["paths"].keys() == served["paths"].keys(), \
        "docs/openapi.json is stale: var/venv/bin/emboux-connector openapi > docs/openapi.json"
    assert copy == served


def test_every_error_status_is_documented_with_the_error_shape(api):
    """What the fuzzing tier (tests/fuzz) holds the API to: each operation
    lists the statuses it can answer, every error one as {detail, code}."""
    spec = api.session.get(api.base + "/openapi.json").json()
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["detail", "code"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            statuses = set(op["responses"])
            assert {"414", "431", "503"} <= statuses, (method, path)
            if op["security"]:
                assert {"403", "429"} <= statuses, (method, path)
                assert "Retry-After" in op["responses"]["429"]["headers"]
            if "{" in path:
                assert {"400", "404"} <= statuses, (method, path)
            if "requestBody" in op:
                assert {"400", "413"} <= statuses, (method, path)
            for status, answer in op["responses"].items():
                if int(status) >= 400 and path != "/health":
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}, (method, path, status)
    assert {"400", "403", "409", "413"} <= set(spec["paths"]["/webhooks/mailgun"]["post"]["responses"])
    assert {"400", "403", "413", "502"} <= set(spec["paths"]["/webhooks/ses"]["post"]["responses"])
    assert "502" in spec["paths"]["/domains/{name}/verify"]["post"]["responses"]


def test_unsupported_method_is_405_with_allow(api):
    r = api.request("PATCH", "/domains/")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
    assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
