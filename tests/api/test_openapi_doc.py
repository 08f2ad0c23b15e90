"""docs/openapi.json is the document the running code generates."""

import json
import pathlib


def test_published_copy_is_current(api):
    served = api.session.get(api.base + "/openapi.json").json()
    copy = json.loads((pathlib.Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
    assert copy["paths"].keys() == served["paths"].keys(), \
        "docs/openapi.json is stale: var/venv/bin/emboux-connector openapi > docs/openapi.json"
    assert copy == served
