"""Every environment variable the connector, its jobs and emboux-policyd read:
one registry (name, type, default, meaning) that the code reads through and
that the README's configuration table is generated from.

    python -m emboux_connector.settings --markdown   # the README table

tests/unit/test_settings.py checks that the README holds exactly that table
and that no module reads the environment around the registry.

An empty variable counts as unset (the default applies), as it always did.
"""

import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    type: type                  # str, int or float: what get() returns when set
    default: object             # None: no default (unset)
    doc: str                    # one line for the README's table (Markdown)
    group: str
    shown: str | None = None    # the default as the README shows it, when computed or absent
    secret: bool = False        # its value is redacted from every log (logs.py)


CONNECTOR, SERVERS, PROVIDERS, POLICYD = ("the REST API", "the mail servers and DNS", "the providers and webhooks",
                                          "emboux-policyd and the outbound rules")

_SETTINGS = (
    # --- the REST API -----------------------------------------------------------------
    Setting("EMBOUX_API_KEY", str, None, "the master token", CONNECTOR,
            shown="— (required, ≥ 16 chars)", secret=True),
    Setting("MAILDB_DSN", str, None, "`postgresql://emboux:…@host:5432/emboux_mail` (the connector's role; "
            "its password is redacted from logs)", CONNECTOR, shown="— (required)"),
    Setting("MAILDB_PASSWORD", str, None, "redacted from logs when set (a password given apart from the DSN)",
            CONNECTOR, secret=True),
    Setting("EMBOUX_DB_POOL_MAX", int, 8, "DB connections per connector process", CONNECTOR),
    Setting("EMBOUX_DEFAULT_QUOTA_MB", int, 1024,
            "storage of a mailbox created without `quota_mb` (0 = unlimited)", CONNECTOR),
    Setting("EMBOUX_PASSWORD_ROUNDS", int, 5000,
            "SHA512-CRYPT rounds of mailbox password hashes (Dovecot's default)", CONNECTOR),
    Setting("EMBOUX_RESERVED_DOMAINS", str, None,
            "the platform's own domains (comma or space separated): never a tenant's domain, nor their "
            "subdomains a client's; `MAIL_HOSTNAME`, `MX_HOST` and the registrable domain of `MAIL_HOSTNAME` "
            "are reserved anyway ([docs/domain-ownership.md](docs/domain-ownership.md))", CONNECTOR),
    Setting("EMBOUX_LOG_FILE", str, None, "application log (every 500 with its traceback); the dev stack sets "
            "`var/log/connector-app.log`", CONNECTOR, shown="stderr"),
    Setting("EMBOUX_LOG_LEVEL", str, "INFO", "level of the application log", CONNECTOR),
    Setting("AUTH_FAILURE_LIMIT", str, "30/minute;300/hour",
            "failed authentications (unknown, deactivated or expired token) per client address, in the "
            "`limits` library's notation; over it, every request from the address gets `429` with `Retry-After` "
            "and code `rate_limited`, whatever its token (successful requests count nothing)", CONNECTOR,
            shown="`30/minute;300/hour`"),
    Setting("AUTH_LIMIT_STORAGE", str, "memory://",
            "where those failures are counted (`limits` storage URI). In memory each gunicorn worker counts on "
            "its own: with 3 workers an address may fail up to 3 × the limit before all refuse it. A Redis "
            "(`redis://…`, `redis+unix://…`) makes it exact across workers: the dev stack uses its Redis, the "
            "deployment its `limiter` service. While the store is unreachable each worker counts in memory "
            "(logged)", CONNECTOR, shown="`memory://`"),
    Setting("API_TRUSTED_PROXIES", str, None,
            "comma-separated addresses of reverse proxies whose `X-Forwarded-For` (last hop) names the client; "
            "by default the header is ignored, so a client cannot choose the address it is counted under",
            CONNECTOR),
    Setting("JSON_PULL_TIMEOUT", float, 10, "seconds one fetch of a tenant's seed 002 JSON document may take "
            "(connection, TLS and body)", CONNECTOR),
    Setting("JSON_PULL_MAX_BYTES", int, 1048576, "largest seed 002 JSON document fetched; a larger one is "
            "refused (the run is recorded as rejected, nothing changes)", CONNECTOR),
    Setting("JSON_PULL_CA_FILE", str, None, "CA certificates (PEM) the JSON pull trusts instead of the system's "
            "(the dev stack's test CA)", CONNECTOR, shown="the system's"),
    Setting("JSON_PULL_ALLOW_PRIVATE", str, "0", "`1`: the JSON pull may fetch from loopback, private and "
            "reserved addresses (dev and test stacks only: otherwise a tenant could make the platform read "
            "its own network)", CONNECTOR, shown="`0`"),
    # --- the mail servers and DNS -------------------------------------------------------
    Setting("MAIL_HOSTNAME", str, "mail.emboux.test", "the mail server's host name (SPF `a:`, MX, reserved)",
            SERVERS),
    Setting("MX_HOST", str, None, "the MX host that `dns-check` expects", SERVERS, shown="`MAIL_HOSTNAME`"),
    Setting("LOCAL_SPF_MECHANISM", str, None, "what a `local` domain's SPF must include", SERVERS,
            shown="`a:<MAIL_HOSTNAME>`"),
    Setting("DNS_RESOLVER", str, None, "`host[:port]` of the DNS server `dns-check` asks", SERVERS,
            shown="the system's"),
    Setting("DNS_TIMEOUT", float, 3, "seconds per DNS lookup of `dns-check`", SERVERS),
    Setting("DKIM_KEY_BITS", int, 2048, "RSA size of new DKIM keys (at least 1024)", SERVERS),
    Setting("DKIM_ROTATION_OVERLAP_DAYS", int, 7, "days a rotated-out DKIM key stays published", SERVERS),
    Setting("SMTP_HOST", str, "127.0.0.1", "Postfix, for `/health`", SERVERS),
    Setting("SMTP_PORT", int, 25, "Postfix's port, for `/health`", SERVERS),
    Setting("IMAP_HOST", str, "127.0.0.1", "Dovecot, for `/health`", SERVERS),
    Setting("IMAP_PORT", int, 143, "Dovecot's port, for `/health`", SERVERS),
    Setting("IMAPS_PORT", int, 993, "the IMAPS (implicit TLS) port mail clients are told: autoconfig, "
            "autodiscover, `.mobileconfig`, the `_imaps._tcp` SRV record `dns-check` proposes", SERVERS),
    Setting("SUBMISSIONS_PORT", int, 465, "the submission port with implicit TLS (RFC 8314) clients are told, "
            "likewise (`_submissions._tcp`)", SERVERS),
    Setting("SUBMISSION_PORT", int, 587, "the submission port with STARTTLS clients are told, likewise "
            "(`_submission._tcp`)", SERVERS),
    Setting("PUBLIC_HOST", str, None, "the host name that serves the connector's public pages over HTTPS "
            "(mail-client setup, MTA-STS policies, BIMI logos): each domain's `autoconfig.`, `autodiscover.` "
            "and `mta-sts.` names point at it, BIMI logo URLs name it", SERVERS, shown="`MAIL_HOSTNAME`"),
    Setting("TLSRPT_RUA", str, None, "where TLS-RPT reports go (the `rua=` of the `_smtp._tls` record "
            "`dns-check` proposes)", SERVERS, shown="`mailto:tls-reports@<MAIL_HOSTNAME>`"),
    Setting("DMARC_REPORT_ADDRESS", str, None, "where DMARC aggregate reports go (the `rua=` of the DMARC record "
            "`dns-check` proposes); Postfix hands its mail, and that of `TLSRPT_RUA`'s address, to "
            "`emboux-connector reports-lmtp` ([docs/reports.md](docs/reports.md))", SERVERS,
            shown="`dmarc-reports@<MAIL_HOSTNAME>`"),
    Setting("REPORT_MAX_BYTES", int, 2097152, "largest report mail stored (bytes as received); a larger one is "
            "accepted, recorded as rejected (`too_large`) and not parsed", SERVERS),
    Setting("REPORT_MAX_DECOMPRESSED_BYTES", int, 20971520, "largest report once decompressed (gzip, zip): the "
            "decompression stops there and the report is recorded as rejected", SERVERS),
    Setting("POSTFIX_QUEUE_DIR", str, None, "Postfix's queue directory: `/health` reports how many messages "
            "are active and deferred (unset: not reported)", SERVERS),
    Setting("OPENDKIM_MILTER", str, None, "OpenDKIM's milter socket as Postfix names it (`inet:host:port` or "
            "`unix:/path`): `/health` checks that it answers the milter handshake and that every signing domain "
            "has its key (unset: not reported)", SERVERS),
    Setting("MAIL_CHECK_TIMEOUT", float, 3, "seconds for each mail-server probe", SERVERS),
    Setting("VMAIL_DIR", str, "/var/vmail", "the mail store (removed with a mailbox or domain)", SERVERS),
    Setting("DOVEADM", str, "doveadm", "the `doveadm` command (quota, retention)", SERVERS),
    Setting("RSPAMD_MAP_CLIENTS", str, None, "addresses, networks or host names (comma or space separated) "
            "allowed to read Rspamd's settings map `/mailserver/rspamd/settings` (the domains' spam settings, "
            "[docs/inbound.md](docs/inbound.md)) and to report outbound spam: the Rspamd servers' own, never a "
            "proxy's; checked against the connection's address (a host name resolved at each request: the "
            "deployment's `rspamd`). Unset: the map answers 404", SERVERS),
    Setting("DOVECOT_CONFIG", str, "/etc/dovecot/dovecot.conf", "the Dovecot configuration `doveadm` reads",
            SERVERS),
    # --- the providers and webhooks -------------------------------------------------------
    Setting("SES_REGION", str, "us-east-1", "Amazon SES region", PROVIDERS),
    Setting("SES_ENDPOINT_URL", str, None, "SES API endpoint (a stand-in in the dev stack)", PROVIDERS,
            shown="AWS's"),
    Setting("SES_ACCESS_KEY_ID", str, None, "SES credentials (else `AWS_ACCESS_KEY_ID`, then boto3's chain)",
            PROVIDERS),
    Setting("SES_SECRET_ACCESS_KEY", str, None, "its secret", PROVIDERS, secret=True),
    Setting("AWS_ACCESS_KEY_ID", str, None, "SES SMTP credentials when `SES_ACCESS_KEY_ID` is unset", PROVIDERS),
    Setting("AWS_SECRET_ACCESS_KEY", str, None, "its secret", PROVIDERS, secret=True),
    Setting("SES_SMTP_RELAY", str, None, "the relay Postfix uses for SES domains", PROVIDERS,
            shown="`[email-smtp.<SES_REGION>.amazonaws.com]:587`"),
    Setting("SNS_TOPIC_ARNS", str, "", "comma-separated SNS topics whose SES notifications are accepted",
            PROVIDERS, shown="— (none)"),
    Setting("SNS_ENDPOINT_URL", str, None, "SNS API endpoint (subscription confirmation)", PROVIDERS,
            shown="AWS's"),
    Setting("MAILGUN_API_URL", str, "https://api.mailgun.net", "Mailgun API", PROVIDERS),
    Setting("MAILGUN_API_KEY", str, "", "Mailgun API key", PROVIDERS, shown="—", secret=True),
    Setting("MAILGUN_WEBHOOK_URL", str, None, "where Mailgun is told to post its events", PROVIDERS),
    Setting("MAILGUN_SMTP_RELAY", str, "[smtp.mailgun.org]:587", "the relay Postfix uses for Mailgun domains",
            PROVIDERS, shown="`[smtp.mailgun.org]:587`"),
    Setting("MAILGUN_WEBHOOK_SIGNING_KEY", str, None, "Mailgun's webhook signing key (unset: the webhook "
            "answers 503)", PROVIDERS, secret=True),
    Setting("MAILGUN_WEBHOOK_MAX_AGE", int, 300, "seconds a Mailgun event's timestamp may be away from now",
            PROVIDERS),
    Setting("GUILLOTINE_BOUNCE_RATE", float, 0.5, "bounce rate (%) of the month over which a domain's "
            "outbound is suspended", PROVIDERS),
    Setting("GUILLOTINE_COMPLAINT_RATE", float, 0.1, "complaint rate (%) of the month over which it is",
            PROVIDERS),
    Setting("GUILLOTINE_MIN_VOLUME", float, 100, "messages sent in the month before those rates count",
            PROVIDERS),
    Setting("GUILLOTINE_SPAM_LIMIT", float, 5, "messages of a domain's authenticated users refused as spam "
            "(Rspamd on submission) in the month that suspend its outbound; 0 = never "
            "([docs/inbound.md](docs/inbound.md))", PROVIDERS),
    # --- emboux-policyd and the outbound rules ---------------------------------------------
    Setting("POLICYD_DSN", str, None, "the mail DB of `emboux-policyd`", POLICYD, shown="`MAILDB_DSN`"),
    Setting("POLICYD_HOST", str, "127.0.0.1", "where it listens", POLICYD),
    Setting("POLICYD_PORT", int, 10040, "its port", POLICYD),
    Setting("POLICYD_WORKERS", int, None, "its processes sharing the port", POLICYD,
            shown="one per two CPUs, 1 to 4"),
    Setting("POLICYD_LOG_LEVEL", str, "INFO", "its log level", POLICYD),
    Setting("POLICYD_DB_DOWN_ACTION", str, "451 4.3.0 Outbound policy temporarily unavailable, try again later",
            "its answer while the mail DB is unreachable", POLICYD, shown="`451 4.3.0 …`"),
    Setting("HOURLY_FRACTION", float, 0.167, "share of the daily cap one hour may send", POLICYD),
    Setting("HOURLY_FLOOR", int, 10, "the hourly cap is never below this", POLICYD),
    Setting("WARMUP_START", int, 50, "warm-up cap on day 0 (it grows by the profile's factor per day)", POLICYD),
    Setting("SPIKE_MIN", int, 50, "the spike threshold is never below this", POLICYD),
)

