"""Issue 11, connector side of the back office's Sending identity tab: a
`local` domain's `ses_verified` is the same in every answer, DKIM rotation
refuses a domain with no key (or one its provider signs), the automatic
rotation age per domain (PUT /domains/{name}/dkim, master only) and the
clean-dkim job that applies it and deletes retired keys, and a DNS check
whose resolver does not answer says so (`lookup_failed`)."""

import datetime as dt
import socket
import uuid

import pytest

from emboux_connector import dnscheck, jobs


def fresh(prefix="dl"):
    return f"{prefix}{uuid.uuid4().hex[:10]}.emboux-test.net"


def keys_of(sql, name):
    return sql("SELECT k.selector, k.status FROM dkim_keys k JOIN domains d ON d.id = k.domain_id "
               "WHERE d.name = %s ORDER BY k.id", (name,))


def test_local_domain_reports_ses_verified_the_same_everywhere(api):
    name = fresh()
    assert api.post("/domains/", json={"name": name}).status_code == 201
    verify = api.post(f"/domains/{name}/verify").json()
    status = api.get(f"/domains/{name}/verify-status").json()
    outbound = api.get(f"/domains/{name}/outbound").json()
    # the policy daemon lets a local domain send (no provider to verify with):
    # every answer says so; `state` still tells whether its DKIM key is in DNS
    assert verify["ses_verified"] is status["ses_verified"] is outbound["ses_verified"] is True
    assert verify["state"] == status["state"] == "pending" and verify["verified"] is False


def test_rotate_with_no_key_or_a_provider_key_is_refused_and_changes_nothing(api, sql):
    name = fresh()
    assert api.post("/domains/", json={"name": name}).status_code == 201
    r = api.post(f"/domains/{name}/dkim/rotate", json={})
    assert r.status_code == 409 and r.json()["code"] == "dkim_no_key", r.text
    assert "verify" in r.json()["detail"]
    assert keys_of(sql, name) == []
    ses = fresh()
    assert api.post("/domains/", json={"name": ses}).status_code == 201
    assert api.put(f"/domains/{ses}/outbound", json={"provider": "ses"}).status_code == 200
    r = api.post(f"/domains/{ses}/dkim/rotate", json={})
    assert r.status_code == 409 and r.json()["code"] == "dkim_not_local", r.text
    assert keys_of(sql, ses) == []
    r = api.put(f"/domains/{ses}/dkim", json={"rotation_days": 30})
    assert r.status_code == 409 and r.json()["code"] == "dkim_not_local", r.text


def test_rotation_age_is_master_only_and_validated(api, tenant, sql):
    name = tenant.domain()
    key = api.post(f"/domains/{name}/verify").json()
    assert key["state"] == "pending"
    r = api.put(f"/domains/{name}/dkim", json={"rotation_days": 90})
    assert r.status_code == 200 and r.json()["rotation_days"] == 90, r.text
    created = dt.datetime.fromisoformat(api.get(f"/domains/{name}/dkim").json()["keys"][0]["created_at"])
    assert dt.datetime.fromisoformat(r.json()["rotates_at"]) == created + dt.timedelta(days=90)
    for bad in ({"rotation_days": -1}, {"rotation_days": "30"}, {"rotation_days": 4000}, {}, {"rotation_days": True}):
        r = api.put(f"/domains/{name}/dkim", json=bad)
        assert r.status_code == 400 and "rotation_days" in r.text, (bad, r.text)
    # the owner's own token may read it, never change it; another tenant does not see it
    r = tenant.put(f"/domains/{name}/dkim", json={"rotation_days": 1})
    assert r.status_code == 403 and r.json()["detail"] == "Master token required"
    assert tenant.get(f"/domains/{name}/dkim").json()["rotation_days"] == 90
    assert sql("SELECT dkim_rotation_days FROM domains WHERE name = %s", (name,))[0]["dkim_rotation_days"] == 90
    assert api.put(f"/domains/{name}/dkim", json={"rotation_days": 0}).json()["rotates_at"] is None


def test_other_tenant_cannot_see_the_dkim_of_a_domain(make_tenant):
    a, b = make_tenant(), make_tenant()
    name = a.domain()
    assert a.post(f"/domains/{name}/verify").status_code == 200
    assert b.get(f"/domains/{name}/dkim").status_code == 404
    assert b.post(f"/domains/{name}/dkim/rotate", json={}).status_code == 403


def test_clean_dkim_rotates_aged_keys_and_deletes_retired_ones(api, txn):
    name, young = fresh(), fresh()
    for n in (name, young):
        assert api.post("/domains/", json={"name": n}).status_code == 201
        assert api.post(f"/domains/{n}/verify").status_code == 200
        assert api.put(f"/domains/{n}/dkim", json={"rotation_days": 30}).status_code == 200
    cur = txn
    cur.execute("UPDATE dkim_keys SET created_at = now() - interval '31 days' "
                "WHERE domain_id = (SELECT id FROM domains WHERE name = %s)", (name,))
    cur.execute("SELECT selector FROM dkim_keys k JOIN domains d ON d.id = k.domain_id WHERE d.name = %s", (name,))
    first = cur.fetchone()["selector"]
    report = jobs.clean_dkim(cur)
    assert name in report["rotated"] and young not in report["rotated"], report
    cur.execute("SELECT k.selector, k.status, k.retire_after > now() AS overlapping FROM dkim_keys k "
                "JOIN domains d ON d.id = k.domain_id WHERE d.name = %s ORDER BY k.id", (name,))
    rows = cur.fetchall()
    assert [(r["selector"] == first, r["status"], r["overlapping"]) for r in rows] == [
        (True, "retiring", True), (False, "active", None)], rows
    assert name not in jobs.clean_dkim(cur)["rotated"]      # the new key is young
    # past its overlap, the old key is retired and deleted, private key included
    cur.execute("UPDATE dkim_keys SET retire_after = now() - interval '1 minute' WHERE selector = %s", (first,))
    report = jobs.clean_dkim(cur)
    assert report["retired"] >= 1 and report["deleted"] >= 1, report
    cur.execute("SELECT count(*) AS n FROM dkim_keys WHERE selector = %s", (first,))
    assert cur.fetchone()["n"] == 0


@pytest.fixture
def silent_resolver(monkeypatch):
    """A UDP 'resolver' that never answers: every lookup times out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    monkeypatch.setenv("DNS_RESOLVER", f"127.0.0.1:{sock.getsockname()[1]}")
    monkeypatch.setenv("DNS_TIMEOUT", "0.3")
    yield
    sock.close()


def test_dns_check_says_when_the_resolver_times_out(silent_resolver):
    out = dnscheck.check("timeout.emboux-test.net", "a:mail.emboux.test", [])
    looked_up = [e for e in out if e["record"] != "DKIM"]
    assert looked_up and all(e["lookup_failed"] and "timeout" in e["fix"] for e in looked_up), out


def test_dns_check_of_a_name_no_server_answers_for_says_lookup_failed(api):
    # the dev resolver (NSD) refuses a zone it does not serve: nothing is known
    name = fresh()
    assert api.post("/domains/", json={"name": name}).status_code == 201
    body = api.get(f"/domains/{name}/dns-check").json()
    assert body["lookup_failed"] is True and body["ok"] is False
    assert all("lookup_failed" in e for e in body["records"])
