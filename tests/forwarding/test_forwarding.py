"""Forwarding is outbound mail (issue 9): an alias whose destinations leave
EmBoux, fed by an anonymous sender on port 25, through the real Postfix,
emboux-policyd and postsrsd; the outbound SMTP sink shows what left."""

import glob
import os
import pathlib
import re
import smtplib
import subprocess
import uuid

from forwarding_helpers import PASSWORD, outside, wait_until
from stack_clients import submission_session

ROOT = pathlib.Path(__file__).resolve().parents[2]


def srs_of(sender, devenv):
    local, domain = sender.split("@")
    return re.compile(rf"^SRS0[=+-][^=]+=[^=]+={re.escape(domain)}={re.escape(local)}@"
                      rf"{re.escape(devenv['MAIL_HOSTNAME'])}$", re.I)


def test_forwarded_copies_leave_with_srs_and_count(fwd, port25, sink, devenv):
    e1, e2 = outside("e1"), outside("e2")
    alias = fwd.alias("fw", [e1, e2, fwd.alice])
    stranger = f"stranger-{uuid.uuid4().hex[:6]}@example.com"
    marker = uuid.uuid4().hex
    answers, data = port25.send(stranger, [alias], marker)
    assert answers[alias][0] == 250, answers
    assert data[0] == 250, data
    left = sink.recipients(marker, 2)
    assert sorted(r for m in left for r in m["rcpt_tos"]) == sorted([e1, e2])
    # SPF holds at the receiver: the envelope sender is an SRS address of the platform
    for m in left:
        assert srs_of(stranger, devenv).match(m["mail_from"]), m["mail_from"]
    # two deliveries left: two units for the alias's domain
    assert fwd.sent_today(2) == 2
    # the local copy keeps the stranger's own envelope sender
    store = os.path.join(devenv["VMAIL_DIR"], fwd.domain)
    files = wait_until(lambda: [f for f in glob.glob(f"{store}/**/Maildir/*/*", recursive=True)
                                if os.path.basename(os.path.dirname(f)) in ("new", "cur")
                                and os.path.isfile(f) and marker in pathlib.Path(f).read_text(errors="replace")],
                       timeout=15)
    assert files, "the local copy was not delivered"
    assert f"Return-Path: <{stranger}>" in pathlib.Path(files[0]).read_text(errors="replace")


def test_bounce_to_an_srs_address_goes_back_to_the_original_sender(fwd, port25, sink, devenv):
    e1 = outside("e1")
    alias = fwd.alias("fw", [e1])
    stranger = f"stranger-{uuid.uuid4().hex[:6]}@example.com"
    marker = uuid.uuid4().hex
    assert port25.send(stranger, [alias], marker)[1][0] == 250
    (m,) = sink.recipients(marker, 1)
    srs = m["mail_from"]
    assert srs_of(stranger, devenv).match(srs), srs
    # the receiver bounces to the SRS address: reversed and delivered
    bounce = uuid.uuid4().hex
    answers, data = port25.send("", [srs], bounce)
    assert answers[srs][0] == 250 and data[0] == 250, (answers, data)
    (b,) = sink.recipients(bounce, 1)
    assert b["rcpt_tos"] == [stranger] and b["mail_from"] in ("", "<>")
    # a forged SRS address (bad hash) is not a way to relay
    forged = re.sub(r"^SRS0([=+-])[^=]+=", r"SRS0\1ZZZZ=", srs)
    answers, _ = port25.send("", [forged])
    assert answers[forged][0] == 554 and "Relay access denied" in answers[forged][1], answers


