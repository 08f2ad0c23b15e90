"""The deployment's ManageSieve (issue 17, docs/inbound.md): the mail
container's Dovecot on 4190, published at EMBOUX_PORT_MANAGESIEVE. Seen from
outside the container: no login before STARTTLS, the certificate verified
against the deployment's CA, and a filter uploaded there files the next
message that comes in on port 25."""

import smtplib
import uuid
from email.message import EmailMessage

from deploy_stack import HOSTNAME, PASSWORD, wait_until
from managesieve_client import ManageSieve


def folder_has(d, user, folder, subject):
    m = d.imaps(user)
    try:
        if m.select(f'"{folder}"', readonly=True)[0] != "OK":
            return False
        return bool(m.search(None, "SUBJECT", f'"{subject}"')[1][0].split())
    finally:
        m.logout()


def test_a_filter_uploaded_over_managesieve_files_the_next_message(deployment, hosted):
    d = deployment
    bob = hosted["bob"]
    c = ManageSieve("127.0.0.1", d.ports["MANAGESIEVE"])
    try:
        assert "STARTTLS" in c.capabilities, c.greeting
        assert not c.login(bob, PASSWORD).ok          # not from the container's own address: TLS first
        assert c.starttls(str(d.ca), HOSTNAME).ok
        assert c.login(bob, PASSWORD).ok
        marker = uuid.uuid4().hex[:8]
        script = ('require ["fileinto", "mailbox"];\r\n'
                  f'if header :contains "Subject" "{marker}" {{ fileinto :create "Deployed"; }}\r\n')
        assert c.put("deployed", script).ok and c.activate("deployed").ok
        assert not c.put("broken", "if {\r\n").ok
        assert c.scripts() == {"deployed": True}
    finally:
        c.logout()

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "someone@outside-sender.test", bob, f"{marker} filtered"
    msg.set_content("Filed by the mailbox's own Sieve script.")
    with smtplib.SMTP("127.0.0.1", d.ports["SMTP"], timeout=60) as s:
        s.send_message(msg)
    assert wait_until(lambda: folder_has(d, bob, "Deployed", msg["Subject"]), timeout=120), d.logs()