REGISTRY = {s.name: s for s in _SETTINGS}
SECRETS = tuple(s.name for s in _SETTINGS if s.secret)


def get(name, env=None):
    """The variable's value (a string) when set and not empty, else its registered default."""
    value = (os.environ if env is None else env).get(name)
    return value if value not in (None, "") else REGISTRY[name].default


def raw(name, env=None):
    """What the environment says, without the default: None when unset or empty."""
    REGISTRY[name]                 # a KeyError for a name that is not registered
    value = (os.environ if env is None else env).get(name)
    return value if value not in (None, "") else None


def number(name, env=None):
    """A numeric setting read at start-up: a malformed value stops the process."""
    s = REGISTRY[name]
    value = get(name, env)
    if value is None or not isinstance(value, str):
        return value
    try:
        return s.type(value)
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {value!r}") from None


def lenient(name, env=None):
    """A numeric setting read while serving: a malformed value means the default."""
    s = REGISTRY[name]
    try:
        return s.type(get(name, env))
    except (TypeError, ValueError):
        return s.default


def _default_cell(s):
    if s.shown is not None:
        return s.shown
    return "—" if s.default in (None, "") else str(s.default)


def markdown():
    """The README's configuration table, one section per group."""
    out = []
    for group in (CONNECTOR, SERVERS, PROVIDERS, POLICYD):
        out += [f"**{group[0].upper()}{group[1:]}**", "", "| variable | default | meaning |", "|---|---|---|"]
        out += [f"| `{s.name}` | {_default_cell(s)} | {s.doc} |" for s in _SETTINGS if s.group == group]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m emboux_connector.settings --markdown")
    sys.stdout.write(markdown())
