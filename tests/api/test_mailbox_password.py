"""A mailbox holder changes their own password (POST /mailbox/password,
issue 13): the current password is the credential (Roundcube's password
plugin calls it, form-encoded). Attacked from the other tenant's side, with
a wrong current password, with hostile input and by guessing; passwords never
reach a log. Guessing attacks come from fresh 127.x.y.z addresses (as in
test_auth_throttle.py) so that nothing else in the suite is throttled."""

import concurrent.futures
import http.client
import json
import pathlib
import random
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from passlib.hash import sha512_crypt

from stack_clients import fresh_loopback as fresh_address

ROOT = pathlib.Path(__file__).resolve().parents[2]
OLD = "correct horse 1"
PATH = "/mailbox/password"
# Failures are counted once for all the connector's workers (the dev stack's
# Redis), 30 a minute: of a burst of 300 guesses, 30 are answered (plus at
# most the 8 in flight when the 30th was counted), the rest refused.
BURST = 300
ANSWERED = range(30, 39)


def stored_hash(sql, email):
    return sql("SELECT password_hash FROM mailboxes WHERE email = %s", (email,))[0]["password_hash"]


def verifies(password, stored):
    return sha512_crypt.verify(password, stored[len("{SHA512-CRYPT}"):])


@pytest.fixture
def post_from(devenv):
    """post_from(address, fields, form=True, token=None) -> (status, body, Retry-After)."""
    u = urlsplit(devenv["EMBOUX_API_URL"])

    def post(source, fields, form=True, token=None):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30, source_address=(source, 0))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if form:
            body, headers["Content-Type"] = urlencode(fields), "application/x-www-form-urlencoded"
        else:
            body, headers["Content-Type"] = json.dumps(fields), "application/json"
        try:
            c.request("POST", PATH, body=body, headers=headers)
            r = c.getresponse()
            return r.status, json.loads(r.read() or b"{}"), r.getheader("Retry-After")
        finally:
            c.close()
    return post


def test_the_holder_changes_it_with_the_current_password_json_or_form(devenv, tenant, sql):
    d = tenant.domain()
    box = tenant.mailbox(d)
    url = devenv["EMBOUX_API_URL"] + PATH
    # JSON, no API token at all
    r = requests.post(url, json={"email": box.upper(), "current_password": OLD,
                                 "new_password": "new horse 22"}, timeout=30)
    assert r.status_code == 200 and r.json() == {"message": "Password updated"}, r.text
    assert verifies("new horse 22", stored_hash(sql, box)) and not verifies(OLD, stored_hash(sql, box))
    # the form encoding of Roundcube's httpapi driver
    r = requests.post(url, data={"email": box, "current_password": "new horse 22",
                                 "new_password": "third horse 333"}, timeout=30)
    assert r.status_code == 200, r.text
    assert verifies("third horse 333", stored_hash(sql, box))


def test_wrong_current_password_unknown_or_disabled_mailbox_are_refused_alike(devenv, tenant, sql, post_from):
    d = tenant.domain()
    box, disabled = tenant.mailbox(d), tenant.mailbox(d)
    assert tenant.put(f"/users/{disabled}", json={"active": False}).status_code == 200
    before = stored_hash(sql, box), stored_hash(sql, disabled)
    src = fresh_address()
    refused = {"detail": "Invalid email or password", "code": "invalid_credentials"}
    for fields in ({"email": box, "current_password": "not it at all", "new_password": "new horse 22"},
                   {"email": f"nobody@{d}", "current_password": OLD, "new_password": "new horse 22"},
                   {"email": disabled, "current_password": OLD, "new_password": "new horse 22"}):
        status, body, _ = post_from(src, fields)
        assert (status, body) == (403, refused), fields
    assert (stored_hash(sql, box), stored_hash(sql, disabled)) == before


def test_the_other_tenant_cannot_change_it_even_with_its_token_or_the_master(api, make_tenant, sql, post_from):
    owner, other = make_tenant(), make_tenant()
    box = owner.mailbox(owner.domain())
    before = stored_hash(sql, box)
    src = fresh_address()
    for token in (other.token, api.master):
        # an API token is no credential here: only the mailbox's current password is
        status, body, _ = post_from(src, {"email": box, "current_password": "guess-1234",
                                          "new_password": "taken over 1"}, token=token)
        assert status == 403 and body["code"] == "invalid_credentials"
    # the other tenant's own mailbox password does not open this one
    theirs = other.mailbox(other.domain(), password="their horse 1")
    status, _, _ = post_from(src, {"email": box, "current_password": "their horse 1",
                                   "new_password": "taken over 1"})
    assert status == 403
    assert stored_hash(sql, box) == before
    assert verifies("their horse 1", stored_hash(sql, theirs))


