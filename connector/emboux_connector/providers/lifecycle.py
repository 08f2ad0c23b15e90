"""The glue between providers and the mail DB, used by api/identity.py and
the small hooks in api/domains.py (create, delete, activate, parent).

Provider calls run inside the request's transaction: if the provider fails
with ProviderError, the endpoint answers 502 and nothing is stored -- except
on domain creation, where the domain is created anyway and the error is
recorded (verification can be retried with POST verify).
"""

import json
import logging

from .. import dkim, dnscheck
from ..errors import ApiError
from . import ProviderError, get
from .local import local_spf_mechanism

log = logging.getLogger(__name__)

ROW_SQL = ("SELECT d.id, d.name, d.parent_id, d.provider, d.provider_verified, d.partner_ref, "
           "d.outbound_tier, d.outbound_enforcement, p.name AS parent_name, p.provider AS parent_provider, "
           "coalesce(p.provider_verified, false) AS parent_verified "
           "FROM domains d LEFT JOIN domains p ON p.id = d.parent_id WHERE d.id = %s")


def load(cur, domain_id):
    cur.execute(ROW_SQL, (domain_id,))
    return cur.fetchone()


def provider_error(exc):
    return ApiError(502, f"Provider error: {exc}")


def _store(cur, row, ident, error=None):
    cur.execute(
        "INSERT INTO provider_identities (domain_id, provider, state, dns_records, verification_token, "
        " dkim_tokens, checked_at, verified_at, last_error) "
        "VALUES (%(id)s, %(p)s, %(s)s, %(r)s, %(t)s, %(k)s, now(), "
        "        CASE WHEN %(s)s = 'verified' THEN now() END, %(e)s) "
        "ON CONFLICT (domain_id) DO UPDATE SET provider = EXCLUDED.provider, state = EXCLUDED.state, "
        " dns_records = CASE WHEN EXCLUDED.dns_records = '[]'::jsonb THEN provider_identities.dns_records "
        "                    ELSE EXCLUDED.dns_records END, "
        " verification_token = coalesce(EXCLUDED.verification_token, provider_identities.verification_token), "
        " dkim_tokens = CASE WHEN EXCLUDED.dkim_tokens = '{}' THEN provider_identities.dkim_tokens "
        "                    ELSE EXCLUDED.dkim_tokens END, "
        " checked_at = now(), last_error = EXCLUDED.last_error, "
        " verified_at = coalesce(provider_identities.verified_at, EXCLUDED.verified_at)",
        {"id": row["id"], "p": row["provider"], "s": ident.state if ident else "failed",
         "r": json.dumps(ident.dns_records if ident else []), "t": ident.verification_token if ident else None,
         "k": list(ident.dkim_tokens) if ident else [], "e": error})
    if ident and ident.state == "verified" and not row["provider_verified"]:
        cur.execute("UPDATE domains SET provider_verified = true, provider_verified_at = now(), "
                    "updated_at = now() WHERE id = %s", (row["id"],))


def _local_identity(cur, row, check_dns=True):
    """Local: the active key (created on first use) published = verified."""
    from . import Identity
    key = dkim.ensure_key(cur, row["id"])
    records = [dkim.record(row["name"], k) for k in dkim.published(cur, row["id"])]
    records.append({"type": "TXT", "name": row["name"], "purpose": "spf",
                    "value": f"v=spf1 {local_spf_mechanism()} ~all"})
    state = "pending"
    detail = "publish the DKIM TXT record, then GET verify-status"
    if check_dns:
        ok, found = dnscheck.dkim_txt_published(row["name"], key["selector"], key["public_key"])
        if ok:
            state, detail = "verified", "DKIM key published"
        elif found is None:
            detail = "DNS lookup failed; try again"
    return Identity(state=state, dns_records=records, detail=detail)


