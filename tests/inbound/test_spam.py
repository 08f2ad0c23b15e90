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