def test_tenant_submission_is_not_rewritten_and_its_alias_fanout_counts(fwd, sink, devenv):
    e1, e2, e3 = outside("e1"), outside("e2"), outside("e3")
    alias = fwd.alias("team", [e1, e2])
    marker = uuid.uuid4().hex
    s = submission_session(devenv.get("SMTP_HOST") or "127.0.0.1", int(devenv["SUBMISSION_PORT"]),
                           fwd.alice, PASSWORD)
    try:
        s.sendmail(fwd.alice, [e3, alias], f"From: {fwd.alice}\r\nSubject: {marker}\r\n\r\nhi\r\n")
    finally:
        s.quit()
    left = sink.recipients(marker, 3)
    assert sorted(r for m in left for r in m["rcpt_tos"]) == sorted([e1, e2, e3])
    assert {m["mail_from"] for m in left} == {fwd.alice}
    # the submission counts its 2 recipients, the alias's fan-out its 2 outside copies
    assert fwd.sent_today(4) == 4


def test_outbound_suspension_refuses_forwarding_at_rcpt_not_local_mail(fwd, port25, sink):
    alias = fwd.alias("fw", [outside("e1")])
    fwd.set(outbound_status="suspended", outbound_status_reason="bounce rate 12%")
    marker = uuid.uuid4().hex
    answers, data = port25.send("stranger@example.com", [alias, fwd.alice], marker)
    code, text = answers[alias]
    assert code == 554 and "suspended" in text and "bounce rate 12%" in text, answers
    assert answers[fwd.alice][0] == 250 and data[0] == 250
    assert sink.with_marker(marker) == []
    assert fwd.sent_today(0) == 0


def test_fanout_beyond_the_daily_cap_is_refused_at_rcpt(fwd, port25, sink):
    fwd.set(outbound_daily_limit=3)
    wide = fwd.alias("wide", [outside(f"w{i}") for i in range(4)])
    pair = fwd.alias("pair", [outside("p1"), outside("p2")])
    marker = uuid.uuid4().hex
    answers, _ = port25.send("stranger@example.com", [wide], marker)
    code, text = answers[wide]
    assert code == 554 and "Daily sending limit reached" in text and "4 outside address" in text, answers
    ok = uuid.uuid4().hex
    answers, data = port25.send("stranger@example.com", [pair], ok)
    assert answers[pair][0] == 250 and data[0] == 250
    assert fwd.sent_today(2) == 2
    # 2 + 2 > 3: the next message is refused before its body is sent
    again = uuid.uuid4().hex
    answers, _ = port25.send("stranger@example.com", [pair], again)
    assert answers[pair][0] == 554 and "Daily sending limit reached" in answers[pair][1], answers
    assert len(sink.recipients(ok, 2)) >= 1
    assert sink.with_marker(marker) == [] and sink.with_marker(again) == []
    assert fwd.sent_today(2) == 2


def test_soft_enforcement_forwards_and_counts_the_overage(fwd, port25, sink):
    fwd.set(outbound_daily_limit=1, outbound_enforcement="soft")
    pair = fwd.alias("pair", [outside("p1"), outside("p2")])
    marker = uuid.uuid4().hex
    answers, data = port25.send("stranger@example.com", [pair], marker)
    assert answers[pair][0] == 250 and data[0] == 250, answers
    assert len({r for m in sink.recipients(marker, 2) for r in m["rcpt_tos"]}) == 2
    assert fwd.sent_today(2) == 2
    assert fwd.get()["overage_today"] == 1


def test_hourly_throttle_defers_forwarding(fwd, port25):
    fwd.set(outbound_daily_limit=60)          # hourly cap: the floor, 10
    ten = fwd.alias("ten", [outside(f"t{i}") for i in range(10)])
    answers, data = port25.send("stranger@example.com", [ten])
    assert answers[ten][0] == 250 and data[0] == 250
    assert fwd.sent_today(10) == 10
    answers, _ = port25.send("stranger@example.com", [ten])
    code, text = answers[ten]
    assert code == 451 and "Hourly sending limit" in text, answers


def test_rcpt_without_data_is_not_counted(fwd, port25):
    alias = fwd.alias("fw", [outside("e1"), outside("e2")])
    s = smtplib.SMTP(port25.host, port25.port, timeout=60)
    try:
        s.ehlo("client.example.com")
        s.mail("stranger@example.com")
        assert s.rcpt(alias)[0] == 250
        s.rset()
    finally:
        s.quit()
    answers, data = port25.send("stranger@example.com", [alias])
    assert data[0] == 250
    assert fwd.sent_today(2) == 2


