"""Sender authentication on the inbound port: SPF, DKIM and DMARC checked by
Rspamd against the test DNS, the result in Authentication-Results, and the
sender's DMARC policy honoured (p=reject -> 5xx, p=quarantine -> Junk)."""


def auth_results(msg):
    return " ".join(msg.get_all("Authentication-Results") or [])


def test_signed_genuine_sender_passes_dkim_spf_and_dmarc(inbound, make_sender, mailbox):
    sender = make_sender(policy="reject")
    frm, subject, raw = sender.message(mailbox)
    assert inbound.send(frm, mailbox, raw) == (250, b"")
    box, msg = inbound.where(mailbox, subject)
    assert box == "INBOX"
    ar = auth_results(msg)
    assert f"dkim=pass header.d={sender.domain}" in ar, ar
    assert "spf=pass" in ar and f"dmarc=pass (policy=reject) header.from={sender.domain}" in ar, ar
    assert msg["X-Spam-Status"].startswith("No"), msg["X-Spam-Status"]


def test_forging_a_p_reject_domain_is_refused_at_end_of_data(inbound, make_sender, mailbox):
    victim = make_sender(policy="reject", spf_allows_us=False)
    frm, subject, raw = victim.message(mailbox, local="ceo", sign=False)
    code, text = inbound.send(frm, mailbox, raw)
    assert code // 100 == 5 and b"5.7.1" in text, (code, text)
    # a signature that does not verify is no better (the key is not the published one)
    other = make_sender(policy="reject", spf_allows_us=False)
    other.domain = victim.domain
    frm, subject2, raw = other.message(mailbox, local="ceo")
    code, text = inbound.send(frm, mailbox, raw)
    assert code // 100 == 5, (code, text)
    assert inbound.find(mailbox, subject) is None and inbound.find(mailbox, subject, "Junk") is None


def test_forging_a_p_quarantine_domain_goes_to_junk(inbound, make_sender, mailbox):
    victim = make_sender(policy="quarantine", spf_allows_us=False)
    frm, subject, raw = victim.message(mailbox, sign=False)
    assert inbound.send(frm, mailbox, raw) == (250, b"")
    box, msg = inbound.where(mailbox, subject)
    assert box == "Junk" and msg["X-Spam"] == "Yes"
    assert "dmarc=fail" in auth_results(msg)


def test_forged_authentication_results_are_replaced(inbound, make_sender, mailbox):
    victim = make_sender(policy="none", spf_allows_us=False)
    frm, subject, raw = victim.message(
        mailbox, sign=False,
        extra_headers=("Authentication-Results: mail.emboux.test; dkim=pass; spf=pass; dmarc=pass\r\n"
                       "X-Spam-Status: No, score=-100\r\n"))
    assert inbound.send(frm, mailbox, raw) == (250, b"")
    _, msg = inbound.where(mailbox, subject)
    ars = msg.get_all("Authentication-Results")
    assert len(ars) == 1 and "spf=fail" in ars[0], ars
    assert msg.get_all("X-Spam-Status") and len(msg.get_all("X-Spam-Status")) == 1
    assert "-100" not in msg["X-Spam-Status"]
