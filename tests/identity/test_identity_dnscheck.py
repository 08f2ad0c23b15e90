"""GET /domains/{name}/dns-check against a real DNS server (NSD on loopback)
serving zones written by the test."""

import uuid


def fresh(prefix="dc"):
    return f"{prefix}{uuid.uuid4().hex[:10]}.emboux-test.net"


# the mail-client and transport-security entries (issue 14, setupdns.py) are
# optional until the domain sets an MTA-STS mode: tests/api/test_mta_sts.py
SETUP = {"SRV", "autoconfig", "autodiscover", "MTA-STS", "TLS-RPT"}


def by_record(body):
    out = {}
    for e in body["records"]:
        out.setdefault(e["record"], []).append(e)
    return out


def local_domain(api):
    name = fresh()
    api.post("/domains/", json={"name": name})
    dk = [x for x in api.post(f"/domains/{name}/verify").json()["dns_records"] if x["purpose"] == "dkim"]
    return name, dk


def test_everything_right(api, zones, devenv):
    name, dk = local_domain(api)
    mx = devenv.get("MX_HOST") or "mail.emboux.test"
    zones.write(name, [
        ("@", "MX", f"10 {mx}."),
        ("@", "TXT", f"v=spf1 a:{devenv.get('MAIL_HOSTNAME', 'mail.emboux.test')} ~all"),
        (dk[0]["name"] + ".", "TXT", dk[0]["value"]),
        ("_dmarc", "TXT", f"v=DMARC1; p=reject; rua=mailto:d@{name}"),
        ("default._bimi", "TXT", "v=BIMI1; l=https://logo.example.net/brand.svg"),
    ])
    r = api.get(f"/domains/{name}/dns-check")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True, body
    recs = by_record(body)
    assert set(recs) == {"MX", "SPF", "DKIM", "DMARC", "BIMI"} | SETUP
    assert all(e["status"] == "ok" and e["fix"] is None for e in body["records"] if e["record"] not in SETUP)
    assert not any(e["required"] for e in body["records"] if e["record"] in SETUP)
    assert recs["DMARC"][0]["policy"] == "reject" and recs["DMARC"][0]["stage"] == "3/3"
    assert recs["DKIM"][0]["found"] and recs["DKIM"][0]["expected"] == dk[0]["value"]


def test_missing_and_wrong(api, zones):
    name, dk = local_domain(api)
    zones.write(name, [
        ("@", "MX", "10 mx.elsewhere.example."),
        ("@", "TXT", "v=spf1 include:_spf.google.com ~all"),
        (dk[0]["name"] + ".", "TXT", "v=DKIM1; k=rsa; p=AAAAwrongkey"),
        ("_dmarc", "TXT", "v=DMARC1; p=none"),
        ("default._bimi", "TXT", "v=BIMI1; l=https://logo.example.net/brand.svg"),
    ])
    body = api.get(f"/domains/{name}/dns-check").json()
    recs = by_record(body)
    assert body["ok"] is False
    assert recs["MX"][0]["status"] == "wrong" and recs["MX"][0]["found"] == ["10 mx.elsewhere.example"]
    assert recs["SPF"][0]["status"] == "wrong" and "a:" in recs["SPF"][0]["fix"]
    assert recs["DKIM"][0]["status"] == "wrong"
    d = recs["DMARC"][0]
    assert d["status"] == "ok" and d["policy"] == "none" and d["stage"] == "1/3" and "quarantine" in d["next_step"]
    b = recs["BIMI"][0]
    assert b["status"] == "wrong" and "DMARC is enforcing" in b["fix"]   # meaningless under p=none
    assert all(e["fix"] for e in body["records"] if e["status"] != "ok")


def test_nothing_published(api, zones):
    name, _ = local_domain(api)
    zones.write(name, [])
    body = api.get(f"/domains/{name}/dns-check").json()
    assert {e["record"]: e["status"] for e in body["records"]} == {
        "MX": "missing", "SPF": "missing", "DKIM": "missing", "DMARC": "missing", "BIMI": "missing",
        **{r: "missing" for r in SETUP}}
    assert [e for e in body["records"] if e["record"] == "BIMI"][0]["required"] is False


def test_ses_records_cname_and_verification_txt(api, zones):
    name = fresh()
    api.post("/domains/", json={"name": name})
    api.put(f"/domains/{name}/outbound", json={"provider": "ses"})
    api.post(f"/domains/{name}/verify")
    api.get(f"/domains/{name}/verify-status")
    first = api.get(f"/domains/{name}/dns-check").json()
    want = {e["name"]: e["expected"] for e in first["records"] if e["record"] in ("DKIM", "verification")}
    assert len(want) == 4     # 3 Easy DKIM CNAMEs + _amazonses TXT
    recs = [("@", "TXT", "v=spf1 include:amazonses.com ~all"), ("_dmarc", "TXT", "v=DMARC1; p=quarantine")]
    for n, v in want.items():
        recs.append((n + ".", "TXT" if n.startswith("_amazonses") else "CNAME",
                     v if n.startswith("_amazonses") else v + "."))
    zones.write(name, recs)
    body = by_record(api.get(f"/domains/{name}/dns-check").json())
    assert body["SPF"][0]["status"] == "ok"
    assert body["verification"][0]["status"] == "ok"
    assert [e["status"] for e in body["DKIM"]] == ["ok"] * 3 and body["DKIM"][0]["type"] == "CNAME"
    assert body["DMARC"][0]["stage"] == "2/3"


def test_bimi_must_point_at_https_svg(api, zones):
    name, _ = local_domain(api)
    zones.write(name, [("_dmarc", "TXT", "v=DMARC1; p=reject"),
                       ("default._bimi", "TXT", "v=BIMI1; l=http://logo.example.net/brand.png")])
    bimi = by_record(api.get(f"/domains/{name}/dns-check").json())["BIMI"][0]
    assert bimi["status"] == "wrong" and "SVG" in bimi["fix"]