def identity_json(cur, row, detail=None):
    cur.execute("SELECT state, dns_records, verification_token, dkim_tokens, requested_at, checked_at, "
                "verified_at, last_error FROM provider_identities WHERE domain_id = %s", (row["id"],))
    ident = cur.fetchone()
    row = load(cur, row["id"])
    inherited = bool(row["parent_id"] and (row["parent_verified"] or row["parent_provider"] == "local"))
    return {
        "name": row["name"],
        "provider": row["provider"],
        "state": ident["state"] if ident else "not_started",
        "verified": bool(row["provider_verified"]) or inherited,
        # what the policy daemon enforces (engine.DOMAIN_STATE_SQL), as GET
        # .../outbound says: a `local` domain needs no provider to send
        "ses_verified": bool(row["provider_verified"]) or inherited or row["provider"] == "local",
        "inherited_from": row["parent_name"] if inherited else None,
        "dns_records": ident["dns_records"] if ident else [],
        "checked_at": ident["checked_at"].isoformat() if ident and ident["checked_at"] else None,
        "verified_at": ident["verified_at"].isoformat() if ident and ident["verified_at"] else None,
        "detail": detail or (ident["last_error"] if ident else None),
    }


def start(cur, row):
    """POST verify: ask the provider (or make the DKIM key), store the state."""
    provider = get(row["provider"])
    try:
        if row["provider"] == "local":
            ident = _local_identity(cur, row)
        else:
            ident = provider.start_verification(row["name"])
            if provider.account_wide_credential:
                ensure_credential(cur, row)
    except ProviderError as exc:
        raise provider_error(exc) from exc
    _store(cur, row, ident)
    return identity_json(cur, row, ident.detail)


def poll(cur, row):
    """GET verify-status: poll the provider, store success."""
    cur.execute("SELECT state FROM provider_identities WHERE domain_id = %s", (row["id"],))
    known = cur.fetchone()
    if known is None and row["parent_id"] and row["parent_verified"]:
        return identity_json(cur, row, f"inherits the verification of {row['parent_name']}")
    if known and known["state"] == "inherited":
        return identity_json(cur, row)
    try:
        if row["provider"] == "local":
            ident = _local_identity(cur, row)
        else:
            ident = get(row["provider"]).verification_status(row["name"])
    except ProviderError as exc:
        raise provider_error(exc) from exc
    _store(cur, row, ident)
    return identity_json(cur, row, ident.detail)


