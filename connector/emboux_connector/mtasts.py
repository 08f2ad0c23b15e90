"""MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) of a hosted domain.

The policy a domain's tenant chose (mode, max_age) is stored in
domain_mta_sts; the policy text is built here from it and the deployment's
MX host, and the id published in `_mta-sts.<domain>` is a digest of that
text: it changes exactly when what `https://mta-sts.<domain>/.well-known/
mta-sts.txt` serves changes (a sender refetches the policy when the id it
cached differs), and it cannot drift from the served policy.
"""

import hashlib

from . import dnscheck, settings

MODES = ("none", "testing", "enforce")
DEFAULT_MAX_AGE = 604800          # a week: RFC 8461's example, long enough to protect
POLICY_PATH = "/.well-known/mta-sts.txt"


def load(cur, domain_id):
    cur.execute("SELECT mode, max_age, updated_at FROM domain_mta_sts WHERE domain_id = %s", (domain_id,))
    return cur.fetchone()


def policy_text(mode, max_age):
    """The policy file: CRLF lines, the deployment's MX host as the one mx."""
    lines = ["version: STSv1", f"mode: {mode}", f"mx: {dnscheck.mx_host()}", f"max_age: {max_age}"]
    return "\r\n".join(lines) + "\r\n"


def policy_id(text):
    # 1*32 ALPHA/DIGIT (RFC 8461 3.1): 20 hex digits of the text's SHA-256
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def sts_record(domain, text):
    return {"type": "TXT", "name": f"_mta-sts.{domain}", "value": f"v=STSv1; id={policy_id(text)}"}


def tlsrpt_rua():
    return settings.get("TLSRPT_RUA") or f"mailto:tls-reports@{settings.get('MAIL_HOSTNAME').rstrip('.')}"


def tlsrpt_record(domain):
    return {"type": "TXT", "name": f"_smtp._tls.{domain}", "value": f"v=TLSRPTv1; rua={tlsrpt_rua()}"}


def state(domain, row, public_host):
    """What GET/PUT /domains/{name}/mta-sts answer: the mode and every record to publish."""
    if row is None:
        return {"name": domain, "mode": None, "max_age": None, "policy_id": None, "policy": None,
                "policy_url": None, "updated_at": None, "records": [tlsrpt_record(domain)]}
    text = policy_text(row["mode"], row["max_age"])
    return {"name": domain, "mode": row["mode"], "max_age": row["max_age"], "policy_id": policy_id(text),
            "policy": text, "policy_url": f"https://mta-sts.{domain}{POLICY_PATH}",
            "updated_at": row["updated_at"].isoformat(),
            "records": [{"type": "CNAME", "name": f"mta-sts.{domain}", "value": public_host},
                        sts_record(domain, text), tlsrpt_record(domain)]}
