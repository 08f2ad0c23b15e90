"""(Runs last in tests/inbound: Rspamd restarts after it, its maps reload.)
A filter outage defers mail (4xx): with Rspamd stopped, port 25 answers
451 4.7.1 (Postfix milter_default_action = tempfail) and accepts nothing
unscanned; once Rspamd is back, the same message is accepted and scanned.

Stops the stack's Rspamd for a few seconds (scripts/dev/stack-rspamd.sh
starts it again): mail arriving meanwhile on port 25 is deferred, as in
production."""

import pathlib
import subprocess

from inbound_helpers import until

ROOT = pathlib.Path(__file__).resolve().parents[2]


def stack(fn):
    script = (f"set -euo pipefail; ROOT={ROOT}; cd $ROOT; "
              "for m in common postgres python connector; do . scripts/dev/$m.sh; done; "
              f". scripts/dev/stack-rspamd.sh; {fn}")
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr


def test_rspamd_down_defers_and_nothing_is_accepted_unscanned(inbound, make_sender, mailbox):
    sender = make_sender(policy="none")
    frm, subject, raw = sender.message(mailbox)
    stack("pid_stop rspamd 15")
    try:
        code, text = inbound.send(frm, mailbox, raw)
        assert code == 451 and b"4.7.1" in text, (code, text)
        assert inbound.find(mailbox, subject) is None and inbound.find(mailbox, subject, "Junk") is None
    finally:
        stack("stack_rspamd_up")
    # the sender's retry goes through, scanned
    until(lambda: inbound.send(frm, mailbox, raw) == (250, b""), what="acceptance once Rspamd is back")
    box, msg = inbound.where(mailbox, subject)
    assert box == "INBOX" and msg["X-Spam-Status"] and msg["Authentication-Results"]