def ensure_credential(cur, row):
    """The relay credential of the domain's provider, created when missing.
    Returns 'present', 'created', 'updated' (an account-wide credential whose
    settings changed) or 'skipped' (local: direct delivery)."""
    provider = get(row["provider"])
    if row["provider"] == "local":
        return "skipped"
    if provider.account_wide_credential:
        # Derived from the connector's settings, which the operator may rotate:
        # the stored copy Postfix reads follows them.
        cred = provider.smtp_credential(row["name"])
        cur.execute(
            "INSERT INTO relay_credentials (provider, domain_id, relayhost, username, password) "
            "VALUES (%s, NULL, %s, %s, %s) "
            "ON CONFLICT (provider) WHERE domain_id IS NULL DO UPDATE SET "
            "relayhost = EXCLUDED.relayhost, username = EXCLUDED.username, password = EXCLUDED.password "
            "WHERE (relay_credentials.relayhost, relay_credentials.username, relay_credentials.password) "
            "IS DISTINCT FROM (EXCLUDED.relayhost, EXCLUDED.username, EXCLUDED.password) "
            "RETURNING (xmax = 0) AS inserted",
            (row["provider"], cred.relayhost, cred.username, cred.password))
        changed = cur.fetchone()
        if changed is None:
            return "present"
        return "created" if changed["inserted"] else "updated"
    cur.execute("SELECT 1 FROM relay_credentials WHERE provider = %s AND domain_id = %s",
                (row["provider"], row["id"]))
    if cur.fetchone():
        return "present"
    cred = provider.smtp_credential(row["name"])
    cur.execute("INSERT INTO relay_credentials (provider, domain_id, relayhost, username, password) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (row["provider"], row["id"], cred.relayhost, cred.username, cred.password))
    return "created"


def inherit(cur, domain_id):
    """A subdomain takes its parent's provider, outbound tier and enforcement;
    a parent passes them on to its linked subdomains."""
    cur.execute("UPDATE domains c SET provider = p.provider, outbound_tier = p.outbound_tier, "
                "outbound_enforcement = p.outbound_enforcement, updated_at = now() "
                "FROM domains p WHERE p.id = c.parent_id AND (c.id = %s OR p.id = %s) "
                "AND (c.provider, c.outbound_tier, c.outbound_enforcement) IS DISTINCT FROM "
                "    (p.provider, p.outbound_tier, p.outbound_enforcement)", (domain_id, domain_id))


def register_subdomain(cur, row):
    """Self-contained: afterwards the subdomain sends with the parent's DKIM."""
    if not row["parent_id"]:
        raise ApiError(400, f"{row['name']} has no parent domain: create the parent first "
                            "or link it with PUT /domains/{name}/parent")
    inherit(cur, row["id"])
    row = load(cur, row["id"])
    parent = load(cur, row["parent_id"])
    provider = get(row["provider"])
    try:
        if row["provider"] == "local":
            dkim.ensure_key(cur, parent["id"])
            # its own keys, if any, stop signing: the parent's identity signs
            cur.execute("UPDATE dkim_keys SET status = 'retiring', "
                        "retire_after = now() + make_interval(days => %s) "
                        "WHERE domain_id = %s AND status = 'active'", (dkim.overlap_days(), row["id"]))
            ident = provider.register_subdomain(row["name"], parent["name"])
        else:
            ident = provider.register_subdomain(row["name"], parent["name"])
            ensure_credential(cur, row)
    except ProviderError as exc:
        raise provider_error(exc) from exc
    _store(cur, row, ident)
    out = identity_json(cur, row, ident.detail)
    key = dkim.signing_key(cur, row["id"], row["parent_id"]) if row["provider"] == "local" else None
    out["dkim_identity"] = ({"domain": key["domain"], "selector": key["selector"]} if key
                            else {"domain": parent["name"]})
    return out


# --- hooks called from api/domains.py ------------------------------------------

def on_created(cur, domain_id):
    """Inherit from a wildcard parent; start verification with the provider,
    except for a subdomain of a verified parent. A provider failure does not
    fail the creation: it is recorded and verify can be retried."""
    inherit(cur, domain_id)
    row = load(cur, domain_id)
    if row["parent_id"] and (row["parent_verified"] or row["parent_provider"] == "local"):
        from . import Identity
        _store(cur, row, Identity(state="inherited", detail=f"inherits {row['parent_name']}"))
        return
    if row["provider"] == "local":
        return   # DKIM key made on first verify/register-subdomain (see docs)
    try:
        ident = get(row["provider"]).start_verification(row["name"])
        if get(row["provider"]).account_wide_credential:
            ensure_credential(cur, row)
        _store(cur, row, ident)
    except ProviderError as exc:
        log.warning("verification of %s with %s not started: %s", row["name"], row["provider"], exc)
        _store(cur, row, None, error=str(exc))


def on_deleting(cur, domain_id):
    """Before the row goes: what provider-side state must be removed after
    commit. Returns a callable for routing.after_commit, or None."""
    cur.execute("SELECT d.name, i.provider, i.state FROM provider_identities i "
                "JOIN domains d ON d.id = i.domain_id WHERE i.domain_id = %s", (domain_id,))
    r = cur.fetchone()
    if r is None or r["provider"] == "local":
        return None
    if r["provider"] == "ses" and r["state"] == "inherited":
        return None   # nothing was installed at SES for it
    name, provider = r["name"], r["provider"]

    def remove():
        get(provider).remove(name)
        log.info("removed %s from %s", name, provider)
    remove.__name__ = f"remove_{provider}_identity"
    return remove


def on_activated(cur, name):
    """PUT activate: bootstrap the Mailgun SMTP credential when missing
    (idempotent; SES and local skipped). Never fails the activation."""
    cur.execute("SELECT id FROM domains WHERE name = %s", (name,))
    found = cur.fetchone()
    if not found:
        return None
    row = load(cur, found["id"])
    if row["provider"] != "mailgun":
        return "skipped"
    try:
        return ensure_credential(cur, row)
    except ProviderError as exc:
        log.warning("Mailgun SMTP credential of %s not created: %s", name, exc)
        return "failed"
