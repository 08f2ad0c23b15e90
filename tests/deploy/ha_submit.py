"""Run inside a mail node's network namespace (nsenter -n, from
tests/deploy/test_ha.py): N connections at once to the node's implicit-TLS
submission port on 127.0.0.1, one message each; prints JSON
[[subject, accepted, smtp_code], ...].

From 127.0.0.1 in the node, the clients are the host's own tools for
Postfix's anvil (smtpd_client_event_limit_exceptions, main.cf): the
per-address AUTH rate limit, which would otherwise refuse the 21st AUTH of
a minute from the test's one address, stays out of a test of the daily cap.
The policy daemon and its cap see them like any submission.
"""

import json
import smtplib
import ssl
import sys
from concurrent.futures import ThreadPoolExecutor


def submit(port, ca, user, password, rcpt, subject):
    try:
        with smtplib.SMTP_SSL("127.0.0.1", port, context=ssl.create_default_context(cafile=ca), timeout=120) as s:
            s.login(user, password)
            s.sendmail(user, [rcpt], f"From: {user}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nhi\r\n")
            return [subject, True, 250]
    except smtplib.SMTPRecipientsRefused as e:
        return [subject, False, next(iter(e.recipients.values()))[0]]
    except smtplib.SMTPResponseException as e:
        return [subject, False, e.smtp_code]


def main():
    port, ca, user, password, rcpt, n, tag = sys.argv[1:8]
    with ThreadPoolExecutor(int(n)) as ex:
        out = list(ex.map(lambda i: submit(int(port), ca, user, password, rcpt, f"{tag}-{i}"), range(int(n))))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