def test_suppressed_destination_is_skipped_the_others_delivered(fwd, port25, sink, suppress, devenv):
    gone, ok1, ok2 = outside("gone"), outside("ok1"), outside("ok2")
    suppress(gone)
    alias = fwd.alias("fw", [gone, ok1, ok2])
    marker = uuid.uuid4().hex
    answers, data = port25.send("stranger@example.com", [alias], marker)
    assert answers[alias][0] == 250 and data[0] == 250
    left = sink.recipients(marker, 2)
    assert sorted(r for m in left for r in m["rcpt_tos"]) == sorted([ok1, ok2])
    assert fwd.sent_today(2) == 2
    # never a silent loss: both Postfix and the policy daemon say why
    postfix_log = ROOT / "var" / "log" / "postfix.log"
    assert wait_until(lambda: any(gone in line and "suppressed recipient" in line
                                  for line in postfix_log.read_text(errors="replace").splitlines()), timeout=15), \
        "no discard logged"


def test_every_destination_suppressed_is_refused_at_rcpt(fwd, port25, sink, suppress):
    a, b = outside("a"), outside("b")
    suppress(a)
    suppress(b, "complaint")
    alias = fwd.alias("fw", [a, b])
    marker = uuid.uuid4().hex
    answers, _ = port25.send("stranger@example.com", [alias, fwd.alice], marker)
    code, text = answers[alias]
    assert code == 550 and "suppression list" in text, answers
    assert answers[fwd.alice][0] == 250
    assert sink.with_marker(marker) == []


def test_nested_aliases_and_catch_all_count_every_outside_copy(fwd, port25, sink):
    fwd.set(outbound_daily_limit=5)
    inner = fwd.alias("inner", [outside(f"n{i}") for i in range(3)])
    outer = fwd.alias("outer", [inner, fwd.alice])
    fwd.alias("", [outside("catchall")])            # @domain: every unknown address
    marker = uuid.uuid4().hex
    stranger_rcpt = f"nobody-{uuid.uuid4().hex[:6]}@{fwd.domain}"
    answers, data = port25.send("stranger@example.com", [outer, stranger_rcpt], marker)
    assert all(c == 250 for c, _ in answers.values()) and data[0] == 250, answers
    assert len({r for m in sink.recipients(marker, 4) for r in m["rcpt_tos"]}) == 4
    assert fwd.sent_today(4) == 4
    # 4 + 3 > 5: the nested fan-out is refused at RCPT
    answers, _ = port25.send("stranger@example.com", [outer])
    assert answers[outer][0] == 554 and "3 outside address" in answers[outer][1], answers


def standalone_smtpd(devenv, commands, **overrides):
    """The real smtpd with the rendered configuration, in Postfix's
    stand-alone mode (SMTP on stdin/stdout, run as the mail owner so that
    access controls apply), with main.cf settings overridden for this one
    process: the shared daemon and Postfix stay as they are."""
    opts = " ".join(f"-o {k}={v}" for k, v in overrides.items())
    script = "".join(c + "\r\n" for c in commands)
    out = subprocess.run(["su", "postfix", "-s", "/bin/sh", "-c",
                          f"MAIL_CONFIG={devenv['POSTFIX_CONFIG_DIR']} /usr/lib/postfix/sbin/smtpd -S {opts}"],
                         input=script, capture_output=True, text=True, timeout=120)
    return out.stdout.splitlines()


