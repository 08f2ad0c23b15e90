"""The vacation auto-reply end to end (issue 17, docs/inbound.md "Vacation"):
the API's settings become the platform's Sieve script (Dovecot's dict,
sieve_before2), Pigeonhole's vacation answers mail that came in on port 25,
and the reply leaves through Postfix's loopback auto-reply service, where
emboux-policyd judges and counts it, OpenDKIM signs it, and the dev stack's
outbound sink captures it.

No test waits for something not to happen: a reply that must not leave is
checked after a later reply (to another sender, or to the same one once
allowed) has reached the sink -- Postfix had the forbidden one first."""

import datetime as dt
import email
import email.header
import smtplib
import subprocess
import uuid

import pytest

from inbound_helpers import until
from stack_clients import Sink


@pytest.fixture(scope="session")
def sink(devenv):
    if not devenv.get("OUTBOUND_SINK_DIR") or not devenv.get("AUTOREPLY_PORT"):
        pytest.fail("the outbound sink or the auto-reply service is not up (./dev up)")
    return Sink(devenv["OUTBOUND_SINK_DIR"])


class Away:
    """A tenant's domain (vouched by the master, so it receives mail at
    once; DKIM key made by verify) with a mailbox whose vacation is set."""

    def __init__(self, api, tenant, inbound, sink, sender):
        self.api, self.tenant, self.inbound, self.sink, self.sender = api, tenant, inbound, sink, sender
        self.domain = f"v{uuid.uuid4().hex[:10]}.emboux-test.net"
        r = api.post("/domains/", json={"name": self.domain, "partner_ref": tenant.partner_ref})
        assert r.status_code == 201, r.text
        assert api.post(f"/domains/{self.domain}/verify").status_code == 200
        r = api.put(f"/domains/{self.domain}/outbound", json={"warmup_profile": None, "spike_max_multiplier": 0})
        assert r.status_code == 200, r.text
        self.box = tenant.mailbox(self.domain, "away")
        self.tag = uuid.uuid4().hex[:10]

    def set(self, **fields):
        body = {"enabled": True, "subject": f"Away {self.tag}", "body": f"Back on Monday. {self.tag}", **fields}
        r = self.tenant.put(f"/users/{self.box}/vacation", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def mail(self, local, extra_headers="", envelope_sender=None, to=None):
        """A message from local@<sender domain> to the mailbox (or `to`, an
        alias of it) in through port 25, delivered (in INBOX: Sieve has
        run). Returns the sender's address."""
        frm, subject, raw = self.sender.message(to or self.box, local=local, extra_headers=extra_headers)
        code, text = self.inbound.send(frm if envelope_sender is None else envelope_sender, to or self.box, raw)
        assert code == 250, (code, text)
        self.inbound.wait(self.box, subject)
        return frm

    def replies(self, to):
        return [m for m in self.sink.with_marker(self.tag) if m["rcpt_tos"] == [to]]

    def reply(self, to):
        """The one reply to `to`, once it reached the sink."""
        got = until(lambda: self.replies(to), timeout=30, what=f"a vacation reply to {to}")
        assert len(got) == 1, got
        return got[0]

    def counters(self):
        r = self.api.get(f"/domains/{self.domain}/outbound")
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def away(api, tenant, inbound, sink, make_sender):
    return Away(api, tenant, inbound, sink, make_sender())


def _subject(msg):
    return str(email.header.make_header(email.header.decode_header(msg["Subject"])))


def test_one_reply_per_sender_signed_and_counted(away):
    away.set(days=3)
    first = away.mail("alice")
    reply = away.reply(first)
    assert reply["mail_from"] == away.box
    msg = email.message_from_string(reply["data"])
    assert _subject(msg) == f"Away {away.tag}"
    assert msg["Auto-Submitted"].startswith("auto-replied")
    assert msg["In-Reply-To"] and msg["From"].strip("<>") == away.box
    assert f"d={away.domain}" in " ".join(msg.get_all("DKIM-Signature") or []), reply["data"][:2000]
    assert f"Back on Monday. {away.tag}" in msg.get_payload(decode=True).decode()
    # counted against the mailbox's domain by the policy daemon
    until(lambda: away.counters()["outbound_sent_today"] == 1, timeout=10, what="the reply counted")
    # the same sender again: delivered, no second reply (checked once a
    # later reply, to another sender, has left)
    away.mail("alice")
    other = away.mail("bob")
    away.reply(other)
    assert len(away.replies(first)) == 1
    until(lambda: away.counters()["outbound_sent_today"] == 2, timeout=10, what="two replies counted")


def test_mail_to_an_alias_is_answered_from_the_alias(away, make_tenant):
    """Migration 0034: the mailbox's aliases are the script's `:addresses`,
    read at each delivery, so an alias made after the reply was set counts
    at once, and the reply comes From the address the sender wrote. A
    catch-all, or another tenant's alias to this mailbox, gets no reply:
    the latter would send this mailbox's text From that tenant's address."""
    away.set()
    sales = f"sales@{away.domain}"
    r = away.tenant.post("/aliases/", json={"domain_name": away.domain, "source": sales, "destination": away.box})
    assert r.status_code == 201, r.text
    via_alias = away.mail("carol", to=sales)
    msg = email.message_from_string(away.reply(via_alias)["data"])
    assert msg["From"].strip("<>") == sales, msg["From"]
    assert _subject(msg) == f"Away {away.tag}"

    r = away.tenant.post("/aliases/", json={"domain_name": away.domain, "source": f"@{away.domain}",
                                            "destination": away.box})
    assert r.status_code == 201, r.text
    via_catchall = away.mail("dave", to=f"anyone@{away.domain}")
    stranger = make_tenant()
    theirs = stranger.domain()
    r = stranger.post("/aliases/", json={"domain_name": theirs, "source": f"desk@{theirs}", "destination": away.box})
    assert r.status_code == 201, r.text
    via_theirs = away.mail("erin", to=f"desk@{theirs}")
    sentinel = away.mail("frank")
    away.reply(sentinel)
    assert away.replies(via_catchall) == [] and away.replies(via_theirs) == []


@pytest.mark.parametrize("headers", [
    "List-Id: <news.lists.example.org>\r\n",
    "Precedence: bulk\r\n",
    "Precedence: list\r\n",
    "Auto-Submitted: auto-generated\r\n",
])
def test_no_reply_to_lists_bulk_or_automatic_mail(away, headers):
    away.set()
    listed = away.mail("list", extra_headers=headers)
    sentinel = away.mail("person")
    away.reply(sentinel)
    assert away.replies(listed) == []


def test_no_reply_to_a_null_sender(away):
    away.set()
    frm = away.mail("mailer-daemon", envelope_sender="")
    sentinel = away.mail("person")
    away.reply(sentinel)
    assert away.replies(frm) == []


def test_no_reply_before_start_or_after_end(away):
    today = dt.date.today()
    day = dt.timedelta(days=1)
    away.set(start=(today + day).isoformat(), end=(today + 5 * day).isoformat())
    early = away.mail("early")
    away.set(start=(today - 5 * day).isoformat(), end=(today - day).isoformat())
    late = away.mail("late")
    away.set(start=(today - day).isoformat(), end=(today + day).isoformat())
    during = away.mail("during")
    away.reply(during)
    assert away.replies(early) == [] and away.replies(late) == []
    # the ones refused by date were not recorded as answered: they get
    # their reply now that the dates allow it
    away.mail("early")
    away.reply(early)


def test_disabled_or_deleted_reply_sends_nothing(away):
    away.set()
    away.set(enabled=False)
    off = away.mail("off")
    away.set()
    on = away.mail("on")
    away.reply(on)
    assert away.replies(off) == []


def test_only_a_mailbox_with_an_enabled_reply_reads_the_vacation_script(away, devenv):
    """The userdb names the vacation script (sieve_before2) only for a mailbox
    with an enabled reply, so other deliveries skip the dict lookup; the
    change applies to the next delivery (no auth cache)."""
    def before2():
        out = subprocess.run(["doveadm", "-c", devenv["DOVECOT_CONFIG"], "user", "-f", "sieve_before2", away.box],
                             capture_output=True, text=True, check=True).stdout.strip()
        return out
    assert before2() == ""
    away.set()
    assert before2().startswith("dict:proxy::vacation;")
    away.set(enabled=False)
    assert before2() == ""


def test_no_reply_while_the_domains_outbound_is_suspended(away):
    away.set()
    r = away.api.put(f"/domains/{away.domain}/outbound",
                     json={"outbound_status": "suspended", "outbound_status_reason": "test"})
    assert r.status_code == 200, r.text
    held = away.mail("held")            # the incoming message is delivered all the same
    assert away.counters()["outbound_sent_today"] == 0
    r = away.api.put(f"/domains/{away.domain}/outbound", json={"outbound_status": "active"})
    assert r.status_code == 200, r.text
    # not recorded as answered: the next message of the same sender gets
    # the one reply, and the refused one never left
    away.mail("held")
    away.reply(held)
    assert len(away.replies(held)) == 1


def test_no_reply_past_the_domains_daily_cap(away):
    away.set()
    assert away.api.put(f"/domains/{away.domain}/outbound",
                        json={"outbound_daily_limit": 1, "outbound_enforcement": "hard"}).status_code == 200
    first = away.mail("first")
    away.reply(first)
    second = away.mail("second")        # over the cap: delivered, not answered
    until(lambda: away.counters()["outbound_sent_today"] == 1, timeout=10, what="the first reply counted")
    assert away.api.put(f"/domains/{away.domain}/outbound",
                        json={"outbound_daily_limit": 0}).status_code == 200
    third = away.mail("third")
    away.reply(third)
    assert away.replies(second) == []


def test_hostile_subject_and_body_are_sent_literally(away):
    subject = f'"; discard; stop; vacation "x" \\ ${{hex:41}} {away.tag} }}'
    body = (f'"quoted" \\back\\slash {away.tag}\n.\n..\n'
            'text:\n}\r\nrequire ["fileinto"]; fileinto "Trash"; discard;\n'
            '${hex:41} ${1}\n.')
    stored = away.set(subject=subject, body=body)
    assert stored["subject"] == subject and stored["body"] == body
    frm = away.mail("eve")              # delivered to INBOX: nothing in the text ran
    msg = email.message_from_string(away.reply(frm)["data"])
    assert _subject(msg) == subject
    text = msg.get_payload(decode=True).decode()
    assert text.replace("\r\n", "\n").rstrip("\n") == body.replace("\r\n", "\n")


def test_a_line_break_in_the_subject_is_refused(away):
    for subject in ("Away\r\nBcc: victim@example.org", "Away\nX: y", "Away\rX"):
        r = away.tenant.put(f"/users/{away.box}/vacation", json={"enabled": True, "subject": subject, "body": "B"})
        assert r.status_code == 400 and r.json()["code"] == "invalid_field", r.text


class TestAutoReplyRoute:
    """Postfix's auto-reply service, spoken to directly (what only Dovecot
    should use): it sends nothing for a sender that is not a hosted mailbox,
    nor for one whose domain is suspended."""

    @staticmethod
    def _rcpt(devenv, sender, rcpt):
        with smtplib.SMTP("127.0.0.1", int(devenv["AUTOREPLY_PORT"]), timeout=30) as s:
            s.ehlo("localhost")
            code, text = s.mail(sender)
            if code != 250:
                return code, text.decode()
            code, text = s.rcpt(rcpt)
            return code, text.decode()

    def test_strangers_and_null_senders_are_refused(self, devenv):
        code, text = self._rcpt(devenv, "someone@example.org", "victim@example.net")
        assert code == 554, text
        code, text = self._rcpt(devenv, "", "victim@example.net")
        assert code == 554, text

    def test_a_suspended_domains_mailbox_is_refused(self, devenv, away):
        assert away.api.put(f"/domains/{away.domain}/outbound", json={"outbound_status": "suspended"}
                            ).status_code == 200
        code, text = self._rcpt(devenv, away.box, "someone@example.net")
        assert code == 554 and "suspended" in text, text

    def test_it_listens_on_loopback_only(self, devenv):
        out = subprocess.run(["ss", "-Hltn", f"sport = :{devenv['AUTOREPLY_PORT']}"], capture_output=True,
                             text=True, check=True).stdout
        addrs = {line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}
        assert addrs == {"127.0.0.1"}, out
