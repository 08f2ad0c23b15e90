"""Brute force is slowed (issue 9): failed authentications are counted per client
address; an address over the limit gets 429 + Retry-After for everything, whatever
token it sends; other addresses and successful callers are never slowed;
X-Forwarded-For is not believed. The connector listens on 127.0.0.1 and every
127.x.y.z address reaches it: each test attacks from a fresh one, so nothing
else in the suite (which calls from 127.0.0.1) is throttled."""

import concurrent.futures
import http.client
import json
import random
from urllib.parse import urlsplit

import pytest


def fresh_address():
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


@pytest.fixture
def call(devenv):
    u = urlsplit(devenv["EMBOUX_API_URL"])

    def request(source, token, headers=None, path="/domains/"):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30, source_address=(source, 0))
        try:
            c.request("GET", path, headers={"Authorization": f"Bearer {token}", **(headers or {})})
            r = c.getresponse()
            return r.status, r.getheader("Retry-After"), r.read()
        finally:
            c.close()
    return request


def test_750_bad_tokens_get_429_and_a_good_token_elsewhere_still_works(call, api):
    attacker, honest = fresh_address(), fresh_address()

    def guess(i):
        # a different X-Forwarded-For on every guess: not believed, all counted on `attacker`
        return call(attacker, f"guess-{i:04d}-{random.getrandbits(64):x}",
                    headers={"X-Forwarded-For": fresh_address()})
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(guess, range(750)))
    statuses = [s for s, _, _ in results]
    assert set(statuses) <= {403, 429}, set(statuses)
    # 30 failures a minute per worker process (3 workers): the rest is refused
    assert statuses.count(429) >= 600, (statuses.count(403), statuses.count(429))
    for status, retry_after, body in results:
        if status == 429:
            assert int(retry_after) >= 1
            assert json.loads(body) == {"detail": "Too many failed authentication attempts, try again later",
                                        "code": "rate_limited"}
    # the throttled address is refused even with the right token: a guess that
    # succeeds must look like every other guess
    status, retry_after, _ = call(attacker, api.master)
    assert status == 429 and int(retry_after) >= 1
    # ... also when it claims to be someone else
    assert call(attacker, api.master, headers={"X-Forwarded-For": honest})[0] == 429
    # another address is not slowed by the attacker's failures
    assert call(honest, api.master)[0] == 200


def test_successful_callers_are_never_counted(call, api, tenant):
    source = fresh_address()
    statuses = [call(source, token)[0] for token in [api.master, tenant.token] * 60]
    assert statuses == [200] * 120
    # and a few failures stay below the limit: still served
    assert [call(source, "wrong-token")[0] for _ in range(5)] == [403] * 5
    assert call(source, tenant.token)[0] == 200