def test_a_dead_policy_daemon_defers_forwarding_not_local_mail(fwd, sink, devenv):
    alias = fwd.alias("fw", [outside("e1")])
    marker = uuid.uuid4().hex
    lines = standalone_smtpd(devenv, [
        "EHLO client.example.com", "MAIL FROM:<stranger@example.com>",
        f"RCPT TO:<{alias}>", f"RCPT TO:<{fwd.alice}>", "DATA",
        f"Subject: {marker}\r\n\r\nhello\r\n.", "QUIT"],
        emboux_policy_service="inet:127.0.0.1:1")       # nothing listens there
    rcpt = [line for line in lines if line.startswith(("250 2.1.5", "451", "554", "550"))]
    assert any(line.startswith("451 4.3.5") and alias in line and "Forwarding policy service unavailable" in line
               for line in rcpt), "\n".join(lines)
    assert "250 2.1.5 Ok" in lines, "\n".join(lines)                 # the mailbox recipient
    assert any(line.startswith("250 2.0.0 Ok: queued") for line in lines), lines   # END-OF-MESSAGE: DUNNO
    store = os.path.join(devenv["VMAIL_DIR"], fwd.domain)
    # in INBOX or Junk (Maildir/.Junk: Rspamd scores this bare message), so hidden folders too
    assert wait_until(lambda: [f for f in glob.glob(f"{store}/**/Maildir/**/*", recursive=True, include_hidden=True)
                               if os.path.isfile(f) and marker in pathlib.Path(f).read_text(errors="replace")],
                      timeout=15)
    assert sink.with_marker(marker) == []
    assert fwd.sent_today(0) == 0
    # the same smtpd with the daemon up accepts the forward
    lines = standalone_smtpd(devenv, ["EHLO client.example.com", "MAIL FROM:<stranger@example.com>",
                                      f"RCPT TO:<{alias}>", "QUIT"])
    assert "250 2.1.5 Ok" in lines, lines


def test_postfix_wiring(devenv):
    """Forwarding recipients are sent to the daemon on port 25 and on
    submission; port 25 asks at END-OF-MESSAGE without depending on it."""
    conf = devenv["POSTFIX_CONFIG_DIR"]
    def q(name):
        return subprocess.run(["postconf", "-c", conf, "-h", "-x", name], capture_output=True,
                              text=True, check=True).stdout.strip()
    cls = q("emboux_forwarding")
    assert re.search(r"policy_context=emboux_forwarding, default_action=DUNNO \}.*static:\{451 4\.3\.5 ", cls), cls
    # port 25: the one RCPT verdict (pgsql-recipient.cf, migrations 0021 and 0030,
    # in the relay restrictions) names the class emboux_forwarding_mx for a
    # recipient forwarding outside EmBoux
    assert "pgsql-recipient.cf" in q("smtpd_relay_restrictions")
    assert "emboux_forwarding" in q("emboux_forwarding_mx").split(", ")[-1]
    assert "pgsql-forwarding.cf" in q("submission_recipient_restrictions")
    assert "default_action=DUNNO" in q("smtpd_end_of_data_restrictions")


def test_rcpt_and_end_of_message_share_one_policy_connection(fwd, port25, devenv):
    """The units accepted at RCPT wait in the worker that accepted them: smtpd
    must ask END-OF-MESSAGE over the same connection (one service spec in
    main.cf), or with several workers another one would count nothing."""
    alias = fwd.alias("fw", [outside("e1")])
    policy_port = f":{devenv['POLICYD_PORT']}"
    s = smtplib.SMTP(port25.host, port25.port, timeout=60)

    def smtpd_policy_connections():
        lines = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, check=True).stdout.splitlines()
        me = f":{s.sock.getsockname()[1]}"
        pid = next(line.split("pid=")[1].split(",")[0] for line in lines
                   if line.split()[4].endswith(me) and "smtpd" in line)
        return {line.split()[3] for line in lines if f"pid={pid}," in line and line.split()[4].endswith(policy_port)}
    try:
        s.ehlo("client.example.com")
        s.mail("stranger@example.com")
        assert s.rcpt(alias)[0] == 250
        at_rcpt = smtpd_policy_connections()
        assert s.data("Subject: one connection\r\n\r\nhi\r\n")[0] == 250
        assert smtpd_policy_connections() == at_rcpt and len(at_rcpt) == 1, at_rcpt
    finally:
        s.quit()
    assert fwd.sent_today(1) == 1
