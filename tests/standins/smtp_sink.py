"""The local SMTP capture server: stands in for the providers' SMTP relays
(SES, Mailgun) and for the internet. Postfix relays everything here in the
dev stack; each message is written as JSON into --dir:

    {"mail_from", "rcpt_tos", "auth": {"login", "password"} | null,
     "peer", "received_at", "data"}

so tests can read what was relayed, with which credentials and DKIM
signature. AUTH PLAIN/LOGIN is offered and recorded, never required.
"""

import argparse
import json
import os
import time
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult


class Handler:
    def __init__(self, outdir):
        self.outdir = outdir

    async def handle_DATA(self, server, session, envelope):
        auth = getattr(session, "emboux_auth", None)
        rec = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "auth": auth,
               "peer": list(session.peer) if session.peer else None, "received_at": time.time(),
               "data": envelope.content.decode("utf-8", "replace")}
        name = f"{time.time():.6f}-{uuid.uuid4().hex[:8]}.json"
        tmp = os.path.join(self.outdir, "." + name)
        with open(tmp, "w") as f:
            json.dump(rec, f)
        os.rename(tmp, os.path.join(self.outdir, name))
        return "250 2.0.0 Ok: captured"


def authenticator(server, session, envelope, mechanism, auth_data):
    login = auth_data.login.decode() if isinstance(auth_data.login, bytes) else auth_data.login
    password = auth_data.password.decode() if isinstance(auth_data.password, bytes) else auth_data.password
    session.emboux_auth = {"mechanism": mechanism, "login": login, "password": password}
    return AuthResult(success=True)


class Sink(Controller):
    def factory(self):
        return SMTP(self.handler, hostname="sink.emboux.test", authenticator=authenticator,
                    auth_require_tls=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    sink = Sink(Handler(args.dir), hostname="127.0.0.1", port=args.port)
    sink.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sink.stop()


if __name__ == "__main__":
    main()
