"""Counters and sanctions outlive the row (issue 9): deleting a domain and creating
it again changes neither its caps nor its suspension nor its history. Through the
API, the real Postfix submission service and the real emboux-policyd."""

import pytest

from emboux_connector.api.outbound import reset_daily as _reset_daily, reset_monthly as _reset_monthly
from outbound_helpers import PASSWORD, DomainOutbound, accepted, closable, wait_until

reset_daily, reset_monthly = _reset_daily.__wrapped__, _reset_monthly.__wrapped__


class Owned(DomainOutbound):
    """A domain created by the master for a tenant (operator-vouched: it sends at
    once), with a sender and a local recipient, that can be deleted and re-created."""

    def __init__(self, api, partner_ref, name):
        self.api, self.partner_ref, self.domain = api, partner_ref, name
        self.alice, self.bob = f"alice@{name}", f"bob@{name}"

    def create(self, partner_ref=None):
        r = self.api.post("/domains/", json={"name": self.domain,
                                             "partner_ref": partner_ref or self.partner_ref})
        assert r.status_code == 201, r.text
        for box in (self.alice, self.bob):
            r = self.api.post("/users/", json={"domain_name": self.domain, "email": box,
                                               "password": PASSWORD})
            assert r.status_code == 201, r.text
        return self

    def delete(self):
        r = self.api.delete(f"/domains/{self.domain}")
        assert r.status_code == 204, r.text


@pytest.fixture
def owned(api, tenant, domain_name):
    return Owned(api, tenant.partner_ref, domain_name).create()


def leases_returned(sql, name):
    """The policy daemon gives an idle lease back within seconds."""
    return wait_until(lambda: sql("SELECT c.reserved_units FROM outbound_counters c JOIN domains d "
                                  "ON d.id = c.domain_id WHERE d.name = %s", (name,))[0]["reserved_units"] == 0,
                      timeout=15)


def test_delete_and_recreate_keeps_the_daily_cap(owned, submit, sql):
    owned.set(outbound_daily_limit=5, warmup_profile=None, spike_max_multiplier=0)
    assert accepted(submit.send(owned.alice, owned.bob, n=5)) == 5
    owned.settle(outbound_sent_today=5)
    assert leases_returned(sql, owned.domain)
    owned.delete()
    owned.create()
    state = owned.get()
    assert (state["outbound_sent_today"], state["outbound_sent_month"]) == (5, 5)
    # the plan's limits come back too: not the defaults (1000 a day)
    assert state["outbound_daily_limit"] == 5 and state["warmup_profile"] is None
    res = submit.send(owned.alice, owned.bob)
    assert accepted(res) == 0 and "Daily sending limit reached" in res[0][2], res


def test_delete_while_the_daemon_holds_a_lease_counts_what_it_leased(owned, submit, sql):
    """The attacker deletes the domain the moment its cap is reached: what the
    daemon had leased for it (and maybe served) is counted, never forgotten."""
    owned.set(outbound_daily_limit=5, warmup_profile=None, spike_max_multiplier=0)
    assert accepted(submit.send(owned.alice, owned.bob, n=5)) == 5
    owned.delete()
    owned.create()
    assert owned.get()["outbound_sent_today"] >= 5
    assert accepted(submit.send(owned.alice, owned.bob, n=2)) == 0


def test_outbound_suspension_survives_delete_for_every_tenant(owned, submit, api, make_tenant):
    reason = "bounce rate 12.00% above 10.00%"
    owned.set(outbound_status="suspended", outbound_status_reason=reason)
    owned.delete()
    owned.create()
    state = owned.get()
    assert (state["outbound_status"], state["outbound_status_reason"]) == ("suspended", reason)
    res = submit.send(owned.alice, owned.bob)
    assert accepted(res) == 0 and reason in res[0][2], res
    # another tenant takes the name: still suspended, with fresh counters (not its numbers)
    owned.delete()
    other = make_tenant()
    owned.create(partner_ref=other.partner_ref)
    state = owned.get()
    assert state["outbound_status"] == "suspended" and state["outbound_status_reason"] == reason
    assert accepted(submit.send(owned.alice, owned.bob)) == 0
    # a client cannot lift it; the master can, and then it is gone for good
    r = other.put(f"/domains/{owned.domain}/outbound", json={"outbound_status": "active"})
    assert r.status_code == 403, r.text
    owned.set(outbound_status="active")
    owned.delete()
    owned.create(partner_ref=other.partner_ref)
    assert owned.get()["outbound_status"] == "active"
    assert accepted(submit.send(owned.alice, owned.bob)) == 1


