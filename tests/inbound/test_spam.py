"""The spam score: GTUBE above the reject threshold is refused at SMTP (5xx,
never a silent drop); the add-header GTUBE variant is delivered to Junk."""

from inbound_helpers import GTUBE_JUNK, GTUBE_REJECT


def test_gtube_is_refused_at_end_of_data(inbound, make_sender, mailbox):
    sender = make_sender(policy="none")
    frm, subject, raw = sender.message(mailbox, body=f"{GTUBE_REJECT}\r\n")
    code, text = inbound.send(frm, mailbox, raw)
    assert code == 554 and b"5.7.1" in text, (code, text)
    assert inbound.find(mailbox, subject) is None and inbound.find(mailbox, subject, "Junk") is None


def test_spam_scored_for_junk_lands_in_junk(inbound, make_sender, mailbox):
    sender = make_sender(policy="none")
    frm, subject, raw = sender.message(mailbox, body=f"{GTUBE_JUNK}\r\n")
    assert inbound.send(frm, mailbox, raw) == (250, b"")
    box, msg = inbound.where(mailbox, subject)
    assert box == "Junk", box
    assert msg["X-Spam"] == "Yes"


def test_broken_mime_and_a_huge_header_are_scanned_never_dropped(inbound, make_sender, mailbox):
    sender = make_sender(policy="none")
    # a multipart whose boundary never comes, and a base64 part that is not base64
    frm, subject, raw = sender.message(
        mailbox, sign=False, body="--nowhere\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                                  "%%% not base64 %%%\r\n",
        extra_headers='Content-Type: multipart/mixed; boundary="never-used"\r\n')
    raw = raw.replace(b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n", b"MIME-Version: 1.0\r\n")
    code, text = inbound.send(frm, mailbox, raw)
    if code == 250:
        box, msg = inbound.where(mailbox, subject)
        assert msg["X-Spam-Status"] is not None, "delivered unscanned"
    else:   # refused is fine too: never accepted and lost
        assert code // 100 == 5, (code, text)
    # a 60 KB header line (folded): scanned and delivered, or refused -- never lost
    frm, subject2, raw = sender.message(mailbox, extra_headers="X-Long: " + "\r\n ".join(["y" * 900] * 66) + "\r\n")
    code, text = inbound.send(frm, mailbox, raw)
    if code == 250:
        box, msg = inbound.where(mailbox, subject2)
        assert msg["X-Spam-Status"] is not None
    else:
        assert code // 100 == 5, (code, text)