@pytest.mark.parametrize("fields, named", [
    ({"current_password": OLD, "new_password": "new horse 22"}, "email"),
    ({"email": "BOX", "new_password": "new horse 22"}, "current_password"),
    ({"email": "BOX", "current_password": OLD}, "new_password"),
    ({"email": "BOX", "current_password": OLD, "new_password": "short"}, "new_password"),
    ({"email": "BOX", "current_password": OLD, "new_password": "tab\there\x01x"}, "new_password"),
    ({"email": "not an address", "current_password": OLD, "new_password": "new horse 22"}, "email"),
    ({"email": "BOX", "current_password": OLD, "new_password": "x" * 257}, "new_password"),
])
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(tenant, sql, post_from, fields, named):
    box = tenant.mailbox(tenant.domain())
    before = stored_hash(sql, box)
    fields = {k: (box if v == "BOX" else v) for k, v in fields.items()}
    for form in (True, False):
        status, body, _ = post_from(fresh_address(), fields, form=form)
        assert status == 400 and named in body["detail"], body
    assert stored_hash(sql, box) == before


def test_malformed_bodies_are_400(devenv):
    url = devenv["EMBOUX_API_URL"] + PATH
    assert requests.post(url, data=b"{not json", headers={"Content-Type": "application/json"},
                         timeout=30).status_code == 400
    assert requests.post(url, json=["a", "list"], timeout=30).status_code == 400
    r = requests.post(url, data={"email": "a@b.example", "current_password": "x\x00y", "new_password": "z" * 9},
                      timeout=30)
    assert r.status_code == 400


def test_guessing_from_one_address_is_rate_limited(tenant, sql, post_from):
    box = tenant.mailbox(tenant.domain())
    attacker = fresh_address()

    def guess(i):
        return post_from(attacker, {"email": box, "current_password": f"guess-{i:04d}",
                                    "new_password": "taken over 1"})[0]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(guess, range(BURST)))
    assert set(statuses) <= {403, 429}, set(statuses)
    assert statuses.count(403) in ANSWERED, (statuses.count(403), statuses.count(429))
    # the right password from the attacker's address is refused too: a right
    # guess must look like every other
    status, body, retry_after = post_from(attacker, {"email": box, "current_password": OLD,
                                                     "new_password": "taken over 1"})
    assert status == 429 and body["code"] == "rate_limited" and int(retry_after) >= 1
    assert verifies(OLD, stored_hash(sql, box))


def test_guessing_one_mailbox_from_many_addresses_is_rate_limited(tenant, sql, post_from):
    box = tenant.mailbox(tenant.domain())
    other = tenant.mailbox(tenant.domain())

    def guess(i):
        return post_from(fresh_address(), {"email": box, "current_password": f"guess-{i:04d}",
                                           "new_password": "taken over 1"})[0]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(guess, range(BURST)))
    assert statuses.count(403) in ANSWERED, (statuses.count(403), statuses.count(429))
    status, _, _ = post_from(fresh_address(), {"email": box, "current_password": OLD, "new_password": "taken over 1"})
    assert status == 429
    assert verifies(OLD, stored_hash(sql, box))
    # another mailbox is not slowed by the attack on this one
    status, _, _ = post_from(fresh_address(), {"email": other, "current_password": OLD, "new_password": "mine now 1"})
    assert status == 200


def test_no_password_reaches_a_log(tenant, post_from):
    box = tenant.mailbox(tenant.domain())
    marker_old, marker_new = f"old-{random.getrandbits(64):x}", f"new-{random.getrandbits(64):x}"
    src = fresh_address()
    post_from(src, {"email": box, "current_password": marker_old, "new_password": "whatever 123"})
    assert post_from(src, {"email": box, "current_password": OLD, "new_password": marker_new})[0] == 200
    post_from(src, {"email": box, "current_password": marker_new, "new_password": "x"})   # a 400
    for log in (ROOT / "var" / "log").glob("connector*.log"):
        text = log.read_text(errors="replace")
        assert marker_old not in text and marker_new not in text, log
