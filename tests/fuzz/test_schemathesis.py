"""Fuzzing: schemathesis against /openapi.json, as the master and as a client.

Every check but two: no 5xx, every status code, content type, header and
body as documented, schema-invalid input refused (4xx, schemathesis.toml),
authentication not ignored, 405 with Allow for undocumented methods. Left out:
positive_data_acceptance, because a value the schema allows may still be
refused by rules a JSON schema cannot say (a domain name is a "string"; `x`
is not a domain name: 400); missing_required_header, which wants 401 for a
request without Authorization where the contract answers 403. GET /health is
not fuzzed: it takes no input, and its 503 reports the dev stack's mail
servers, which other tests restart.

Bounded: FUZZ_MAX_EXAMPLES cases per operation (default 25) and
FUZZ_MAX_TIME seconds per run (default 75). The seed is fixed
(FUZZ_SEED, default 1) so that CI is deterministic; FUZZ_SEED=random explores.
"""

import json
import os
import pathlib
import random
import subprocess
import sys
import uuid

import pytest
import requests

HERE = pathlib.Path(__file__).resolve().parent
LOG = HERE.parents[1] / "var" / "log"
VENV_BIN = pathlib.Path(sys.executable).parent


def _seed():
    raw = os.environ.get("FUZZ_SEED", "1")
    return random.randrange(2**31) if raw == "random" else int(raw)


def _call(fc, method, path, token=None, **kw):
    r = requests.request(method, fc.url + path, headers={"Authorization": f"Bearer {token or fc.master}"},
                         timeout=30, **kw)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.content else None


def seed_resources(fc):
    """Two tenants with a domain, a mailbox and an alias each, and a domain
    waiting for its ownership proof, made for this run: half the generated
    path parameters name one of them (schemathesis
    dictionaries), so the fuzzer reaches existing rows (and the other
    tenant's), not only 404s."""
    tag = uuid.uuid4().hex[:8]
    found = {"name": [], "email": [], "source": [], "partner_ref": [], "token": [], "key_id": []}
    for who in ("own", "other"):
        ref = f"fuzz-{who}-{tag}"
        key = _call(fc, "POST", "/api-keys/", json={"partner_ref": ref, "domains_allowed": 1000,
                                                    "mailboxes_per_domain": 1000, "aliases_per_mailbox": 1000})
        dom = f"{who}-{tag}.fuzz.example"
        _call(fc, "POST", "/domains/", json={"name": dom, "partner_ref": ref})
        _call(fc, "POST", "/users/", json={"domain_name": dom, "email": f"box@{dom}", "password": "fuzz-Passw0rd"})
        _call(fc, "POST", "/aliases/", json={"domain_name": dom, "source": f"alias@{dom}",
                                             "destination": f"box@{dom}"})
        found["name"].append(dom)
        found["email"].append(f"box@{dom}")
        found["source"] += [f"alias@{dom}", f"@{dom}"]
        found["partner_ref"].append(ref)
        found["token"].append(key["token"])
        found["key_id"].append(key["id"])
    # and one a client created: pending until its ownership is proven (409s)
    pending = f"pending-{tag}.fuzz.example"
    _call(fc, "POST", "/domains/", token=found["token"][0], json={"name": pending})
    found["name"].append(pending)
    return found


def config_file(tmp_path, resources):
    """schemathesis.toml plus the dictionaries of this run's resources."""
    lines = [(HERE / "schemathesis.toml").read_text(), "", "[parameters]"]
    for name in resources:
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}')
    for name, values in resources.items():
        lines += ["", f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    path = tmp_path / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("who", ["master", "client"])
def test_api_holds_under_fuzzing(fuzz_connector, who, tmp_path):
    resources = seed_resources(fuzz_connector)
    # the client is the first tenant (its token is made for this run: the
    # master's run may have revoked the previous one through /api-keys/{token})
    token = fuzz_connector.master if who == "master" else resources["token"][0]
    seed = _seed()
    cmd = [str(VENV_BIN / "st"), "--config-file", str(config_file(tmp_path, resources)), "--no-color",
           "run", f"{fuzz_connector.url}/openapi.json",
           "--header", f"Authorization: Bearer {token}",
           "--checks", "all", "--exclude-checks", "positive_data_acceptance,missing_required_header",
           "--exclude-path", "/health",
           "--phases", "examples,coverage,fuzzing",
           "--max-examples", os.environ.get("FUZZ_MAX_EXAMPLES", "25"),
           "--max-time", os.environ.get("FUZZ_MAX_TIME", "75"),
           "--seed", str(seed), "--workers", "2", "--request-timeout", "30",
           "--suppress-health-check", "all", "--generation-database", "none",
           "--report", "junit", "--report-dir", str(tmp_path)]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL,
                         env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    output = run.stdout + run.stderr
    (LOG / f"fuzz-schemathesis-{who}.log").write_text(f"seed {seed}\n{output}")
    if run.returncode != 0:
        sys.stdout.write(output[-30000:])
    assert run.returncode == 0, f"schemathesis found problems as {who} (seed {seed}); " \
                                f"see var/log/fuzz-schemathesis-{who}.log"
    assert token not in output
    assert fuzz_connector.master not in output
