"""MTA-STS and TLS-RPT (issue 14): the mode through the API, the policy served
host-routed at https://mta-sts.<domain>/.well-known/mta-sts.txt, the id that
changes with the policy, and the dns-check entries (with the mail-client
SRV and host records), against the stack's DNS server."""

import pytest
import requests


@pytest.fixture
def policy_of(devenv):
    def get(domain, host=None):
        return requests.get(devenv["EMBOUX_API_URL"] + "/.well-known/mta-sts.txt",
                            headers={"Host": host or f"mta-sts.{domain}"}, timeout=15)
    return get


def _entries(api, domain, record):
    body = api.get(f"/domains/{domain}/dns-check").json()
    return body, [e for e in body["records"] if e["record"] == record]


def test_mode_policy_and_id(tenant, policy_of, devenv):
    domain = tenant.domain()
    assert tenant.get(f"/domains/{domain}/mta-sts").json()["mode"] is None
    r = policy_of(domain)
    assert r.status_code == 404 and r.json()["code"] == "mta_sts_not_configured"

    r = tenant.put(f"/domains/{domain}/mta-sts", json={"mode": "testing"})
    assert r.status_code == 200, r.text
    testing = r.json()
    assert testing["mode"] == "testing" and testing["max_age"] == 604800
    assert testing["policy_url"] == f"https://mta-sts.{domain}/.well-known/mta-sts.txt"
    served = policy_of(domain)
    assert served.status_code == 200 and served.headers["Content-Type"].startswith("text/plain")
    assert served.text == testing["policy"]
    assert served.text.split("\r\n")[:4] == ["version: STSv1", "mode: testing",
                                             f"mx: {devenv.get('MX_HOST') or devenv['MAIL_HOSTNAME']}",
                                             "max_age: 604800"]
    records = {rec["name"]: rec for rec in testing["records"]}
    assert records[f"_mta-sts.{domain}"]["value"] == f"v=STSv1; id={testing['policy_id']}"
    assert records[f"_smtp._tls.{domain}"]["value"].startswith("v=TLSRPTv1; rua=mailto:")

    # the same policy again: nothing changes, not even the id or the time
    again = tenant.put(f"/domains/{domain}/mta-sts", json={"mode": "testing", "max_age": 604800}).json()
    assert (again["policy_id"], again["updated_at"]) == (testing["policy_id"], testing["updated_at"])
    # another policy: another id, served at once
    enforce = tenant.put(f"/domains/{domain}/mta-sts", json={"mode": "enforce", "max_age": 86400}).json()
    assert enforce["policy_id"] != testing["policy_id"]
    assert "mode: enforce" in policy_of(domain).text
    # a Host that is not mta-sts.<hosted domain>
    for host in (domain, f"mta-sts.nothere-{domain}", "mta-sts.", "mta-sts.[::1]"):
        assert policy_of(domain, host=host).status_code == 404


@pytest.mark.parametrize("body", [{"mode": "strict"}, {"mode": ""}, {}, {"mode": "enforce", "max_age": 60},
                                  {"mode": "enforce", "max_age": 10**9}, {"mode": ["enforce"]},
                                  {"mode": "enforce", "max_age": "604800"}])
def test_bad_mode_is_refused_and_nothing_stored(tenant, body, sql):
    domain = tenant.domain()
    r = tenant.put(f"/domains/{domain}/mta-sts", json=body)
    assert r.status_code == 400 and r.json()["code"] == "invalid_field", r.text
    assert sql("SELECT 1 FROM domain_mta_sts m JOIN domains d ON d.id = m.domain_id WHERE d.name = %s",
               (domain,)) == []


def test_other_tenant_cannot_see_or_set_the_mode(make_tenant, sql):
    owner, other = make_tenant(), make_tenant()
    domain = owner.domain()
    assert owner.put(f"/domains/{domain}/mta-sts", json={"mode": "testing"}).status_code == 200
    assert other.get(f"/domains/{domain}/mta-sts").status_code == 404
    r = other.put(f"/domains/{domain}/mta-sts", json={"mode": "none"})
    assert r.status_code == 404 and r.json()["code"] == "domain_not_found"
    assert sql("SELECT mode FROM domain_mta_sts m JOIN domains d ON d.id = m.domain_id WHERE d.name = %s",
               (domain,)) == [{"mode": "testing"}]


def test_pending_domain_serves_no_policy(tenant, policy_of):
    domain = tenant.domain(prove=False)
    assert tenant.put(f"/domains/{domain}/mta-sts", json={"mode": "enforce"}).status_code == 200
    r = policy_of(domain)
    assert r.status_code == 404 and r.json()["code"] == "domain_not_hosted"


def test_dns_check_mta_sts_tlsrpt_srv_and_host_records(api, tenant, dns_zones, devenv):
    domain = tenant.domain()
    web = devenv["MAIL_HOSTNAME"]       # PUBLIC_HOST defaults to it
    # no mode yet: the MTA-STS and TLS-RPT entries are optional
    body, sts = _entries(api, domain, "MTA-STS")
    assert sts[0]["status"] == "missing" and sts[0]["required"] is False
    state = tenant.put(f"/domains/{domain}/mta-sts", json={"mode": "testing"}).json()
    recs = {r["name"]: r["value"] for r in state["records"]}
    srv = {e["name"]: e["expected"] for e in body["records"] if e["record"] == "SRV"}
    assert srv == {f"_imaps._tcp.{domain}": f"0 1 {devenv['IMAPS_PORT']} {web}",
                   f"_submissions._tcp.{domain}": f"0 1 {devenv['SUBMISSIONS_PORT']} {web}",
                   f"_submission._tcp.{domain}": f"0 1 {devenv['SUBMISSION_PORT']} {web}"}
    # testing mode, nothing published: required and failing
    body, sts = _entries(api, domain, "MTA-STS")
    assert sts[0]["status"] == "missing" and sts[0]["required"] is True and body["ok"] is False

    dns_zones.write(domain, [
        (f"_mta-sts.{domain}.", "TXT", recs[f"_mta-sts.{domain}"]),
        (f"_smtp._tls.{domain}.", "TXT", recs[f"_smtp._tls.{domain}"]),
        ("mta-sts", "CNAME", f"{web}."), ("autoconfig", "CNAME", f"{web}."), ("autodiscover", "CNAME", f"{web}."),
        *[(name + ".", "SRV", value + ".") for name, value in srv.items()],
    ])
    body = api.get(f"/domains/{domain}/dns-check").json()
    by = {(e["record"], e["name"]): e for e in body["records"]}
    for key in [("MTA-STS", f"_mta-sts.{domain}"), ("TLS-RPT", f"_smtp._tls.{domain}"),
                ("MTA-STS policy host", f"mta-sts.{domain}"), ("autoconfig", f"autoconfig.{domain}"),
                ("autodiscover", f"autodiscover.{domain}"), *[("SRV", n) for n in srv]]:
        assert by[key]["status"] == "ok", by[key]

    # the policy changes: the published id is stale, and says so
    tenant.put(f"/domains/{domain}/mta-sts", json={"mode": "enforce"})
    body, sts = _entries(api, domain, "MTA-STS")
    assert sts[0]["status"] == "wrong" and "id changes" in sts[0]["fix"] and body["ok"] is False

    # an SRV record on another port is wrong
    dns_zones.write(domain, [(f"_imaps._tcp.{domain}.", "SRV", f"0 1 143 {web}.")])
    body, srvs = _entries(api, domain, "SRV")
    imaps = next(e for e in srvs if e["name"].startswith("_imaps"))
    assert imaps["status"] == "wrong" and imaps["required"] is False
