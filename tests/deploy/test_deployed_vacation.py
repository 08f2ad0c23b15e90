"""The deployment's vacation auto-reply (issue 17, docs/inbound.md
"Vacation"): set through the deployed API, answered by the mail container's
Dovecot, sent through its loopback auto-reply service (policy daemon,
OpenDKIM) -- here to a mailbox of the same deployment, the only inbox a test
can read -- and that service unreachable from outside the container."""

import email
import smtplib
import uuid

from deploy_stack import PASSWORD, wait_until

AUTOREPLY_PORT = 10027          # docker/entrypoint.sh


def _message(d, user, subject):
    m = d.imaps(user)
    try:
        m.select("INBOX", readonly=True)
        nums = m.search(None, "SUBJECT", f'"{subject}"')[1][0].split()
        if not nums:
            return None
        return email.message_from_bytes(m.fetch(nums[-1], "(BODY.PEEK[])")[1][0][1])
    finally:
        m.logout()


def test_a_vacation_reply_is_signed_counted_and_sent_once(deployment):
    d = deployment
    ref = f"p{uuid.uuid4().hex[:8]}"
    r = d.api("POST", "/api-keys/", json={"partner_ref": ref, "domains_allowed": 1, "mailboxes_per_domain": 5})
    assert r.status_code == 201, r.text
    domain = f"{uuid.uuid4().hex[:10]}.deploy-test.net"
    assert d.api("POST", "/domains/", json={"name": domain, "partner_ref": ref}).status_code == 201
    assert d.api("POST", f"/domains/{domain}/verify").status_code == 200     # its DKIM key
    away, writer, other = f"away@{domain}", f"writer@{domain}", f"other@{domain}"
    for box in (away, writer, other):
        r = d.api("POST", "/users/", json={"domain_name": domain, "email": box, "password": PASSWORD})
        assert r.status_code == 201, r.text
    tag = uuid.uuid4().hex[:8]
    r = d.api("PUT", f"/users/{away}/vacation",
              json={"enabled": True, "subject": f"Away {tag}", "body": f"Back soon.\n.\n{tag}"})
    assert r.status_code == 200, r.text

    def note(sender, n):
        with smtplib.SMTP("127.0.0.1", d.ports["SMTP"], timeout=60) as s:
            s.ehlo("sender.example.net")
            assert not s.sendmail(sender, [away], f"From: {sender}\r\nTo: {away}\r\nSubject: note {tag} {n}\r\n"
                                                  f"Message-ID: <{tag}.{n}@example.net>\r\n\r\nhello\r\n")
        assert wait_until(lambda: f"note {tag} {n}" in d.subjects(away), timeout=120), d.logs()

    note(writer, 1)
    reply = wait_until(lambda: _message(d, writer, f"Away {tag}"), timeout=120)
    assert reply, d.logs()
    assert reply["Auto-Submitted"].startswith("auto-replied")
    assert f"d={domain}" in " ".join(reply.get_all("DKIM-Signature") or []), reply.as_string()[:2000]
    assert reply.get_payload(decode=True).decode().replace("\r\n", "\n").startswith(f"Back soon.\n.\n{tag}")
    # once per sender: the second note is delivered, and when the reply to
    # a later sender has arrived, the first sender still has one
    note(writer, 2)
    note(other, 3)
    assert wait_until(lambda: f"Away {tag}" in d.subjects(other), timeout=120), d.logs()
    assert d.subjects(writer).count(f"Away {tag}") == 1
    # both replies counted against the domain by the policy daemon
    assert wait_until(lambda: d.api("GET", f"/domains/{domain}/outbound").json()["outbound_sent_today"] == 2,
                      timeout=30), d.api("GET", f"/domains/{domain}/outbound").text


def test_the_auto_reply_service_listens_on_the_containers_loopback_only(deployment):
    tcp = deployment.exec("mail", "cat", "/proc/net/tcp").stdout.splitlines()[1:]
    tcp6 = deployment.exec("mail", "cat", "/proc/net/tcp6", check=False).stdout.splitlines()[1:]
    listening = [line.split()[1] for line in tcp + tcp6 if line.split()[3] == "0A"]    # LISTEN
    ours = [addr for addr in listening if addr.endswith(f":{AUTOREPLY_PORT:04X}")]
    assert ours == [f"0100007F:{AUTOREPLY_PORT:04X}"], listening
    published = deployment.compose("port", "mail", check=False).stdout
    assert f":{AUTOREPLY_PORT}" not in published.replace("0.0.0.0:", " "), published
