"""High availability (issue 16, docs/scaling.md): docker/compose.yaml +
docker/compose.ha.yaml -- a 3-member etcd, two PostgreSQL members under
Patroni (synchronous mode) behind HAProxy, two mail nodes each with its own
policy daemon, one connector -- started by this module's own fixture under
its own project name (ha_stack.py), then hurt from outside: a cap hammered on
both nodes at once, a mail node killed, the primary killed mid-burst.
"""

import json
import os
import pathlib
import subprocess
import sys
import pickle
import threading
from collections import Counter
import time
import uuid

import pytest
import requests

from deploy_stack import BASE, PASSWORD, run, wait_until
from ha_stack import HADeployment, build_ha_image

CAP = 8
HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def ha(request, tmp_path_factory):
    reuse = os.environ.get("EMBOUX_HA_REUSE")
    if reuse:   # while developing: a deployment left running (a pickled HADeployment)
        with open(reuse, "rb") as f:
            yield pickle.load(f)
        return
    request.getfixturevalue("images")
    build_ha_image(BASE)
    d = HADeployment(tmp_path_factory.mktemp("ha"))
    started = time.monotonic()
    try:
        d.up()
        assert wait_until(d.healthy, timeout=600, step=2), "the HA deployment did not become healthy\n" + d.logs()
        # both nodes answer, the replica streams synchronously
        assert wait_until(lambda: d.inbound("mail2", "nobody@example.invalid", "probe") is not None, timeout=300)
        assert wait_until(lambda: sorted(r for r, _ in d.members().values()) == ["Leader", "Sync Standby"],
                          timeout=120), d.members()
        d.ca.write_text(d.exec("mail", "cat", "/etc/emboux-mail/tls/ca.pem").stdout)
        # Rspamd loads its rules for a minute or two; meanwhile both nodes defer
        assert wait_until(d.filter_ready, timeout=600, step=3), "Rspamd did not come up\n" + d.logs()
        print(f"\nHA deployment up and healthy in {time.monotonic() - started:.0f} s")
        yield d
    finally:
        d.remove()


def make_domain(d, ref, mailboxes=("alice", "bob")):
    domain = f"{uuid.uuid4().hex[:10]}.ha-test.net"
    r = d.api("POST", "/domains/", json={"name": domain, "partner_ref": ref})
    assert r.status_code == 201, r.text
    for local in mailboxes:
        r = d.api("POST", "/users/", json={"domain_name": domain, "email": f"{local}@{domain}", "password": PASSWORD})
        assert r.status_code == 201, r.text
    return domain


@pytest.fixture(scope="module")
def tenant(ha):
    ref = f"p{uuid.uuid4().hex[:8]}"
    r = ha.api("POST", "/api-keys/", json={"partner_ref": ref, "domains_allowed": 5, "mailboxes_per_domain": 5,
                                           "aliases_per_mailbox": 1000})
    assert r.status_code == 201, r.text
    return ref


def set_cap(d, domain, n):
    r = d.api("PUT", f"/domains/{domain}/outbound",
              json={"outbound_daily_limit": n, "warmup_profile": None, "spike_max_multiplier": 0})
    assert r.status_code == 200, r.text


def sent_today(d, domain):
    return d.api("GET", f"/domains/{domain}/outbound").json()["outbound_sent_today"]


