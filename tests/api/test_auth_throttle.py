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
import shutil
import socket
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from emboux_connector import throttle as throttle_module
from emboux_connector.errors import ApiError
from emboux_connector.throttle import Throttle
from stack_clients import free_port
from stack_clients import fresh_loopback as fresh_address


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
    # 30 failures a minute, counted once for all the connector's workers (the
    # dev stack's Redis): 30 refusals, and at most the 8 guesses in flight
    # when the 30th was counted. Counted per worker it was up to 3 x 30.
    assert 30 <= statuses.count(403) <= 38, (statuses.count(403), statuses.count(429))
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


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of this test's own (the stack's is Rspamd's too: not to be stopped)."""
    port = free_port()
    procs = []

    def start():
        procs.append(subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL))
        for _ in range(100):
            assert procs[-1].poll() is None, "redis-server exited"
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not listen")

    def stop():
        procs[-1].terminate()
        procs[-1].wait(10)
    start()
    yield port, start, stop
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(10)


def refused(throttle, addr):
    try:
        throttle.check(addr)
    except ApiError as exc:
        assert exc.code == "rate_limited"
        return True
    return False


def test_workers_share_the_count_and_an_outage_of_the_store_is_no_outage(own_redis, monkeypatch):
    port, start, stop = own_redis
    monkeypatch.setattr(throttle_module, "STORE_RETRY", 0.2)
    env = {"AUTH_FAILURE_LIMIT": "4/minute",
           "AUTH_LIMIT_STORAGE": f"redis://127.0.0.1:{port}/0?socket_connect_timeout=1&socket_timeout=1"}
    one, two = Throttle.from_env(env), Throttle.from_env(env)    # two gunicorn workers
    addr = fresh_address()
    for _ in range(2):
        one.failed(addr)
        two.failed(addr)
    assert refused(one, addr) and refused(two, addr)   # 2 + 2: over the limit for both

    stop()
    other = fresh_address()
    assert not refused(one, other)                     # served, not a 500
    for _ in range(4):
        one.failed(other)                              # counted in the worker's memory meanwhile
    assert refused(one, other)

    start()                                            # an empty store: a restarted Redis
    time.sleep(0.3)
    assert not refused(one, addr) and not refused(two, addr)
    for _ in range(4):
        two.failed(addr)
    assert refused(one, addr)                          # counted in the store again, for both
