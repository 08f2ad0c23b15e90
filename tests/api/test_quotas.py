"""Quotas at their limits, and on the boundary under concurrency."""

import concurrent.futures as cf

import requests


def test_domain_quota(make_tenant, sql):
    t = make_tenant(domains_allowed=2)
    t.domain(), t.domain()
    r = t.post("/domains/", json={"name": "third-one-x.emboux-test.net"})
    assert r.status_code == 403 and r.json()["detail"] == "Domain quota exceeded: 2/2"
    assert sql("SELECT 1 FROM domains WHERE name = 'third-one-x.emboux-test.net'") == []


def test_zero_means_unlimited(make_tenant):
    t = make_tenant(domains_allowed=0, mailboxes_per_domain=0)
    d = t.domain()
    for _ in range(4):
        t.domain()
    for _ in range(3):
        t.mailbox(d)


def test_mailbox_quota_per_domain(make_tenant):
    t = make_tenant(mailboxes_per_domain=3)
    d1, d2 = t.domain(), t.domain()
    for _ in range(3):
        t.mailbox(d1)
    r = t.post("/users/", json={"domain_name": d1, "email": f"four@{d1}", "password": "xxxxxxxx1"})
    assert r.status_code == 403 and r.json()["detail"] == "Mailbox quota exceeded for this domain: 3/3"
    t.mailbox(d2)  # per domain: another domain has its own budget


def test_alias_quota(make_tenant):
    t = make_tenant(aliases_per_mailbox=5, mailboxes_per_domain=5)
    d = t.domain()
    box = t.mailbox(d)
    for i in range(5):
        r = t.post("/aliases/", json={"domain_name": d, "source": f"a{i}@{d}", "destination": box})
        assert r.status_code == 201
    r = t.post("/aliases/", json={"domain_name": d, "source": f"a5@{d}", "destination": box})
    assert r.status_code == 403 and r.json()["detail"] == "Alias quota exceeded: 5/5"
    # an upsert of an existing alias is not a new alias
    assert t.post("/aliases/", json={"domain_name": d, "source": f"a0@{d}",
                                     "destination": "x@example.org"}).status_code == 201
    t.mailbox(d)  # a second mailbox doubles the budget
    assert t.post("/aliases/", json={"domain_name": d, "source": f"a5@{d}", "destination": box}).status_code == 201


def _parallel(calls):
    with cf.ThreadPoolExecutor(len(calls)) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


def test_parallel_domain_creates_at_quota_boundary(make_tenant, sql, api):
    for _ in range(3):
        t = make_tenant(domains_allowed=3)
        t.domain(), t.domain()  # N-1 used
        names = [f"race{i}-{t.partner_ref}.emboux-test.net" for i in range(6)]
        results = _parallel([lambda n=n, t=t: requests.post(api.base + "/domains/", json={"name": n},
                             headers={"Authorization": f"Bearer {t.token}"}, timeout=30) for n in names])
        codes = sorted(r.status_code for r in results)
        assert codes == [201, 403, 403, 403, 403, 403], codes
        assert sql("SELECT count(*) AS n FROM domains WHERE partner_ref = %s", (t.partner_ref,))[0]["n"] == 3
        assert sql("SELECT domains_used FROM partners WHERE partner_ref = %s",
                   (t.partner_ref,))[0]["domains_used"] == 3


def test_parallel_mailbox_creates_at_quota_boundary(make_tenant, sql, api):
    t = make_tenant(mailboxes_per_domain=2)
    d = t.domain()
    t.mailbox(d)
    results = _parallel([lambda i=i: requests.post(
        api.base + "/users/", json={"domain_name": d, "email": f"r{i}@{d}", "password": "xxxxxxxx1"},
        headers={"Authorization": f"Bearer {t.token}"}, timeout=30) for i in range(6)])
    assert sorted(r.status_code for r in results) == [201, 403, 403, 403, 403, 403]
    assert len(sql("SELECT 1 FROM mailboxes m JOIN domains d ON d.id = m.domain_id WHERE d.name = %s", (d,))) == 2
