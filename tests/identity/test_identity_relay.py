"""What leaves Postfix: local domains signed by OpenDKIM (verified with
dkimpy against the key published in the loopback DNS server), SES and
Mailgun domains relayed with their credentials, all captured by the sink."""

import base64
import hashlib
import hmac
import uuid

import dkim
import dns.resolver

PASSWORD = "correct horse 1"


def fresh(prefix="r"):
    return f"{prefix}{uuid.uuid4().hex[:10]}.emboux-test.net"


def dnsfunc_for(devenv):
    host, _, port = devenv["DNS_RESOLVER"].rpartition(":")
    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port = [host], int(port)

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        try:
            ans = res.resolve(name.rstrip("."), "TXT")
        except Exception:
            return None
        return b"".join(b"".join(r.strings) for r in ans.rrset)
    return dnsfunc


def test_local_domain_mail_is_dkim_signed_and_verifies(api, sql, submission, sink, zones, devenv):
    name = fresh()
    api.post("/domains/", json={"name": name})
    user = f"a@{name}"
    assert api.post("/users/", json={"domain_name": name, "email": user, "password": PASSWORD}).status_code == 201
    r = api.post(f"/domains/{name}/verify")
    assert r.status_code == 200 and r.json()["verified"] is False   # not in DNS yet
    key = next(x for x in r.json()["dns_records"] if x["purpose"] == "dkim")
    assert "PRIVATE" not in r.text
    zones.write(name, [(key["name"] + ".", "TXT", key["value"])])
    st = api.get(f"/domains/{name}/verify-status").json()
    assert st["verified"] is True and st["state"] == "verified"
    subject = submission.send(user, "bob@example.org")
    msg = sink.wait_for(subject)
    assert msg["auth"] is None                     # local: direct delivery, no provider login
    raw = msg["data"].encode()
    assert f"d={name}".encode() in raw and key["selector"].encode() in raw
    assert dkim.verify(raw, dnsfunc=dnsfunc_for(devenv))
    # a tampered body fails: the test can fail
    assert not dkim.verify(raw.replace(b"hello", b"HELLO"), dnsfunc=dnsfunc_for(devenv))


def test_rotation_new_selector_signs_old_stays_published(api, submission, sink):
    name = fresh()
    api.post("/domains/", json={"name": name})
    user = f"a@{name}"
    api.post("/users/", json={"domain_name": name, "email": user, "password": PASSWORD})
    old = next(x for x in api.post(f"/domains/{name}/verify").json()["dns_records"] if x["purpose"] == "dkim")
    r = api.post(f"/domains/{name}/dkim/rotate", json={"overlap_days": 3})
    assert r.status_code == 200 and r.json()["retiring"] == [old["selector"]]
    new_sel = r.json()["selector"]
    assert new_sel != old["selector"]
    keys = api.get(f"/domains/{name}/dkim").json()
    assert {k["selector"]: k["status"] for k in keys["keys"]} == {new_sel: "active", old["selector"]: "retiring"}
    assert "PRIVATE" not in str(keys)
    subject = submission.send(user, "carol@example.org")
    assert f"s={new_sel};" in sink.wait_for(subject)["data"]
    # rotation is master-only
    assert api.post(f"/domains/{name}/dkim/rotate", json={"overlap_days": "x"}).status_code == 400


def test_rotate_is_master_only(tenant):
    name = tenant.domain()
    r = tenant.post(f"/domains/{name}/dkim/rotate")
    assert r.status_code == 403 and r.json()["detail"] == "Master token required"


def test_subdomain_sends_with_parent_dkim_identity(api, submission, sink):
    parent = fresh("lp")
    api.post("/domains/", json={"name": parent})
    sub = f"shop.{parent}"
    api.post("/domains/", json={"name": sub})
    sel = api.post(f"/domains/{sub}/register-subdomain").json()["dkim_identity"]
    user = f"a@{sub}"
    api.post("/users/", json={"domain_name": sub, "email": user, "password": PASSWORD})
    data = sink.wait_for(submission.send(user, "dave@example.org"))["data"]
    assert f"d={parent};" in data and f"s={sel['selector']};" in data


def test_mailgun_domain_relays_with_its_credential_unsigned_by_us(api, sql, submission, sink, mailgun):
    name = fresh("mg")
    api.post("/domains/", json={"name": name})
    api.put(f"/domains/{name}/outbound", json={"provider": "mailgun"})
    api.post(f"/domains/{name}/verify")
    assert api.get(f"/domains/{name}/verify-status").json()["verified"] is True
    api.put(f"/domains/{name}/activate")
    user = f"a@{name}"
    api.post("/users/", json={"domain_name": name, "email": user, "password": PASSWORD})
    msg = sink.wait_for(submission.send(user, "erin@example.org"))
    creds = mailgun.domain(name)["credentials"]
    assert msg["auth"]["login"] == f"postmaster@{name}"
    assert msg["auth"]["password"] == creds[f"postmaster@{name}"]
    assert "DKIM-Signature" not in msg["data"]       # Mailgun signs, not us


def test_ses_domain_relays_with_account_credential(api, submission, sink, devenv):
    name = fresh("ses")
    api.post("/domains/", json={"name": name})
    api.put(f"/domains/{name}/outbound", json={"provider": "ses"})
    api.post(f"/domains/{name}/verify")
    assert api.get(f"/domains/{name}/verify-status").json()["verified"] is True
    user = f"a@{name}"
    api.post("/users/", json={"domain_name": name, "email": user, "password": PASSWORD})
    msg = sink.wait_for(submission.send(user, "frank@example.org"))
    # AWS's documented SMTP password derivation from the IAM secret
    sig = ("AWS4" + devenv["SES_SECRET_ACCESS_KEY"]).encode()
    for part in ("11111111", devenv["SES_REGION"], "ses", "aws4_request", "SendRawEmail"):
        sig = hmac.new(sig, part.encode(), hashlib.sha256).digest()
    assert msg["auth"]["login"] == devenv["SES_ACCESS_KEY_ID"]
    assert msg["auth"]["password"] == base64.b64encode(b"\x04" + sig).decode()
