"""Junk: scored mail is filed into Junk (auto-created, subscribed), and a
user's moves train Rspamd through IMAPSieve -- into Junk as spam, out of
Junk as ham (Rspamd's Bayes statistics change)."""

import socket

from inbound_helpers import GTUBE_JUNK, unique, until

def body(subject):
    """Words never seen before, and nothing else: Rspamd skips learning a
    message its Bayes already classifies with confidence. Long enough for
    Bayes and for fuzzy hashes (1 KB)."""
    return f"{subject} " + " ".join(unique("w") for _ in range(100)) + "\r\n"


def fuzzy_hit(inbound, frm, rcpt, raw):
    return "EMBOUX_FUZZY_SPAM" in inbound.scan(frm, rcpt, raw)["symbols"]


def bayes(devenv):
    """How many messages Rspamd's Bayes learned as spam and as ham: its
    counters in Redis (the controller's /stat refreshes them only now and
    then)."""
    with socket.create_connection(("127.0.0.1", int(devenv["RSPAMD_REDIS_PORT"])), timeout=10) as sock:
        sock.sendall(b"*2\r\n$7\r\nHGETALL\r\n$2\r\nRS\r\n")
        f = sock.makefile("rb")
        n = int(f.readline()[1:])          # *<n>: n bulk strings follow
        items = []
        for _ in range(n):
            size = int(f.readline()[1:])   # $<size>
            items.append(f.read(size + 2)[:-2])
    fields = dict(zip(items[::2], items[1::2], strict=True))
    return {"BAYES_SPAM": int(fields.get(b"learns_spam", 0)), "BAYES_HAM": int(fields.get(b"learns_ham", 0))}


def test_junk_exists_subscribed_for_a_new_mailbox(inbound, mailbox):
    m = inbound.imap(mailbox)
    try:
        typ, data = m.lsub('""', "*")
        assert typ == "OK" and any(b'"Junk"' in line or line.endswith(b" Junk") for line in data), data
        typ, data = m.list('""', "Junk")
        assert b"\\Junk" in data[0], data
    finally:
        m.logout()


def _move(inbound, user, subject, src, dst):
    m = inbound.imap(user)
    try:
        m.select(f'"{src}"')
        typ, data = m.uid("SEARCH", None, "SUBJECT", f'"{subject}"')
        uid = data[0].split()[-1]
        typ, resp = m.uid("MOVE", uid, f'"{dst}"')
        assert typ == "OK", resp
    finally:
        m.logout()


def test_moving_into_and_out_of_junk_trains_rspamd(inbound, make_sender, mailbox, devenv):
    sender = make_sender(policy="none")
    subject = unique("t-")
    frm, subject, raw = sender.message(mailbox, subject, body=body(subject))
    assert inbound.send(frm, mailbox, raw) == (250, b"")
    assert inbound.where(mailbox, subject)[0] == "INBOX"
    before = bayes(devenv)
    _move(inbound, mailbox, subject, "INBOX", "Junk")
    after = until(lambda: (lambda b: b if b["BAYES_SPAM"] > before["BAYES_SPAM"] else None)(bayes(devenv)),
                  what="Rspamd learning spam")
    assert after["BAYES_HAM"] == before["BAYES_HAM"]
    # and its fuzzy hash is known: copies now score EMBOUX_FUZZY_SPAM
    until(lambda: fuzzy_hit(inbound, frm, mailbox, raw), what="the fuzzy hash stored")
    # the user changes their mind: out of Junk, learned as ham, the hash removed
    _move(inbound, mailbox, subject, "Junk", "INBOX")
    until(lambda: bayes(devenv)["BAYES_HAM"] > after["BAYES_HAM"], what="Rspamd learning ham")
    until(lambda: not fuzzy_hit(inbound, frm, mailbox, raw), what="the fuzzy hash removed")


def test_deleting_from_junk_trains_nothing(inbound, make_sender, mailbox, devenv):
    sender = make_sender(policy="none")
    subject = unique("t-")
    frm, subject, raw = sender.message(mailbox, subject, body=GTUBE_JUNK + "\r\n" + body(subject))
    assert inbound.send(frm, mailbox, raw) == (250, b"")
    assert inbound.where(mailbox, subject)[0] == "Junk"
    before = bayes(devenv)
    _move(inbound, mailbox, subject, "Junk", "Trash")
    # the move is done (the message is in Trash): nothing was learned as ham by it
    assert inbound.find(mailbox, subject, "Trash") is not None
    assert bayes(devenv)["BAYES_HAM"] == before["BAYES_HAM"]