# A reset closes only a period that is over, in order, for the whole platform
# (tests/outbound/test_resets.py): these two run the reset's own code and the
# re-create (the INSERT whose triggers restore) in a transaction rolled back.
def recreate_in(cur, owned):
    cur.execute("INSERT INTO domains (name, partner_ref) VALUES (%s, %s)", (owned.domain, owned.partner_ref))
    cur.execute("SELECT c.sent_today, c.sent_month FROM outbound_counters c JOIN domains d "
                "ON d.id = c.domain_id WHERE d.name = %s", (owned.domain,))
    return cur.fetchone()


def test_reset_daily_while_deleted_does_not_bring_back_yesterday(owned, api, txn):
    owned.set(warmup_profile=None)
    r = api.post(f"/domains/{owned.domain}/outbound/increment", json={"count": 7})
    assert r.status_code == 200, r.text
    owned.delete()
    day = closable(txn, "daily")
    r = reset_daily(txn, None, {"day": day})
    assert r["already_done"] is False, r
    assert recreate_in(txn, owned) == {"sent_today": 0, "sent_month": 7}
    txn.execute("SELECT h.day::text AS day, h.sent FROM outbound_history h JOIN domains d "
                "ON d.id = h.domain_id WHERE d.name = %s", (owned.domain,))
    assert txn.fetchall() == [{"day": day, "sent": 7}]


def test_reset_monthly_while_deleted_bills_the_month(owned, api, txn):
    r = api.post(f"/domains/{owned.domain}/outbound/increment", json={"count": 4, "bytes": 4000})
    assert r.status_code == 200, r.text
    owned.delete()
    month = closable(txn, "monthly")
    r = reset_monthly(txn, None, {"month": month})
    assert r["already_done"] is False, r
    txn.execute("SELECT sent, bytes, partner_ref FROM outbound_billing WHERE domain_name = %s "
                "AND to_char(month, 'YYYY-MM') = %s", (owned.domain, month))
    assert txn.fetchall() == [{"sent": 4, "bytes": 4000, "partner_ref": owned.partner_ref}]
    assert recreate_in(txn, owned)["sent_month"] == 0


def test_another_tenant_starts_afresh_and_cannot_read_the_old_numbers(owned, api, make_tenant):
    r = api.post(f"/domains/{owned.domain}/outbound/increment", json={"count": 3})
    assert r.status_code == 200, r.text
    owned.delete()
    other = make_tenant()
    owned.create(partner_ref=other.partner_ref)
    state = owned.get()
    assert state["outbound_sent_today"] == 0 and state["outbound_daily_limit"] == 1000
    # ... and the first tenant's numbers are still theirs when it gets the name back
    owned.delete()
    owned.create()
    assert owned.get()["outbound_sent_today"] == 3


def test_an_operator_suspension_survives_the_tenant_deleting_the_domain(owned, api, tenant, make_tenant):
    """A tenant whose domain the operator suspended (say, for non-payment)
    cannot lift it by deleting the domain and creating it again."""
    assert api.put(f"/domains/{owned.domain}/suspend").status_code == 200
    assert tenant.delete(f"/domains/{owned.domain}").status_code == 204
    r = tenant.post("/domains/", json={"name": owned.domain})
    assert r.status_code == 201, r.text
    assert r.json()["suspended"] is True
    assert tenant.get(f"/domains/{owned.domain}").json()["suspended"] is True
    # the operator lifts it as usual, and then it is gone for good
    assert api.put(f"/domains/{owned.domain}/activate").status_code == 200
    assert tenant.delete(f"/domains/{owned.domain}").status_code == 204
    assert tenant.post("/domains/", json={"name": owned.domain}).json()["suspended"] is False
    # another tenant (the name's real owner, who must prove it anyway) starts afresh
    assert api.put(f"/domains/{owned.domain}/suspend").status_code == 200
    assert tenant.delete(f"/domains/{owned.domain}").status_code == 204
    other = make_tenant()
    r = other.post("/domains/", json={"name": owned.domain})
    assert r.status_code == 201 and r.json()["suspended"] is False, r.text