def spread_submissions(d, domain, per_node, tag):
    """per_node connections at once to each node's submission port (both
    nodes together), one message alice -> bob each: [(node, subject,
    accepted, code)]. The clients run in each node's network namespace
    (ha_submit.py says why)."""
    procs = {}
    for node in ("mail", "mail2"):
        pid = run("podman", "inspect", "-f", "{{.State.Pid}}", d.container(node)).stdout.strip()
        procs[node] = subprocess.Popen(
            ["nsenter", "-t", pid, "-n", sys.executable, str(HERE / "ha_submit.py"), "465", str(d.ca),
             f"alice@{domain}", PASSWORD, f"bob@{domain}", str(per_node), f"{tag}-{node}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = []
    for node, p in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr
        out += [(node, subject, ok, code) for subject, ok, code in json.loads(stdout)]
    return out


def flush_queues(d, nodes=("mail", "mail2")):
    """Postfix retries deferred mail after its backoff (minutes); after an
    outage the runbook flushes the queues at once (docs/scaling.md)."""
    for node in nodes:
        d.exec(node, "postqueue", "-c", "/etc/emboux-mail/postfix", "-f", check=False)


def test_a_hard_daily_cap_holds_across_both_nodes(ha, tenant):
    domain = make_domain(ha, tenant)
    set_cap(ha, domain, CAP)
    res = spread_submissions(ha, domain, 32, "cap")
    accepted = [subject for _, subject, ok, _ in res if ok]
    assert len(accepted) == CAP, res
    # the refusals are the daily cap's (5xx), from both nodes' policy daemons
    assert {code for _, _, ok, code in res if not ok} == {554}, res
    assert {node for node, _, ok, _ in res if not ok} == {"mail", "mail2"}, res
    assert sent_today(ha, domain) == CAP
    # every accepted message is delivered, once, readable from either node (one mail store)
    got = wait_until(lambda: sorted(s for s in ha.subjects(f"bob@{domain}") if s.startswith("cap-")) == sorted(accepted)
                     and sorted(accepted), timeout=180)
    assert got, (accepted, ha.subjects(f"bob@{domain}"))


def queued(d, node):
    """Messages in the node's Postfix queue (postqueue -j, one JSON line each)."""
    r = d.exec(node, "postqueue", "-c", "/etc/emboux-mail/postfix", "-j", check=False)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def test_a_dead_mail_node_the_other_carries_on_and_its_queue_is_delivered_on_return(ha, tenant):
    d = ha
    domain = make_domain(d, tenant)
    alice, bob = f"alice@{domain}", f"bob@{domain}"
    tag = uuid.uuid4().hex[:6]
    # node 2 accepts three messages and cannot deliver them yet (its LMTP
    # transport deferred): they sit in its own queue when it dies
    d.exec("mail2", "postconf", "-c", "/etc/emboux-mail/postfix", "-e", "defer_transports = lmtp")
    d.exec("mail2", "postfix", "-c", "/etc/emboux-mail/postfix", "reload")
    stranded = [f"stranded-{tag}-{i}" for i in range(3)]
    assert [d.inbound("mail2", alice, s) for s in stranded] == [250] * 3
    assert wait_until(lambda: len([q for q in queued(d, "mail2") if q["recipients"][0]["address"] == alice]) == 3,
                      timeout=60), queued(d, "mail2")
    run("podman", "kill", d.container("mail2"))
    assert wait_until(lambda: run("podman", "inspect", "-f", "{{.State.Running}}", d.container("mail2"))
                      .stdout.strip() == "false", timeout=60)
    try:
        assert d.inbound("mail2", alice, "to a dead node") is None   # nothing answers there
        # node 1 receives and sends as before
        inbound = f"inbound-{tag}"
        assert d.inbound("mail", bob, inbound) == 250
        sent = f"sent-{tag}"
        assert d.submit("mail", alice, bob, sent) == (True, 250)
        assert wait_until(lambda: {inbound, sent} <= set(d.subjects(bob)), timeout=120), d.logs()
        assert not set(stranded) & set(d.subjects(alice))
    finally:
        # the node returns: its start renders main.cf again (no deferred
        # transport), and its queue is still in its spool volume
        run("podman", "start", d.container("mail2"))
    assert wait_until(lambda: d.inbound("mail2", "nobody@example.invalid", "probe") is not None, timeout=300), d.logs()
    flush_queues(d, ["mail2"])
    assert wait_until(lambda: set(stranded) <= set(d.subjects(alice)), timeout=180), (queued(d, "mail2"), d.logs())
    assert sorted(s for s in d.subjects(alice) if s.startswith("stranded-")) == stranded   # each once


def test_killing_the_primary_mid_burst_loses_no_acknowledged_write_and_no_mail(ha, tenant):
    d = ha
    domain = make_domain(d, tenant)
    alice = f"alice@{domain}"
    domain_id = next(x["id"] for x in d.api("GET", "/domains/").json() if x["name"] == domain)
    capped = make_domain(d, tenant)
    set_cap(d, capped, 4)
    before = spread_submissions(d, capped, 1, "before")
    assert sorted(ok for *_, ok, _ in before) == [True, True]
    old = d.primary()
    standby = next(m for m, (role, _) in d.members().items() if role == "Sync Standby")
    stop = threading.Event()
    # API writes: (monotonic time the request started, alias source or None
    # when not acknowledged); inbound attempts (node, subject, SMTP code)
    writes, inbound = [], []

    def api_writes():
        i = 0
        while not stop.is_set():
            source = f"w{i}@{domain}"
            i += 1
            started = time.monotonic()
            try:
                r = d.api("POST", "/aliases/", json={"domain_name": domain, "source": source, "destination": alice})
            except requests.RequestException:
                writes.append((started, None))     # no answer: not acknowledged
                continue
            assert r.status_code < 500 or r.status_code == 503, (r.status_code, r.text)   # never a 500
            writes.append((started, source if r.status_code == 201 else None))

    def mail_in(node):
        i = 0
        while not stop.is_set():
            subject = f"burst-{node}-{i}"
            i += 1
            inbound.append((node, subject, d.inbound(node, alice, subject)))
            time.sleep(0.1)   # a sender's pace, not a CPU-bound spin on 2 cores

    workers = [threading.Thread(target=f, args=a) for f, a in
               ((api_writes, ()), (api_writes, ()), (mail_in, ("mail",)), (mail_in, ("mail2",)))]
    for w in workers:
        w.start()
    try:
        assert wait_until(lambda: len([w for w in writes if w[1]]) >= 10, timeout=60)
        killed = time.monotonic()
        run("podman", "kill", d.container(old))
        # the writes fail while no primary is there (the few started in the
        # instant the old one took to die may still succeed there: they are
        # on the synchronous standby too)
        assert wait_until(lambda: any(t > killed and not ok for t, ok in writes), timeout=30, step=0.1)
        outage = min(t for t, ok in writes if t > killed and not ok)
        # Patroni promotes the synchronous standby; the API recovers by itself
        # within 30 s of the kill (a ceiling, polled: bench/ha.py measures it)
        assert wait_until(lambda: any(t > outage and ok for t, ok in writes), timeout=killed + 30 - time.monotonic(),
                          step=0.2), (f"no API write acknowledged within 30 s of the kill; writes (s after the kill, "
                                      f"acknowledged): {[(round(t - killed, 1), bool(ok)) for t, ok in writes[-40:]]}; "
                                      f"members {d.members(standby)}\n" + d.logs())
        recovered = min(t for t, ok in writes if t > outage and ok) - killed
        assert wait_until(lambda: d.primary(via=standby) == standby, timeout=30), d.members(standby)
        time.sleep(3)     # the burst goes on against the new primary a little
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=120)
        # the old primary returns (checked at the end: as a replica of the new one)
        run("podman", "start", d.container(old))
    print(f"\nfirst acknowledged API write started {recovered:.1f} s after the primary was killed; "
          f"{len([w for w in writes if w[1]])} writes acknowledged; "
          f"inbound SMTP answers {Counter(c for *_, c in inbound)}")
    # no acknowledged write is lost
    r = d.api("GET", f"/aliases/?domain_id={domain_id}")
    assert r.status_code == 200, r.text
    have = {a["source"] for a in r.json()}
    assert not {s for _, s in writes if s} - have
    # inbound mail was accepted or deferred (4xx, or no answer: the sender
    # retries), never bounced; all that was accepted is delivered
    codes = [code for _, _, code in inbound]
    assert not [c for c in codes if c is not None and c >= 500], inbound
    accepted = {s for _, s, code in inbound if code == 250}
    assert accepted
    print(f"burst over {time.monotonic() - killed:.0f} s after the kill")
    flush_queues(d)
    assert wait_until(lambda: accepted <= set(d.subjects(alice)) or flush_queues(d), timeout=240, step=5), \
        (sorted(accepted - set(d.subjects(alice))), queued(d, "mail"), queued(d, "mail2"))
    print(f"all accepted mail delivered {time.monotonic() - killed:.0f} s after the kill")
    # each node accepts again (docker/ha/mail-db-watch.sh reloads Postfix
    # once the new primary answers: bench/ha.py measures how soon)
    assert wait_until(lambda: [d.inbound(n, alice, "after") for n in ("mail", "mail2")] == [250, 250],
                      timeout=180, step=2), d.logs()
    print(f"both nodes accept mail again {time.monotonic() - killed:.0f} s after the kill")
    # the cap holds after the failover: 2 of 4 were used before it
    after = spread_submissions(d, capped, 4, "after")
    assert [ok for *_, ok, _ in after].count(True) == 2, after
    assert sent_today(d, capped) == 4
    # the old primary is back, a replica of the new one (pg_rewind)
    assert wait_until(lambda: d.members(standby).get(old, ("", ""))[1] in ("running", "streaming")
                      and d.primary(via=standby) == standby, timeout=180), d.members(standby)
